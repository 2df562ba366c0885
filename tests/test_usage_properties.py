"""Properties of usage accounting over random job sets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from waldur_site_agent_slurm.allocation.usage import (
    TOTAL_KEY,
    UsageAccumulator,
    Window,
    build_report,
    month_window,
)
from waldur_site_agent_slurm.config import Component
from waldur_site_agent_slurm.slurm.parser import JobRecord

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

COMPONENTS = {
    "cpu": Component("cpu", "cpu", 60.0, "usage"),
    "mem": Component("mem", "mem", 61440.0, "usage"),
    "gpu": Component("gpu", "gres/gpu", 7.0, "usage"),
}
BASE = datetime(2026, 1, 1)

jobs = st.lists(
    st.builds(
        lambda user, start, length, cpu, mem, gpu: JobRecord(
            job_id="1",
            account="acct",
            user=user,
            state="COMPLETED",
            start=BASE + timedelta(seconds=start),
            end=BASE + timedelta(seconds=start + length),
            alloc_tres={"cpu": cpu, "mem": mem, "gres/gpu": gpu},
        ),
        user=st.sampled_from(["alice", "bob", "carol"]),
        start=st.integers(0, 120 * 86400),
        length=st.integers(0, 40 * 86400),
        cpu=st.integers(1, 256),
        mem=st.integers(1, 2**20),
        gpu=st.integers(0, 8),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(jobs)
def test_total_is_exactly_the_sum_of_user_values_as_sent(job_list: list[JobRecord]) -> None:
    window = month_window(2026, 2, "UTC")
    acc = UsageAccumulator(window, now=datetime(2026, 6, 1, tzinfo=UTC)).add_all(job_list)
    report = build_report(acc, ["acct"], COMPONENTS)["acct"]
    for key in COMPONENTS:
        sent = [
            Decimal(f"{values[key]:.2f}") for user, values in report.items() if user != TOTAL_KEY
        ]
        assert Decimal(f"{report[TOTAL_KEY][key]:.2f}") == sum(sent, Decimal(0))
        assert str(report[TOTAL_KEY][key]) == str(float(sum(sent, Decimal(0))))


@settings(max_examples=200, deadline=None)
@given(jobs)
def test_months_split_jobs_without_losing_or_repeating_a_second(job_list: list[JobRecord]) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    whole = UsageAccumulator(Window(BASE.replace(tzinfo=UTC), now), now=now).add_all(job_list)
    months = [
        UsageAccumulator(month_window(2026, m, "Europe/Tallinn"), now=now).add_all(job_list)
        for m in range(1, 12)
    ]
    for user, per_tres in whole.tres_seconds["acct"].items():
        for tres, seconds in per_tres.items():
            # Jobs lie between Jan 1 and mid-June: the Tallinn months cover all of them.
            assert sum(m.tres_seconds["acct"][user][tres] for m in months) == seconds
