"""Periodic settings against a real SLURM: real sacctmgr, real jobs, real sshare."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.real.conftest import (
    USERS,
    assoc_rows,
    fairshare,
    real_backend,
    run,
    stack,
    submit,
    submit_until,
    wait_finished,
)
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.real_slurm


def periodic(state_dir: Path, **options: Any) -> SlurmBackend:
    return real_backend(periodic_limits={"enabled": True, "state_dir": str(state_dir), **options})


def raw_usage(account: str) -> int:
    out = run("sshare", "-P", "-n", "-A", account, "-o", "Account,User,RawUsage").stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return next(int(usage) for acct, user, usage in rows if acct.strip() == account and not user)


def settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "fairshare": 500,
        "limit_type": "GrpTRESMins",
        # cpu: 100 Waldur units × 60; the real tier's cpu unit is one CPU-minute.
        "grp_tres_mins": {"cpu": 6000, "gpu": 600, "billing": 14400},
        "reset_raw_usage": False,
        "carryover_details": {"carryover_applied": True, "previous_period": "2026-Q1"},
    }
    values.update(overrides)
    return values


def test_settings_apply_in_one_command_and_repeat_writes_nothing(
    names: dict[str, str], tmp_path: Path
) -> None:
    real_backend().create_resource_with_id(resource(**names, limits={}), names["slug"])
    first = periodic(tmp_path).apply_periodic_settings(names["slug"], settings())
    assert first["success"] is True, first["error"]
    assert len(first["commands_executed"]) == 1
    assert fairshare(names["slug"]) == "500"
    assert assoc_rows(names["slug"])[0][3] == "billing=14400,cpu=100,gres/gpu=600"
    second = periodic(tmp_path).apply_periodic_settings(names["slug"], settings())
    assert second == {**second, "success": True, "commands_executed": []}


def test_a_storage_component_is_skipped_and_the_rest_reaches_slurm(
    names: dict[str, str], tmp_path: Path
) -> None:
    real_backend().create_resource_with_id(resource(**names, limits={}), names["slug"])
    components = {k: dict(v) for k, v in COMPONENTS.items()}
    components["cpu"]["unit_factor"] = 1
    components["storage"] = {"measured_unit": "TB", "unit_factor": 1, "accounting_type": "limit"}
    backend = SlurmBackend(
        {
            "slurm_bin_path": stack().bin,
            "cluster_name": stack().cluster,
            "enable_user_homedir_account_creation": False,
            "periodic_limits": {"enabled": True, "state_dir": str(tmp_path)},
        },
        components,
    )
    sent = settings()
    sent["grp_tres_mins"] = {**sent["grp_tres_mins"], "storage": 600}
    result = backend.apply_periodic_settings(names["slug"], sent)
    assert result["success"] is True, result["error"]
    assert result["mode"] == "production"
    assert result["commands_executed"] == [
        f"sacctmgr --immediate modify account where name={names['slug']} cluster={stack().cluster} "
        "set Fairshare=500 GrpTRESMins=billing=14400,cpu=100,gres/gpu=600"
    ]
    assert fairshare(names["slug"]) == "500"
    assert assoc_rows(names["slug"])[0][3] == "billing=14400,cpu=100,gres/gpu=600"


def test_billing_zero_is_refused_and_the_account_keeps_running_jobs(
    names: dict[str, str], tmp_path: Path
) -> None:
    res = resource(**names, limits={})
    real_backend().create_resource_with_id(res, names["slug"])
    real_backend().add_users_to_resource(res, {USERS[0]})
    periodic(tmp_path).apply_periodic_settings(names["slug"], settings())
    result = periodic(tmp_path).apply_periodic_settings(
        names["slug"], settings(grp_tres_mins={"billing": 0})
    )
    assert result["success"] is False
    assert assoc_rows(names["slug"])[0][3] == "billing=14400,cpu=100,gres/gpu=600"
    code, job = submit(USERS[0], names["slug"], "-n1", wrap="true")
    assert code == 0, job
    wait_finished([job])


def test_raw_usage_reset_zeroes_sshare_once_per_period(
    names: dict[str, str], tmp_path: Path
) -> None:
    res = resource(**names, limits={})
    real_backend().create_resource_with_id(res, names["slug"])
    real_backend().add_users_to_resource(res, {USERS[1]})
    code, job = submit(USERS[1], names["slug"], "-n1", wrap="sleep 2")
    assert code == 0, job
    wait_finished([job])
    deadline = time.monotonic() + 60
    while raw_usage(names["slug"]) == 0:
        assert time.monotonic() < deadline, "the job's usage never reached sshare"
        time.sleep(1)
    result = periodic(tmp_path).apply_periodic_settings(
        names["slug"], settings(reset_raw_usage=True)
    )
    assert result["success"] is True, result["error"]
    assert result["commands_executed"][-1] == (
        f"sacctmgr --immediate modify account where name={names['slug']} "
        f"cluster={stack().cluster} set RawUsage=0"
    )
    assert raw_usage(names["slug"]) == 0
    assert result["raw_usage_reset"] == {
        "requested": True,
        "performed": True,
        "reason": "first reset request of period 2026-Q2",
    }
    again = periodic(tmp_path).apply_periodic_settings(
        names["slug"], settings(reset_raw_usage=True)
    )
    assert again["commands_executed"] == []
    assert again["success"] is True
    assert again["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "already reset for period 2026-Q2",
    }


def test_threshold_qos_blocks_submissions_and_restore_keeps_it(
    names: dict[str, str], tmp_path: Path
) -> None:
    res = resource(**names, limits={})
    real_backend().create_resource_with_id(res, names["slug"])
    real_backend().add_users_to_resource(res, {USERS[2]})
    code, job = submit(USERS[2], names["slug"], "-n1", wrap="sleep 3")
    assert code == 0, job
    wait_finished([job])
    # A few CPU-minutes of this period are past a 1-minute threshold ("node": unweighted).
    result = periodic(tmp_path, threshold_qos=True).apply_periodic_settings(
        names["slug"],
        {"qos_threshold": {"node": 1}, "grace_limit": {"node": 1}},
    )
    assert result["success"] is True, result["error"]
    assert assoc_rows(names["slug"])[0][5:] == ["blocked", "blocked"]
    periodic(tmp_path, threshold_qos=True).restore_resource(names["slug"])
    assert assoc_rows(names["slug"])[0][5:] == ["blocked", "blocked"]
    submit_until(USERS[2], names["slug"], accepted=False)
