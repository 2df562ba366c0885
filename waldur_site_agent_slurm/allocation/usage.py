"""Usage accounting: reporting windows, clipping jobs to them, and the report dict.

Each job contributes ``AllocTRES × seconds inside the window``. Work is accumulated in
integer TRES-seconds per (account, user, TRES), so nothing is lost before the single
rounding step in ``build_report``. A job crossing a window boundary contributes only
the part inside each window, so consecutive months never count the same second twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from waldur_site_agent_slurm.allocation.units import targets_seconds_to_waldur
from waldur_site_agent_slurm.config import Component
from waldur_site_agent_slurm.errors import SlurmConfigError, UsagePeriodError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import JobRecord

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

TOTAL_KEY = "TOTAL_ACCOUNT_USAGE"
_SECOND = timedelta(seconds=1)
SACCT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class Window:
    """A half-open accounting window [start, end) in UTC."""

    start: datetime
    end: datetime

    def sacct_bounds(self) -> tuple[str, str]:
        """The window as sacct arguments, for a sacct running with TZ=UTC."""
        return (
            self.start.astimezone(UTC).strftime(SACCT_TIME_FORMAT),
            self.end.astimezone(UTC).strftime(SACCT_TIME_FORMAT),
        )


def zone(name: str) -> ZoneInfo:
    """The configured time zone; an empty name means UTC."""
    return validation.zone(name or "UTC")


def month_window(year: int, month: int, tz_name: str) -> Window:
    """The calendar month in the given zone, as a UTC window."""
    tz = zone(tz_name)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return Window(start.astimezone(UTC), end.astimezone(UTC))


def usage_zone(agent_zone: str, configured_zone: str | None) -> str:
    """The zone usage months are cut in.

    ``agent_zone`` is the agent's ``timezone`` as report mode hands it to the backend
    ("" everywhere else, the historical loader included); ``configured_zone`` is
    ``backend_settings.timezone``. Either one is enough; with neither, months are UTC.
    Two different zones would file the same job under different months depending on
    the path that reported it, so that is refused.
    """
    if agent_zone and configured_zone and agent_zone != configured_zone:
        raise SlurmConfigError(
            f"backend_settings.timezone {configured_zone!r} differs from the agent's "
            f"timezone {agent_zone!r}: set both to the same zone"
        )
    return configured_zone or agent_zone or "UTC"


def period_window(year: int, month: int, tz_name: str, now: datetime | None = None) -> Window:
    """The window of a month asked for by number, refusing months that have not begun."""
    if not 1 <= month <= 12 or not 1970 <= year <= 9998:
        raise UsagePeriodError(f"Invalid usage month {year}-{month}: expected a year and 1..12")
    window = month_window(year, month, tz_name)
    now = now or datetime.now(UTC)
    if window.start > now:
        this_year, this_month = current_month(tz_name, now)
        raise UsagePeriodError(
            f"{year:04d}-{month:02d} has not begun (it is {this_year:04d}-{this_month:02d} "
            f"in {tz_name}): end the date range at the current month or earlier"
        )
    return window


def current_month(tz_name: str, now: datetime | None = None) -> tuple[int, int]:
    """(year, month) of ``now`` in the given zone."""
    local = (now or datetime.now(UTC)).astimezone(zone(tz_name))
    return local.year, local.month


def this_month(tz_name: str) -> Window:
    """The current calendar month in the given zone, as a UTC window."""
    return month_window(*current_month(tz_name), tz_name)


def _naive_utc(moment: datetime) -> datetime:
    """``moment`` as sacct prints it with TZ=UTC: naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _clipped_seconds(job: JobRecord, start: datetime, end: datetime, now: datetime) -> int:
    """Whole seconds of ``job`` inside [start, end); a running job counts up to ``now``.

    Every time is naive UTC, as the parser reads sacct's.
    """
    if job.start is None:
        return 0
    begin = max(job.start, start)
    finish = min(job.end if job.end is not None else now, end)
    return (finish - begin) // _SECOND if finish > begin else 0


class UsageAccumulator:
    """Sums TRES-seconds per account, user and TRES for one window."""

    def __init__(
        self, window: Window, now: datetime | None = None, *, running: bool = True
    ) -> None:
        """Start empty; running jobs count up to ``now`` (or the window end).

        With ``running=False`` a job whose record has no end yet counts nothing: what is
        posted to Waldur must never exceed what the job's final record says, since the
        framework refuses a lower value later. A record without an end is not always a
        running job: a job that ended while slurmdbd was down reads as running until
        slurmctld delivers its end, and counted up to ``now`` it would be billed for the
        time in between.
        """
        self.window = window
        self.running = running
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.tres_seconds: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.jobs = 0
        # Job times stay naive UTC: convert the bounds once, not every job's times.
        self._bounds = (_naive_utc(window.start), _naive_utc(window.end), _naive_utc(self.now))

    def add(self, job: JobRecord) -> None:
        """Count one job allocation."""
        self.jobs += 1
        if job.end is None and not self.running:
            return
        seconds = _clipped_seconds(job, *self._bounds)
        if not seconds or not job.alloc_tres:
            return
        per_tres = self.tres_seconds[job.account][job.user]
        for tres, amount in job.alloc_tres.items():
            per_tres[tres] += amount * seconds

    def add_all(self, jobs: Iterable[JobRecord]) -> UsageAccumulator:
        """Count every job of an iterable (consumed lazily)."""
        for job in jobs:
            self.add(job)
        return self


def build_report(
    accumulator: UsageAccumulator, accounts: Iterable[str], components: dict[str, Component]
) -> dict[str, dict[str, dict[str, float]]]:
    """The framework's usage report for ``accounts``, in Waldur units.

    Every account gets a ``TOTAL_ACCOUNT_USAGE`` entry with every component (zero when
    unused). A component reported through several TRES (``target_components``) uses
    the sum over them of ``TRES-minutes ÷ factor``. Per-user values are rounded to
    cents once; the total is the exact sum of those rounded values, so it equals what
    Waldur receives for the users.
    """
    report: dict[str, dict[str, dict[str, float]]] = {}
    for account in accounts:
        users = accumulator.tres_seconds.get(account, {})
        total = dict.fromkeys(components, Decimal(0))
        entry: dict[str, dict[str, float]] = {}
        for user in sorted(users):
            values = {}
            for key, comp in components.items():
                values[key] = targets_seconds_to_waldur(
                    (users[user].get(t.tres, 0), t.factor) for t in comp.targets
                )
                total[key] += values[key]
            entry[user] = {key: float(value) for key, value in values.items()}
        report[account] = {TOTAL_KEY: {key: float(value) for key, value in total.items()}, **entry}
    return report
