"""order_process end to end: create, update limits and terminate through the real agent."""

from __future__ import annotations

from tests.e2e.conftest import FLOOD, SKY, Agent
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from waldur_site_agent_slurm.devtools.standin import StandIn

# examples/emulator-config.yaml: cpu and gpu are TRES-minutes per hour, mem MB-minutes per GB-hour.
FACTORS = {"cpu": 60, "mem": 61440, "gres/gpu": 60}


def tres_minutes(cpu: int, mem: int, gpu: int) -> dict[str, int]:
    return {
        "cpu": cpu * FACTORS["cpu"],
        "mem": mem * FACTORS["mem"],
        "gres/gpu": gpu * FACTORS["gres/gpu"],
    }


def posted(standin: StandIn, action: str, resource_uuid: str) -> list[dict]:
    return [
        w["body"]
        for w in standin.state.writes(path_contains=f"{resource_uuid}/{action}/")
        if w["status"] == 200
    ]


def test_create_orders_build_the_account_tree_with_limits_and_members(
    standin: StandIn, agent: Agent
) -> None:
    agent.run("order_process")

    flood = standin.state.resource_by_name(FLOOD)
    sky = standin.state.resource_by_name(SKY)
    assert (flood["state"], flood["backend_id"]) == ("OK", "a_flood-model")
    assert (sky["state"], sky["backend_id"]) == ("OK", "a_sky-survey")
    assert all(o["state"] == "done" for o in standin.state.orders())

    tree = Tree.read(assoc_rows)
    assert tree.account("c_hydro").parent == "root"
    assert tree.account("p_hydro-sim").parent == "c_hydro"
    assert tree.account("a_flood-model").parent == "p_hydro-sim"
    assert tree.account("a_sky-survey").parent == "p_astro-sky"
    assert tree.account("a_flood-model").grp_tres_mins == tres_minutes(100, 200, 10)
    assert tree.users("a_flood-model") == {"alice", "bob"}
    # dave's offering user is still "Requested": he gets no association yet.
    assert tree.users("a_sky-survey") == {"carol"}

    assert posted(standin, "set_backend_id", flood["uuid"]) == [{"backend_id": "a_flood-model"}]
    assert posted(standin, "set_limits", flood["uuid"]) == [
        {"limits": {"cpu": 100, "mem": 200, "gpu": 10}}
    ]


def test_an_update_order_changes_only_the_limits(standin: StandIn, agent: Agent) -> None:
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    order = standin.state.add_order(
        "Update", resource_uuid=flood["uuid"], limits={"cpu": 250, "mem": 200, "gpu": 4}
    )

    agent.run("order_process")

    assert standin.state.order(order)["state"] == "done"
    assert standin.state.resource(flood["uuid"])["limits"] == {"cpu": 250, "mem": 200, "gpu": 4}
    tree = Tree.read(assoc_rows)
    assert tree.account("a_flood-model").grp_tres_mins == tres_minutes(250, 200, 4)
    assert tree.users("a_flood-model") == {"alice", "bob"}
    assert tree.account("a_sky-survey").grp_tres_mins == tres_minutes(100, 200, 10)


def test_a_terminate_order_removes_the_allocation_and_its_emptied_project(
    standin: StandIn, agent: Agent
) -> None:
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    order = standin.state.add_order("Terminate", resource_uuid=flood["uuid"])

    agent.run("order_process")

    assert standin.state.order(order)["state"] == "done"
    assert standin.state.resource(flood["uuid"])["state"] == "Terminated"
    tree = Tree.read(assoc_rows)
    assert "a_flood-model" not in tree.accounts
    assert "p_hydro-sim" not in tree.accounts
    assert {"a_sky-survey", "p_astro-sky", "c_astro"} <= tree.accounts
    assert tree.users("a_sky-survey") == {"carol"}


def test_a_second_cycle_with_nothing_pending_changes_nothing(
    standin: StandIn, agent: Agent
) -> None:
    agent.run("order_process")
    before = assoc_rows()
    standin.state.clear_writes()

    agent.run("order_process")

    assert assoc_rows() == before
    # Only the agent's own registration calls: nothing about orders or resources.
    assert not [w for w in standin.state.writes() if "marketplace-orders" in w["path"]]
    assert not [w for w in standin.state.writes() if "provider-resources" in w["path"]]
