"""Prepaid components: how many months of limit a resource has paid for.

A prepaid component (``accounting_type: one``) is bought for the resource's whole
duration, so its GrpTRESMins is ``limit × unit_factor × months``. Months run from the
day the resource was created (its ``created`` moment, taken as a date in the
configured zone) to its ``end_date`` (a date, as Waldur keeps it):

- whole calendar months count from the start day: 15 Jan → 15 Jun is 5 months;
- a month that starts on a day the end month lacks ends on that month's last day:
  31 Jan → 28 Feb is one month (29 Feb in a leap year), 31 Jan → 1 Mar two;
- a partial month counts as one (15 Jan → 16 Jun is 6), and there is at least one
  (the same day, an end before the start, or no end date at all).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timezone

from waldur_site_agent_slurm.slurm import validation

UTC = timezone.utc  # datetime.UTC from Python 3.11 on


def add_months(start: date, months: int) -> date:
    """``start`` moved by whole months, kept on the month's last day when it is shorter."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def months_between(start: date, end: date) -> int:
    """Months from ``start`` to ``end``, a partial month counting as one; at least one."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) < end:
        months += 1
    return max(months, 1)


def local_date(moment: date | datetime, zone_name: str) -> date:
    """The calendar date of ``moment`` in the zone (a naive datetime is UTC)."""
    if not isinstance(moment, datetime):
        return moment
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(validation.zone(zone_name or "UTC")).date()


def resource_months(
    created: object, end_date: object, zone_name: str, today: date | None = None
) -> int:
    """Months a resource has paid for; a missing ``created`` means it starts today."""
    if not isinstance(end_date, date):
        return 1
    start = (
        local_date(created, zone_name)
        if isinstance(created, date)
        else today or local_date(datetime.now(UTC), zone_name)
    )
    return months_between(start, local_date(end_date, zone_name))
