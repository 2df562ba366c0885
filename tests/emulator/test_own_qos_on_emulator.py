"""A QoS per allocation (``qos_management``) through slurm-emulator's sacctmgr."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.conftest import assoc_rows, emulator_backend, sacctmgr
from tests.test_backend_commands import resource

pytestmark = pytest.mark.emulator

MANAGED = {
    "qos_management": {
        "enabled": True,
        "skip_qos_swap": True,
        "max_jobs": 2,
        "max_submit": 5,
        "max_wall": "1-00:00:00",
        "grp_tres": {"cpu": 16},
        "min_tres_per_job": "cpu=1",
    }
}
FIELDS = "format=Name,Flags,GrpTRES,MaxJobs,MaxSubmit,MaxWall,MinTRES"


def qos_rows() -> dict[str, list[str]]:
    out = sacctmgr("-P", "-n", "show", "qos", FIELDS)
    return {row[0]: row for row in (line.split("|") for line in out.splitlines() if line)}


def test_create_adds_the_qos_with_its_options_attached_and_terminate_removes_it(
    emulator: Path,
) -> None:
    res = resource(limits={})
    emulator_backend(**MANAGED).create_resource_with_id(res, "alloc-1")
    assert qos_rows()["alloc-1"] == [
        "alloc-1",
        "DenyOnLimit,NoDecay",
        "cpu=16",
        "2",
        "5",
        "1440",
        "cpu=1",
    ]
    account = next(row for row in assoc_rows() if row[0] == "alloc-1" and not row[1])
    assert "alloc-1" in account[5].split(",")
    assert account[6] == "alloc-1"
    # A second create with other options corrects the QoS and adopts the account.
    changed = {"qos_management": {**MANAGED["qos_management"], "max_jobs": 4}}
    emulator_backend(**changed).create_resource_with_id(res, "alloc-1")
    assert qos_rows()["alloc-1"][3] == "4"
    emulator_backend(**MANAGED).delete_resource(res)
    assert "alloc-1" not in qos_rows()
    assert not [row for row in assoc_rows() if row[0] == "alloc-1"]


def test_pause_and_restore_under_skip_qos_swap_move_grp_submit_jobs(emulator: Path) -> None:
    res = resource(limits={})
    emulator_backend(**MANAGED).create_resource_with_id(res, "alloc-1")
    assert emulator_backend(**MANAGED).pause_resource("alloc-1") is True
    rows = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,GrpSubmitJobs,DefaultQOS")
    assert "alloc-1||0|alloc-1" in rows.splitlines()
    assert emulator_backend(**MANAGED).restore_resource("alloc-1") is True
    rows = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,GrpSubmitJobs,DefaultQOS")
    assert "alloc-1|||alloc-1" in rows.splitlines()
