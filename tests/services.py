"""What a test does when a service it needs is missing: skip outside CI, fail in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    """Fail in CI (CI=true), where every tier must run; skip elsewhere, saying why."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
