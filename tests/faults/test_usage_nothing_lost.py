"""Usage as Waldur receives it, for random job sets: nothing lost, nothing counted twice.

``tests/test_usage_properties.py`` and ``tests/test_historical_properties.py`` prove the
arithmetic on the plugin's report dict. Here the framework's own report processor
(waldur-site-agent 1.0.7) reports the current and two past months to the Waldur
stand-in, and the checks run on what the stand-in stored, i.e. on the amounts exactly
as sent:

1. per resource, month and component, the per-user amounts sum exactly to the total;
2. each amount sent is the exact usage of that user in that month (computed here with
   fractions from the jobs), rounded half up to cents, once;
3. the exact monthly usages add up to the whole-job usage, so no second of a job is
   lost or counted in two months.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waldur_site_agent.common import processors, utils

from tests.conftest import make_backend
from tests.e2e.conftest import FLOOD, SCENARIO, SKY, agent_config
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

MONTHS = 3  # the current month and two before it
FACTORS = {"cpu": ("cpu", 60000), "mem": ("mem", 61440), "gpu": ("gres/gpu", 60)}
ACCOUNTS = {FLOOD: "a_flood-model", SKY: "a_sky-survey"}
USERS = ("alice", "bob", "carol")
DEMO = load_scenario(SCENARIO)  # frozen; each example gets its own stand-in state
FMT = "%Y-%m-%dT%H:%M:%S"


def month_starts(now: datetime) -> list[datetime]:
    """Starts of the reported months, oldest first, and of the next month (UTC)."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [first]
    for _ in range(MONTHS - 1):
        starts.insert(0, (starts[0] - timedelta(days=1)).replace(day=1))
    starts.append((first + timedelta(days=32)).replace(day=1))
    return starts


jobs = st.lists(
    st.tuples(
        st.sampled_from(sorted(ACCOUNTS.values())),
        st.sampled_from(USERS),
        st.floats(0, 1),  # where the job starts, as a share of the reported span
        st.one_of(st.integers(0, 7200), st.integers(0, 40 * 86400)),  # its length
        st.integers(1, 128),
        st.integers(1, 2**19),
        st.integers(0, 4),
    ),
    max_size=25,
)


def sacct_lines(
    drawn: list[tuple[Any, ...]], now: datetime
) -> list[tuple[str, str, datetime, datetime, dict[str, int]]]:
    """Jobs placed inside the reported months, finished before now."""
    span_start = month_starts(now)[0]
    span = (now - span_start).total_seconds() - 60
    placed = []
    for account, user, share, length, cpu, mem, gpu in drawn:
        start = span_start + timedelta(seconds=int(share * span))
        end = min(start + timedelta(seconds=length), now - timedelta(seconds=60))
        placed.append((account, user, start, end, {"cpu": cpu, "mem": mem, "gres/gpu": gpu}))
    return placed


def exact_usage(
    placed: list[Any], begin: datetime, end: datetime
) -> dict[tuple[str, str, str], Fraction]:
    """(account, user, component) → exact Waldur units used inside [begin, end)."""
    used: dict[tuple[str, str, str], Fraction] = {}
    for account, user, start, finish, tres in placed:
        seconds = max(0, int((min(finish, end) - max(start, begin)).total_seconds()))
        for key, (name, factor) in FACTORS.items():
            amount = Fraction(tres[name] * seconds, 60 * factor)
            used[(account, user, key)] = used.get((account, user, key), Fraction(0)) + amount
    return used


def cents(value: Fraction) -> Decimal:
    return Decimal(math.floor(value * 100 + Fraction(1, 2))) / 100


def report(tmp_path: Path, placed: list[Any]) -> StandIn:
    """One report cycle of the framework's processor; returns the stopped stand-in."""
    rows = [f"{a}|||p_x|1||||normal|" for a in ACCOUNTS.values()]
    rows += [f"{a}|{u}|||1||||normal|" for a in ACCOUNTS.values() for u in USERS]
    lines = [
        f"{n}|{a}|{u}|COMPLETED|{s.strftime(FMT)}|{e.strftime(FMT)}|"
        + ",".join(f"{k}={v}" for k, v in t.items())
        for n, (a, u, s, e, t) in enumerate(placed, 1)
    ]
    runner = FakeRunner(
        outputs={
            "list tres": TRES_OUTPUT,
            "show assoc": assoc_lines(*rows),
            "--allocations": "\n".join(lines),
        }
    )
    standin = StandIn(DEMO)
    with standin:
        for uuid, account in ACCOUNTS.items():
            resource = standin.state.resource_by_name(uuid)
            standin.state.update_resource(resource["uuid"], state="OK", backend_id=account)
        path = agent_config(tmp_path / "agent.yaml", standin.api_url, timezone="UTC")
        config = yaml.safe_load(path.read_text())
        config["reporting_periods"] = MONTHS
        path.write_text(yaml.safe_dump(config))
        conf = utils.load_configuration(str(path), "report")
        offering = conf.waldur_offerings[0]
        client = utils.get_client(offering.api_url, offering.api_token, "test-report")
        backend = make_backend(runner, timezone="UTC")
        processor = processors.OfferingReportProcessor(
            offering, client, "UTC", resource_backend=backend, reporting_periods=MONTHS
        )
        processor.process_offering()
    return standin


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(drawn=jobs)
def test_amounts_as_sent_add_up_per_user_per_month_and_over_whole_jobs(
    tmp_path_factory: Any, drawn: list[tuple[Any, ...]]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    placed = sacct_lines(drawn, now)
    standin = report(tmp_path_factory.mktemp("report"), placed)
    starts = month_starts(now)

    whole = exact_usage(placed, starts[0], starts[-1])
    by_month = [exact_usage(placed, starts[n], starts[n + 1]) for n in range(MONTHS)]
    for key, total in whole.items():  # 3: no second lost or counted twice
        assert sum(month.get(key, Fraction(0)) for month in by_month) == total

    for uuid, account in ACCOUNTS.items():
        resource = standin.state.resource_by_name(uuid)["uuid"]
        totals: dict[tuple[str, str], Decimal] = {}
        for usage in standin.state.component_usages(resource):
            totals[(usage["billing_period"][:10], usage["type"])] = Decimal(str(usage["usage"]))
        users: dict[tuple[str, str], dict[str, Decimal]] = {}
        for usage in standin.state.user_usages(resource):
            period = (usage["billing_period"][:10], usage["component_type"])
            users.setdefault(period, {})[usage["username"]] = Decimal(str(usage["usage"]))

        for n in range(MONTHS):
            period = starts[n].date().isoformat()
            for key in FACTORS:
                expected = {
                    user: cents(by_month[n].get((account, user, key), Fraction(0)))
                    for user in USERS
                    if any(p[0] == account and p[1] == user for p in placed)
                }
                sent = users.get((period, key), {})
                # 2: each amount is the exact usage, rounded once (zeros may be left out)
                assert {u: v for u, v in sent.items() if v} == {
                    u: v for u, v in expected.items() if v
                }, (account, period, key)
                assert set(sent) <= set(expected)
                if (period, key) in totals:  # 1: users add up to the total
                    assert sum(sent.values(), Decimal(0)) == totals[(period, key)]
                else:
                    assert not any(expected.values())
