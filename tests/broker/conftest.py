"""Broker tier: STOMP over WebSocket against the RabbitMQ of scripts/rabbitmq.sh.

The tier needs root and a running broker. Outside CI a missing broker skips the tier
with the command that starts it; in CI (CI=true) it is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.broker import ROOT, SCRIPT
from tests.services import unavailable


def _broker_status() -> str | None:
    """None if the broker is ready, else why not."""
    if os.geteuid() != 0:
        return "the broker tier needs root"
    status = subprocess.run(
        ["bash", str(SCRIPT), "status"], capture_output=True, text=True, check=False
    )
    if status.returncode == 0:
        return None
    return "RabbitMQ is not ready: " + "; ".join(
        (status.stdout + status.stderr).strip().splitlines()
    )


@pytest.fixture(scope="session", autouse=True)
def rabbitmq() -> None:
    problem = _broker_status()
    if problem is None:
        return
    message = f"{problem} (start it: sudo bash {SCRIPT.relative_to(ROOT)} up)"
    unavailable(message)
