"""The current time periodic limits work with: the cluster's, or slurm-emulator's.

Periods, the usage window of thresholds and the age of a remembered threshold level
all depend on "now". On a cluster that is the system clock. slurm-emulator keeps its own
clock, which its users move forward to play through a billing period; in emulator mode
"now" is that clock, read from the emulator API at ``periodic_limits.emulator_base_url``
when one is configured, else from the emulator's clock file in this environment.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import SlurmError

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

Clock = Callable[[], datetime]
STATUS_PATH = "/api/status"
TIMEOUT_SECONDS = 10.0
FOLLOW_WALL = "SLURM_EMULATOR_TIME_FOLLOW_WALL"  # the emulator then uses the wall clock
START_HINT = (
    "Start slurm-emulator's server there, e.g. `SLURM_EMULATOR_STATE_FILE=<state file> "
    "uvicorn emulator.api.emulator_server:app --host 127.0.0.1 --port 8080`"
)


class ClockError(SlurmError):
    """The emulator's clock could not be read."""


def system_clock() -> datetime:
    """The system time, in UTC."""
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """The emulator's naive times are UTC (its sacct runs with TZ=UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def emulator_file_clock() -> datetime:
    """slurm-emulator's time, from its clock file (``SLURM_EMULATOR_TIME_FILE``)."""
    try:
        # slurm-emulator is only installed where emulator mode is used.
        from emulator.core.time_engine import TimeEngine  # noqa: PLC0415
    except ImportError as err:
        raise ClockError(
            "emulator_mode needs slurm-emulator installed next to the agent "
            "(pip install slurm-emulator)"
        ) from err
    engine = TimeEngine()
    if not engine.state_file.exists() and not os.environ.get(FOLLOW_WALL):
        logger.warning(
            "slurm-emulator has no clock file (%s), so its clock stands at its default %s: "
            "periods are counted from there. Set it with `python -m "
            "waldur_site_agent_slurm.devtools.emulator clock --now` (or --set TIME)",
            engine.state_file,
            engine.get_current_time().isoformat(),
        )
    return _as_utc(engine.get_current_time())


def emulator_api_clock(base_url: str) -> Clock:
    """A clock reading ``current_time`` from the emulator API at ``base_url``."""
    url = base_url.rstrip("/") + STATUS_PATH

    def read() -> datetime:
        try:
            # The URL comes from the configuration and is checked to be http(s).
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as reply:  # noqa: S310
                status = json.load(reply)
            return _as_utc(datetime.fromisoformat(str(status["current_time"])))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ClockError(
                f"Cannot read slurm-emulator's time from {url} ({err}); nothing applied. "
                f"{START_HINT}, or correct periodic_limits.emulator_base_url"
            ) from err

    return read


def make_clock(emulator_mode: bool, emulator_base_url: str | None) -> Clock:
    """The clock for the configured mode."""
    if not emulator_mode:
        return system_clock
    if emulator_base_url:
        return emulator_api_clock(emulator_base_url)
    return emulator_file_clock
