"""Historical usage on slurm-emulator: 15 months of generated jobs, month by month.

The jobs go into the emulator's accounting database; its ``sacct`` answers the
backend exactly as for any other query. Each month is asked the way the framework's
historical loader asks: a fresh backend with no agent timezone, one call for all
allocations. The expected numbers are computed here from the generated jobs, with
exact fractions, without the plugin's usage code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.emulator.conftest import emulator_backend, seed_job
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = pytest.mark.emulator

ZONE = "Europe/Tallinn"  # two DST changes inside the generated history
ALLOCATIONS = ["alloc-1", "alloc-2", "alloc-3"]
OTHER = "alloc-other"  # exists and has jobs, but is never asked for
USERS = ["alice", "bob", "carol"]
FACTORS = {"cpu": 60, "mem": 61440, "gpu": 60}  # CPU-hours, GB-hours, GPU-hours
TRES = {"cpu": "cpu", "mem": "mem", "gpu": "gres/gpu"}
MONTHS = [(2025, m) for m in range(1, 13)] + [(2026, m) for m in range(1, 4)]
EMPTY_MONTH = (2025, 8)  # no job touches it


@dataclass(frozen=True)
class Job:
    account: str
    user: str
    start: datetime  # naive UTC, as the emulator's sacct prints with TZ=UTC
    end: datetime
    tres: dict[str, int]


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """Local midnight of the 1st of this and the next month, as naive UTC."""
    tz = ZoneInfo(ZONE)
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    end = datetime(*nxt, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    return start, end


def generate_jobs(seed: int) -> list[Job]:
    """Short jobs, jobs straddling month boundaries and jobs spanning whole months."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    empty_start, empty_end = month_bounds(*EMPTY_MONTH)
    first, _ = month_bounds(*MONTHS[0])
    _, last = month_bounds(*MONTHS[-1])
    jobs: list[Job] = []
    while len(jobs) < 160:
        kind = rng.random()
        if kind < 0.6:  # a short job somewhere in the history
            start = first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))
            length = timedelta(seconds=rng.randrange(60, 12 * 3600))
        elif kind < 0.9:  # starts within a day before a local month boundary
            boundary, _ = month_bounds(*rng.choice(MONTHS))
            start = boundary - timedelta(seconds=rng.randrange(1, 86400))
            length = timedelta(seconds=rng.randrange(3600, 3 * 86400))
        else:  # runs through one or two whole months
            start = first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))
            length = timedelta(days=rng.randrange(32, 65), seconds=rng.randrange(86400))
        end = start + length
        if start < empty_end and end > empty_start:
            continue
        tres = {"cpu": rng.choice([1, 2, 4, 16, 64]), "mem": rng.choice([512, 1024, 8192])}
        if rng.random() < 0.3:
            tres["gres/gpu"] = rng.choice([1, 2])
        account = rng.choice([*ALLOCATIONS, OTHER])
        jobs.append(Job(account, rng.choice(USERS), start, end, tres))
    # Straddling the first and the last month of the history.
    hour = timedelta(hours=1)
    jobs.append(
        Job("alloc-1", "alice", first - 5 * hour, first + 3 * hour, {"cpu": 8, "mem": 1024})
    )
    jobs.append(Job("alloc-2", "bob", last - 2 * hour, last + 7 * hour, {"cpu": 4, "mem": 2048}))
    return jobs


def cents(value: Fraction) -> Decimal:
    return Decimal(floor(value * 100 + Fraction(1, 2))) / 100


def expected_report(jobs: list[Job], year: int, month: int) -> dict[str, Any]:
    """What each allocation should report for the month, from first principles."""
    start, end = month_bounds(year, month)
    seconds: dict[str, dict[str, dict[str, int]]] = {a: {} for a in ALLOCATIONS}
    for job in jobs:
        if job.account not in seconds:
            continue
        inside = int((min(job.end, end) - max(job.start, start)).total_seconds())
        if inside <= 0:
            continue
        per_tres = seconds[job.account].setdefault(job.user, {})
        for tres, amount in job.tres.items():
            per_tres[tres] = per_tres.get(tres, 0) + amount * inside
    report: dict[str, Any] = {}
    for account, users in seconds.items():
        total = dict.fromkeys(FACTORS, Decimal(0))
        entry: dict[str, Any] = {}
        for user, per_tres in users.items():
            values = {
                key: cents(Fraction(per_tres.get(TRES[key], 0), 60 * factor))
                for key, factor in FACTORS.items()
            }
            for key, value in values.items():
                total[key] += value
            entry[user] = {key: float(value) for key, value in values.items()}
        report[account] = {"TOTAL_ACCOUNT_USAGE": {k: float(v) for k, v in total.items()}, **entry}
    return report


def loader_backend() -> SlurmBackend:
    """A backend as the historical loader builds it: fresh, no processor, no timezone."""
    components = {
        key: {"measured_unit": key, "unit_factor": factor, "accounting_type": "usage", "label": key}
        for key, factor in FACTORS.items()
    }
    settings = {
        "emulator_mode": True,
        "enable_user_homedir_account_creation": False,
        "timezone": ZONE,
    }
    return SlurmBackend(settings, components)


@pytest.fixture
def history(emulator: Path) -> list[Job]:
    for name in [*ALLOCATIONS, OTHER]:
        res = resource(slug=name, backend_id=name)
        emulator_backend().create_resource_with_id(res, name)
        emulator_backend().add_users_to_resource(res, set(USERS))
    jobs = generate_jobs(seed=2025)
    for job in jobs:
        tres = {**job.tres, "node": 1, "billing": job.tres["cpu"]}
        seed_job(job.account, job.user, job.start, job.end, tres)
    return jobs


def test_every_month_matches_the_jobs_with_one_sacct_per_month(history: list[Job]) -> None:
    crossing = [
        job for job in history if any(job.start < month_bounds(*m)[0] < job.end for m in MONTHS)
    ]
    assert len(crossing) >= 40  # the history really exercises the splitting
    for year, month in MONTHS:
        backend = loader_backend()
        report = backend.get_usage_report_for_period(ALLOCATIONS, year, month)
        assert report == expected_report(history, year, month), (year, month)
        assert backend.runner.calls == 2  # one show assoc, one sacct for all allocations


def test_month_without_jobs_reports_zeros_for_every_allocation(history: list[Job]) -> None:
    report = loader_backend().get_usage_report_for_period(ALLOCATIONS, *EMPTY_MONTH)
    zero = {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}
    assert report == {name: {"TOTAL_ACCOUNT_USAGE": zero} for name in ALLOCATIONS}


def test_months_add_up_to_the_jobs_within_the_rounding_of_each_month(
    history: list[Job],
) -> None:
    months = [loader_backend().get_usage_report_for_period(["alloc-1"], *m) for m in MONTHS]
    first, _ = month_bounds(*MONTHS[0])
    _, last = month_bounds(*MONTHS[-1])
    cpu_seconds = sum(
        job.tres["cpu"] * int((min(job.end, last) - max(job.start, first)).total_seconds())
        for job in history
        if job.account == "alloc-1"
    )
    summed = sum(Decimal(str(m["alloc-1"]["TOTAL_ACCOUNT_USAGE"]["cpu"])) for m in months)
    users = {u for m in months for u in m["alloc-1"]} - {"TOTAL_ACCOUNT_USAGE"}
    # Each month rounds each user once: at most half a cent per user and month apart.
    bound = Fraction(len(MONTHS) * len(users), 200)
    assert abs(Fraction(summed) - Fraction(cpu_seconds, 3600)) <= bound
