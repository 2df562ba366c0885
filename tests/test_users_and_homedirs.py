"""Domain tests: user removal, active jobs, home directories and the report cycle's read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from waldur_api_client.models.offering_user import OfferingUser
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError
from waldur_site_agent.backend.structures import BackendResourceInfo

from tests.conftest import make_backend
from tests.fakes import FakeRunner, assoc_lines
from waldur_site_agent_slurm.slurm.client import SlurmClient

SI = ["sacctmgr", "--immediate"]
SQUEUE = ["squeue", "--noheader", "--format=%i", "--states=PENDING,RUNNING,SUSPENDED"]
MKHOMEDIR = "/sbin/mkhomedir_helper"


def resource(backend_id: str = "alloc-1") -> Resource:
    return Resource.from_dict(
        {"uuid": "3f2b0c7e1d2a4b6c9f000123456789ab", "backend_id": backend_id, "name": "A"}
    )


def offering_user(username: str, state: str = "OK") -> OfferingUser:
    user_uuid = f"{sum(map(ord, username)):032x}"
    return OfferingUser.from_dict({"username": username, "state": state, "user_uuid": user_uuid})


def squeue_calls(runner: FakeRunner) -> list[list[str]]:
    return [c for c in runner.calls if c[0] == "squeue"]


# ---- nothing to do ------------------------------------------------------------------


def test_removing_no_users_runs_no_command(runner: FakeRunner) -> None:
    backend = make_backend(runner)
    assert backend.remove_users_from_resource(resource(), set()) == []
    assert runner.calls == []


# ---- active jobs --------------------------------------------------------------------


def test_active_jobs_of_a_user_are_listed_with_squeue(runner: FakeRunner) -> None:
    runner.outputs["squeue"] = "12\n13_4\n"
    backend = make_backend(runner, cluster_name="hpc")
    assert backend.list_active_user_jobs("alloc-1", "bob") == ["12", "13_4"]
    assert runner.calls == [[*SQUEUE, "--account=alloc-1", "--user=bob", "--clusters=hpc"]]


def test_active_jobs_on_the_emulator_come_from_sacct_states(runner: FakeRunner) -> None:
    runner.outputs["sacct"] = "5|RUNNING\n6|COMPLETED\n7|PENDING\n8|CANCELLED by 0\n9|SUSPENDED\n"
    client = SlurmClient(runner, active_jobs_from_sacct=True)
    assert client.active_jobs("alloc-1", "bob") == ["5", "7", "9"]
    assert runner.calls == [
        [
            "sacct",
            "--parsable2",
            "--noheader",
            "--allusers",
            "--allocations",
            "--accounts=alloc-1",
            "--user=bob",
            "--format=JobID,State",
        ]
    ]


def test_cancelling_a_user_without_active_jobs_runs_no_scancel(runner: FakeRunner) -> None:
    make_backend(runner).cancel_active_jobs_for_account_user("alloc-1", "bob")
    assert runner.writes == []
    assert runner.calls == [[*SQUEUE, "--account=alloc-1", "--user=bob"]]


def test_cancelling_a_user_with_active_jobs_scancels_by_user_and_account(
    runner: FakeRunner,
) -> None:
    runner.outputs["squeue"] = "77\n"
    make_backend(runner).cancel_active_jobs_for_account_user("alloc-1", "bob")
    assert runner.writes == [["scancel", "--account=alloc-1", "--user=bob"]]


@pytest.mark.parametrize(("account", "user"), [("alloc 1", "bob"), ("alloc-1", "bob;id")])
def test_bad_account_or_user_for_jobs_is_refused_before_any_command(
    runner: FakeRunner, account: str, user: str
) -> None:
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="Invalid"):
        backend.list_active_user_jobs(account, user)
    with pytest.raises(BackendError, match="Invalid"):
        backend.cancel_active_jobs_for_account_user(account, user)
    assert runner.calls == []


def test_user_removal_cancels_the_users_jobs_before_removing_the_association(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|",
        "alloc-1|bob|||1||||normal|",
        "alloc-2|||proj-1|1||||normal|",
        "alloc-2|bob|||1||||normal|",
    )
    runner.outputs["list user"] = "bob|alloc-2\n"
    runner.outputs["squeue"] = "31\n"
    make_backend(runner).remove_users_from_resource(resource(), {"bob"})
    assert squeue_calls(runner) == [[*SQUEUE, "--account=alloc-1", "--user=bob"]]
    assert runner.writes == [
        ["scancel", "--account=alloc-1", "--user=bob"],
        [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"],
    ]


# ---- the common default account's association ---------------------------------------

COMMON = assoc_lines(
    "alloc-1|||proj-1|1||||normal|",
    "alloc-1|bob|||1||||normal|",
    "common|||root|1||||normal|",
    "common|bob|||1||||normal|",
)


def test_user_leaving_last_allocation_loses_the_common_default_association(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = COMMON
    runner.outputs["list user"] = "bob|common\n"
    runner.outputs[" ".join([*SQUEUE, "--account=common"])] = "52\n"
    backend = make_backend(runner, default_account="common", default_account_policy="common")
    assert backend.remove_users_from_resource(resource(), {"bob"}) == ["bob"]
    assert squeue_calls(runner) == [
        [*SQUEUE, "--account=alloc-1", "--user=bob"],
        [*SQUEUE, "--account=common", "--user=bob"],
    ]
    # One association at a time, the default last: 22.05 refuses to delete a default
    # association while another of the user remains, even within the same command.
    assert runner.writes == [
        ["scancel", "--account=common", "--user=bob"],
        [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"],
        [*SI, "delete", "user", "where", "name=bob", "account=common"],
    ]


def test_keep_default_account_association_keeps_the_common_association(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = COMMON
    runner.outputs["list user"] = "bob|common\n"
    backend = make_backend(
        runner,
        default_account="common",
        default_account_policy="common",
        keep_default_account_association=True,
    )
    backend.remove_users_from_resource(resource(), {"bob"})
    assert runner.writes == [[*SI, "delete", "user", "where", "name=bob", "account=alloc-1"]]


def test_user_with_another_allocation_keeps_the_common_association(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = COMMON + assoc_lines(
        "alloc-2|||proj-1|1||||normal|", "alloc-2|bob|||1||||normal|"
    )
    runner.outputs["list user"] = "bob|common\n"
    backend = make_backend(runner, default_account="common", default_account_policy="common")
    backend.remove_users_from_resource(resource(), {"bob"})
    assert runner.writes == [[*SI, "delete", "user", "where", "name=bob", "account=alloc-1"]]


# ---- home directories ---------------------------------------------------------------


def homedir_backend(runner: FakeRunner, base: Path, **settings: Any) -> Any:
    return make_backend(runner, homedir_base_path=str(base), **settings)


def test_creation_makes_home_directories_of_ok_offering_users(
    runner: FakeRunner, tmp_path: Path
) -> None:
    (tmp_path / "carol").mkdir()
    context = {
        "offering_user_mappings": {
            "u1": offering_user("alice"),
            "u2": offering_user("bob", "Requested"),
            "u3": offering_user("carol"),
        }
    }
    backend = homedir_backend(runner, tmp_path, default_homedir_umask="0027")
    backend.post_create_resource(BackendResourceInfo(backend_id="alloc-1"), resource(), context)
    assert runner.calls == [[MKHOMEDIR, "alice", "0027"]]


def test_existing_members_get_missing_home_directories_only(
    runner: FakeRunner, tmp_path: Path
) -> None:
    (tmp_path / "carol").mkdir()
    homedir_backend(runner, tmp_path).process_existing_users({"alice", "carol"})
    assert runner.calls == [[MKHOMEDIR, "alice", "0077"]]


def test_existing_home_directory_gets_no_quota_command_again(
    runner: FakeRunner, tmp_path: Path
) -> None:
    (tmp_path / "carol").mkdir()
    quota = {"provider": "xfs", "mount_point": "/home", "block_hardlimit": "10g"}
    backend = homedir_backend(runner, tmp_path, homedir_quota=quota)
    backend.process_existing_users({"alice", "carol"})
    assert [c for c in runner.calls if "carol" in " ".join(c)] == []
    assert runner.calls[:2] == [
        [MKHOMEDIR, "alice", "0077"],
        ["xfs_quota", "-x", "-c", "limit -u bhard=10g alice", "/home"],
    ]


@pytest.mark.parametrize(
    "settings", [{"emulator_mode": True}, {"enable_user_homedir_account_creation": False}]
)
def test_no_home_directories_on_the_emulator_or_when_disabled(
    runner: FakeRunner, tmp_path: Path, settings: dict[str, Any]
) -> None:
    backend = homedir_backend(runner, tmp_path, **settings)
    backend.client = SlurmClient(runner)
    context = {"offering_user_mappings": {"u1": offering_user("alice")}}
    backend.post_create_resource(BackendResourceInfo(backend_id="alloc-1"), resource(), context)
    backend.process_existing_users({"alice"})
    assert runner.calls == []


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", "Alice"])
def test_bad_username_is_refused_before_any_home_directory_path(
    runner: FakeRunner, tmp_path: Path, name: str
) -> None:
    with pytest.raises(BackendError, match="Invalid username"):
        homedir_backend(runner, tmp_path).process_existing_users({name, "alice"})
    assert runner.calls == []


# ---- the report cycle's usage read ---------------------------------------------------


def test_pulling_resources_slurm_does_not_have_reads_no_usage(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("root||||1||||normal|")
    backend = make_backend(runner)
    assert backend.pull_resources([resource("alloc-1"), resource("alloc-2")]) == {}
    assert [c[0] for c in runner.calls] == ["sacctmgr"]


def pulled_tree(runner: FakeRunner) -> list[Resource]:
    """Two allocations and a project in SLURM, a job of alice's in alloc-2 this month."""
    runner.outputs["show assoc"] = assoc_lines(
        "proj-1|||root|1||||normal|",
        "alloc-1|||proj-1|1||||normal|",
        "alloc-2|||proj-1|1||||normal|",
        "proj-1|bob|||1||||normal|",
    )
    start = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin, end = (f"{start + timedelta(hours=h):%Y-%m-%dT%H:%M:%S}" for h in (1, 3))
    runner.outputs["sacct"] = f"7|alloc-2|alice|COMPLETED|{begin}|{end}|cpu=4\n"
    return [resource("alloc-1"), resource("alloc-2"), resource("proj-1")]


def test_a_membership_pull_reads_no_usage(runner: FakeRunner) -> None:
    pulled = make_backend(runner).pull_resources(pulled_tree(runner))
    assert sorted(pulled) == ["alloc-1", "alloc-2", "proj-1"]
    assert pulled["proj-1"][1].users == ["bob"]
    assert "usage=<not read>" in repr(pulled["proj-1"][1])  # a log line reads nothing
    assert [c[0] for c in runner.calls] == ["sacctmgr"]


def test_usage_asked_of_a_pull_is_read_once_for_all_and_equals_a_single_pull(
    runner: FakeRunner,
) -> None:
    resources = pulled_tree(runner)
    pulled = make_backend(runner).pull_resources(resources)
    usage = {name: pulled[name][1].usage for name in ("alloc-2", "alloc-1", "proj-1")}
    sacct = [c for c in runner.calls if c[0] == "sacct"]
    assert len(sacct) == 1
    assert "--accounts=alloc-1,alloc-2,proj-1" in sacct[0]
    assert usage["alloc-2"]["alice"]["cpu"] > 0
    # The same figures as the report cycle's pull of one resource, which reads at once.
    for res in resources:
        single = make_backend(runner).pull_resource(res)
        assert single is not None
        assert single.usage == usage[res.backend_id]
