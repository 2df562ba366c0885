"""A QoS per allocation (``qos_management``) on the real SLURM, down to sbatch and squeue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.diagnosing import diagnose, failed, fix, view_of
from tests.real.conftest import (
    USERS,
    assoc_rows,
    real_backend,
    run,
    stack,
    submit,
    submit_until,
)
from tests.test_backend_commands import resource

pytestmark = pytest.mark.real_slurm

QOS_FIELDS = "Name,Flags,GrpTRES,MaxJobs,MaxSubmit,MaxWall,MinTRES"


def managed(**options: Any) -> dict[str, Any]:
    block = {"enabled": True, "skip_qos_swap": True, **options}
    return {"qos_management": block}


def qos_row(name: str) -> list[str] | None:
    out = run(
        "sacctmgr", "-P", "-n", "show", "qos", "where", f"name={name}", "format=" + QOS_FIELDS
    )
    rows = [line.split("|") for line in out.stdout.splitlines() if line]
    return rows[0] if rows else None


@pytest.fixture
def own(names: dict[str, str]) -> Iterator[dict[str, str]]:
    """The test's slugs; its allocation QoS is removed after the accounts."""
    yield names
    run("scancel", f"--account={names['slug']}", check=False)
    run("sacctmgr", "-i", "delete", "user", "where", f"account={names['slug']}", check=False)
    for _ in range(10):
        run("sacctmgr", "-i", "delete", "account", "where", f"name={names['slug']}", check=False)
        if run("sacctmgr", "-i", "delete", "qos", f"{names['slug']}", check=False).returncode == 0:
            break
        if qos_row(names["slug"]) is None:
            break
        time.sleep(2)


def submitted(user: str, account: str) -> str:
    code, job = submit(user, account, "-n1", wrap="sleep 120")
    assert code == 0, job
    return job


def job_state(job: str, timeout: float = 280) -> str:
    """The job's state once it left PENDING (or PENDING after ``timeout``).

    Other tests share the node, so a job may wait for their jobs (5 minutes at most).
    """
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = run("squeue", "-h", "-j", job, "-o", "%T", check=False).stdout.strip()
        if state != "PENDING":
            return state
        time.sleep(1)
    return state


def pending_reason(job: str, timeout: float = 60) -> str:
    """The reason squeue gives for a pending job, once the scheduler has given one."""
    deadline = time.monotonic() + timeout
    reason = ""
    while time.monotonic() < deadline:
        out = run("squeue", "-h", "-j", job, "-o", "%T|%r", check=False).stdout.strip()
        state, _, reason = out.partition("|")
        if state == "PENDING" and reason.startswith("QOS"):
            return reason
        time.sleep(1)
    return reason


def test_create_makes_the_allocation_qos_and_max_jobs_one_runs_one_at_a_time(
    own: dict[str, str],
) -> None:
    slug = own["slug"]
    settings = managed(max_jobs=1, max_wall="02:00:00", grp_tres={"cpu": 4})
    res = resource(**own, limits={})
    real_backend(**settings).create_resource_with_id(res, slug)
    assert qos_row(slug) == [slug, "DenyOnLimit,NoDecay", "cpu=4", "1", "", "02:00:00", ""]
    account = [row for row in assoc_rows(slug, "User,QOS,DefaultQOS") if not row[0]]
    assert slug in account[0][1].split(",")
    assert account[0][2] == slug
    real_backend(**settings).add_users_to_resource(res, {USERS[0]})
    run("scancel", submit_until(USERS[0], slug, accepted=True), check=False)  # slurmctld knows
    first = submitted(USERS[0], slug)
    assert job_state(first) == "RUNNING"
    second = submitted(USERS[0], slug)
    assert pending_reason(second) == "QOSMaxJobsPerUserLimit"
    run("scancel", first, second, check=False)


def test_pause_with_skip_qos_swap_refuses_sbatch_and_restore_accepts_it(
    own: dict[str, str],
) -> None:
    slug = own["slug"]
    res = resource(**own, limits={})
    backend = real_backend(**managed())
    backend.create_resource_with_id(res, slug)
    backend.add_users_to_resource(res, {USERS[1]})
    assert real_backend(**managed()).pause_resource(slug) is True
    assert ["", "0", slug] in assoc_rows(slug, "User,GrpSubmitJobs,DefaultQOS")
    submit_until(USERS[1], slug, accepted=False)
    assert real_backend(**managed()).restore_resource(slug) is True
    assert ["", "", slug] in assoc_rows(slug, "User,GrpSubmitJobs,DefaultQOS")
    job = submit_until(USERS[1], slug, accepted=True)
    run("scancel", job, check=False)


def test_rerun_corrects_the_qos_and_terminate_removes_it(own: dict[str, str]) -> None:
    slug = own["slug"]
    res = resource(**own, limits={})
    real_backend(**managed(max_jobs=1)).create_resource_with_id(res, slug)
    real_backend(**managed(max_jobs=3, flags=["DenyOnLimit"])).create_resource_with_id(res, slug)
    assert qos_row(slug) == [slug, "DenyOnLimit", "", "3", "", "", ""]
    real_backend(**managed()).delete_resource(res)
    assert qos_row(slug) is None
    assert assoc_rows(slug) == []


def test_diagnostic_finds_a_changed_qos_and_a_detached_account_and_fix_restores_them(
    own: dict[str, str],
) -> None:
    slug = own["slug"]
    settings = managed(max_jobs=2, max_wall=90)
    res = resource(**own, limits={})
    backend = real_backend(**settings)
    backend.create_resource_with_id(res, slug)
    run("sacctmgr", "-i", "modify", "qos", "where", f"name={slug}", "set", "MaxJobs=7")
    run("sacctmgr", "-i", "modify", "account", "where", f"name={slug}", "set", "DefaultQOS=normal")
    found = diagnose(real_backend(**settings), view_of(res))
    assert set(failed(found)) == {"own QoS", "QoS attached"}
    fix(real_backend(**settings), found)
    again = diagnose(real_backend(**settings), view_of(res))
    assert again.status == "OK", failed(again)
    assert qos_row(slug) == [slug, "DenyOnLimit,NoDecay", "", "2", "", "01:30:00", ""]


# ---- QoS swapped (no skip_qos_swap), limits on the QoS (apply_limits_to_qos) -------------


def test_pause_by_swapping_refuses_sbatch_and_restore_brings_back_the_own_qos(
    own: dict[str, str], boost: str
) -> None:
    slug = own["slug"]
    swap = {"qos_management": {"enabled": True, "additional_qos": [boost]}}
    res = resource(**own, limits={})
    backend = real_backend(**swap)
    backend.create_resource_with_id(res, slug)
    backend.add_users_to_resource(res, {USERS[2]})
    assert real_backend(**swap).pause_resource(slug) is True
    assert ["", "blocked", "blocked"] in assoc_rows(slug, "User,QOS,DefaultQOS")
    submit_until(USERS[2], slug, accepted=False)
    assert real_backend(**swap).restore_resource(slug) is True
    account = next(row for row in assoc_rows(slug, "User,QOS,DefaultQOS") if not row[0])
    assert (sorted(account[1].split(",")), account[2]) == (sorted([slug, "boost"]), slug)
    run("scancel", submit_until(USERS[2], slug, accepted=True), check=False)
    # The diagnostic agrees, and puts a paused allocation back on its QoS list with --fix.
    assert diagnose(real_backend(**swap), view_of(res, (USERS[2],))).status == "OK"
    found = diagnose(real_backend(**swap), view_of(res, (USERS[2],), paused=True))
    assert failed(found) == {"qos": (slug, "blocked")}
    fix(real_backend(**swap), found)
    assert ["", "blocked", "blocked"] in assoc_rows(slug, "User,QOS,DefaultQOS")


def test_limits_on_the_qos_are_written_read_back_and_reset_there(
    own: dict[str, str], tmp_path: Path
) -> None:
    slug = own["slug"]
    on_qos = managed(apply_limits_to_qos=True)
    res = resource(**own, limits={"cpu": 10})
    real_backend(**on_qos).create_resource_with_id(res, slug)

    def qos_limits() -> str:
        out = run("sacctmgr", "-P", "-n", "show", "qos", f"name={slug}", "format=GrpTRESMins")
        return out.stdout.strip()

    assert qos_limits() == "cpu=10"
    assert [row for row in assoc_rows(slug, "User,GrpTRESMins") if not row[0]] == [["", ""]]
    real_backend(**on_qos).set_resource_limits(slug, {"cpu": 20})
    assert qos_limits() == "cpu=20"
    assert real_backend(**on_qos).get_resource_limits(slug) == {"cpu": 20}
    periodic = {"enabled": True, "state_dir": str(tmp_path)}
    message = {
        "limit_type": "GrpTRESMins",
        "grp_tres_mins": {"cpu": 1800},  # 30 Waldur units × 60; cpu's unit is a CPU-minute
        "reset_raw_usage": True,
        "carryover_details": {"carryover_applied": True, "previous_period": "2026-Q1"},
    }
    result = real_backend(**on_qos, periodic_limits=periodic).apply_periodic_settings(slug, message)
    assert result["success"] is True, result["error"]
    assert qos_limits() == "cpu=30"
    assert result["commands_executed"][-1].endswith(
        f"modify qos {slug} cluster={stack().cluster} set RawUsage=0"
    )
    found = diagnose(real_backend(**on_qos), view_of(res))
    assert failed(found) == {"GrpTRESMins[cpu]": ("30", "10")}
    fix(real_backend(**on_qos), found)
    assert qos_limits() == "cpu=10"
