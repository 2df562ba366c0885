"""The client's writes on SLURM 22.05's and 24.11's real answers (``tests/data``).

Each call site keeps its meaning on both versions: an add of what exists is a no-op,
a delete of what is gone is a no-op, and a modify that matched nothing is an error.
"""

from __future__ import annotations

import pytest

from tests.captures import VERSIONS, load
from tests.fakes import FakeRunner
from waldur_site_agent_slurm.errors import SlurmCommandError, SlurmUnavailableError
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.client import SlurmClient

SI = ["sacctmgr", "--immediate"]


def answering(version: str, needle: str, name: str) -> FakeRunner:
    """A runner that answers commands containing ``needle`` as SLURM answered ``name``."""
    run = load(version, name)
    return FakeRunner(failures={needle: (run.exit, run.stdout, run.stderr)})


@pytest.mark.parametrize("version", VERSIONS)
def test_adding_an_existing_account_is_a_no_op(version: str) -> None:
    runner = answering(version, "add account", "sacctmgr_add_account_existing")
    client = SlurmClient(runner)
    assert client.add_account("hpc_tmp", "temporary", "cust1", "hpc_proj1") is False
    assert runner.calls == [
        [*SI, "add", "account", "hpc_tmp", "Description=temporary", "Organization=cust1",
         "Parent=hpc_proj1"]
    ]  # fmt: skip
    assert client.added_accounts == []


@pytest.mark.parametrize("version", VERSIONS)
def test_adding_an_account_under_a_missing_parent_names_the_cause(version: str) -> None:
    client = SlurmClient(
        answering(version, "add account", "sacctmgr_add_account_parent_nonexistent")
    )
    with pytest.raises(SlurmCommandError) as caught:
        client.add_account("hpc_tmp3", "d", "o", "hpc_nosuch")
    assert caught.value.answer is Answer.MISSING_PARENT
    assert "the parent account does not exist" in str(caught.value)
    assert "hpc_nosuch" in str(caught.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_adding_a_user_already_there_is_a_no_op(version: str) -> None:
    runner = answering(version, "add user", "sacctmgr_add_user_existing")
    SlurmClient(runner).add_users(["carol"], ["hpc_tmp"])
    assert runner.calls == [[*SI, "add", "user", "carol", "Account=hpc_tmp"]]


@pytest.mark.parametrize("version", VERSIONS)
def test_adding_a_user_to_a_missing_account_fails(version: str) -> None:
    client = SlurmClient(answering(version, "add user", "sacctmgr_add_user_account_nonexistent"))
    with pytest.raises(SlurmCommandError) as caught:
        client.add_users(["carol"], ["hpc_nosuch"])
    assert caught.value.answer is Answer.MISSING_ACCOUNT
    assert "the account does not exist" in str(caught.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_deleting_a_missing_account_is_a_no_op(version: str) -> None:
    runner = answering(version, "delete account", "sacctmgr_delete_account_nonexistent")
    SlurmClient(runner).remove_account("hpc_nosuch")
    assert runner.calls == [[*SI, "delete", "account", "where", "name=hpc_nosuch"]]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "name", ["sacctmgr_modify_account_nonexistent", "sacctmgr_modify_user_assoc_not_member"]
)
def test_a_modify_that_matched_nothing_is_an_error_not_already_set(version: str, name: str) -> None:
    client = SlurmClient(answering(version, "modify", name))
    with pytest.raises(SlurmCommandError) as caught:
        if "user" in name:
            client.modify_user("carol", "hpc_alloc1", {"MaxTRESMins": "cpu=60"})
        else:
            client.modify_account("hpc_nosuch", {"GrpTRESMins": "cpu=100"})
    assert caught.value.answer is Answer.NO_MATCH
    assert "no association matched" in str(caught.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_deleting_with_jobs_still_running_is_recognised(version: str) -> None:
    client = SlurmClient(
        answering(version, "delete user", "sacctmgr_delete_user_assoc_with_running_job")
    )
    with pytest.raises(SlurmCommandError) as caught:
        client.remove_user("alice", "hpc_tmp6")
    assert caught.value.answer is Answer.JOBS_ACTIVE


def test_a_modify_that_stored_a_wrong_value_and_exited_0_fails() -> None:
    runner = answering("24.11", "modify", "extra/sacctmgr_modify_account_bad_value")
    with pytest.raises(SlurmCommandError) as caught:
        SlurmClient(runner).modify_account("hpc_alloc1", {"GrpTRESMins": "cpu=abc"})
    assert caught.value.answer is Answer.FAILED
    assert caught.value.returncode == 0
    assert "Reported an error although it exited 0" in str(caught.value)
    assert "Invalid unit type" in str(caught.value)


@pytest.mark.parametrize(
    "name", ["extra/dbd_down_sacctmgr_modify_account", "extra/dbd_down_sacctmgr_add_account"]
)
def test_24_11_slurmdbd_down_makes_a_write_wait_for_slurm(name: str) -> None:
    client = SlurmClient(answering("24.11", "sacctmgr", name))
    with pytest.raises(SlurmUnavailableError):
        if "modify" in name:
            client.modify_account("hpc_alloc1", {"Fairshare": "60"})
        else:
            client.add_account("hpc_x", "d", "o", "hpc_proj1")
