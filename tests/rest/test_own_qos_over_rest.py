"""A QoS per allocation (``qos_management``) in REST mode on the real slurmrestd 24.11.

The behaviours of tests/real/test_own_qos_on_real_slurm.py made over slurmrestd and
checked through sacctmgr, squeue and sbatch; and the same sequence in both modes ending
with the same QoS and associations in SLURM.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.diagnosing import diagnose, failed, fix, view_of
from tests.rest.conftest import USERS, Backends, RestStack
from tests.rest.test_backend_over_rest import submitted
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.rest

QOS_FIELDS = "Name,Flags,GrpTRES,MaxJobs,MaxSubmit,MaxWall,MinTRES,GrpTRESMins,Description"


def managed(**options: Any) -> dict[str, Any]:
    return {"qos_management": {"enabled": True, "skip_qos_swap": True, **options}}


def qos_row(stack: RestStack, name: str) -> list[str] | None:
    out = stack.run(
        "sacctmgr", "-P", "-n", "show", "qos", "where", f"name={name}", "format=" + QOS_FIELDS
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return rows[0] if rows else None


@pytest.fixture
def own(rest_stack: RestStack, names: dict[str, str]) -> Iterator[dict[str, str]]:
    """The test's slugs; its allocation QoS is removed after the accounts (``names``)."""
    yield names
    rest_stack.run("scancel", f"--account={names['slug']}")
    for _ in range(10):
        rest_stack.run("sacctmgr", "-i", "delete", "account", "where", f"name={names['slug']}")
        rest_stack.run("sacctmgr", "-i", "delete", "qos", names["slug"])
        if qos_row(rest_stack, names["slug"]) is None:
            break
        time.sleep(2)


@pytest.fixture(scope="module")
def boost(rest_stack: RestStack) -> str:
    """A QoS granted beside an allocation's own (created once, shared, never removed)."""
    rest_stack.run("sacctmgr", "-i", "add", "qos", "boost")
    return "boost"


def squeue(stack: RestStack, job: str, *, pending_reason: bool, timeout: float = 280) -> str:
    """The job's state once it left PENDING, or its QoS reason once it has one."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = stack.run("squeue", "-h", "-j", job, "-o", "%T|%r").stdout.strip()
        state, _, reason = out.partition("|")
        if pending_reason and state == "PENDING" and reason.startswith("QOS"):
            return reason
        if not pending_reason and state != "PENDING":
            return state
        time.sleep(1)
    return out


def test_create_over_rest_makes_the_qos_and_max_jobs_one_runs_one_at_a_time(
    backends: Backends, own: dict[str, str]
) -> None:
    slug = own["slug"]
    settings = managed(max_jobs=1, max_wall="02:00:00", grp_tres={"cpu": 4})
    res = resource(**own, limits={})
    backends.rest(**settings).create_resource_with_id(res, slug)
    row = [slug, "DenyOnLimit,NoDecay", "cpu=4", "1", "", "02:00:00", "", "", slug]
    assert qos_row(backends.stack, slug) == row
    account = backends.assoc_rows(slug, "QOS,DefaultQOS")[""]
    assert (sorted(account[0].split(",")), account[1]) == (["normal", slug], slug)
    backends.rest(**settings).add_users_to_resource(res, {USERS[0]})
    assert submitted(backends, slug, accepted=True)  # slurmctld knows the QoS
    first = backends.submit(USERS[0], slug, "-n1", wrap="sleep 120")
    assert squeue(backends.stack, first, pending_reason=False) == "RUNNING"
    second = backends.submit(USERS[0], slug, "-n1", wrap="sleep 120")
    assert squeue(backends.stack, second, pending_reason=True) == "QOSMaxJobsPerUserLimit"
    backends.stack.run("scancel", first, second)


def test_pause_with_skip_qos_swap_over_rest_refuses_sbatch_and_restore_accepts_it(
    backends: Backends, own: dict[str, str]
) -> None:
    slug = own["slug"]
    res = resource(**own, limits={})
    backends.rest(**managed()).create_resource_with_id(res, slug)
    backends.rest(**managed()).add_users_to_resource(res, {USERS[0]})
    assert backends.rest(**managed()).pause_resource(slug) is True
    assert backends.assoc_rows(slug, "GrpSubmitJobs,DefaultQOS")[""] == ["0", slug]
    assert submitted(backends, slug, accepted=False)
    assert backends.rest(**managed()).restore_resource(slug) is True
    assert backends.assoc_rows(slug, "GrpSubmitJobs,DefaultQOS")[""] == ["", slug]
    assert submitted(backends, slug, accepted=True)


def test_pause_by_swapping_over_rest_refuses_sbatch_and_restore_brings_back_the_own_qos(
    backends: Backends, own: dict[str, str], boost: str
) -> None:
    slug = own["slug"]
    swap = {"qos_management": {"enabled": True, "additional_qos": [boost]}}
    res = resource(**own, limits={})
    backends.rest(**swap).create_resource_with_id(res, slug)
    backends.rest(**swap).add_users_to_resource(res, {USERS[1]})
    assert backends.rest(**swap).pause_resource(slug) is True
    assert backends.assoc_rows(slug, "QOS,DefaultQOS")[""] == ["blocked", "blocked"]
    assert submitted(backends, slug, accepted=False, user=USERS[1])
    assert backends.rest(**swap).restore_resource(slug) is True
    account = backends.assoc_rows(slug, "QOS,DefaultQOS")[""]
    assert (sorted(account[0].split(",")), account[1]) == (sorted([slug, boost]), slug)
    assert submitted(backends, slug, accepted=True, user=USERS[1])
    # The diagnostic agrees, and puts a paused allocation back on its level with --fix.
    assert diagnose(backends.rest(**swap), view_of(res, (USERS[1],))).status == "OK"
    found = diagnose(backends.rest(**swap), view_of(res, (USERS[1],), paused=True))
    assert failed(found) == {"qos": (slug, "blocked")}
    fix(backends.rest(**swap), found)
    assert backends.assoc_rows(slug, "QOS,DefaultQOS")[""] == ["blocked", "blocked"]


def test_limits_on_the_qos_over_rest_are_written_read_back_and_reset_there(
    backends: Backends, own: dict[str, str], tmp_path: Path
) -> None:
    slug = own["slug"]
    on_qos = managed(apply_limits_to_qos=True)
    res = resource(**own, limits={"cpu": 10})
    backends.rest(**on_qos).create_resource_with_id(res, slug)

    def qos_limits() -> str:
        return (qos_row(backends.stack, slug) or [""] * 8)[7]

    assert qos_limits() == "cpu=10"
    assert backends.assoc_rows(slug, "GrpTRESMins")[""] == [""]
    backends.rest(**on_qos).set_resource_limits(slug, {"cpu": 20})
    assert qos_limits() == "cpu=20"
    assert backends.rest(**on_qos).get_resource_limits(slug) == {"cpu": 20}
    periodic = {"enabled": True, "state_dir": str(tmp_path)}
    message = {
        "limit_type": "GrpTRESMins",
        "grp_tres_mins": {"cpu": 1800},  # 30 Waldur units × 60; cpu's unit is a CPU-minute
        "reset_raw_usage": True,
        "carryover_details": {"carryover_applied": True, "previous_period": "2026-Q1"},
    }
    result = backends.rest(**on_qos, periodic_limits=periodic).apply_periodic_settings(
        slug, message
    )
    assert result["success"] is True, result["error"]
    assert qos_limits() == "cpu=30"
    cluster = backends.stack.cluster
    assert result["commands_executed"][-1] == (
        f"sacctmgr --immediate modify qos {slug} cluster={cluster} set RawUsage=0"
    )
    # The update kept the QoS's flags (slurmrestd clears flags an update leaves out).
    assert (qos_row(backends.stack, slug) or ["", ""])[1] == "DenyOnLimit,NoDecay"
    found = diagnose(backends.rest(**on_qos), view_of(res))
    assert failed(found) == {"GrpTRESMins[cpu]": ("30", "10")}
    fix(backends.rest(**on_qos), found)
    assert qos_limits() == "cpu=10"


@pytest.mark.parametrize("mode", ["cli", "rest"])
def test_the_own_qos_sequence_ends_the_same_in_both_modes(
    backends: Backends, own: dict[str, str], boost: str, mode: str
) -> None:
    # Create, re-run with other options (corrected), a changed QoS and a detached account
    # found and fixed by the diagnostic, pause and restore by swapping, terminate: the
    # same QoS and associations in SLURM after each step, whichever mode made them.
    backend: Callable[..., SlurmBackend] = getattr(backends, mode)
    slug, stack = own["slug"], backends.stack
    first = {"qos_management": {"enabled": True, "max_jobs": 1, "additional_qos": [boost]}}
    second = {
        "qos_management": {
            "enabled": True,
            "flags": ["DenyOnLimit"],
            "max_jobs": 3,
            "max_submit": 6,
            "max_wall": 90,
            "grp_tres": {"cpu": 2, "gres/gpu": 1},
            "min_tres_per_job": "cpu=1",
            "additional_qos": [boost],
        }
    }
    res = resource(**own, limits={})
    backend(**first).create_resource_with_id(res, slug)
    backend(**first).add_users_to_resource(res, {USERS[1]})
    backend(**second).create_resource_with_id(res, slug)
    qos = [slug, "DenyOnLimit", "cpu=2,gres/gpu=1", "3", "6", "01:30:00", "cpu=1", "", slug]
    assert qos_row(stack, slug) == qos
    attached = {"": [f"{boost},normal,{slug}", slug], USERS[1]: [f"{boost},normal,{slug}", slug]}
    assert backends.assoc_rows(slug, "QOS,DefaultQOS") == attached

    stack.run("sacctmgr", "-i", "modify", "qos", "where", f"name={slug}", "set", "MaxJobs=7")
    stack.run("sacctmgr", "-i", "modify", "account", slug, "set", "QOS=normal", "DefaultQOS=normal")
    found = diagnose(backend(**second), view_of(res, (USERS[1],)))
    assert set(failed(found)) == {"own QoS", "qos"}
    fix(backend(**second), found)
    assert qos_row(stack, slug) == qos
    # The diagnostic and restore set the account's QoS list whole: the own and additional
    # QoS, without the parent's normal that QOS+= kept on creation.
    own_level = {"": [f"{boost},{slug}", slug], USERS[1]: [f"{boost},{slug}", slug]}
    assert backends.assoc_rows(slug, "QOS,DefaultQOS") == own_level

    assert backend(**second).pause_resource(slug) is True
    paused = backends.assoc_rows(slug, "QOS,DefaultQOS")
    assert paused == {"": ["blocked", "blocked"], USERS[1]: ["blocked", "blocked"]}
    assert backend(**second).restore_resource(slug) is True
    assert backends.assoc_rows(slug, "QOS,DefaultQOS") == own_level

    backend(**second).delete_resource(res)
    assert qos_row(stack, slug) is None
    assert backends.assoc_rows(slug, "QOS") == {}
