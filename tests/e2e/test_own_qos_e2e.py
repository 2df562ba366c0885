"""A QoS per allocation through the real agent on each real SLURM (``qos_management``).

The agent's order processing creates each allocation with its own QoS (with
``apply_limits_to_qos``, carrying the allocation's GrpTRESMins), membership sync pauses
it through GrpSubmitJobs (``skip_qos_swap``) and restores it, and the terminate order
removes the account and then its QoS. Without ``skip_qos_swap`` membership sync swaps
the account onto ``qos_paused`` and back onto its own QoS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import FLOOD, Agent, agent_config, demo_scenario
from tests.e2e.test_diagnose import diagnose
from tests.real.conftest import (  # noqa: F401 - real_slurm and boost are fixtures
    DEMO_USERS,
    USERS,
    assoc_rows,
    boost,
    real_settings,
    real_slurm,
    remove_accounts,
    run,
    submit_until,
)
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

pytestmark = [pytest.mark.real_slurm, pytest.mark.usefixtures("real_slurm")]

QOS_MANAGEMENT = {
    "enabled": True,
    "skip_qos_swap": True,
    "apply_limits_to_qos": True,
    "max_jobs": 2,
    "max_wall": "04:00:00",
}


def qos_names(prefix: str) -> list[str]:
    out = run("sacctmgr", "-P", "-n", "show", "qos", "format=Name").stdout
    return [name for name in out.split() if name.startswith(prefix)]


def qos_limits(name: str) -> str:
    out = run("sacctmgr", "-P", "-n", "show", "qos", f"name={name}", "format=GrpTRESMins")
    return out.stdout.strip()


@pytest.fixture
def own_tag(tag: str) -> Iterator[str]:
    """``tag``; afterwards its accounts are removed, then the QoS named after them."""
    yield tag
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    ours = [a for a in out.split() if a[1:].startswith(tag + "_")]
    remove_accounts(sorted(ours, key=lambda a: "apc".index(a[0])))
    for name in qos_names(f"a{tag}_"):
        run("sacctmgr", "-i", "delete", "qos", name, check=False)


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    with StandIn(load_scenario(demo_scenario(tmp_path / "scenario.yaml", DEMO_USERS))) as server:
        yield server


def own_qos_config(
    path: Path,
    api_url: str,
    tag: str,
    block: dict[str, Any] = QOS_MANAGEMENT,
    unset: tuple[str, ...] = ("qos_default", "qos_downscaled", "qos_paused"),
) -> Path:
    """The agent configuration with ``qos_management`` (the ``unset`` QoS keys taken out)."""
    agent_config(path, api_url, qos_management=block, **real_settings(tag))
    config = yaml.safe_load(path.read_text())
    settings = config["offerings"][0]["backend_settings"]
    for key in unset:
        settings.pop(key, None)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_orders_create_pause_restore_and_terminate_an_allocation_qos(
    standin: StandIn, tmp_path: Path, own_tag: str
) -> None:
    agent = Agent(own_qos_config(tmp_path / "agent.yaml", standin.api_url, own_tag), {})
    account = f"a{own_tag}_flood-model"

    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    assert flood["backend_id"] == account
    shown = run(
        "sacctmgr", "-P", "-n", "show", "qos", "where", f"name={account}",
        "format=Name,Flags,MaxJobsPU,MaxWall",
    ).stdout.split()  # fmt: skip
    assert shown == [f"{account}|DenyOnLimit,NoDecay|2|04:00:00"]
    own = [row for row in assoc_rows(account, "User,QOS,DefaultQOS,GrpTRESMins") if not row[0]]
    assert account in own[0][1].split(",")
    assert (own[0][2], own[0][3]) == (account, "")  # the limits are on the QoS
    limits = qos_limits(account)
    assert "cpu=" in limits
    # The diagnostic console script finds the QoS's limits changed and --fix puts them back.
    run("sacctmgr", "-i", "modify", "qos", "where", f"name={account}", "set", "GrpTRESMins=cpu=1")
    assert diagnose(agent.config, account).returncode != 0
    assert diagnose(agent.config, account, "--fix", "--yes").returncode == 0
    assert qos_limits(account) == limits

    standin.state.update_resource(flood["uuid"], paused=True)
    agent.run("membership_sync")
    assert ["", "0", account] in assoc_rows(account, "User,GrpSubmitJobs,DefaultQOS")
    submit_until(USERS[0], account, accepted=False)
    standin.state.update_resource(flood["uuid"], paused=False)
    agent.run("membership_sync")
    run("scancel", submit_until(USERS[0], account, accepted=True), check=False)

    order = standin.state.add_order("Terminate", resource_uuid=flood["uuid"])
    agent.run("order_process")
    assert standin.state.order(order)["state"] == "done"
    assert assoc_rows(account) == []
    assert account not in qos_names(account)


@pytest.mark.usefixtures("boost")
def test_membership_sync_swaps_a_paused_allocation_off_its_own_qos_and_back(
    standin: StandIn, tmp_path: Path, own_tag: str
) -> None:
    block = {"enabled": True, "additional_qos": ["boost"]}
    config = own_qos_config(
        tmp_path / "agent.yaml", standin.api_url, own_tag, block, ("qos_default",)
    )
    agent = Agent(config, {})
    account = f"a{own_tag}_flood-model"
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)

    standin.state.update_resource(flood["uuid"], paused=True)
    agent.run("membership_sync")
    assert ["", "blocked", "blocked"] in assoc_rows(account, "User,QOS,DefaultQOS")
    submit_until(USERS[0], account, accepted=False)
    standin.state.update_resource(flood["uuid"], paused=False)
    agent.run("membership_sync")
    own = next(row for row in assoc_rows(account, "User,QOS,DefaultQOS") if not row[0])
    assert (sorted(own[1].split(",")), own[2]) == (sorted([account, "boost"]), account)
    run("scancel", submit_until(USERS[0], account, accepted=True), check=False)
    # Detached by hand: the diagnostic console script expects the own QoS and --fix restores it.
    detach = ["modify", "account", "where", f"name={account}", "set", "QOS=normal"]
    run("sacctmgr", "-i", *detach, "DefaultQOS=normal")
    assert diagnose(config, account, "--fix", "--yes").returncode == 0
    again = next(row for row in assoc_rows(account, "User,QOS,DefaultQOS") if not row[0])
    assert (sorted(again[1].split(",")), again[2]) == (sorted([account, "boost"]), account)
    assert diagnose(config, account).returncode == 0
