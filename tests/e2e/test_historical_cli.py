"""waldur_site_load_historical_usage end to end: the real loader CLI, the plugin, the
emulator's sacct and the Waldur stand-in.

Three allocations are created by the real agent (``order_process``), a year of jobs of
five users goes into the emulator's accounting database, and the framework's console
script loads the year. Expected numbers are computed here from the seeded jobs with
exact fractions and the units of examples/emulator-config.yaml (CPU-hours, GB-hours of
memory in MB, GPU-hours), without the plugin's usage code: every per-user value is
rounded half up to cents once, and a resource's total is the sum of those values.

Months are cut at local midnight in Europe/Tallinn (``backend_settings.timezone``, as
the README asks, since the loader passes no timezone to the plugin); the year holds
both of its daylight saving changes, and jobs cross every month boundary.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.emulator.conftest import seed_job
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentRun
from waldur_site_agent_slurm.devtools.standin import StandIn

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = pytest.mark.e2e

LOADER = Path(sys.executable).parent / "waldur_site_load_historical_usage"
OFFERING = "d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50"
STAFF = "demo-offering-token"  # the scenario's staff user
NON_STAFF = "demo-user-token"
ZONE = "Europe/Tallinn"
COASTAL = "Coastal model"
GHOST = "Ghost run"
MONTHS = 12
LINKED = {"alice", "bob", "carol"}  # offering users in state OK; dave's is Requested, erin has none
EMPTY_SKY_MONTH = 4  # index of the month in which Sky survey has no job at all

# Waldur component → (TRES name, TRES-seconds in one Waldur unit).
UNITS = {"cpu": ("cpu", 3600), "mem": ("mem", 3600 * 1024), "gpu": ("gres/gpu", 3600)}

Key = tuple[str, str, str]  # (resource name, billing period, component)
UserKey = tuple[str, str, str, str]  # ... and username


@dataclass(frozen=True)
class Job:
    account: str
    user: str
    start: datetime  # aware UTC
    end: datetime
    tres: dict[str, int]


@dataclass(frozen=True)
class Month:
    period: str  # "YYYY-MM-01", Waldur's billing period
    start: datetime  # local midnight of the 1st, in UTC
    end: datetime


@dataclass(frozen=True)
class Expected:
    totals: dict[Key, Decimal]
    users: dict[UserKey, Decimal]


def months_back(count: int, now: datetime) -> list[Month]:
    """The ``count`` whole months before the current one, in ZONE, oldest first."""
    tz = ZoneInfo(ZONE)
    local = now.astimezone(tz)
    index = local.year * 12 + local.month - 1
    months = []
    for i in range(index - count, index):
        year, month = divmod(i, 12)
        nyear, nmonth = divmod(i + 1, 12)
        start = datetime(year, month + 1, 1, tzinfo=tz).astimezone(UTC)
        end = datetime(nyear, nmonth + 1, 1, tzinfo=tz).astimezone(UTC)
        months.append(Month(f"{year:04d}-{month + 1:02d}-01", start, end))
    return months


def generate_jobs(months: list[Month], now: datetime) -> list[Job]:
    """Jobs inside months, across every boundary (the outer two included) and long ones."""
    rng = random.Random(5)  # noqa: S311 - reproducible test data
    teams = {
        "a_flood-model": ["alice", "bob"],
        "a_coastal-model": ["alice", "bob"],
        "a_sky-survey": ["carol", "dave"],
    }
    gpu_users = {"alice", "carol"}

    def tres(user: str) -> dict[str, int]:
        found = {"cpu": rng.choice([1, 2, 4, 8, 16]), "mem": rng.choice([500, 1024, 4096, 8192])}
        if user in gpu_users:
            found["gres/gpu"] = rng.choice([1, 2, 4])
        return found

    def seconds(low: int, high: int) -> timedelta:
        return timedelta(seconds=rng.randrange(low, high))

    jobs = []
    for month in months:
        span = int((month.end - month.start).total_seconds())
        for account, users in teams.items():
            for user in users:
                start = month.start + seconds(0, span - 86400)
                jobs.append(Job(account, user, start, start + seconds(60, 20 * 3600), tres(user)))
    for boundary in [m.start for m in months] + [months[-1].end]:
        for account, users in teams.items():
            user = rng.choice(users)
            start = boundary - seconds(1, 86400)
            jobs.append(Job(account, user, start, boundary + seconds(1, 86400), tres(user)))
    # Through more than a whole month.
    start = months[6].start + timedelta(days=10)
    jobs.append(Job("a_coastal-model", "bob", start, start + timedelta(days=45, hours=7), tres("")))
    # erin: 18 CPU-seconds is 0.005 CPU-hours, a tie rounded up to 0.01; 17 give 0.00.
    tie = months[2].start + timedelta(days=3)
    jobs.append(Job("a_flood-model", "erin", tie, tie + timedelta(seconds=18), {"cpu": 1}))
    small = months[3].start + timedelta(days=3)
    jobs.append(Job("a_flood-model", "erin", small, small + timedelta(seconds=17), {"cpu": 1}))

    empty = months[EMPTY_SKY_MONTH]
    latest = now - timedelta(minutes=1)
    return [
        Job(job.account, job.user, job.start, min(job.end, latest), job.tres)
        for job in jobs
        if job.start < latest
        and not (job.account == "a_sky-survey" and job.start < empty.end and job.end > empty.start)
    ]


def cents(value: Fraction) -> Decimal:
    """Round half up to two decimals, exactly."""
    return Decimal(floor(value * 100 + Fraction(1, 2))) / 100


def expected_usage(jobs: list[Job], months: list[Month], names: dict[str, str]) -> Expected:
    """What Waldur must hold: positive per-user values and their sums, per month."""
    work: dict[UserKey, Fraction] = defaultdict(Fraction)
    for job in jobs:
        for month in months:
            inside = min(job.end, month.end) - max(job.start, month.start)
            if inside <= timedelta(0):
                continue
            for component, (tres, per_unit) in UNITS.items():
                amount = job.tres.get(tres, 0) * int(inside.total_seconds())
                key = (names[job.account], month.period, component, job.user)
                work[key] += Fraction(amount, per_unit)
    users = {key: cents(value) for key, value in work.items() if cents(value) > 0}
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    for (resource, period, component, _), value in users.items():
        totals[(resource, period, component)] += value
    return Expected(dict(totals), users)


def load(config: Path, *args: str) -> AgentRun:
    """Run the framework's loader CLI; ``args`` come after ``--config``."""
    proc = subprocess.run(
        [str(LOADER), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return AgentRun("historical", proc.returncode, proc.stdout, proc.stderr)


def date_range(months: list[Month]) -> list[str]:
    last = datetime.fromisoformat(months[-1].period)
    end = (last + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return ["--start-date", months[0].period, "--end-date", end.date().isoformat()]


def staff_load(config: Path, months: list[Month], *extra: str) -> AgentRun:
    return load(
        config, "--offering-uuid", OFFERING, "--user-token", STAFF, *date_range(months), *extra
    )


def received(standin: StandIn) -> tuple[dict[Key, Decimal], dict[UserKey, Decimal]]:
    """Every component usage and user usage the stand-in holds, by resource name."""
    totals, users = {}, {}
    for res in standin.state.resources():
        for usage in standin.state.component_usages(res["uuid"]):
            key = (res["name"], usage["billing_period"], usage["type"])
            assert key not in totals, key
            totals[key] = Decimal(usage["usage"])
        for usage in standin.state.user_usages(res["uuid"]):
            ukey = (
                res["name"],
                usage["billing_period"],
                usage["component_type"],
                usage["username"],
            )
            assert ukey not in users, ukey
            users[ukey] = Decimal(usage["usage"])
    return totals, users


def records(standin: StandIn) -> list[tuple[Any, ...]]:
    """The full stand-in usage records (identity, period, type, user, amount, link)."""
    found: list[tuple[Any, ...]] = []
    for res in standin.state.resources():
        found += [
            ("total", u["uuid"], res["name"], u["billing_period"], u["type"], u["usage"], u["date"])
            for u in standin.state.component_usages(res["uuid"])
        ]
        found += [
            ("user", u["uuid"], u["component_usage"], u["username"], u["usage"], u["user"])
            for u in standin.state.user_usages(res["uuid"])
        ]
    return sorted(found, key=repr)


@pytest.fixture
def zoned(standin: StandIn, emulator: Path, tmp_path: Path) -> Agent:
    """The agent configuration with the agent and the plugin in the same zone."""
    path = agent_config(tmp_path / "agent-config.yaml", standin.api_url, timezone=ZONE)
    config = yaml.safe_load(path.read_text())
    config["timezone"] = ZONE
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Agent(path, {})


def create_allocations(standin: StandIn, agent: Agent) -> None:
    """Flood model and Sky survey from the scenario plus Coastal model, through the agent."""
    hydro = standin.state.resource_by_name(FLOOD)["project_uuid"]
    standin.state.add_order(
        "Create", project_uuid=hydro, name=COASTAL, limits={"cpu": 100, "mem": 200, "gpu": 10}
    )
    agent.run("order_process")
    backend_ids = {r["name"]: r["backend_id"] for r in standin.state.resources()}
    assert backend_ids == {
        FLOOD: "a_flood-model",
        SKY: "a_sky-survey",
        COASTAL: "a_coastal-model",
    }


def test_a_year_loads_exactly_and_loading_it_again_changes_nothing(
    standin: StandIn, zoned: Agent
) -> None:
    create_allocations(standin, zoned)
    now = datetime.now(UTC).replace(microsecond=0)
    months = months_back(MONTHS, now)
    jobs = generate_jobs(months, now)
    for job in jobs:
        seed_job(job.account, job.user, job.start, job.end, job.tres)
    names = {r["backend_id"]: r["name"] for r in standin.state.resources()}
    expected = expected_usage(jobs, months, names)

    first = staff_load(zoned.config, months)

    assert first.returncode == 0, first.output[-3000:]
    assert not first.messages("error"), first.messages("error")
    totals, users = received(standin)
    assert totals == expected.totals
    assert users == expected.users
    # The data really covers what it should: every month, all three resources, the gap.
    periods = {m.period for m in months}
    assert {period for _, period, _ in totals} == periods
    assert {name for name, _, _ in totals} == {FLOOD, SKY, COASTAL}
    assert not [k for k in totals if k[:2] == (SKY, months[EMPTY_SKY_MONTH].period)]
    assert users[(FLOOD, months[2].period, "cpu", "erin")] == Decimal("0.01")
    assert (FLOOD, months[3].period, "cpu", "erin") not in users
    # Per-user records link to the offering user when there is one in state OK.
    links = {u["username"]: u["url"] for u in standin.state.dump()["offering_users"]}
    for res in standin.state.resources():
        for usage in standin.state.user_usages(res["uuid"]):
            want = links[usage["username"]] if usage["username"] in LINKED else None
            assert usage["user"] == want, usage

    before = records(standin)
    standin.state.clear_writes()
    second = staff_load(zoned.config, months)

    assert second.returncode == 0, second.output[-3000:]
    assert records(standin) == before
    # The second run did post everything again; the stand-in's values did not add up.
    posted = standin.state.writes(path_contains="set_usage/", method="POST")
    assert len(posted) == len({(name, period) for name, period, _ in expected.totals})
    assert len(standin.state.writes(path_contains="set_user_usage/")) == len(expected.users)


def test_refused_runs_post_nothing(standin: StandIn, zoned: Agent) -> None:
    create_allocations(standin, zoned)
    now = datetime.now(UTC).replace(microsecond=0)
    months = months_back(3, now)
    for account, user in [("a_flood-model", "alice"), ("a_sky-survey", "carol")]:
        start = months[-1].start + timedelta(days=2)
        seed_job(account, user, start, start + timedelta(hours=5), {"cpu": 2, "mem": 1024})
    start = months[0].start + timedelta(days=5)
    seed_job("a_coastal-model", "bob", start, start + timedelta(hours=1), {"cpu": 1})
    hydro = standin.state.resource_by_name(FLOOD)["project_uuid"]
    ghost_order = standin.state.add_order("Create", project_uuid=hydro, name=GHOST)
    ghost = standin.state.order(ghost_order)["marketplace_resource_uuid"]
    standin.state.update_resource(ghost, state="OK", backend_id="a_ghost-run")
    standin.state.clear_writes()
    first_month = months[0].period[:7]

    non_staff = load(
        zoned.config, "--offering-uuid", OFFERING, "--user-token", NON_STAFF, *date_range(months)
    )
    assert non_staff.returncode != 0
    assert non_staff.messages("error")[:1] == [
        "Historical usage loading requires staff user privileges"
    ]
    assert standin.state.writes() == []

    unknown = load(
        zoned.config,
        "--offering-uuid",
        "0123456789abcdef0123456789abcdef",
        "--user-token",
        STAFF,
        *date_range(months),
    )
    assert unknown.returncode != 0
    assert unknown.messages("error") == [
        "Offering with UUID 0123456789abcdef0123456789abcdef not found in configuration"
    ]
    assert standin.state.writes() == []

    first_day, last_day = date_range(months)[1::2]
    reversed_range = load(
        zoned.config,
        "--offering-uuid",
        OFFERING,
        "--user-token",
        STAFF,
        "--start-date",
        last_day,
        "--end-date",
        first_day,
    )
    assert reversed_range.returncode != 0
    assert reversed_range.messages("error") == [
        f"End date {first_day} cannot be before start date {last_day}",
        "Historical usage loading failed: "
        f"End date {first_day} cannot be before start date {last_day}",
    ]
    assert standin.state.writes() == []

    missing = staff_load(zoned.config, months)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"Usage of {first_month} not loaded, nothing posted for it or any later month: "
        "Allocation accounts not in SLURM on cluster default: a_ghost-run; create them, "
        "or leave those "
        "resources out (the loader's --resource-backend-id)"
    ]
    assert standin.state.writes() == []

    # The same run without the missing allocation does post: the runs above were
    # refused, not empty.
    ids = ["a_flood-model", "a_sky-survey", "a_coastal-model"]
    narrowed = staff_load(
        zoned.config, months, *[arg for i in ids for arg in ("--resource-backend-id", i)]
    )
    assert narrowed.returncode == 0, narrowed.output[-3000:]
    posted = {w["body"]["resource"] for w in standin.state.writes(path_contains="set_usage/")}
    uuids = {r["name"]: r["uuid"] for r in standin.state.resources()}
    assert {p.replace("-", "") for p in posted} == {uuids[FLOOD], uuids[SKY], uuids[COASTAL]}
