"""Periodic settings: validation, plans and the QoS decision, checked through the exact argv."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.fakes import TRES_OUTPUT, AccountFake, FakeRunner, assoc_lines
from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.periodic import emulator_api
from waldur_site_agent_slurm.periodic.message import apply_settings
from waldur_site_agent_slurm.periodic.periods import Period, parse_period, period_of
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.periodic.settings import DEFAULT_WEIGHTS, threshold_usage, weight_of
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.parser import ASSOC_FIELDS

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

SI = ["sacctmgr", "--immediate"]
SET = [*SI, "modify", "account", "where", "name=alloc-1", "set"]
READ = [
    "sacctmgr",
    "--parsable2",
    "--noheader",
    "show",
    "assoc",
    "where",
    "account=alloc-1",
    "format=" + ",".join(ASSOC_FIELDS),
]
# 2026-05-10 is in 2026-Q2; Waldur names 2026-Q1 as the previous period.
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
Q2 = {"carryover_applied": True, "previous_period": "2026-Q1", "carryover_factor": 50}
Q3 = {"carryover_applied": True, "previous_period": "2026-Q2", "carryover_factor": 50}


def row(
    fairshare: str = "1", grp: str = "", qos: str = "normal", default_qos: str = "", mx: str = ""
) -> str:
    return assoc_lines(f"alloc-1|||proj-1|{fairshare}|{grp}|{mx}||{qos}|{default_qos}")


def fake(
    fairshare: str = "1", grp: str = "", qos: str = "normal", default_qos: str = "", mx: str = ""
) -> AccountFake:
    """alloc-1 under proj-1; ``show assoc`` follows the writes, as on a cluster."""
    columns = {
        "Account": "alloc-1",
        "ParentName": "proj-1",
        "Fairshare": fairshare,
        "GrpTRESMins": grp,
        "MaxTRESMins": mx,
        "QOS": qos,
        "DefaultQOS": default_qos,
    }
    return AccountFake(outputs={"list tres": TRES_OUTPUT}, accounts={"alloc-1": columns})


def backend(
    runner: FakeRunner, state: Path, components: Any = None, **periodic: Any
) -> SlurmBackend:
    settings = {"periodic_limits": {"enabled": True, "state_dir": str(state), **periodic}}
    comps = components or COMPONENTS
    built = SlurmBackend(settings, {k: dict(v) for k, v in comps.items()})
    built.client = SlurmClient(runner, built.settings.cluster_name)
    return built


def message(**overrides: Any) -> dict[str, Any]:
    """Settings as Mastermind sends them (cpu in k-hours, mem in GB-hours, × 60, grace in)."""
    settings: dict[str, Any] = {
        "fairshare": 500,
        "limit_type": "GrpTRESMins",
        "grp_tres_mins": {"cpu": 60000, "mem": 600, "gpu": 300, "billing": 14400},
        "reset_raw_usage": False,
        "qos_threshold": {"billing": 12000},
        "grace_limit": {"billing": 14400},
        "carryover_details": Q2,
    }
    settings.update(overrides)
    return settings


# The message above as TRES-minutes: cpu 1000 k-h × 60000, mem 10 GB-h × 61440 MB-min.
APPLIED_GRP = "billing=14400,cpu=60000000,gres/gpu=300,mem=614400"


# ---- plan → apply -----------------------------------------------------------------------


def test_first_apply_reads_writes_what_differs_in_one_command_and_reads_it_back_once(
    tmp_path: Path,
) -> None:
    runner = fake(grp="cpu=60000000,billing=100")
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    write = [*SET, "Fairshare=500", "GrpTRESMins=billing=14400,gres/gpu=300,mem=614400"]
    assert runner.calls == [READ, write, READ]
    assert result["success"] is True
    assert result["error"] == ""
    assert result["commands_executed"] == [" ".join(write)]
    assert result["carryover_details"] == Q2


def test_applying_the_same_settings_again_makes_no_write(tmp_path: Path) -> None:
    runner = fake(fairshare="500", grp=APPLIED_GRP)
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert runner.calls == [READ]
    assert result == {**result, "success": True, "commands_executed": []}


def test_cluster_name_scopes_the_read_and_the_write(tmp_path: Path) -> None:
    runner = fake()
    built = SlurmBackend(
        {"cluster_name": "hpc", "periodic_limits": {"enabled": True, "state_dir": str(tmp_path)}},
        {k: dict(v) for k, v in COMPONENTS.items()},
    )
    built.client = SlurmClient(runner, "hpc")
    built.apply_periodic_settings("alloc-1", message(grp_tres_mins={"gpu": 600}))
    where = ["where", "name=alloc-1", "cluster=hpc"]
    read = [*READ[:7], "cluster=hpc", READ[7]]
    assert runner.calls == [
        read,
        [*SI, "modify", "account", *where, "set", "Fairshare=500", "GrpTRESMins=gres/gpu=600"],
        read,
    ]


def test_waldur_example_with_a_node_component_applies_fairshare_and_node_minutes(
    tmp_path: Path,
) -> None:
    # mastermind-periodic-policy.md §6 Example 1: billing off, limits {"node": 1000}.
    components = {"node": {"unit_factor": 60, "accounting_type": "limit", "label": "Node"}}
    runner = fake()
    settings = {
        "fairshare": 500,
        "qos_threshold": {"node": 90000},
        "grace_limit": {"node": 108000},
        "limit_type": "GrpTRESMins",
        "reset_raw_usage": False,
        "grp_tres_mins": {"node": 108000},
    }
    result = backend(runner, tmp_path, components).apply_periodic_settings("alloc-1", settings)
    assert runner.writes == [[*SET, "Fairshare=500", "GrpTRESMins=node=108000"]]
    assert result["success"] is True


def test_missing_keys_leave_those_settings_alone(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", {"fairshare": 7})
    assert runner.writes == [[*SET, "Fairshare=7"]]
    assert result["success"] is True


def test_unknown_top_level_keys_are_ignored(tmp_path: Path) -> None:
    runner = fake(fairshare="500", grp=APPLIED_GRP)
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(qos_strategy="threshold")
    )
    assert result["success"] is True
    assert runner.writes == []


def test_max_tres_mins_sets_the_per_job_limit(tmp_path: Path) -> None:
    runner = fake(mx="gres/gpu=100")
    settings = message(limit_type="MaxTRESMins", max_tres_mins={"gpu": 120})
    del settings["grp_tres_mins"]
    result = backend(runner, tmp_path, limit_type="MaxTRESMins").apply_periodic_settings(
        "alloc-1", settings
    )
    assert runner.writes == [[*SET, "Fairshare=500", "MaxTRESMins=gres/gpu=120"]]
    assert result["success"] is True


def test_grp_tres_applies_only_when_the_site_chose_it(tmp_path: Path) -> None:
    settings = message(limit_type="GrpTRES", grp_tres={"gpu": 120})
    del settings["grp_tres_mins"]
    refused = fake()
    result = backend(refused, tmp_path).apply_periodic_settings("alloc-1", settings)
    assert refused.calls == []
    assert "minutes, not a concurrent count" in result["error"]
    chosen = fake()
    result = backend(chosen, tmp_path, limit_type="GrpTRES").apply_periodic_settings(
        "alloc-1", settings
    )
    assert chosen.writes == [[*SET, "Fairshare=500", "GrpTRES=gres/gpu=120"]]


def test_tres_billing_disabled_leaves_the_billing_entry_out(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path, tres_billing_enabled=False).apply_periodic_settings(
        "alloc-1", message()
    )
    write = [*SET, "Fairshare=500", "GrpTRESMins=cpu=60000000,gres/gpu=300,mem=614400"]
    assert runner.writes == [write]
    assert result["success"] is True
    assert any("tres_billing_enabled" in line for line in result["actions"])


def test_partial_failure_lists_what_ran_and_fails(tmp_path: Path) -> None:
    runner = fake()
    runner.failures["RawUsage=0"] = (1, "", "sacctmgr: error: Problem resetting")
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert result["success"] is False
    assert "RawUsage=0" in result["error"]
    assert result["commands_executed"] == [
        " ".join([*SET, "Fairshare=500", f"GrpTRESMins={APPLIED_GRP}"])
    ]


def test_missing_account_fails_after_the_one_read(tmp_path: Path) -> None:
    runner = FakeRunner(outputs={"show assoc": ""})
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert runner.calls == [READ]
    assert result["success"] is False
    assert "alloc-1 does not exist" in result["error"]


def test_disabled_periodic_limits_run_nothing(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path, enabled=False).apply_periodic_settings("alloc-1", message())
    assert runner.calls == []
    assert result["success"] is False
    assert "enabled is false" in result["error"]


# ---- bad input: refused before any command --------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"fairshare": -1}, "Invalid fairshare -1"),
        ({"fairshare": "500"}, "expected a number"),
        ({"fairshare": 0}, "must be at least 1"),
        ({"grp_tres_mins": {"cpu": -5}}, "must not be negative"),
        ({"grp_tres_mins": {"cpu": "lots"}}, "expected a number"),
        ({"grp_tres_mins": {"cpu": 1.5}}, "must be a whole number"),
        ({"grp_tres_mins": {"cpu": float("nan")}}, "finite"),
        ({"grp_tres_mins": ["cpu"]}, "must be a mapping"),
        ({"reset_raw_usage": "yes"}, "reset_raw_usage must be true or false"),
        ({"qos_threshold": {"billing": -1}}, "must not be negative"),
        ({"qos_threshold": {"cpu": 5}}, "neither billing nor node"),
        ({"grace_limit": {"billing": 10}}, "below qos_threshold"),
        ({"limit_type": "GrpTRESHours"}, "unknown limit_type"),
        ({"limit_type": "MaxTRESMins"}, "differs from periodic_limits.limit_type"),
        ({"max_tres_mins": {"cpu": 1}}, "exactly one limit key"),
        ({"carryover_details": {"previous_period": "Q1-2026"}}, "expected YYYY-MM"),
    ],
)
def test_bad_values_are_refused_before_any_command(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    runner = fake()
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message(**overrides))
    assert runner.calls == []
    assert result["success"] is False
    assert expected in result["error"]
    assert result["commands_executed"] == []


def test_unknown_component_is_an_error_listing_the_known_ones(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"cpu": 60, "nodeHours": 60})
    )
    assert runner.calls == []
    assert "unknown component 'nodeHours'" in result["error"]
    assert "known: billing, cpu, gpu, mem" in result["error"]


def test_bad_account_name_is_refused_before_any_command(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1 set QOS=", message())
    assert runner.calls == []
    assert "resource backend_id" in result["error"]


# ---- safety: limits that block by accident -------------------------------------------


def test_billing_zero_is_refused_while_the_account_has_a_positive_one(tmp_path: Path) -> None:
    # Mastermind's pitfall (§6 Example 3): billing 0 from components without a weight.
    runner = fake(grp="billing=14400")
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"gpu": 300, "billing": 0})
    )
    assert runner.writes == [[*SET, "Fairshare=500", "GrpTRESMins=gres/gpu=300"]]
    assert result["success"] is False
    assert "billing=0" in result["error"]
    assert "now billing=14400" in result["error"]
    assert "allow_blocking_limits" in result["error"]


def test_all_zero_limits_are_refused_on_an_account_without_limits(tmp_path: Path) -> None:
    runner = fake(fairshare="500")
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"cpu": 0, "billing": 0})
    )
    assert runner.writes == []
    assert result["success"] is False
    assert "cpu=0" in result["error"] and "billing=0" in result["error"]


def test_zero_limits_apply_when_the_site_allows_blocking(tmp_path: Path) -> None:
    runner = fake(fairshare="500", grp="billing=14400")
    result = backend(runner, tmp_path, allow_blocking_limits=True).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"billing": 0})
    )
    assert runner.writes == [[*SET, "GrpTRESMins=billing=0"]]
    assert result["success"] is True


def test_config_argument_overrides_periodic_limits(tmp_path: Path) -> None:
    runner = fake(fairshare="500", grp="billing=14400")
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"billing": 0}), {"allow_blocking_limits": True}
    )
    assert runner.writes == [[*SET, "GrpTRESMins=billing=0"]]
    assert result["success"] is True


def test_grace_is_applied_as_sent_never_added_again(tmp_path: Path) -> None:
    runner = fake()
    backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"billing": 14400}, grace_limit={"billing": 14400})
    )
    assert runner.writes == [[*SET, "Fairshare=500", "GrpTRESMins=billing=14400"]]


# ---- RawUsage reset: once per allocation and period ----------------------------------


def test_raw_usage_reset_runs_once_per_period_even_when_redelivered(tmp_path: Path) -> None:
    reset = [*SET, "RawUsage=0"]
    first = fake(fairshare="500", grp=APPLIED_GRP)
    result = backend(first, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert first.calls == [READ, reset]
    assert result["commands_executed"] == [" ".join(reset)]
    assert result["period"] == "2026-Q2"
    for _ in range(2):  # redelivered: a new backend each time, as the agent builds them
        again = fake(fairshare="500", grp=APPLIED_GRP)
        result = backend(again, tmp_path).apply_periodic_settings(
            "alloc-1", message(reset_raw_usage=True)
        )
        assert again.calls == [READ]
        assert any("already reset for period 2026-Q2" in line for line in result["actions"])
    next_period = fake(fairshare="500", grp=APPLIED_GRP)
    backend(next_period, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True, carryover_details=Q3)
    )
    assert next_period.writes == [reset]
    state = json.loads((tmp_path / "default" / "alloc-1.json").read_text())
    assert state["raw_usage_resets"] == ["2026-Q2", "2026-Q3"]


def test_failed_reset_is_not_remembered_and_is_retried(tmp_path: Path) -> None:
    failing = fake(fairshare="500", grp=APPLIED_GRP)
    failing.failures["RawUsage=0"] = (1, "", "sacctmgr: error: Problem")
    backend(failing, tmp_path).apply_periodic_settings("alloc-1", message(reset_raw_usage=True))
    retry = fake(fairshare="500", grp=APPLIED_GRP)
    result = backend(retry, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert retry.writes == [[*SET, "RawUsage=0"]]
    assert result["success"] is True


@pytest.mark.parametrize(
    ("periodic", "details"),
    [
        ({}, {"carryover_applied": False, "reason": "no_previous_period"}),
        ({"period": "total"}, Q2),
    ],
)
def test_one_off_allocations_never_reset(
    tmp_path: Path, periodic: dict[str, Any], details: dict[str, Any]
) -> None:
    runner = fake(fairshare="500", grp=APPLIED_GRP)
    result = backend(runner, tmp_path, **periodic).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True, carryover_details=details)
    )
    assert runner.writes == []
    assert result["period"] == "total"


def test_unusable_state_dir_fails_before_any_command(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    runner = fake()
    result = backend(runner, blocker / "state").apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert runner.calls == []
    assert "state_dir" in result["error"]


def test_corrupt_state_file_fails_before_any_write(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "alloc-1.json").write_text("{not json")
    runner = fake()
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert runner.writes == []
    assert "unreadable" in result["error"]


def test_state_is_replaced_without_leaving_temporary_files(tmp_path: Path) -> None:
    for details in (Q2, Q3):
        backend(fake(), tmp_path).apply_periodic_settings(
            "alloc-1", message(reset_raw_usage=True, carryover_details=details)
        )
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [
        "alloc-1.json",
        "alloc-1.lock",
    ]


# ---- usage thresholds and the one QoS decision ---------------------------------------

# One 10-hour job of 64 CPUs and 512 GB in 2026-Q2: 0.64 CPU k-hours and 5120 GB-hours.
JOB = "7|alloc-1|alice|COMPLETED|2026-05-02T00:00:00|2026-05-02T10:00:00|cpu=64,mem=512G,node=1\n"
# Mastermind's billing figure of that usage, in minutes (weights CPU 1/64, Mem 1/512).
JOB_BILLING_MINUTES = (0.64 * 0.015625 + 5120 * 0.001953125) * 60  # 600.6


def threshold_runner(qos: str = "normal", jobs: str = JOB) -> AccountFake:
    runner = fake(fairshare="500", grp=APPLIED_GRP, qos=qos, default_qos=qos)
    runner.outputs["sacct --"] = jobs
    return runner


def apply_at(
    runner: FakeRunner, state: Path, settings: dict[str, Any], success: bool = True
) -> dict[str, Any]:
    built = backend(runner, state, threshold_qos=True)
    result = apply_settings(built.client, built.settings, "alloc-1", settings, clock=lambda: NOW)
    assert result["success"] is success, result["error"]
    return result


# Thresholds the usage of JOB (600.6 billing-minutes) is past: Mastermind would pause.
PAUSING = {"qos_threshold": {"billing": 500}, "grace_limit": {"billing": 600}}


def flags_at(runner: FakeRunner, state: Path, requested: QosLevel) -> None:
    built = backend(runner, state, threshold_qos=True)
    PeriodicService(built.client, built.settings, clock=lambda: NOW).enforce_flags(
        "alloc-1", requested
    )


def qos_writes(runner: FakeRunner) -> list[str]:
    return [c[-2].removeprefix("QOS=") for c in runner.writes if c[-1].startswith("DefaultQOS")]


@pytest.mark.parametrize(
    ("threshold", "grace", "expected"),
    [
        (601, 700, None),  # below 100 %: stays normal (80 % only notifies)
        (600, 700, "slowdown"),  # at or above qos_threshold
        (500, 600, "blocked"),  # at or above grace_limit
    ],
)
def test_threshold_usage_selects_the_qos(
    tmp_path: Path, threshold: int, grace: int, expected: str | None
) -> None:
    runner = threshold_runner()
    settings = message(qos_threshold={"billing": threshold}, grace_limit={"billing": grace})
    apply_at(runner, tmp_path, settings)
    assert qos_writes(runner) == ([expected] if expected else [])
    sacct = next(c for c in runner.calls if c[0] == "sacct")
    assert "--starttime=2026-04-01T00:00:00" in sacct
    assert "--endtime=2026-05-10T12:00:00" in sacct


def test_threshold_usage_is_mastermind_billing_minutes(tmp_path: Path) -> None:
    apply_at(threshold_runner(), tmp_path, message())
    state = json.loads((tmp_path / "default" / "alloc-1.json").read_text())
    assert float(state["threshold"]["usage_minutes"]) == pytest.approx(JOB_BILLING_MINUTES)
    assert state["threshold"]["period"] == "2026-Q2"


def test_threshold_qos_is_off_by_default_and_reads_no_usage(tmp_path: Path) -> None:
    runner = threshold_runner()
    built = backend(runner, tmp_path)
    apply_settings(
        built.client,
        built.settings,
        "alloc-1",
        message(qos_threshold={"billing": 1}, grace_limit={"billing": 1}),
        clock=lambda: NOW,
    )
    assert runner.calls == [READ]


def test_zero_threshold_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    runner = threshold_runner()
    result = apply_at(
        runner,
        tmp_path,
        message(qos_threshold={"billing": 0}, grace_limit={"billing": 0}),
        success=False,
    )
    assert qos_writes(runner) == []
    assert "zero threshold" in result["error"]


def test_restore_does_not_undo_a_threshold_paused_account(tmp_path: Path) -> None:
    apply_at(threshold_runner(qos="blocked"), tmp_path, message(**PAUSING))
    restore = threshold_runner(qos="blocked")
    flags_at(restore, tmp_path, QosLevel.DEFAULT)
    assert restore.writes == []
    # Even if SLURM's QoS was changed by hand, restore puts the threshold QoS back.
    drifted = threshold_runner(qos="normal")
    flags_at(drifted, tmp_path, QosLevel.DEFAULT)
    assert qos_writes(drifted) == ["blocked"]


def test_flags_and_thresholds_do_not_flap(tmp_path: Path) -> None:
    # Thresholds ask for slowdown; Waldur's flags alternate between restore and downscale.
    first = threshold_runner()
    apply_at(first, tmp_path, message(qos_threshold={"billing": 600}))
    assert qos_writes(first) == ["slowdown"]
    for requested in (QosLevel.DEFAULT, QosLevel.DOWNSCALED, QosLevel.DEFAULT):
        runner = threshold_runner(qos="slowdown")
        flags_at(runner, tmp_path, requested)
        assert runner.writes == []
        runner = threshold_runner(qos="slowdown")
        apply_at(runner, tmp_path, message(qos_threshold={"billing": 600}))
        assert runner.writes == []


def test_waldur_pause_wins_over_lower_thresholds_in_both_paths(tmp_path: Path) -> None:
    pause = threshold_runner()
    flags_at(pause, tmp_path, QosLevel.PAUSED)
    assert qos_writes(pause) == ["blocked"]
    settings = message(qos_threshold={"billing": 100000}, grace_limit={"billing": 120000})
    runner = threshold_runner(qos="blocked")
    apply_at(runner, tmp_path, settings)
    assert runner.writes == []
    restore = threshold_runner(qos="blocked")
    flags_at(restore, tmp_path, QosLevel.DEFAULT)
    assert qos_writes(restore) == ["normal"]


def test_a_message_never_lowers_a_qos_it_cannot_attribute(tmp_path: Path) -> None:
    # No flags recorded yet and no earlier thresholds: "blocked" came from Waldur.
    runner = threshold_runner(qos="blocked")
    settings = message(qos_threshold={"billing": 100000}, grace_limit={"billing": 120000})
    apply_at(runner, tmp_path, settings)
    assert runner.writes == []


def test_new_period_settings_lift_the_threshold_qos(tmp_path: Path) -> None:
    apply_at(threshold_runner(), tmp_path, message(**PAUSING))
    restore = threshold_runner(qos="blocked")
    flags_at(restore, tmp_path, QosLevel.DEFAULT)
    assert restore.writes == []
    q3 = threshold_runner(qos="blocked", jobs="")
    built = backend(q3, tmp_path, threshold_qos=True)
    result = apply_settings(
        built.client,
        built.settings,
        "alloc-1",
        message(carryover_details=Q3, reset_raw_usage=True, **PAUSING),
        clock=lambda: datetime(2026, 7, 1, 0, 10, tzinfo=UTC),
    )
    assert result["success"] is True
    assert q3.writes == [
        [*SET, "QOS=normal", "DefaultQOS=normal"],
        [*SET, "RawUsage=0"],
    ]


def test_threshold_level_expires_with_its_period(tmp_path: Path) -> None:
    apply_at(threshold_runner(), tmp_path, message(**PAUSING))
    runner = threshold_runner(qos="blocked")
    built = backend(runner, tmp_path, threshold_qos=True)
    later = PeriodicService(
        built.client, built.settings, clock=lambda: datetime(2026, 7, 2, tzinfo=UTC)
    )
    later.enforce_flags("alloc-1", QosLevel.DEFAULT)
    assert qos_writes(runner) == ["normal"]


def test_backend_restore_goes_through_the_decision(tmp_path: Path) -> None:
    # Thresholds on but nothing remembered: restore behaves as before.
    runner = threshold_runner(qos="blocked")
    backend(runner, tmp_path, threshold_qos=True).restore_resource("alloc-1")
    assert qos_writes(runner) == ["normal"]
    state = json.loads((tmp_path / "default" / "alloc-1.json").read_text())
    assert state["flags_level"] == "DEFAULT"


# ---- the formulas the thresholds rely on ---------------------------------------------


def test_weights_are_looked_up_like_mastermind() -> None:
    assert weight_of("cpu", DEFAULT_WEIGHTS) == 0.015625
    assert weight_of("mem", DEFAULT_WEIGHTS) == 0.001953125
    assert weight_of("gpu", DEFAULT_WEIGHTS) == 0.0  # gpu does not match GRES/gpu


def test_threshold_usage_matches_mastermind_example_two() -> None:
    # §6 Example 2: totals cpu 64000, mem 768000, gpu 600 → qos_threshold billing 150000.
    totals = {"cpu": 64000.0, "mem": 768000.0, "gpu": 600.0}
    assert threshold_usage(totals, "billing", DEFAULT_WEIGHTS) == 150000
    assert threshold_usage({"node": 1500.0}, "node", DEFAULT_WEIGHTS) == 90000


@pytest.mark.parametrize(
    ("text", "following", "start", "end"),
    [
        ("2026-04", "2026-05", datetime(2026, 4, 1), datetime(2026, 5, 1)),
        ("2026-12", "2027-01", datetime(2026, 12, 1), datetime(2027, 1, 1)),
        ("2026-Q4", "2027-Q1", datetime(2026, 10, 1), datetime(2027, 1, 1)),
        ("2026", "2027", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ],
)
def test_periods_parse_follow_and_span(
    text: str, following: str, start: datetime, end: datetime
) -> None:
    period = parse_period(text)
    assert period.id == text
    assert period.next().id == following
    window = period.window("UTC", NOW)
    assert (window.start, window.end) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))


def test_period_of_a_moment_uses_the_zone() -> None:
    moment = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    assert period_of("quarter", moment).id == "2026-Q1"
    assert period_of("quarter", moment, "Europe/Tallinn").id == "2026-Q2"
    assert period_of("total", moment) == Period("total")


# ---- components without a TRES, the result's mode, reason and reset outcome ----------

# An offering that also sells storage: a Waldur component SLURM does not account.
WITH_STORAGE = {
    **COMPONENTS,
    "storage": {"measured_unit": "TB", "unit_factor": 1, "accounting_type": "limit"},
}


def test_a_declared_component_without_tres_is_skipped_with_one_warning_and_the_rest_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = fake()
    limits = {"cpu": 60000, "storage": 600, "mem": 600, "gpu": 300, "billing": 14400}
    with caplog.at_level(logging.WARNING):
        result = backend(runner, tmp_path, WITH_STORAGE).apply_periodic_settings(
            "alloc-1", message(grp_tres_mins=limits)
        )
    assert runner.calls == [READ, [*SET, "Fairshare=500", f"GrpTRESMins={APPLIED_GRP}"], READ]
    assert result["success"] is True, result["error"]
    assert result["error"] == ""
    skipped = [line for line in result["actions"] if "storage" in line]
    assert skipped == [
        "skip grp_tres_mins.storage: not applied: component storage has no SLURM TRES "
        "(set backend_components.storage.tres_name to limit it)"
    ]
    periodic = [r for r in caplog.records if "without a SLURM TRES" in r.getMessage()]
    assert len(periodic) == 1
    assert "storage" in periodic[0].getMessage()


def test_a_key_that_is_no_declared_component_stays_an_error(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path, WITH_STORAGE).apply_periodic_settings(
        "alloc-1", message(grp_tres_mins={"cpu": 60, "storage": 1, "nodeHours": 60})
    )
    assert runner.calls == []
    assert result["success"] is False
    assert "unknown component 'nodeHours'" in result["error"]
    assert "known: billing, cpu, gpu, mem, storage" in result["error"]
    assert "'storage'" not in result["error"]


def test_the_result_says_production_mode_when_sacctmgr_applies_it(tmp_path: Path) -> None:
    result = backend(fake(), tmp_path).apply_periodic_settings("alloc-1", message())
    assert result["mode"] == "production"
    failed = backend(fake(), tmp_path).apply_periodic_settings("alloc-1", {"fairshare": -1})
    assert (failed["success"], failed["mode"]) == (False, "production")


def test_switched_off_periodic_limits_give_the_reason_and_run_nothing(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path, enabled=False).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert runner.calls == []
    assert result == {
        "success": False,
        "reason": "periodic_limits_not_enabled",
        "error": "periodic_limits.enabled is false in backend_settings; nothing applied",
        "mode": "production",
        "commands_executed": [],
        "raw_usage_reset": {
            "requested": True,
            "performed": False,
            "reason": "not performed: the message failed first",
        },
        "carryover_details": Q2,
    }


def test_the_result_tells_whether_a_requested_reset_ran_and_why_not(tmp_path: Path) -> None:
    reset = " ".join([*SET, "RawUsage=0"])
    first = backend(fake(fairshare="500", grp=APPLIED_GRP), tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert first["commands_executed"] == [reset]
    assert first["raw_usage_reset"] == {
        "requested": True,
        "performed": True,
        "reason": "first reset request of period 2026-Q2",
    }
    again = backend(fake(fairshare="500", grp=APPLIED_GRP), tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert (again["success"], again["commands_executed"]) == (True, [])
    assert again["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "already reset for period 2026-Q2",
    }
    unasked = backend(fake(fairshare="500", grp=APPLIED_GRP), tmp_path).apply_periodic_settings(
        "alloc-1", message()
    )
    assert unasked["raw_usage_reset"] == {
        "requested": False,
        "performed": False,
        "reason": "not requested",
    }


def test_a_one_off_allocation_says_it_never_resets(tmp_path: Path) -> None:
    result = backend(fake(), tmp_path, period="total").apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert result["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "never reset for a one-off (total) allocation",
    }


def test_a_failed_reset_is_reported_as_not_performed(tmp_path: Path) -> None:
    runner = fake()
    runner.failures["RawUsage=0"] = (1, "", "sacctmgr: error: Problem resetting")
    result = backend(runner, tmp_path).apply_periodic_settings(
        "alloc-1", message(reset_raw_usage=True)
    )
    assert result["success"] is False
    assert result["commands_executed"] == [
        " ".join([*SET, "Fairshare=500", f"GrpTRESMins={APPLIED_GRP}"])
    ]
    assert result["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "first reset request of period 2026-Q2: not performed, the message failed first",
    }


# ---- emulator_mode: checked before anything is sent ------------------------------------


def test_emulator_mode_without_a_base_url_fails_before_any_command(tmp_path: Path) -> None:
    runner = fake()
    result = backend(runner, tmp_path, emulator_mode=True).apply_periodic_settings(
        "alloc-1", message()
    )
    assert runner.calls == []
    assert result["success"] is False
    assert result["mode"] == "emulator"
    assert "periodic_limits.emulator_base_url" in result["error"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://user:secret@127.0.0.1:8080", "credentials"),
        ("http://127.0.0.1:80x80", "not a URL"),
        ("http://127.0.0.1:8080/?next=1", "query"),
        ("ftp://127.0.0.1:8080", "should match pattern"),
    ],
)
def test_a_bad_emulator_base_url_is_refused_before_any_request(
    tmp_path: Path, url: str, problem: str
) -> None:
    runner = fake()
    built = backend(runner, tmp_path, emulator_mode=True)
    result = built.apply_periodic_settings("alloc-1", message(), {"emulator_base_url": url})
    assert runner.calls == []
    assert result["success"] is False
    assert "emulator_base_url" in result["error"]
    assert problem in result["error"]
    assert result["commands_executed"] == []


def test_an_emulator_api_that_never_answers_times_out_with_a_clear_error() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(emulator_api.EmulatorApiError) as raised:
            emulator_api.post(url, {"resource_id": "alloc-1"}, timeout=0.5)
    assert time.monotonic() - started < 5
    assert f"{url}/api/apply-periodic-settings is not reachable" in str(raised.value)
    assert "timed out" in str(raised.value)
    assert "uvicorn emulator.api.emulator_server:app" in str(raised.value)
