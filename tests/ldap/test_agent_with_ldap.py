"""End to end with LDAP: the real ``waldur_site_agent`` processes, the stand-in, the emulator.

The agent reads the bind password from the script's password file; everything the
process prints is searched for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from tests.ldap import group, ldap_block, password
from tests.ldap.conftest import slapd_stopped
from waldur_site_agent_slurm.devtools.standin import StandIn

pytestmark = [pytest.mark.ldap, pytest.mark.e2e]


@pytest.fixture
def ldap_agent(
    standin: StandIn,
    emulator: Path,
    tmp_path: Path,
    prefix: str,
) -> Agent:
    config = agent_config(tmp_path / "agent.yaml", standin.api_url, ldap=ldap_block(prefix))
    return Agent(config, {})


def members(name: str) -> set[str] | None:
    found = group(name)
    return None if found is None else found[1]


def allocation_accounts() -> set[str]:
    return {a for a in Tree.read(assoc_rows).accounts if a.startswith("a_")}


def test_create_and_terminate_orders_make_and_remove_the_project_groups(
    standin: StandIn,
    ldap_agent: Agent,
    prefix: str,
) -> None:
    created = ldap_agent.run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert members(f"{prefix}p_hydro-sim") == {"alice", "bob"}
    # dave's offering user is still "Requested": not a member yet.
    assert members(f"{prefix}p_astro-sky") == {"carol"}
    hydro, sky = group(f"{prefix}p_hydro-sim"), group(f"{prefix}p_astro-sky")
    assert hydro is not None and sky is not None and hydro[0] != sky[0]

    flood = standin.state.resource_by_name(FLOOD)
    standin.state.add_order("Terminate", resource_uuid=flood["uuid"])
    terminated = ldap_agent.run("order_process")

    assert group(f"{prefix}p_hydro-sim") is None
    assert members(f"{prefix}p_astro-sky") == {"carol"}
    assert allocation_accounts() == {"a_sky-survey"}
    for run in (created, terminated):
        assert password() not in run.output


def test_ldap_down_leaves_the_orders_to_the_next_cycle_with_nothing_made(
    standin: StandIn,
    ldap_agent: Agent,
    prefix: str,
) -> None:
    with slapd_stopped():
        down = ldap_agent.run("order_process", expect_ok=False)

    states = {o["state"] for o in standin.state.orders()}
    assert states.isdisjoint({"done", "erred"}), states
    assert not standin.state.resource_by_name(FLOOD)["backend_id"]
    assert allocation_accounts() == set()
    assert "p_hydro-sim" not in Tree.read(assoc_rows).accounts
    assert any("cannot be reached" in m for m in down.messages())
    assert password() not in down.output

    ldap_agent.run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert allocation_accounts() == {"a_flood-model", "a_sky-survey"}
    assert members(f"{prefix}p_hydro-sim") == {"alice", "bob"}
    assert standin.state.resource_by_name(SKY)["backend_id"] == "a_sky-survey"


def test_membership_sync_adds_and_removes_group_members_with_the_team(
    standin: StandIn,
    ldap_agent: Agent,
    prefix: str,
) -> None:
    ldap_agent.run("order_process")
    project = standin.state.resource_by_name(FLOOD)["project_uuid"]
    standin.state.add_team_member(project, "carol")
    standin.state.remove_team_member(project, "bob")

    synced = ldap_agent.run("membership_sync")

    assert members(f"{prefix}p_hydro-sim") == {"alice", "carol"}
    assert members(f"{prefix}p_astro-sky") == {"carol"}
    assert password() not in synced.output
