"""Offering partitions and QoS enforcement: the associations users get and the pause lever.

Domain tier: the exact argv the backend runs, through the fake runner.
"""

from __future__ import annotations

from typing import Any

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.errors import SlurmCommandError

SI = ["sacctmgr", "--immediate"]
ALLOC = "alloc-1|||proj-1|1||||normal|normal"
SUBMIT_READ = "format=Account,User,GrpSubmitJobs"
ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
BOOST_GPU = {"attributes": {"qos": "boost", "partition": "gpu"}}


def answer(runner: FakeRunner, *rows: str, submit: str | None = None) -> None:
    """Answer ``show assoc`` with ``rows`` and the GrpSubmitJobs read with ``submit``."""
    outputs = {} if submit is None else {SUBMIT_READ: submit}
    runner.outputs = {**outputs, "show assoc": assoc_lines(*rows), "list tres": TRES_OUTPUT}


def backend_for(runner: FakeRunner, **settings: Any) -> SlurmBackend:
    return make_backend(runner, enable_user_homedir_account_creation=False, **settings)


# ---- the framework's attributes and qos_enforced() ------------------------------------------


def test_partition_enforcement_enabled_follows_enforce_offering_partitions(
    runner: FakeRunner,
) -> None:
    assert backend_for(runner, enforce_offering_partitions=True).partition_enforcement_enabled
    assert not backend_for(runner).partition_enforcement_enabled


def test_offering_enforce_qos_is_a_class_attribute_the_processor_can_find() -> None:
    # The framework sets it only when hasattr(backend, "offering_enforce_qos").
    assert hasattr(SlurmBackend, "offering_enforce_qos")


@pytest.mark.parametrize(
    ("settings", "offering", "expected"),
    [
        ({}, True, False),
        ({"qos_enforcement_enabled": True}, None, False),
        ({"qos_enforcement_enabled": True}, False, False),
        ({"qos_enforcement_enabled": True}, True, True),
        ({"qos_enforcement_enabled": True, "enforce_offering_qos": True}, None, True),
        ({"qos_enforcement_enabled": True, "enforce_offering_qos": False}, True, False),
        ({"enforce_offering_qos": True}, True, False),
    ],
)
def test_qos_enforced_combines_the_setting_and_the_offering_option(
    runner: FakeRunner, settings: dict[str, Any], offering: bool | None, expected: bool
) -> None:
    backend = backend_for(runner, **settings)
    backend.offering_enforce_qos = offering
    assert backend.qos_enforced() is expected


# ---- offering partitions --------------------------------------------------------------------


def test_offering_partitions_give_one_association_per_partition_in_one_command(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, enforce_offering_partitions=True)
    backend.offering_partitions = ["GPU", "cpu-long"]
    backend.add_users_to_resource(resource(), {"alice", "bob"})
    assert runner.writes == [
        [*SI, "add", "user", "alice,bob", "Account=alloc-1", "Partition=cpu-long,gpu"]
    ]


def test_offering_partitions_are_ignored_without_enforce_offering_partitions(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, default_partition="debug")
    backend.offering_partitions = ["gpu"]
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == [[*SI, "add", "user", "alice", "Account=alloc-1", "Partition=debug"]]


def test_default_partition_applies_when_the_offering_has_no_partitions(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, enforce_offering_partitions=True, default_partition="debug")
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == [[*SI, "add", "user", "alice", "Account=alloc-1", "Partition=debug"]]


def test_common_default_account_gets_the_same_partitions_in_the_same_command(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, enforce_offering_partitions=True, default_account="noaccess")
    backend.offering_partitions = ["cpu", "gpu"]
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == [
        [
            *SI,
            "add",
            "user",
            "alice",
            "Account=alloc-1,noaccess",
            "DefaultAccount=noaccess",
            "Partition=cpu,gpu",
        ]
    ]


def test_a_user_with_every_partition_association_is_present_and_not_readded(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC, "alloc-1|alice|cpu||1||||normal|", "alloc-1|alice|gpu||1||||normal|")
    backend = backend_for(runner, enforce_offering_partitions=True)
    backend.offering_partitions = ["cpu", "gpu"]
    assert backend.add_users_to_resource(resource(), {"alice"}) == {"alice"}
    backend.reconcile_existing_user_roles(resource(), {"alice"}, {}, {})
    assert backend.client.list_resource_users("alloc-1") == ["alice"]
    assert runner.writes == []


def test_an_existing_member_gets_only_the_partitions_it_lacks(runner: FakeRunner) -> None:
    answer(
        runner,
        ALLOC,
        "alloc-1|alice|cpu||1||||normal|",
        "alloc-1|bob|cpu||1||||normal|",
        "alloc-1|carol|cpu||1||||normal|",
        "alloc-1|carol|gpu||1||||normal|",
    )
    backend = backend_for(runner, enforce_offering_partitions=True)
    backend.offering_partitions = ["cpu", "gpu"]
    backend.reconcile_existing_user_roles(resource(), {"alice", "bob", "carol"}, {}, {})
    assert runner.writes == [[*SI, "add", "user", "alice,bob", "Account=alloc-1", "Partition=gpu"]]


def test_removing_a_partitioned_user_removes_every_association_with_the_allocation(
    runner: FakeRunner,
) -> None:
    answer(
        runner,
        ALLOC,
        "alloc-1|bob|cpu||1||||normal|",
        "alloc-1|bob|gpu||1||||normal|",
        "other|||proj-1|1||||normal|",
        "other|bob|||1||||normal|",
    )
    runner.outputs["list user"] = "bob|other\n"
    backend = backend_for(runner, enforce_offering_partitions=True)
    backend.offering_partitions = ["cpu", "gpu"]
    assert backend.remove_users_from_resource(resource(), {"bob"}) == ["bob"]
    # No partition in the where clause: every association of bob with alloc-1 goes.
    assert runner.writes[-1] == [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"]


@pytest.mark.parametrize("bad", ["gpu.big", "gpu,cpu", "gpu=1", "-gpu", "a b", ""])
def test_bad_offering_partition_is_refused_before_any_command(runner: FakeRunner, bad: str) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, enforce_offering_partitions=True)
    backend.offering_partitions = ["cpu", bad]
    with pytest.raises(BackendError, match="offering partition"):
        backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == []


# ---- QoS enforcement: grants --------------------------------------------------------------


def test_enforced_qos_grant_puts_users_on_the_resource_partition_and_qos(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, **ENFORCED)
    backend.add_users_to_resource(resource(**BOOST_GPU), {"alice"})
    assert runner.writes == [
        [
            *SI,
            "add",
            "user",
            "alice",
            "Account=alloc-1",
            "Partition=gpu",
            "QOS=boost",
            "DefaultQOS=boost",
        ]
    ]


def test_offering_enforce_qos_switches_grants_on_when_the_setting_is_unset(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, qos_enforcement_enabled=True)
    backend.offering_enforce_qos = True
    backend.add_users_to_resource(resource(**BOOST_GPU), {"alice"})
    assert runner.writes[0][-3:] == ["Partition=gpu", "QOS=boost", "DefaultQOS=boost"]


def test_without_enforcement_resource_attributes_are_not_granted(runner: FakeRunner) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, qos_enforcement_enabled=True)
    backend.offering_enforce_qos = False
    backend.add_users_to_resource(resource(**BOOST_GPU), {"alice"})
    assert runner.writes == [[*SI, "add", "user", "alice", "Account=alloc-1"]]


def test_enforced_qos_with_unset_attributes_adds_a_plain_association(runner: FakeRunner) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, **ENFORCED)
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == [[*SI, "add", "user", "alice", "Account=alloc-1"]]


def test_enforced_qos_keeps_the_common_default_account_off_the_resource_qos(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, default_account="noaccess", **ENFORCED)
    backend.add_users_to_resource(resource(**BOOST_GPU), {"alice"})
    assert runner.writes == [
        [
            *SI,
            "add",
            "user",
            "alice",
            "Account=noaccess",
            "DefaultAccount=noaccess",
            "Partition=gpu",
        ],
        [
            *SI,
            "add",
            "user",
            "alice",
            "Account=alloc-1",
            "Partition=gpu",
            "QOS=boost",
            "DefaultQOS=boost",
        ],
    ]


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"qos": "boost,normal"}, "resource attribute qos"),
        ({"qos": "boost DefaultQOS=x"}, "resource attribute qos"),
        ({"qos": "boost", "partition": "gpu,debug"}, "resource attribute partition"),
        ({"qos": "boost", "partition": "-gpu"}, "resource attribute partition"),
    ],
)
def test_bad_resource_qos_or_partition_is_refused_before_any_command(
    runner: FakeRunner, attributes: dict[str, str], field: str
) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, **ENFORCED)
    with pytest.raises(BackendError, match=field):
        backend.add_users_to_resource(resource(attributes=attributes), {"alice"})
    assert runner.writes == []


# ---- QoS enforcement: the pause lever -------------------------------------------------------


def test_enforced_pause_writes_grp_submit_jobs_zero_and_leaves_qos(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||\n")
    backend = backend_for(runner, **ENFORCED)
    assert backend.pause_resource("alloc-1")
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpSubmitJobs=0"]
    ]


def test_enforced_downscale_writes_grp_submit_jobs_zero(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||\n")
    backend = backend_for(runner, **ENFORCED)
    backend.downscale_resource("alloc-1")
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpSubmitJobs=0"]
    ]


def test_enforced_restore_clears_grp_submit_jobs(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||0\n")
    backend = backend_for(runner, **ENFORCED)
    assert backend.restore_resource("alloc-1")
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpSubmitJobs=-1"]
    ]


@pytest.mark.parametrize(
    ("action", "submit"),
    [("pause_resource", "0"), ("downscale_resource", "0"), ("restore_resource", "")],
)
def test_enforced_lever_already_in_place_writes_nothing(
    runner: FakeRunner, action: str, submit: str
) -> None:
    answer(runner, ALLOC, "alloc-1|alice|||1||||normal|", submit=f"alloc-1||{submit}\n")
    backend = backend_for(runner, **ENFORCED)
    getattr(backend, action)("alloc-1")
    assert runner.writes == []


def test_a_lever_another_process_set_meanwhile_is_success(runner: FakeRunner) -> None:
    # membership_sync read no limit, event_process then paused the account: sacctmgr
    # answers "Nothing modified" (exit 1), and a fresh read finds the account paused.
    answer(runner, ALLOC, submit="alloc-1||0\n")
    runner.failures_once = {
        SUBMIT_READ: (0, "alloc-1||\n", ""),
        "GrpSubmitJobs=0": (1, " Nothing modified\n", ""),
    }
    assert backend_for(runner, **ENFORCED).pause_resource("alloc-1")
    assert len([c for c in runner.calls if SUBMIT_READ in c]) == 2


def test_nothing_modified_with_the_lever_still_off_is_written_once_more(
    runner: FakeRunner,
) -> None:
    answer(runner, ALLOC, submit="alloc-1||\n")
    runner.failures_once = {"GrpSubmitJobs=0": (1, " Nothing modified\n", "")}
    assert backend_for(runner, **ENFORCED).pause_resource("alloc-1")
    assert [w[-1] for w in runner.writes] == ["GrpSubmitJobs=0", "GrpSubmitJobs=0"]


def test_nothing_modified_twice_with_the_lever_still_off_is_an_error(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||\n")
    runner.failures = {"GrpSubmitJobs=0": (1, " Nothing modified\n", "")}
    with pytest.raises(SlurmCommandError, match="no association matched"):
        backend_for(runner, **ENFORCED).pause_resource("alloc-1")
    assert len(runner.writes) == 2


def test_enforced_metadata_reports_qos_and_the_lever(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||0\n")
    backend = backend_for(runner, **ENFORCED)
    assert backend.get_resource_metadata("alloc-1") == {"qos": "normal", "grp_submit_jobs": 0}
    answer(runner, ALLOC, submit="alloc-1||\n")
    backend = backend_for(runner, **ENFORCED)
    assert backend.get_resource_metadata("alloc-1") == {"qos": "normal", "grp_submit_jobs": None}


def test_cluster_name_scopes_the_grp_submit_jobs_read(runner: FakeRunner) -> None:
    answer(runner, ALLOC, submit="alloc-1||\n")
    backend = backend_for(runner, cluster_name="hpc", **ENFORCED)
    backend.pause_resource("alloc-1")
    reads = [c for c in runner.calls if SUBMIT_READ in c]
    assert reads == [
        [
            "sacctmgr",
            "--parsable2",
            "--noheader",
            "show",
            "assoc",
            "where",
            "cluster=hpc",
            "WOPInfo",
            SUBMIT_READ,
        ]
    ]
    assert runner.writes[-1][-1] == "GrpSubmitJobs=0"


def test_without_enforcement_pause_still_swaps_the_qos(runner: FakeRunner) -> None:
    answer(runner, ALLOC)
    backend = backend_for(runner, qos_enforcement_enabled=True, enforce_offering_qos=False)
    backend.pause_resource("alloc-1")
    assert runner.writes == [
        [
            *SI,
            "modify",
            "account",
            "where",
            "name=alloc-1",
            "set",
            "QOS=blocked",
            "DefaultQOS=blocked",
        ]
    ]
