#!/usr/bin/env python3
"""Run the historical usage tests by themselves.

    .venv/bin/python run_historical_tests.py            # every historical test
    .venv/bin/python run_historical_tests.py -k dst -x  # extra arguments go to pytest

Covers month windows and time zones, the properties over random job histories, the
framework's loader driving the plugin, the emulator tier, the real SLURM tier and the
end-to-end CLI test when present. The real SLURM tier runs only against the suite's own
SLURM, when ``scripts/real-slurm.sh status`` reports it up (see
``run_periodic_limits_tests.py``); a SLURM that merely answers on this host is never used.
Exits with pytest's status, except that "no tests collected" (5) counts as success.
"""

from __future__ import annotations

import sys

from run_periodic_limits_tests import run_pytest

TESTS = [
    "tests/test_historical_usage.py",
    "tests/test_historical_properties.py",
    "tests/test_historical_loader.py",
    "tests/test_parser_fast_paths.py",
    "tests/emulator/test_historical_on_emulator.py",
    "tests/real/test_historical_on_real_slurm.py",
    "tests/e2e/test_historical_cli.py",
]

if __name__ == "__main__":
    sys.exit(run_pytest(TESTS, sys.argv[1:]))
