"""Offering partitions and QoS enforcement on the real SLURM, down to sbatch."""

from __future__ import annotations

import pytest

from tests.real.conftest import USERS, assoc_rows, real_backend, run, submit_until, wait_finished
from tests.test_backend_commands import resource

pytestmark = pytest.mark.real_slurm

ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
FIELDS = "User,Partition,QOS,DefaultQOS"


@pytest.fixture
def boost() -> str:
    """The QoS resources grant in these tests (created once, shared, never removed)."""
    run("sacctmgr", "-i", "add", "qos", "boost", check=False)
    return "boost"


def user_assocs(account: str) -> set[tuple[str, ...]]:
    return {tuple(row) for row in assoc_rows(account, FIELDS) if row[0]}


def test_offering_partitions_give_one_association_per_partition(names: dict[str, str]) -> None:
    res = resource(**names, limits={})
    real_backend().create_resource_with_id(res, names["slug"])
    backend = real_backend(enforce_offering_partitions=True)
    backend.offering_partitions = ["Debug", "gpu"]
    backend.add_users_to_resource(res, {USERS[0]})
    assert user_assocs(names["slug"]) == {
        (USERS[0], "debug", "normal", ""),
        (USERS[0], "gpu", "normal", ""),
    }
    again = real_backend(enforce_offering_partitions=True)
    again.offering_partitions = ["Debug", "gpu"]
    assert again.client.list_resource_users(names["slug"]) == [USERS[0]]
    again.reconcile_existing_user_roles(res, {USERS[0]}, {}, {})
    assert len(user_assocs(names["slug"])) == 2
    real_backend().remove_users_from_resource(res, {USERS[0]})
    assert user_assocs(names["slug"]) == set()


def test_enforced_grant_is_the_resource_partition_with_its_qos_only(
    names: dict[str, str], boost: str
) -> None:
    res = resource(**names, limits={}, attributes={"qos": boost, "partition": "gpu"})
    real_backend().create_resource_with_id(res, names["slug"])
    real_backend(**ENFORCED).add_users_to_resource(res, {USERS[1]})
    assert user_assocs(names["slug"]) == {(USERS[1], "gpu", boost, boost)}


def test_enforced_pause_refuses_sbatch_and_restore_accepts_it_qos_untouched(
    names: dict[str, str], boost: str
) -> None:
    res = resource(**names, limits={}, attributes={"qos": boost, "partition": "debug"})
    real_backend().create_resource_with_id(res, names["slug"])
    real_backend(**ENFORCED).add_users_to_resource(res, {USERS[2]})
    real_backend(**ENFORCED).pause_resource(names["slug"])
    account = assoc_rows(names["slug"], "User,QOS,DefaultQOS,GrpSubmitJobs")
    assert ["", "normal", "", "0"] in account
    assert real_backend(**ENFORCED).get_resource_metadata(names["slug"]) == {
        "qos": "normal",
        "grp_submit_jobs": 0,
    }
    submit_until(USERS[2], names["slug"], accepted=False)
    real_backend(**ENFORCED).restore_resource(names["slug"])
    assert ["", "normal", "", ""] in assoc_rows(names["slug"], "User,QOS,DefaultQOS,GrpSubmitJobs")
    job = submit_until(USERS[2], names["slug"], accepted=True)
    wait_finished([job])
