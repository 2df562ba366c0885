"""Failure paths end to end: Waldur errors and drops, bad names, SLURM unreachable."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from tests.e2e.conftest import FLOOD, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from tests.test_runner import DBD_DOWN
from waldur_site_agent_slurm.devtools.standin import StandIn

# The agent retries a failed Waldur call 10 times, 5 s apart; run those pauses 100× faster.
FAST = 0.01


def allocation_accounts() -> set[str]:
    return {a for a in Tree.read(assoc_rows).accounts if a.startswith("a_")}


def test_a_waldur_error_after_the_account_exists_is_retried_and_the_account_adopted(
    standin: StandIn, agent: Agent
) -> None:
    standin.state.add_fault(method="POST", path="set_backend_id", status=500, times=1)

    run = agent.run("order_process", expect_ok=False, sleep_scale=FAST)

    assert all(o["state"] == "done" for o in standin.state.orders())
    assert standin.state.resource_by_name(FLOOD)["backend_id"] == "a_flood-model"
    assert allocation_accounts() == {"a_flood-model", "a_sky-survey"}
    assert any("already exists" in m and "adopting" in m for m in run.messages())


def test_waldur_failing_for_a_whole_cycle_leaves_the_order_to_the_next_one(
    standin: StandIn, agent: Agent
) -> None:
    standin.state.add_fault(method="POST", path="set_backend_id", status=500, times=1000)
    agent.run("order_process", expect_ok=False, sleep_scale=FAST)

    # Nothing was claimed: the orders are not done, Waldur has no backend id, no order erred.
    assert {o["state"] for o in standin.state.orders()} == {"executing"}
    assert not standin.state.resource_by_name(FLOOD)["backend_id"]

    standin.state.clear_faults()
    agent.run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert standin.state.resource_by_name(FLOOD)["backend_id"] == "a_flood-model"
    assert allocation_accounts() == {"a_flood-model", "a_sky-survey"}
    assert Tree.read(assoc_rows).users("a_flood-model") == {"alice", "bob"}


def test_dropped_team_reads_leave_users_to_the_next_membership_cycle(
    standin: StandIn, agent: Agent
) -> None:
    # The framework reads an unreachable team as an empty one and creates the account
    # without users; the next membership_sync cycle adds them.
    standin.state.add_fault(path="/team/", drop=True, times=2)

    agent.run("order_process", expect_ok=False, sleep_scale=FAST)
    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert Tree.read(assoc_rows).users("a_flood-model") == set()

    agent.run("membership_sync")
    assert Tree.read(assoc_rows).users("a_flood-model") == {"alice", "bob"}


def test_an_invalid_account_name_errs_the_order_with_a_clear_message_and_creates_nothing(
    standin: StandIn, agent: Agent
) -> None:
    flood = standin.state.resource_by_name(FLOOD)
    standin.state.update_resource(flood["uuid"], slug="flood;touch /tmp/x")

    run = agent.run("order_process", expect_ok=False)

    order = next(o for o in standin.state.orders() if o["resource_uuid"] == flood["uuid"])
    assert order["state"] == "erred"
    assert "Invalid allocation account 'a_flood;touch /tmp/x'" in order["error_message"]
    assert any("Invalid allocation account" in m for m in run.messages("error"))
    # Not even the customer and project accounts were made for it; the other order went on.
    accounts = Tree.read(assoc_rows).accounts
    assert "p_hydro-sim" not in accounts
    assert "c_hydro" not in accounts
    assert allocation_accounts() == {"a_sky-survey"}


def slurm_bin(directory: Path, scripts: dict[str, str]) -> Path:
    """A slurm_bin_path holding the given shell scripts as sacctmgr, sacct, scancel."""
    directory.mkdir()
    for name, body in scripts.items():
        script = directory / name
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def failing_slurm(tmp_path: Path) -> Path:
    """Commands that all fail the way they do when slurmdbd is down."""
    down = f"printf '{DBD_DOWN}' >&2\nexit 1"
    return slurm_bin(tmp_path / "down-bin", dict.fromkeys(("sacctmgr", "sacct", "scancel"), down))


def test_slurm_unreachable_leaves_orders_untouched_until_it_is_back(
    standin: StandIn, agent: Agent, tmp_path: Path
) -> None:
    down = Agent(
        agent_config(
            tmp_path / "down.yaml",
            standin.api_url,
            emulator_mode=False,
            slurm_bin_path=str(failing_slurm(tmp_path)),
        ),
        {},
    )
    run = down.run("order_process", expect_ok=False)

    assert {o["state"] for o in standin.state.orders()} == {"pending-provider"}
    assert any("Problem talking to the database" in m for m in run.messages())

    agent.run("order_process")
    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert allocation_accounts() == {"a_flood-model", "a_sky-survey"}


def test_waldur_hanging_mid_cycle_times_out_and_the_retry_converges(
    standin: StandIn, agent: Agent
) -> None:
    # Waldur takes 3 s to answer the first set_limits; the agent gives up after 1 s.
    standin.state.add_fault(method="POST", path="set_limits", status=None, delay=3, times=1)

    run = agent.run("order_process", expect_ok=False, sleep_scale=FAST, http_timeout=1)

    assert any("timed out" in m.lower() for m in run.messages())
    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert standin.state.resource_by_name(FLOOD)["limits"] == {"cpu": 100, "mem": 200, "gpu": 10}
    assert allocation_accounts() == {"a_flood-model", "a_sky-survey"}


def refusing_limits(tmp_path: Path) -> Path:
    """The emulator's commands, except that sacctmgr refuses any limit."""
    real = Path(sys.executable).parent
    refuse = (
        'case "$*" in *GrpTRESMins=*) '
        "echo ' Error with request: Unknown TRES gres/gpu' >&2; exit 1;; esac\n"
    )
    scripts = {name: f'exec {real / name} "$@"' for name in ("sacctmgr", "sacct", "scancel")}
    scripts["sacctmgr"] = refuse + scripts["sacctmgr"]
    return slurm_bin(tmp_path / "refusing-bin", scripts)


def test_slurm_refusing_a_step_errs_the_order_and_removes_what_the_create_added(
    standin: StandIn, agent: Agent, tmp_path: Path
) -> None:
    refusing = Agent(
        agent_config(
            tmp_path / "refusing.yaml",
            standin.api_url,
            emulator_mode=False,
            slurm_bin_path=str(refusing_limits(tmp_path)),
        ),
        {},
    )
    before = Tree.read(assoc_rows).accounts

    refusing.run("order_process", expect_ok=False)

    orders = standin.state.orders()
    assert {o["state"] for o in orders} == {"erred"}
    assert all("Unknown TRES gres/gpu" in o["error_message"] for o in orders)
    assert Tree.read(assoc_rows).accounts == before

    agent.run("order_process")  # erred orders stay erred; nothing is left to clean up
    assert Tree.read(assoc_rows).accounts == before
