"""The end-to-end scenario against each real SLURM of scripts/real-slurm.sh (22.05, 24.11).

The real agent creates the allocations, users run real jobs, the report reaches the
stand-in with what sacct measured, pause blocks sbatch and restore allows it, and the
terminate order removes the accounts.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    FLOOD,
    Agent,
    agent_config,
    demo_scenario,
    membership_held_at_team,
)
from tests.real.conftest import (  # noqa: F401 - real_slurm is a fixture
    DEMO_USERS,
    USERS,
    assoc_rows,
    real_settings,
    real_slurm,
    remove_accounts,
    run,
    submit,
    submit_until,
    wait_finished,
)
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

pytestmark = [pytest.mark.real_slurm, pytest.mark.usefixtures("real_slurm")]


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def real_standin(tmp_path: Path) -> Iterator[StandIn]:
    with StandIn(load_scenario(demo_scenario(tmp_path / "scenario.yaml", DEMO_USERS))) as server:
        yield server


def test_orders_jobs_report_pause_restore_terminate_on_real_slurm(
    real_standin: StandIn, tmp_path: Path, tag: str
) -> None:
    standin = real_standin
    config = agent_config(
        tmp_path / "agent.yaml", standin.api_url, cpu_minutes=True, **real_settings(tag)
    )
    agent = Agent(config, {})
    account = f"a{tag}_flood-model"

    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    assert flood["backend_id"] == account
    rows = {row[1]: row for row in assoc_rows(account)}
    assert rows[""][2] == f"p{tag}_hydro-sim"
    assert {USERS[0], USERS[1]} <= set(rows)

    jobs = {
        USERS[0]: submit(USERS[0], account, "-n2", wrap="sleep 3"),
        USERS[1]: submit(USERS[1], account, "-n1", wrap="sleep 2"),
    }
    assert all(code == 0 for code, _ in jobs.values()), jobs
    wait_finished([jid for _, jid in jobs.values()])
    expected_cpu = {}
    for user, (_, jid) in jobs.items():
        elapsed, tres = (
            run(
                "sacct", "-X", "-n", "-P", "-j", jid, "--noconvert", "--format=ElapsedRaw,AllocTRES"
            )
            .stdout.strip()
            .split("|")
        )
        ncpus = int(dict(item.split("=") for item in tres.split(","))["cpu"])
        expected_cpu[user] = cents(Decimal(ncpus * int(elapsed)) / 60)

    agent.run("report")
    cpu = [u for u in standin.state.component_usages(flood["uuid"]) if u["type"] == "cpu"]
    assert [Decimal(str(u["usage"])) for u in cpu][-1] == sum(expected_cpu.values())
    per_user = {
        u["username"]: Decimal(str(u["usage"]))
        for u in standin.state.user_usages(flood["uuid"])
        if u["component_type"] == "cpu"
    }
    assert {u: per_user[u] for u in expected_cpu} == expected_cpu

    standin.state.update_resource(flood["uuid"], paused=True)
    agent.run("membership_sync")
    submit_until(USERS[0], account, accepted=False)
    standin.state.update_resource(flood["uuid"], paused=False)
    agent.run("membership_sync")
    message = submit_until(USERS[0], account, accepted=True)
    wait_finished([message])

    order = standin.state.add_order("Terminate", resource_uuid=flood["uuid"])
    agent.run("order_process")
    assert standin.state.order(order)["state"] == "done"
    assert assoc_rows(account) == []


def test_an_allocation_terminated_after_the_membership_cycle_read_it_is_not_set_erred(
    real_standin: StandIn, tmp_path: Path, tag: str
) -> None:
    # The cycle reads every allocation, then asks Waldur for each one's team: meanwhile
    # the account is removed and Waldur marks the resource Terminated, as a terminate
    # order does. The cycle then finds SLURM refusing to add the new member to it.
    standin = real_standin
    agent = Agent(agent_config(tmp_path / "agent.yaml", standin.api_url, **real_settings(tag)), {})
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    uuid, account = flood["uuid"], f"a{tag}_flood-model"
    standin.state.add_team_member(flood["project_uuid"], USERS[2])  # someone to add
    with membership_held_at_team(agent, standin, uuid, delay=4.0) as cycle:
        remove_accounts([account])
        standin.state.update_resource(uuid, state="Terminated")
        membership = cycle.result()  # and no ERROR logged

    assert f"Account {account} was removed after this cycle read it" in membership.output
    assert standin.state.resource(uuid)["state"] == "Terminated"
    assert not standin.state.writes(path_contains=f"{uuid}/set_as_erred/")
    assert assoc_rows(account) == []
