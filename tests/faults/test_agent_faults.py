"""The real agent against the emulator when SLURM hangs and when the agent is killed.

- A SLURM command that hangs is killed after ``command_timeout``; the error names the
  command, the cycle goes on with the next order or resource, and the next cycle
  converges.
- The agent killed between creating an allocation account and telling Waldur its
  backend id: the next run adopts the account, neither failing nor duplicating it.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from waldur_site_agent_slurm.devtools.demo.agentrun import start_agent
from waldur_site_agent_slurm.devtools.standin import StandIn

pytestmark = pytest.mark.e2e

TIMEOUT = 2  # command_timeout, seconds


def hanging_bin(directory: Path, pattern: str) -> Path:
    """A slurm_bin_path running the emulator, where commands matching ``pattern`` hang."""
    directory.mkdir()
    real = Path(sys.executable).parent
    for name in ("sacctmgr", "sacct", "scancel"):
        script = directory / name
        script.write_text(
            f'#!/bin/sh\ncase "{name} $*" in {pattern}) exec sleep 600;; esac\n'
            f'exec {real / name} "$@"\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def hanging_agent(tmp_path: Path, standin: StandIn, pattern: str) -> Agent:
    config = agent_config(
        tmp_path / "hanging.yaml",
        standin.api_url,
        emulator_mode=False,
        slurm_bin_path=str(hanging_bin(tmp_path / "hanging-bin", pattern)),
        command_timeout=TIMEOUT,
    )
    return Agent(config, {})


def allocations() -> list[str]:
    """Allocation accounts, with repeats if an account were ever listed twice."""
    return sorted(
        row.account
        for row in Tree.read(assoc_rows).rows
        if row.account.startswith("a_") and not row.user
    )


def order_of(standin: StandIn, name: str) -> dict[str, Any]:
    uuid = standin.state.resource_by_name(name)["uuid"]
    return next(o for o in standin.state.orders() if o["resource_uuid"] == uuid)


def test_a_hanging_sacctmgr_times_out_names_the_command_and_the_cycle_goes_on(
    standin: StandIn, agent: Agent, tmp_path: Path
) -> None:
    hanging = hanging_agent(tmp_path, standin, "sacctmgr*add*account*a_flood-model*")

    run = hanging.run("order_process", expect_ok=False)

    flood, sky = (order_of(standin, name) for name in (FLOOD, SKY))
    assert flood["state"] == "executing"  # left for the next cycle, not erred, not done
    assert not standin.state.resource_by_name(FLOOD)["backend_id"]
    assert sky["state"] == "done"  # the cycle went on with the next order
    assert allocations() == ["a_sky-survey"]
    timed_out = [m for m in run.messages() if f"Timed out after {TIMEOUT}s" in m]
    assert any("sacctmgr --immediate add account a_flood-model" in m for m in timed_out), (
        run.messages()
    )

    agent.run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert standin.state.resource_by_name(FLOOD)["backend_id"] == "a_flood-model"
    assert allocations() == ["a_flood-model", "a_sky-survey"]
    assert Tree.read(assoc_rows).users("a_flood-model") == {"alice", "bob"}


def test_a_hanging_sacct_times_out_for_each_resource_and_nothing_is_posted(
    standin: StandIn, agent: Agent, tmp_path: Path
) -> None:
    agent.run("order_process")
    hanging = hanging_agent(tmp_path, standin, "'sacct '*")
    standin.state.clear_writes()

    run = hanging.run("report", expect_ok=False)

    assert standin.state.writes(path_contains="usage") == []
    errors = [m for m in run.messages("error") if f"Timed out after {TIMEOUT}s: sacct " in m]
    # Each resource was tried in turn; the cycle ended (exit 0) instead of hanging.
    assert any("a_flood-model" in m for m in errors) and len(errors) >= 2, "\n".join(run.messages())

    agent.run("report")
    flood = standin.state.resource_by_name(FLOOD)
    assert {u["type"] for u in standin.state.component_usages(flood["uuid"])} == {
        "cpu",
        "mem",
        "gpu",
    }


def test_killed_before_waldur_learns_the_backend_id_the_next_run_adopts_the_account(
    standin: StandIn, agent: Agent
) -> None:
    # Waldur holds the first set_backend_id for 30 s (and then fails it); the agent is
    # killed while it waits, with the allocation account already in SLURM.
    standin.state.add_fault(method="POST", path="set_backend_id", status=500, delay=30, times=1)
    with start_agent("order_process", agent.config, env=agent.env) as process:
        process.wait_for_log("Updating resource metadata in Waldur", timeout=120)
        made = allocations()
        process.kill()
    assert len(made) == 1, made  # the first allocation exists; Waldur does not know it
    first = made[0]
    assert not any(r["backend_id"] for r in standin.state.resources())
    assert {o["state"] for o in standin.state.orders()} <= {"executing", "pending-provider"}

    run = agent.run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert standin.state.resource_by_name(FLOOD)["backend_id"] == "a_flood-model"
    assert standin.state.resource_by_name(SKY)["backend_id"] == "a_sky-survey"
    assert allocations() == ["a_flood-model", "a_sky-survey"]  # each exactly once
    assert any(f"Account {first} already exists" in m and "adopting" in m for m in run.messages())
    tree = Tree.read(assoc_rows)
    assert tree.account("a_flood-model").grp_tres_mins == {  # type: ignore[union-attr]
        "cpu": 6000,
        "mem": 200 * 61440,
        "gres/gpu": 600,
    }
    assert tree.users("a_flood-model") == {"alice", "bob"}
