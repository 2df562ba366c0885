"""Limits the framework syncs: prepaid end dates and SLURM → Waldur.

``waldur_site_agent -m membership_sync`` calls, for every resource, the backend's
``sync_resource_end_date`` and then ``sync_resource_limits``; the framework's
``waldur_sync_resource_limits`` command calls ``sync_resource_limits`` alone. These
tests move a resource's end date in the Waldur stand-in, or change an allocation's
limits in SLURM as a site admin would, run the real agent or command, and check SLURM
and the stand-in.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows, sacctmgr
from waldur_site_agent_slurm.allocation.prepaid import add_months
from waldur_site_agent_slurm.devtools.standin import StandIn

FLOOD_ACCOUNT = "a_flood-model"
SKY_ACCOUNT = "a_sky-survey"
# The scenario's limits (hours) and examples/emulator-config.yaml's unit factors.
LIMITS = {"cpu": 100, "mem": 200, "gpu": 10}
FACTORS = {"cpu": 60, "mem": 61440, "gres/gpu": 60}


def monthly(cpu: int, mem: int, gpu: int) -> dict[str, int]:
    return {"cpu": cpu * 60, "mem": mem * 61440, "gres/gpu": gpu * 60}


def grp_tres_mins(account: str) -> dict[str, int]:
    found = Tree.read(assoc_rows).account(account)
    assert found is not None, f"no account {account}"
    return found.grp_tres_mins


def set_limits_posts(standin: StandIn, resource_uuid: str) -> list[dict[str, Any]]:
    return [
        w["body"]
        for w in standin.state.writes(path_contains=f"{resource_uuid}/set_limits/")
        if w["status"] == 200
    ]


def sync_limits_command(config: Path) -> str:
    """Run the framework's ``waldur_sync_resource_limits -c config``; its output."""
    command = Path(sys.executable).parent / "waldur_sync_resource_limits"
    proc = subprocess.run(
        [str(command), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Failed to sync resource limits" not in output, output[-3000:]
    return output


def end_after(resource: dict[str, Any], months: int) -> str:
    """The date ``months`` whole months after the resource's creation day (UTC)."""
    created = dt.datetime.fromisoformat(resource["created"].replace("Z", "+00:00"))
    return add_months(created.astimezone(dt.timezone.utc).date(), months).isoformat()


# ---- prepaid components follow the end date ------------------------------------------------


@pytest.fixture
def prepaid_agent(standin: StandIn, emulator: Path, tmp_path: Path) -> Agent:
    """The example configuration with CPU prepaid (``accounting_type: one``)."""
    path = agent_config(tmp_path / "agent-config.yaml", standin.api_url)
    config = yaml.safe_load(path.read_text())
    config["offerings"][0]["backend_components"]["cpu"]["accounting_type"] = "one"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Agent(path, {})


def test_moving_the_end_date_recomputes_prepaid_limits(
    standin: StandIn, prepaid_agent: Agent
) -> None:
    flood = standin.state.resource_by_name(FLOOD)
    standin.state.update_resource(flood["uuid"], end_date=end_after(flood, 5))
    prepaid_agent.run("order_process")
    # 5 paid months of CPU; memory and GPU are monthly limits.
    assert grp_tres_mins(FLOOD_ACCOUNT) == {**monthly(100, 200, 10), "cpu": 100 * 60 * 5}
    # No end date: one month.
    assert grp_tres_mins(SKY_ACCOUNT) == monthly(100, 200, 10)

    standin.state.update_resource(flood["uuid"], end_date=end_after(flood, 11))
    prepaid_agent.run("membership_sync")

    assert grp_tres_mins(FLOOD_ACCOUNT) == {**monthly(100, 200, 10), "cpu": 100 * 60 * 11}
    assert grp_tres_mins(SKY_ACCOUNT) == monthly(100, 200, 10)
    # SLURM holds 11 months of the monthly amount Waldur keeps: nothing to push back.
    assert standin.state.resource(flood["uuid"])["limits"] == LIMITS
    assert len(set_limits_posts(standin, flood["uuid"])) == 1  # the one of the create

    standin.state.update_resource(flood["uuid"], end_date=end_after(flood, 2))
    prepaid_agent.run("membership_sync")

    assert grp_tres_mins(FLOOD_ACCOUNT) == {**monthly(100, 200, 10), "cpu": 100 * 60 * 2}
    assert standin.state.resource(flood["uuid"])["limits"] == LIMITS


# ---- SLURM's limits pushed to Waldur -----------------------------------------------------


def admin_sets_limits(account: str, cpu: int, gpu: int) -> None:
    """A site admin changes an allocation's GrpTRESMins by hand (TRES-minutes)."""
    sacctmgr(
        "-i", "modify", "account", "where", f"name={account}", "set",
        f"GrpTRESMins=cpu={cpu},gres/gpu={gpu}",
    )  # fmt: skip


@pytest.fixture
def created(standin: StandIn, agent: Agent) -> dict[str, Any]:
    agent.run("order_process")
    return standin.state.resource_by_name(FLOOD)


def test_limits_changed_in_slurm_are_pushed_to_waldur(
    standin: StandIn, agent: Agent, created: dict[str, Any]
) -> None:
    sky = standin.state.resource_by_name(SKY)
    admin_sets_limits(FLOOD_ACCOUNT, cpu=150 * 60, gpu=4 * 60)

    agent.run("membership_sync")

    assert standin.state.resource(created["uuid"])["limits"] == {"cpu": 150, "mem": 200, "gpu": 4}
    assert set_limits_posts(standin, created["uuid"])[-1] == {
        "limits": {"cpu": 150, "mem": 200, "gpu": 4}
    }
    # The resource whose SLURM limits match Waldur's gets no write.
    assert standin.state.resource(sky["uuid"])["limits"] == LIMITS
    assert len(set_limits_posts(standin, sky["uuid"])) == 1  # the one of the create
    # SLURM stays as the admin set it.
    assert grp_tres_mins(FLOOD_ACCOUNT) == {"cpu": 150 * 60, "mem": 200 * 61440, "gres/gpu": 240}


def test_with_periodic_limits_slurm_limits_are_not_pushed_to_waldur(
    standin: StandIn, emulator: Path, tmp_path: Path
) -> None:
    config = agent_config(
        tmp_path / "agent-config.yaml", standin.api_url, periodic_limits={"enabled": True}
    )
    agent = Agent(config, {})
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    posts = len(set_limits_posts(standin, flood["uuid"]))
    admin_sets_limits(FLOOD_ACCOUNT, cpu=150 * 60, gpu=4 * 60)

    agent.run("membership_sync")
    sync_limits_command(config)

    assert standin.state.resource(flood["uuid"])["limits"] == LIMITS
    assert len(set_limits_posts(standin, flood["uuid"])) == posts
    assert grp_tres_mins(FLOOD_ACCOUNT) == {"cpu": 150 * 60, "mem": 200 * 61440, "gres/gpu": 240}


def test_the_sync_resource_limits_command_pushes_slurm_limits_to_waldur(
    standin: StandIn, agent: Agent, created: dict[str, Any]
) -> None:
    admin_sets_limits(FLOOD_ACCOUNT, cpu=120 * 60, gpu=3 * 60)

    sync_limits_command(agent.config)

    assert standin.state.resource(created["uuid"])["limits"] == {"cpu": 120, "mem": 200, "gpu": 3}
    sky = standin.state.resource_by_name(SKY)
    assert len(set_limits_posts(standin, sky["uuid"])) == 1  # the one of the create
