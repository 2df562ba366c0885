"""The diagnostic against slurm-emulator: the GrpSubmitJobs lever, the flat tree, and thresholds.

Drift is made by hand with the emulator's sacctmgr; the diagnostic names it, its steps
(applied as ``--fix`` applies them) put SLURM back, and a second diagnosis finds nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.diagnosing import diagnose, failed, fix, view_of
from tests.emulator.conftest import emulator_backend, sacctmgr, seed_job
from tests.emulator.test_partitions_and_qos_on_emulator import qos_of, submit_limit
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.emulator

ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
BOOST = {"attributes": {"qos": "boost", "partition": "gpu"}}


def parent_of(account: str) -> str:
    out = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,ParentName")
    rows = [line.split("|") for line in out.splitlines() if line]
    return next(r[2] for r in rows if r[0] == account and not r[1])


@pytest.fixture
def enforced(emulator: Path) -> None:
    """alloc-1 with alice, created and joined under QoS enforcement (QoS boost on gpu)."""
    sacctmgr("-i", "add", "qos", "boost")
    res = resource(**BOOST)
    emulator_backend(**ENFORCED).create_resource_with_id(res, "alloc-1")
    emulator_backend(**ENFORCED).add_users_to_resource(res, {"alice"})


def test_enforced_pause_is_expected_on_grp_submit_jobs_and_fixed_there(enforced: None) -> None:
    paused = view_of(resource(**BOOST), ("alice",), paused=True)

    found = diagnose(emulator_backend(**ENFORCED), paused)
    assert failed(found) == {"GrpSubmitJobs": ("unlimited", "0")}
    assert [s.line for s in found.steps] == [
        "sacctmgr --immediate modify account where name=alloc-1 set GrpSubmitJobs=0"
    ]
    fix(emulator_backend(**ENFORCED), found)
    assert submit_limit("alloc-1") == "0"
    assert qos_of("alloc-1") == ("normal", "")
    assert diagnose(emulator_backend(**ENFORCED), paused).status == "OK"

    restored = view_of(resource(**BOOST), ("alice",))
    lifted = diagnose(emulator_backend(**ENFORCED), restored)
    assert failed(lifted) == {"GrpSubmitJobs": ("0", "unlimited")}
    fix(emulator_backend(**ENFORCED), lifted)
    assert submit_limit("alloc-1") == ""
    assert diagnose(emulator_backend(**ENFORCED), restored).status == "OK"


def test_a_pause_the_backend_applied_is_in_sync_for_the_diagnostic(enforced: None) -> None:
    emulator_backend(**ENFORCED).pause_resource("alloc-1")
    paused = view_of(resource(**BOOST), ("alice",), paused=True)

    found = diagnose(emulator_backend(**ENFORCED), paused)
    assert found.status == "OK", failed(found)
    assert "qos" not in {c.field for c in found.checks}


def test_a_flat_project_moved_to_the_root_is_put_back_below_parent_account(
    emulator: Path,
) -> None:
    sacctmgr("-i", "add", "account", "flatp")
    res = resource()
    emulator_backend(parent_account="flatp").create_resource_with_id(res, "alloc-1")
    sacctmgr("-i", "modify", "account", "where", "name=proj-1", "set", "parent=root")
    assert parent_of("proj-1") == "root"

    found = diagnose(emulator_backend(parent_account="flatp"), view_of(res))
    assert failed(found) == {"project parent": ("root", "flatp")}
    fix(emulator_backend(parent_account="flatp"), found)

    assert parent_of("proj-1") == "flatp"
    assert parent_of("alloc-1") == "proj-1"
    assert diagnose(emulator_backend(parent_account="flatp"), view_of(res)).status == "OK"


# ---- usage thresholds under QoS enforcement -------------------------------------------------

# One node of 64 CPUs and 512 GB: 2 billing units per hour with Mastermind's weights.
NODE = {"cpu": 64, "mem": 512 * 1024, "node": 1}


def set_clock(moment: datetime) -> None:
    from emulator.core.time_engine import TimeEngine

    TimeEngine().set_time(moment)


def periodic_backend(state: Path) -> SlurmBackend:
    periodic = {"enabled": True, "state_dir": str(state), "threshold_qos": True}
    return emulator_backend(periodic_limits=periodic, **ENFORCED)


def test_a_message_past_the_grace_limit_under_enforcement_sets_grp_submit_jobs_zero(
    enforced: None, emulator: Path
) -> None:
    set_clock(datetime(2024, 2, 1))
    seed_job(
        "alloc-1", "alice", datetime(2024, 1, 2), datetime(2024, 1, 2) + timedelta(hours=20), NODE
    )
    # 20 node-hours = 40 billing-hours = 2400 billing-minutes, past both thresholds.
    settings = {
        "qos_threshold": {"billing": 1000},
        "grace_limit": {"billing": 1200},
        "carryover_details": {"previous_period": "2023-Q4"},
    }
    result = periodic_backend(emulator / "state").apply_periodic_settings("alloc-1", settings)

    assert result["success"] is True, result["error"]
    assert result["commands_executed"] == [
        "sacctmgr --immediate modify account where name=alloc-1 set GrpSubmitJobs=0"
    ]
    assert submit_limit("alloc-1") == "0"
    assert qos_of("alloc-1") == ("normal", "")
    # Membership sync's restore keeps what the thresholds hold.
    periodic_backend(emulator / "state").restore_resource("alloc-1")
    assert submit_limit("alloc-1") == "0"
