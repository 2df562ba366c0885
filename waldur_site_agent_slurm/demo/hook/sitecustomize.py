"""Let a site agent process stop after its first polling cycle.

This directory goes on ``PYTHONPATH`` only for the demo and the end-to-end tests; the
agent itself is unchanged. Its polling loops sleep a 60-second tick between cycles, so
the first sleep of that length means one full cycle is done: with
``WALDUR_SLURM_ONE_CYCLE`` set, the process exits 0 right there.
``WALDUR_SLURM_SLEEP_SCALE`` (a factor, default 1) shortens the shorter sleeps, the
pauses between retries of a failed Waldur call, so failure paths run in seconds.
"""

import os
import sys
import time
from typing import SupportsIndex

_TICK_SECONDS = 60
_real_sleep = time.sleep


def _sleep(value: "float | SupportsIndex") -> None:
    seconds = float(value)
    if seconds >= _TICK_SECONDS:
        sys.stderr.write("site agent: first cycle finished, stopping\n")
        sys.stderr.flush()
        raise SystemExit(0)
    _real_sleep(seconds * float(os.environ.get("WALDUR_SLURM_SLEEP_SCALE", "1")))


if os.environ.get("WALDUR_SLURM_ONE_CYCLE"):
    time.sleep = _sleep
