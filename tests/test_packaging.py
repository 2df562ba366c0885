"""A production install (no extras) needs no development-only package to import.

scripts/check-install.sh checks the whole install in a fresh virtualenv; this runs its
import check on every interpreter the test tiers run on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / "scripts" / "check_install.py"


def test_every_module_imports_with_the_development_packages_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), "--imports-only"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout
    assert "'emulator', 'hypothesis', 'jsonschema', 'pytest'" in result.stdout
