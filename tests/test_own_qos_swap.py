"""qos_management without skip_qos_swap: pause and downscale swap an allocation's QoS.

The allocation's own QoS (with ``additional_qos``) is its default level: pause and
downscale put the account on ``qos_paused`` / ``qos_downscaled`` only, restore puts it
back on its own QoS, and a re-run on the level it already has writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.diagnosing import argvs
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from tests.test_backend_commands import SI, resource
from tests.test_diagnose import diagnose, failed
from tests.test_diagnose import resource as diag_resource
from tests.test_own_qos import TREE, backend_for, own_cluster
from tests.test_periodic import NOW, PAUSING, Q3, UTC, message, threshold_runner
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.periodic.message import apply_settings
from waldur_site_agent_slurm.slurm.client import SlurmClient

SWAP = {"qos_management": {"enabled": True, "additional_qos": ["debug"]}}
MODIFY = [*SI, "modify", "account", "where", "name=alloc-1", "set"]
OWN_QOS = "alloc-1|DenyOnLimit,NoDecay||||||\n"


def on(qos: str, default: str) -> dict[str, str]:
    return {
        "show assoc": TREE + assoc_lines(f"alloc-1|||proj-1|1||||{qos}|{default}"),
        "list tres": TRES_OUTPUT,
    }


@pytest.mark.parametrize(
    ("action", "qos"), [("pause_resource", "blocked"), ("downscale_resource", "slowdown")]
)
def test_pause_and_downscale_put_the_account_on_the_level_qos_only(
    runner: FakeRunner, action: str, qos: str
) -> None:
    runner.outputs = on("alloc-1,debug", "alloc-1")
    assert getattr(backend_for(runner, **SWAP), action)("alloc-1") is True
    assert runner.writes == [[*MODIFY, f"QOS={qos}", f"DefaultQOS={qos}"]]


def test_restore_puts_the_account_back_on_its_own_qos_and_additional_qos(
    runner: FakeRunner,
) -> None:
    runner.outputs = on("blocked", "blocked")
    assert backend_for(runner, **SWAP).restore_resource("alloc-1") is True
    assert runner.writes == [[*MODIFY, "QOS=alloc-1,debug", "DefaultQOS=alloc-1"]]


@pytest.mark.parametrize(
    ("action", "qos", "default"),
    [
        ("restore_resource", "debug,alloc-1", "alloc-1"),
        ("pause_resource", "blocked", "blocked"),
        ("downscale_resource", "slowdown", ""),
    ],
)
def test_a_rerun_on_the_level_the_account_has_writes_nothing(
    runner: FakeRunner, action: str, qos: str, default: str
) -> None:
    runner.outputs = on(qos, default)
    assert getattr(backend_for(runner, **SWAP), action)("alloc-1") is True
    assert runner.writes == []


def test_restore_without_its_default_sets_list_and_default_again(runner: FakeRunner) -> None:
    runner.outputs = on("alloc-1,debug", "")
    backend_for(runner, **SWAP).restore_resource("alloc-1")
    assert runner.writes == [[*MODIFY, "QOS=alloc-1,debug", "DefaultQOS=alloc-1"]]


def test_an_adopted_paused_account_keeps_its_paused_qos(runner: FakeRunner) -> None:
    runner.outputs = {**on("blocked", "blocked"), "show qos where name=alloc-1": OWN_QOS}
    backend_for(runner, **SWAP).create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes == []


def test_start_up_diagnostics_do_not_ask_for_qos_default(runner: FakeRunner) -> None:
    runner.outputs["show qos"] = "normal\ndebug\n"
    problems = backend_for(runner, **SWAP)._configuration_problems()
    assert problems == [
        "qos_downscaled 'slowdown' does not exist: sacctmgr add qos slowdown",
        "qos_paused 'blocked' does not exist: sacctmgr add qos blocked",
    ]


# ---- the diagnostic ---------------------------------------------------------------------


def diag(tmp_path: Path, qos: str, default: str, **flags: Any) -> Any:
    runner = own_cluster(qos, default, OWN_QOS)
    return diagnose(runner, tmp_path, diag_resource(**flags), **SWAP)


def test_diagnostic_expects_a_paused_allocation_on_the_paused_qos_only(tmp_path: Path) -> None:
    found = diag(tmp_path, "alloc-1,debug", "alloc-1", paused=True)
    assert failed(found) == {"qos": ("alloc-1", "blocked")}
    assert argvs(found.steps) == [[*MODIFY, "QOS=blocked", "DefaultQOS=blocked"]]


def test_diagnostic_expects_an_active_allocation_back_on_its_own_qos(tmp_path: Path) -> None:
    found = diag(tmp_path, "blocked", "blocked")
    assert failed(found) == {
        "qos": ("blocked (default blocked)", "alloc-1,debug (default alloc-1)")
    }
    assert argvs(found.steps) == [[*MODIFY, "QOS=alloc-1,debug", "DefaultQOS=alloc-1"]]


def test_diagnostic_of_an_allocation_on_its_level_is_ok(tmp_path: Path) -> None:
    found = diag(tmp_path, "blocked", "blocked", paused=True)
    assert found.status == "OK", failed(found)
    assert found.steps == ()


# ---- usage thresholds of periodic settings ---------------------------------------------


def test_a_new_period_lifts_a_threshold_pause_back_onto_the_own_qos(tmp_path: Path) -> None:
    def apply(runner: FakeRunner, raw: dict[str, Any], now: datetime) -> None:
        periodic = {"enabled": True, "state_dir": str(tmp_path), "threshold_qos": True}
        settings = {**SWAP, "periodic_limits": periodic}
        built = SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
        client = SlurmClient(runner, built.settings.cluster_name)
        result = apply_settings(client, built.settings, "alloc-1", raw, clock=lambda: now)
        assert result["success"] is True, result["error"]

    q2 = threshold_runner(qos="alloc-1,debug")
    apply(q2, message(**PAUSING), NOW)
    assert q2.writes == [[*MODIFY, "QOS=blocked", "DefaultQOS=blocked"]]
    q3 = threshold_runner(qos="blocked", jobs="")
    apply(q3, message(carryover_details=Q3, **PAUSING), datetime(2026, 7, 1, 0, 10, tzinfo=UTC))
    assert q3.writes == [[*MODIFY, "QOS=alloc-1,debug", "DefaultQOS=alloc-1"]]
