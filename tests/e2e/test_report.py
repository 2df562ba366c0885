"""report end to end: usage of emulated jobs reaches Waldur for this and last month."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from tests.e2e.conftest import FLOOD, Agent
from tests.emulator.conftest import seed_job
from waldur_site_agent_slurm.devtools.standin import StandIn

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

MB_PER_GB = 1024


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def hours(start: datetime, end: datetime) -> Decimal:
    return Decimal(int((end - start).total_seconds())) / 3600


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_report_posts_current_and_previous_month_per_component_and_user(
    standin: StandIn, agent: Agent
) -> None:
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    now = datetime.now(UTC).replace(microsecond=0)
    this_month = month_start(now)
    last_month = month_start(this_month - timedelta(days=1))

    # alice: 4 CPUs, 8 GB, 1 GPU for 3 h in the middle of last month.
    a_start = last_month + timedelta(days=10)
    a_end = a_start + timedelta(hours=3)
    seed_job(
        "a_flood-model", "alice", a_start, a_end, {"cpu": 4, "mem": 8 * MB_PER_GB, "gres/gpu": 1}
    )
    # bob: 2 CPUs, 1 GB across the month boundary: 2 h last month, up to 2 h this month.
    b_start = this_month - timedelta(hours=2)
    b_end = min(this_month + timedelta(hours=2), now - timedelta(seconds=1))
    seed_job("a_flood-model", "bob", b_start, b_end, {"cpu": 2, "mem": 1 * MB_PER_GB})

    agent.run("report")

    alice_last = {
        "cpu": 4 * hours(a_start, a_end),
        "mem": 8 * hours(a_start, a_end),
        "gpu": hours(a_start, a_end),
    }
    bob_last = {
        "cpu": 2 * hours(b_start, this_month),
        "mem": hours(b_start, this_month),
        "gpu": Decimal(0),
    }
    bob_this = {
        "cpu": 2 * hours(this_month, b_end),
        "mem": hours(this_month, b_end),
        "gpu": Decimal(0),
    }

    usages = standin.state.component_usages(flood["uuid"])
    by_period = {(u["billing_period"][:10], u["type"]): Decimal(str(u["usage"])) for u in usages}
    for component in ("cpu", "mem", "gpu"):
        last = cents(alice_last[component]) + cents(bob_last[component])
        assert by_period[(last_month.date().isoformat(), component)] == last, component
        if bob_this[component]:
            assert by_period[(this_month.date().isoformat(), component)] == cents(
                bob_this[component]
            )

    user_usages = {
        (u["billing_period"][:10], u["component_type"], u["username"]): Decimal(str(u["usage"]))
        for u in standin.state.user_usages(flood["uuid"])
    }
    period = last_month.date().isoformat()
    assert user_usages[(period, "cpu", "alice")] == cents(alice_last["cpu"])
    assert user_usages[(period, "cpu", "bob")] == cents(bob_last["cpu"])
    assert user_usages[(this_month.date().isoformat(), "mem", "bob")] == cents(bob_this["mem"])


def test_reporting_again_leaves_the_same_values(standin: StandIn, agent: Agent) -> None:
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    last_month = month_start(month_start(datetime.now(UTC)) - timedelta(days=1))
    start = last_month + timedelta(days=3)
    seed_job("a_flood-model", "alice", start, start + timedelta(hours=1), {"cpu": 1})

    def received() -> list[tuple[str, str, str]]:
        usages = standin.state.component_usages(flood["uuid"])
        return sorted((u["billing_period"][:10], u["type"], str(u["usage"])) for u in usages)

    agent.run("report")
    first = received()
    agent.run("report")

    assert received() == first
    assert (last_month.date().isoformat(), "cpu", "1.00") in first
