"""Offering partitions and QoS enforcement against slurm-emulator's sacctmgr."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.conftest import add_qos, emulator_backend, sacctmgr
from tests.test_backend_commands import resource

pytestmark = pytest.mark.emulator

ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
BOOST_GPU = {"attributes": {"qos": "boost", "partition": "gpu"}}


def user_assocs(account: str) -> set[tuple[str, str, str, str]]:
    """(user, partition, QOS, DefaultQOS) of every user association of ``account``."""
    out = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,Partition,QOS,DefaultQOS")
    rows = [line.split("|") for line in out.splitlines() if line]
    return {(r[1], r[2], r[3], r[4]) for r in rows if r[0] == account and r[1]}


def submit_limit(account: str) -> str:
    out = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,GrpSubmitJobs")
    rows = [line.split("|") for line in out.splitlines() if line]
    return next(r[2] for r in rows if r[0] == account and not r[1])


def qos_of(account: str) -> tuple[str, str]:
    out = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,QOS,DefaultQOS")
    rows = [line.split("|") for line in out.splitlines() if line]
    return next((r[2], r[3]) for r in rows if r[0] == account and not r[1])


def test_offering_partitions_give_each_user_one_association_per_partition(
    emulator: Path,
) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    backend = emulator_backend(enforce_offering_partitions=True)
    backend.offering_partitions = ["CPU", "gpu"]
    backend.add_users_to_resource(res, {"alice", "bob"})
    assert user_assocs("alloc-1") == {
        (user, part, "normal", "") for user in ("alice", "bob") for part in ("cpu", "gpu")
    }


def test_partitioned_members_are_steady_and_removal_takes_every_association(
    emulator: Path,
) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    first = emulator_backend(enforce_offering_partitions=True)
    first.offering_partitions = ["cpu", "gpu"]
    first.add_users_to_resource(res, {"alice", "bob"})
    before = user_assocs("alloc-1")
    again = emulator_backend(enforce_offering_partitions=True)
    again.offering_partitions = ["cpu", "gpu"]
    assert again.client.list_resource_users("alloc-1") == ["alice", "bob"]
    again.add_users_to_resource(res, set())
    again.reconcile_existing_user_roles(res, {"alice", "bob"}, {}, {})
    assert user_assocs("alloc-1") == before
    emulator_backend().remove_users_from_resource(res, {"bob"})
    assert {row[0] for row in user_assocs("alloc-1")} == {"alice"}


def test_a_partition_added_to_the_offering_reaches_existing_members(emulator: Path) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    first = emulator_backend(enforce_offering_partitions=True)
    first.offering_partitions = ["cpu"]
    first.add_users_to_resource(res, {"alice"})
    later = emulator_backend(enforce_offering_partitions=True)
    later.offering_partitions = ["cpu", "gpu"]
    later.reconcile_existing_user_roles(res, {"alice"}, {}, {})
    assert {row[1] for row in user_assocs("alloc-1")} == {"cpu", "gpu"}


def test_enforced_grant_puts_users_on_the_resource_partition_with_its_qos(
    emulator: Path,
) -> None:
    add_qos("boost")
    res = resource(**BOOST_GPU)
    emulator_backend().create_resource_with_id(res, "alloc-1")
    emulator_backend(**ENFORCED).add_users_to_resource(res, {"alice"})
    assert user_assocs("alloc-1") == {("alice", "gpu", "boost", "boost")}


def test_enforced_pause_and_restore_use_grp_submit_jobs_and_leave_qos(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    emulator_backend(**ENFORCED).pause_resource("alloc-1")
    assert submit_limit("alloc-1") == "0"
    assert qos_of("alloc-1") == ("normal", "")
    assert emulator_backend(**ENFORCED).get_resource_metadata("alloc-1") == {
        "qos": "normal",
        "grp_submit_jobs": 0,
    }
    emulator_backend(**ENFORCED).downscale_resource("alloc-1")
    assert submit_limit("alloc-1") == "0"
    emulator_backend(**ENFORCED).restore_resource("alloc-1")
    assert submit_limit("alloc-1") == ""
    assert qos_of("alloc-1") == ("normal", "")
    assert emulator_backend(**ENFORCED).get_resource_metadata("alloc-1") == {
        "qos": "normal",
        "grp_submit_jobs": None,
    }
