"""Usage thresholds under QoS enforcement: the level goes to GrpSubmitJobs, never to the QoS.

Domain tier: exact argv through the fake runner (the fixtures of tests/test_periodic.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.fakes import AccountFake, FakeRunner
from tests.test_periodic import NOW, PAUSING, READ, SET, message, threshold_runner
from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.periodic import service
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.slurm.client import SlurmClient

SUBMIT_READ = "format=Account,User,GrpSubmitJobs"
ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
# Enforcement that follows the offering's enforce_qos plugin option.
BY_OFFERING = {"qos_enforcement_enabled": True}
# Thresholds the usage of tests/test_periodic.JOB (600.6 billing-minutes) stays below.
CLEAR = {"qos_threshold": {"billing": 100000}, "grace_limit": {"billing": 120000}}


@pytest.fixture(autouse=True)
def clock_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service built here reads the test's moment (2026-05-10, in 2026-Q2)."""
    monkeypatch.setattr(service, "make_clock", lambda *_: lambda: NOW)


def lever_runner(submit: str, qos: str = "boost") -> AccountFake:
    """The account (QoS ``qos``, limits already applied) and its GrpSubmitJobs ``submit``."""
    runner = threshold_runner(qos=qos)
    runner.accounts["alloc-1"]["GrpSubmitJobs"] = submit
    return runner


def backend(runner: FakeRunner, state: Path, **settings: Any) -> SlurmBackend:
    periodic = {"enabled": True, "state_dir": str(state), "threshold_qos": True}
    built = SlurmBackend(
        {"periodic_limits": periodic, **settings}, {k: dict(v) for k, v in COMPONENTS.items()}
    )
    built.client = SlurmClient(runner, built.settings.cluster_name)
    return built


def submit_reads(runner: FakeRunner) -> int:
    return sum(SUBMIT_READ in " ".join(call) for call in runner.calls)


def test_a_pausing_message_under_enforcement_sets_grp_submit_jobs_and_leaves_the_qos(
    tmp_path: Path,
) -> None:
    runner = lever_runner("")
    result = backend(runner, tmp_path, **ENFORCED).apply_periodic_settings(
        "alloc-1", message(**PAUSING)
    )

    assert result["success"] is True, result["error"]
    assert runner.writes == [[*SET, "GrpSubmitJobs=0"]]
    assert result["commands_executed"] == [" ".join([*SET, "GrpSubmitJobs=0"])]
    assert runner.calls[0] == READ
    assert submit_reads(runner) == 1
    assert any(
        line.startswith("set GrpSubmitJobs=0: GrpSubmitJobs unlimited → 0")
        for line in result["actions"]
    )


def test_without_enforcement_the_same_message_still_swaps_the_qos(tmp_path: Path) -> None:
    runner = lever_runner("", qos="normal")
    backend(runner, tmp_path).apply_periodic_settings("alloc-1", message(**PAUSING))

    assert runner.writes == [[*SET, "QOS=blocked", "DefaultQOS=blocked"]]
    assert submit_reads(runner) == 0


def test_an_enforced_message_below_the_thresholds_writes_nothing(tmp_path: Path) -> None:
    runner = lever_runner("")
    result = backend(runner, tmp_path, **ENFORCED).apply_periodic_settings(
        "alloc-1", message(**CLEAR)
    )

    assert result["success"] is True
    assert runner.writes == []
    assert (
        "keep GrpSubmitJobs unlimited: Waldur asks for DEFAULT, usage thresholds for DEFAULT"
        in (result["actions"])
    )


def test_an_enforced_message_never_lifts_a_lever_it_cannot_attribute(tmp_path: Path) -> None:
    # GrpSubmitJobs=0 with no flags recorded and no earlier thresholds: Waldur paused it.
    runner = lever_runner("0")
    backend(runner, tmp_path, **ENFORCED).apply_periodic_settings("alloc-1", message(**CLEAR))

    assert runner.writes == []


def test_an_enforced_message_lifts_the_lever_its_own_thresholds_set(tmp_path: Path) -> None:
    backend(lever_runner(""), tmp_path, **ENFORCED).apply_periodic_settings(
        "alloc-1", message(**PAUSING)
    )
    runner = lever_runner("0")
    backend(runner, tmp_path, **ENFORCED).apply_periodic_settings("alloc-1", message(**CLEAR))

    assert runner.writes == [[*SET, "GrpSubmitJobs=-1"]]


def test_enforced_restore_keeps_the_lever_that_thresholds_hold(tmp_path: Path) -> None:
    backend(lever_runner(""), tmp_path, **ENFORCED).apply_periodic_settings(
        "alloc-1", message(**PAUSING)
    )
    steady = lever_runner("0")
    backend(steady, tmp_path, **ENFORCED).restore_resource("alloc-1")
    assert steady.writes == []
    drifted = lever_runner("")
    backend(drifted, tmp_path, **ENFORCED).restore_resource("alloc-1")
    assert drifted.writes == [[*SET, "GrpSubmitJobs=0"]]


def test_when_only_the_offering_can_tell_a_message_leaves_the_level_to_membership_sync(
    tmp_path: Path,
) -> None:
    # The event process builds its backend without the offering: enforce_qos unknown.
    runner = lever_runner("")
    result = backend(runner, tmp_path, **BY_OFFERING).apply_periodic_settings(
        "alloc-1", message(**PAUSING)
    )

    assert result["success"] is True, result["error"]
    assert runner.writes == []
    assert any("membership sync" in line for line in result["actions"])
    # Membership sync knows the offering enforces QoS: its restore applies the stored level.
    sync = lever_runner("")
    restoring = backend(sync, tmp_path, **BY_OFFERING)
    restoring.offering_enforce_qos = True
    restoring.restore_resource("alloc-1")
    assert sync.writes == [[*SET, "GrpSubmitJobs=0"]]


def test_an_offering_that_does_not_enforce_keeps_the_qos_swap_in_membership_sync(
    tmp_path: Path,
) -> None:
    backend(lever_runner(""), tmp_path, **BY_OFFERING).apply_periodic_settings(
        "alloc-1", message(**PAUSING)
    )
    sync = lever_runner("", qos="normal")
    restoring = backend(sync, tmp_path, **BY_OFFERING)
    restoring.offering_enforce_qos = False
    restoring.restore_resource("alloc-1")
    assert sync.writes == [[*SET, "QOS=blocked", "DefaultQOS=blocked"]]


def test_enforce_flags_and_messages_build_the_same_fields(tmp_path: Path) -> None:
    # pause through the backend, then a message asking for the same level: one write only.
    runner = lever_runner("")
    built = backend(runner, tmp_path, **ENFORCED)
    PeriodicService(built.client, built.settings).enforce_flags(
        "alloc-1", QosLevel.PAUSED, lever=True
    )
    assert runner.writes == [[*SET, "GrpSubmitJobs=0"]]
    again = lever_runner("0")
    backend(again, tmp_path, **ENFORCED).apply_periodic_settings("alloc-1", message(**PAUSING))
    assert again.writes == []
