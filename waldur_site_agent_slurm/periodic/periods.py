"""Billing periods of a periodic usage policy: month, quarter, year or the whole term.

Waldur Mastermind names periods ``YYYY-MM``, ``YYYY-Q#``, ``YYYY`` and ``total``. The
same identifiers key the RawUsage-reset guard and the QoS threshold state, and a
period's window is what the threshold usage is read over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from waldur_site_agent_slurm.allocation.usage import Window, zone
from waldur_site_agent_slurm.errors import InvalidValueError

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

KINDS = ("month", "quarter", "year", "total")
MONTHS_PER = {"month": 1, "quarter": 3, "year": 12}
# "total" has no start of its own: its window begins before any accounting data.
TOTAL_START = datetime(1970, 1, 1, tzinfo=UTC)
_ID_RE = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<quarter>Q[1-4])|-(?P<month>0[1-9]|1[0-2]))?")


@dataclass(frozen=True)
class Period:
    """One billing period: ``kind`` with the ``year`` and ``index`` (month 1-12, quarter 1-4)."""

    kind: str
    year: int = 0
    index: int = 0

    @property
    def id(self) -> str:
        """The identifier Waldur uses for the period (``2026-05``, ``2026-Q2``, ``2026``)."""
        if self.kind == "month":
            return f"{self.year:04d}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year:04d}-Q{self.index}"
        if self.kind == "year":
            return f"{self.year:04d}"
        return "total"

    @property
    def is_total(self) -> bool:
        """True for a one-off allocation that has no next period."""
        return self.kind == "total"

    def _first_month(self) -> tuple[int, int]:
        """(year, month) the period starts in."""
        if self.kind == "month":
            return self.year, self.index
        if self.kind == "quarter":
            return self.year, 3 * (self.index - 1) + 1
        return self.year, 1

    def next(self) -> Period:
        """The period after this one (``total`` is its own successor)."""
        if self.is_total:
            return self
        year, month = self._first_month()
        months = year * 12 + month - 1 + MONTHS_PER[self.kind]
        return period_of(self.kind, datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))

    def window(self, tz_name: str, now: datetime) -> Window:
        """The period as a UTC window; periods start at midnight in ``tz_name``."""
        if self.is_total:
            return Window(TOTAL_START, max(now, TOTAL_START))
        tz = zone(tz_name)
        year, month = self._first_month()
        after_year, after_month = self.next()._first_month()
        start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        end = datetime(after_year, after_month, 1, tzinfo=tz).astimezone(UTC)
        return Window(start, end)

    def ended_before(self, now: datetime, tz_name: str) -> bool:
        """True when ``now`` is past the end of this period (never for ``total``)."""
        return not self.is_total and self.window(tz_name, now).end <= now


def period_of(kind: str, moment: datetime, tz_name: str = "UTC") -> Period:
    """The period of ``kind`` that contains ``moment`` (as seen in ``tz_name``)."""
    if kind not in KINDS:
        raise InvalidValueError("period kind", kind, f"allowed: {', '.join(KINDS)}")
    if kind == "total":
        return Period("total")
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(zone(tz_name))
    if kind == "month":
        return Period("month", local.year, local.month)
    if kind == "quarter":
        return Period("quarter", local.year, (local.month - 1) // 3 + 1)
    return Period("year", local.year)


def parse_period(value: object, field: str = "period") -> Period:
    """Parse a Waldur period identifier (``2026-05``, ``2026-Q2``, ``2026``, ``total``)."""
    if not isinstance(value, str):
        raise InvalidValueError(field, value, "expected a period such as 2026-05 or 2026-Q2")
    if value == "total":
        return Period("total")
    match = _ID_RE.fullmatch(value)
    if match is None:
        raise InvalidValueError(field, value, "expected YYYY-MM, YYYY-Q1..YYYY-Q4, YYYY or total")
    year = int(match.group("year"))
    if match.group("quarter"):
        return Period("quarter", year, int(match.group("quarter")[1]))
    if match.group("month"):
        return Period("month", year, int(match.group("month")))
    return Period("year", year)
