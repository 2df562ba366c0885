#!/usr/bin/env python3
"""Run the periodic-limits tests with pytest; extra arguments go to pytest.

    python run_periodic_limits_tests.py              # domain, emulator, real SLURM, e2e
    python run_periodic_limits_tests.py -k reset -q  # a selection

Uses the project's .venv when there is one. Files that do not exist (yet) are left out.
The exit status is pytest's, except that "no tests collected" (5) counts as success.
The real SLURM tier skips itself outside CI when SLURM is not running.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEST_FILES = (
    "tests/test_periodic.py",
    "tests/emulator/test_periodic_on_emulator.py",
    "tests/real/test_periodic_on_real_slurm.py",
    "tests/e2e/test_event_periodic.py",
)
NO_TESTS_COLLECTED = 5


def run_pytest(test_files: list[str] | tuple[str, ...], args: list[str]) -> int:
    """Run pytest on those of ``test_files`` that exist; return its exit status (5 → 0)."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    files = [name for name in test_files if (ROOT / name).exists()]
    status = subprocess.call([python, "-m", "pytest", *files, *args], cwd=ROOT)  # noqa: S603
    return 0 if status == NO_TESTS_COLLECTED else status


if __name__ == "__main__":
    sys.exit(run_pytest(TEST_FILES, sys.argv[1:]))
