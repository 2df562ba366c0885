"""membership_sync end to end: team changes and pause/downscale/restore reach SLURM."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import FLOOD, Agent, membership_held_at_team
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from waldur_site_agent_slurm.devtools.standin import StandIn


@pytest.fixture
def created(standin: StandIn, agent: Agent) -> dict:
    """The demo scenario after its Create orders went through."""
    agent.run("order_process")
    return standin.state.resource_by_name(FLOOD)


def metadata_posts(standin: StandIn, resource_uuid: str) -> list[dict]:
    return [
        w["body"]
        for w in standin.state.writes(path_contains=f"{resource_uuid}/set_backend_metadata/")
    ]


def test_team_changes_add_and_remove_associations(
    standin: StandIn, agent: Agent, created: dict
) -> None:
    project = created["project_uuid"]
    standin.state.add_team_member(project, "carol")
    standin.state.remove_team_member(project, "bob")

    agent.run("membership_sync")

    tree = Tree.read(assoc_rows)
    assert tree.users("a_flood-model") == {"alice", "carol"}
    # carol keeps her other allocation; bob had only this one and is gone entirely.
    assert tree.users("a_sky-survey") == {"carol"}
    assert not any(a.user == "bob" for a in tree.rows)


def test_pause_downscale_and_restore_move_the_account_between_qos(
    standin: StandIn, agent: Agent, created: dict
) -> None:
    uuid = created["uuid"]

    standin.state.update_resource(uuid, paused=True)
    agent.run("membership_sync")
    assert Tree.read(assoc_rows).account("a_flood-model").qos == {"blocked"}
    assert metadata_posts(standin, uuid)[-1]["backend_metadata"]["qos"] == "blocked"

    standin.state.update_resource(uuid, paused=False, downscaled=True)
    agent.run("membership_sync")
    assert Tree.read(assoc_rows).account("a_flood-model").qos == {"slowdown"}

    standin.state.update_resource(uuid, downscaled=False)
    agent.run("membership_sync")
    flood = Tree.read(assoc_rows).account("a_flood-model")
    assert flood.qos == {"normal"}
    assert Tree.read(assoc_rows).account("a_sky-survey").qos == {"normal"}
    assert metadata_posts(standin, uuid)[-1]["backend_metadata"]["qos"] == "normal"


def test_a_steady_cycle_writes_nothing_to_slurm(
    standin: StandIn, agent: Agent, created: dict
) -> None:
    agent.run("membership_sync")
    before = assoc_rows()
    agent.run("membership_sync")
    assert assoc_rows() == before
    assert standin.state.resource(created["uuid"])["state"] == "OK"


@pytest.mark.parametrize(
    ("meanwhile", "left"),
    [("Terminating", "Terminating"), ("Terminated", "Terminated"), ("Erred", "OK")],
)
def test_an_erred_resource_an_order_took_during_the_cycle_is_not_set_ok(
    standin: StandIn, agent: Agent, created: dict, meanwhile: str, left: str
) -> None:
    # The cycle lists the resource Erred (a SLURM outage in an earlier cycle), then asks
    # Waldur for its team: meanwhile a terminate order is placed (Terminating) or has
    # finished (Terminated). The framework sets a resource it listed Erred OK at the end
    # of its pass; Waldur refuses that for a Terminated one and the framework then marks
    # it Erred. A resource still Erred is set OK, as before.
    uuid = created["uuid"]
    standin.state.update_resource(uuid, state="Erred")
    with membership_held_at_team(agent, standin, uuid, delay=2.0) as cycle:
        if meanwhile == "Terminating":
            standin.state.add_order("Terminate", resource_uuid=uuid)
        else:
            standin.state.update_resource(uuid, state=meanwhile)
        cycle.result()  # and no ERROR logged

    assert standin.state.resource(uuid)["state"] == left
    assert not standin.state.writes(path_contains=f"{uuid}/set_as_erred/")
    set_ok = standin.state.writes(path_contains=f"{uuid}/set_as_ok/")
    assert len(set_ok) == (left == "OK")
