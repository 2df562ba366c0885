#!/usr/bin/env python3
"""Run the historical usage tests by themselves.

    .venv/bin/python run_historical_tests.py            # every historical test
    .venv/bin/python run_historical_tests.py -k dst -x  # extra arguments go to pytest

Covers month windows and time zones, the properties over random job histories, the
framework's loader driving the plugin, the emulator tier, the real SLURM tier (skipped
outside CI when SLURM is not running) and the end-to-end CLI test when present.
Exits with pytest's status, except that "no tests collected" (5) counts as success.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TESTS = [
    "tests/test_historical_usage.py",
    "tests/test_historical_properties.py",
    "tests/test_historical_loader.py",
    "tests/test_parser_fast_paths.py",
    "tests/emulator/test_historical_on_emulator.py",
    "tests/real/test_historical_on_real_slurm.py",
    "tests/e2e/test_historical_cli.py",
]
NO_TESTS_COLLECTED = 5


def main() -> int:
    """Run pytest on the historical test files that exist; return its exit status."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    files = [name for name in TESTS if (ROOT / name).exists()]
    argv = [python, "-m", "pytest", *files, *sys.argv[1:]]
    status = subprocess.call(argv, cwd=ROOT)  # noqa: S603 - fixed argv, no shell
    return 0 if status == NO_TESTS_COLLECTED else status


if __name__ == "__main__":
    sys.exit(main())
