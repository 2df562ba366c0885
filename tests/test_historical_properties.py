"""Properties of month-by-month usage over random job histories.

Jobs go through the whole plugin path below the runner: they are printed as sacct
``--parsable2`` lines, parsed, clipped to each month of a zone and turned into the
report. Expected numbers are computed here independently, with exact fractions.

What holds, for every account, user and component:

1. In integer TRES-seconds, the months add up exactly to the whole-job usage: every
   second a job ran (a running job: up to ``now``) falls into exactly one month.
2. Each per-user value sent for a month is that month's exact usage rounded half-up
   to cents, once.
3. So the sum over M months of the values sent differs from the exact whole-job usage
   by at most M × 0.005, and from the whole-job usage rounded once by at most
   (M + 1) × 0.005. Rounding per month cannot be made to add up exactly; the bound is
   what the billing sees.
4. ``TOTAL_ACCOUNT_USAGE`` equals the sum of the per-user values exactly as sent
   (as decimal strings), and every requested account reports every component, zero
   when it had no jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor

from hypothesis import given, settings
from hypothesis import strategies as st

from waldur_site_agent_slurm.allocation.usage import (
    TOTAL_KEY,
    UsageAccumulator,
    build_report,
    current_month,
    month_window,
)
from waldur_site_agent_slurm.config import Component
from waldur_site_agent_slurm.slurm.parser import JobRecord, parse_jobs

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

COMPONENTS = {
    "cpu": Component("cpu", "cpu", 60000.0, "usage"),  # CPU k-hours
    "mem": Component("mem", "mem", 61440.0, "usage"),  # GB-hours of MB
    "gpu": Component("gpu", "gres/gpu", 7.0, "usage"),  # an awkward factor
    "storage": Component("storage", None, 1.0, "usage"),  # no TRES: always zero
}
ACCOUNTS = ["acct-a", "acct-b", "acct-idle"]
ZONES = ["UTC", "Europe/Tallinn", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
FIRST = datetime(2025, 1, 1)  # naive UTC, as sacct prints with TZ=UTC
SPAN = 420 * 86400  # jobs start within ~14 months
FMT = "%Y-%m-%dT%H:%M:%S"


@st.composite
def job_lines(draw: st.DrawFn) -> list[str]:
    lines = []
    for job_id in range(draw(st.integers(0, 30))):
        start = FIRST + timedelta(seconds=draw(st.integers(-40 * 86400, SPAN)))
        length = draw(
            st.one_of(
                st.integers(0, 3600),  # short
                st.integers(0, 4 * 86400),  # days, often across a month boundary
                st.integers(30 * 86400, 70 * 86400),  # across one or two whole months
            )
        )
        state, end_text = draw(
            st.sampled_from(
                [
                    ("COMPLETED", "end"),
                    ("CANCELLED by 0", "end"),
                    ("RUNNING", "Unknown"),  # counts up to now
                    ("PENDING", "pending"),  # never started: counts nothing
                ]
            )
        )
        tres = {
            "cpu": draw(st.integers(1, 512)),
            "mem": draw(st.integers(1, 2**21)),
            "gres/gpu": draw(st.integers(0, 8)),
        }
        alloc = ",".join(f"{k}={v}M" if k == "mem" else f"{k}={v}" for k, v in tres.items())
        if end_text == "pending":
            start_text, end_text, alloc = "Unknown", "Unknown", ""
        else:
            start_text = start.strftime(FMT)
            if end_text == "end":
                end_text = (start + timedelta(seconds=length)).strftime(FMT)
        account = draw(st.sampled_from(ACCOUNTS[:2]))
        user = draw(st.sampled_from(["alice", "bob", "carol"]))
        lines.append(f"{job_id}|{account}|{user}|{state}|{start_text}|{end_text}|{alloc}")
    return lines


def months_between(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    year, month = first
    result = []
    while (year, month) <= last:
        result.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


def whole_job_seconds(jobs: list[JobRecord], now: datetime) -> dict[tuple[str, str, str], int]:
    """TRES-seconds of every job from its start to its end (or ``now``), unclipped."""
    total: dict[tuple[str, str, str], int] = {}
    for job in jobs:
        if job.start is None:
            continue
        end = job.end or now.replace(tzinfo=None)
        seconds = max(0, int((end - job.start).total_seconds()))
        for tres, amount in job.alloc_tres.items():
            key = (job.account, job.user, tres)
            total[key] = total.get(key, 0) + amount * seconds
    return total


def cents(value: Fraction) -> Decimal:
    """Round half up to cents, exactly."""
    return Decimal(floor(value * 100 + Fraction(1, 2))) / 100


def exact(tres_seconds: int, component: Component) -> Fraction:
    return Fraction(tres_seconds, 60) / Fraction(str(component.unit_factor))


@settings(max_examples=150, deadline=None)
@given(
    lines=job_lines(),
    zone=st.sampled_from(ZONES),
    now_offset=st.integers(SPAN + 80 * 86400, SPAN + 120 * 86400),
)
def test_months_add_up_to_whole_jobs_and_reports_round_once(
    lines: list[str], zone: str, now_offset: int
) -> None:
    now = (FIRST + timedelta(seconds=now_offset)).replace(tzinfo=UTC)
    jobs = list(parse_jobs(lines))
    # Jobs start on 22 Nov 2024 at the earliest; all end before ``now``, or run until it.
    months = months_between(
        current_month(zone, datetime(2024, 11, 1, tzinfo=UTC)), current_month(zone, now)
    )
    accumulators = [
        UsageAccumulator(month_window(y, m, zone), now=now).add_all(jobs) for y, m in months
    ]
    reports = [build_report(acc, ACCOUNTS, COMPONENTS) for acc in accumulators]

    # 1. Integer TRES-seconds: months add up to whole jobs, nothing lost or repeated.
    whole = whole_job_seconds(jobs, now)
    by_month: dict[tuple[str, str, str], int] = {}
    for acc in accumulators:
        for account, users in acc.tres_seconds.items():
            for user, per_tres in users.items():
                for tres, seconds in per_tres.items():
                    slot = (account, user, tres)
                    by_month[slot] = by_month.get(slot, 0) + seconds
    assert {k: v for k, v in by_month.items() if v} == {k: v for k, v in whole.items() if v}

    for acc, report in zip(accumulators, reports, strict=True):
        for account in ACCOUNTS:
            entry = report[account]
            # 4. Every account, every component, even without jobs.
            assert set(entry[TOTAL_KEY]) == set(COMPONENTS)
            for key, comp in COMPONENTS.items():
                sent = [Decimal(str(v[key])) for user, v in entry.items() if user != TOTAL_KEY]
                assert Decimal(str(entry[TOTAL_KEY][key])) == sum(sent, Decimal(0))
                for user, values in entry.items():
                    if user == TOTAL_KEY:
                        continue
                    seconds = acc.tres_seconds[account][user].get(comp.tres or "", 0)
                    # 2. Each value sent is the exact month usage rounded once.
                    assert Decimal(str(values[key])) == cents(exact(seconds, comp))
                    assert str(values[key]) == str(float(cents(exact(seconds, comp))))

    # 3. The bound between months summed as sent and the whole-job usage.
    bound = Decimal("0.005") * len(months)
    for (account, user, tres), seconds in whole.items():
        for key, comp in COMPONENTS.items():
            if comp.tres != tres:
                continue
            summed = sum(
                (Decimal(str(r[account].get(user, {}).get(key, 0.0))) for r in reports),
                Decimal(0),
            )
            whole_exact = exact(seconds, comp)
            assert abs(Fraction(summed) - whole_exact) <= Fraction(bound)
            assert abs(summed - cents(whole_exact)) <= bound + Decimal("0.005")


@settings(max_examples=100, deadline=None)
@given(lines=job_lines(), zone=st.sampled_from(ZONES))
def test_running_jobs_count_to_the_window_end_or_now_whichever_is_first(
    lines: list[str], zone: str
) -> None:
    jobs = [job for job in parse_jobs(lines) if job.end is None and job.start is not None]
    now = (FIRST + timedelta(days=200, seconds=12345)).replace(tzinfo=UTC)
    year, month = current_month(zone, now)
    for y, m in ((year, month - 1) if month > 1 else (year - 1, 12), (year, month)):
        window = month_window(y, m, zone)
        acc = UsageAccumulator(window, now=now).add_all(jobs)
        expected: dict[tuple[str, str], int] = {}
        for job in jobs:
            start = max(job.start.replace(tzinfo=UTC), window.start)  # type: ignore[union-attr]
            stop = min(now, window.end)
            seconds = max(0, int((stop - start).total_seconds()))
            key = (job.account, job.user)
            expected[key] = expected.get(key, 0) + job.alloc_tres.get("cpu", 0) * seconds
        got = {
            (account, user): per_tres.get("cpu", 0)
            for account, users in acc.tres_seconds.items()
            for user, per_tres in users.items()
        }
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
