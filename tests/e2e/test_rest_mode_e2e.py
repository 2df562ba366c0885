"""REST mode end to end: the real agent's cycles over slurm-emulator's slurmrestd.

One slurmrestd emulator (SLURM 24.11, data parser v0.0.42) for the module; each test
starts from empty SLURM state (the emulator reads its state file on every request) and
a fresh stand-in. The agent gets ``execution_mode: rest`` and no SLURM command-line
tools at all (``slurm_bin_path`` is an empty directory, not the emulator's), so every
read and write of these cycles goes through slurmrestd.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.e2e.test_order_process import tres_minutes
from tests.emulator.conftest import assoc_rows, seed_job
from waldur_site_agent_slurm.devtools.demo.emulated import add_qos
from waldur_site_agent_slurm.devtools.restd import RestdEmulator
from waldur_site_agent_slurm.devtools.standin import StandIn

pytestmark = pytest.mark.e2e
UTC = timezone.utc  # datetime.UTC from Python 3.11 on
RELEASE = "24.11"
FLOOD_ACCOUNT = "a_flood-model"


@pytest.fixture(scope="module")
def restd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestdEmulator]:
    with RestdEmulator(RELEASE, tmp_path_factory.mktemp("restd-e2e")) as server:
        yield server


def empty_state(restd: RestdEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start the emulator's SLURM over (this process's helpers on the same state)."""
    for key, value in restd.env.items():
        if key.endswith("_FILE"):
            Path(value).unlink(missing_ok=True)  # the emulator starts over without them
        monkeypatch.setenv(key, value)
    add_qos("slowdown", "blocked")


def rest_backend(restd: RestdEmulator, directory: Path) -> dict[str, Any]:
    """backend_settings for REST mode on ``restd``, with no SLURM command on the path."""
    token = directory / "slurmrestd.token"
    token.write_text("SLURM_JWT=emulated.jwt.token\n")
    no_tools = directory / "no-slurm-tools"
    no_tools.mkdir(exist_ok=True)
    return {
        "emulator_mode": False,
        "slurm_bin_path": str(no_tools),
        "execution_mode": "rest",
        "rest_api": {
            "url": restd.url,
            "api_version": restd.api_version,
            "username": "root",
            "token_file": str(token),
            "timeout": 10,
        },
    }


@pytest.fixture
def rest_agent(
    standin: StandIn, restd: RestdEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Agent:
    """An agent in REST mode on empty emulator state with the site's QoS."""
    empty_state(restd, monkeypatch)
    settings = rest_backend(restd, tmp_path)
    return Agent(agent_config(tmp_path / "agent-config.yaml", standin.api_url, **settings), {})


def over_rest(run_messages: list[str]) -> bool:
    """True when the agent's log shows its SLURM writes going to slurmrestd."""
    return any("slurmrestd v0.0.42 (cluster default)" in m for m in run_messages)


@pytest.fixture
def created(standin: StandIn, rest_agent: Agent) -> dict:
    """The demo scenario after its Create orders went through in REST mode."""
    result = rest_agent.run("order_process")
    assert over_rest(result.messages())
    return standin.state.resource_by_name(FLOOD)


def test_order_process_builds_the_tree_with_limits_and_members(
    standin: StandIn, created: dict
) -> None:
    assert (created["state"], created["backend_id"]) == ("OK", FLOOD_ACCOUNT)
    assert all(o["state"] == "done" for o in standin.state.orders())
    tree = Tree.read(assoc_rows)
    assert tree.account("p_hydro-sim").parent == "c_hydro"
    assert tree.account(FLOOD_ACCOUNT).parent == "p_hydro-sim"
    assert tree.account(FLOOD_ACCOUNT).grp_tres_mins == tres_minutes(100, 200, 10)
    assert tree.users(FLOOD_ACCOUNT) == {"alice", "bob"}
    assert standin.state.resource_by_name(SKY)["backend_id"] == "a_sky-survey"


def test_membership_sync_applies_team_changes_and_pause(
    standin: StandIn, rest_agent: Agent, created: dict
) -> None:
    standin.state.add_team_member(created["project_uuid"], "carol")
    standin.state.remove_team_member(created["project_uuid"], "bob")
    standin.state.update_resource(created["uuid"], paused=True)

    rest_agent.run("membership_sync")

    tree = Tree.read(assoc_rows)
    assert tree.users(FLOOD_ACCOUNT) == {"alice", "carol"}
    assert tree.account(FLOOD_ACCOUNT).qos == {"blocked"}
    before = assoc_rows()
    rest_agent.env["WALDUR_SITE_AGENT_LOG_LEVEL"] = "DEBUG"
    run = rest_agent.run("membership_sync")  # nothing changed in Waldur: nothing written
    assert assoc_rows() == before
    requests = [m for m in run.messages("debug") if m.startswith("Requesting: ")]
    # One associations read and no usage read: a membership cycle does not use usage.
    assert [r for r in requests if "/slurmdb/" in r] == [
        "Requesting: GET /slurmdb/v0.0.42/associations/"
    ], requests


def test_a_pause_keeps_the_allocations_limits(
    standin: StandIn, rest_agent: Agent, created: dict
) -> None:
    standin.state.update_resource(created["uuid"], paused=True)
    rest_agent.run("membership_sync")
    flood = Tree.read(assoc_rows).account(FLOOD_ACCOUNT)
    assert flood.qos == {"blocked"}
    assert flood.grp_tres_mins == tres_minutes(100, 200, 10)


def test_report_posts_the_usage_read_over_rest(
    standin: StandIn, rest_agent: Agent, created: dict
) -> None:
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = this_month - timedelta(days=5)
    seed_job(FLOOD_ACCOUNT, "alice", start, start + timedelta(hours=3), {"cpu": 4, "mem": 2048})

    rest_agent.run("report")

    usages = standin.state.component_usages(created["uuid"])
    last = (this_month - timedelta(days=1)).replace(day=1).date().isoformat()
    by_period = {(u["billing_period"][:10], u["type"]): Decimal(str(u["usage"])) for u in usages}
    assert by_period[(last, "cpu")] == Decimal("12.00")
    assert by_period[(last, "mem")] == Decimal("6.00")
