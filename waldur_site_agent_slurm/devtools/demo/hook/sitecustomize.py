"""Let a site agent process stop after its first polling cycle.

This directory goes on ``PYTHONPATH`` only for the demo and the end-to-end tests; the
agent itself is unchanged. Its polling loops sleep a 60-second tick between cycles, so
the first sleep of that length means one full cycle is done: with
``WALDUR_SLURM_ONE_CYCLE`` set, the process exits 0 right there.
``WALDUR_SLURM_SLEEP_SCALE`` (a factor, default 1) shortens the shorter sleeps, the
pauses between retries of a failed Waldur call, so failure paths run in seconds.
``WALDUR_SLURM_HTTP_TIMEOUT`` (seconds) replaces the framework's 600-second timeout of
requests to Waldur, so a test can make Waldur hang and see the agent time out.
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


def _shorten_http_timeout(seconds: float) -> None:
    import httpx  # noqa: PLC0415 - only when asked for

    real_init = httpx.Client.__init__

    def init(self: httpx.Client, *args: object, **kwargs: object) -> None:
        kwargs["timeout"] = seconds
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    httpx.Client.__init__ = init  # type: ignore[method-assign]


if os.environ.get("WALDUR_SLURM_HTTP_TIMEOUT"):
    _shorten_http_timeout(float(os.environ["WALDUR_SLURM_HTTP_TIMEOUT"]))
