"""Removing users behaves the same on SLURM 22.05 and 24.11, which differ here.

Deleting the default association of a user who has others, 22.05 does it and leaves an
empty default account, 24.11 refuses; deleting an account that is a user's only
association, 22.05 drops the user, 24.11 keeps it with an empty default; with a job
running, 22.05 names the default account, 24.11 the jobs. The plugin removes a user who
leaves as a whole one association at a time, the default account last, and keeps a
default account for every user who stays, so the outcome does not depend on the
release. The fake answers with each release's captured texts (``tests/data``).
"""

from __future__ import annotations

import pytest
from waldur_api_client.models.resource import Resource

from tests.captures import VERSIONS, load
from tests.conftest import make_backend
from tests.fakes import FakeRunner, assoc_lines
from waldur_site_agent_slurm.slurm.answers import Answer, classify

SI = ["sacctmgr", "--immediate"]
DELETE_ONE = [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"]
ONE = "delete user where name=bob account=alloc-1"  # that delete, as the fake matches it
MOVE_DEFAULT = [*SI, "modify", "user", "where", "name=bob", "set", "DefaultAccount=alloc-2"]
# Each release's refusal to delete a user's default account.
DEFAULT_REFUSAL = {
    "22.05": "sacctmgr_delete_account_default_of_user",
    "24.11": "extra/sacctmgr_delete_account_default_of_user_other_assoc",
}
# 24.11's answer to deleting a user's only association (the user's default account): done.
ONLY_ASSOCIATION_DELETED = "extra/sacctmgr_delete_account_default_of_user_no_jobs"
ALLOC_1 = ("alloc-1|||proj-1|1||||normal|", "alloc-1|bob|||1||||normal|")
ALLOC_2 = ("alloc-2|||proj-1|1||||normal|", "alloc-2|bob|||1||||normal|")


def resource() -> Resource:
    return Resource.from_dict(
        {"uuid": "3f2b0c7e1d2a4b6c9f000123456789ab", "backend_id": "alloc-1", "name": "A"}
    )


def answer(name: str, version: str) -> tuple[int, str, str]:
    run = load(version, name)
    return run.exit, run.stdout, run.stderr


def runner_with(*rows: str, default: str) -> FakeRunner:
    return FakeRunner(outputs={"show assoc": assoc_lines(*rows), "list user": f"bob|{default}\n"})


def test_a_users_last_association_goes_by_deleting_that_association() -> None:
    runner = runner_with(*ALLOC_1, default="alloc-1")
    runner.failures[ONE] = answer(ONLY_ASSOCIATION_DELETED, "24.11")  # exit 0: deleted
    assert make_backend(runner).remove_users_from_resource(resource(), {"bob"}) == ["bob"]
    assert runner.writes == [DELETE_ONE]


def test_a_user_leaving_as_a_whole_loses_the_common_default_association_last() -> None:
    # Both releases refuse to delete a default association while another one of the
    # user remains (22.05 even when the same request deletes that one too).
    common = ("common|||root|1||||normal|", "common|bob|||1||||normal|")
    runner = runner_with(*ALLOC_1, *common, default="common")
    backend = make_backend(runner, default_account="common")
    assert backend.remove_users_from_resource(resource(), {"bob"}) == ["bob"]
    assert runner.writes == [
        DELETE_ONE,
        [*SI, "delete", "user", "where", "name=bob", "account=common"],
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_default_that_changed_since_it_was_read_is_moved_and_the_removal_retried(
    version: str,
) -> None:
    # SLURM's default is alloc-1 by the time of the delete, though alloc-2 was read.
    runner = runner_with(*ALLOC_1, *ALLOC_2, default="alloc-2")
    runner.failures_once[ONE] = answer(DEFAULT_REFUSAL[version], version)
    assert make_backend(runner).remove_users_from_resource(resource(), {"bob"}) == ["bob"]
    assert runner.writes == [DELETE_ONE, MOVE_DEFAULT, DELETE_ONE]


def test_a_user_left_without_a_default_gets_one_before_an_association_goes() -> None:
    # 24.11 leaves this after deleting an account that was a user's only association,
    # 22.05 after deleting the default association of a user who has others.
    leftover = load("24.11", "extra/sacctmgr_list_user_after_default_deleted")
    assert "slurmtest2|" in leftover.lines  # what 24.11 leaves: an empty default account
    runner = runner_with(*ALLOC_1, *ALLOC_2, default="")
    make_backend(runner).remove_users_from_resource(resource(), {"bob"})
    assert runner.writes == [MOVE_DEFAULT, DELETE_ONE]


def test_a_user_whose_default_is_elsewhere_keeps_it(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(*ALLOC_1, *ALLOC_2)
    runner.outputs["list user"] = "bob|alloc-2\n"
    make_backend(runner).remove_users_from_resource(resource(), {"bob"})
    assert runner.writes == [DELETE_ONE]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_default_account_refusal_that_persists_is_raised_with_its_meaning(
    version: str,
) -> None:
    runner = runner_with(*ALLOC_1, *ALLOC_2, default="alloc-2")
    runner.failures[ONE] = answer(DEFAULT_REFUSAL[version], version)
    with pytest.raises(Exception, match="it is a user's default account"):
        make_backend(runner).remove_users_from_resource(resource(), {"bob"})
    assert runner.writes == [DELETE_ONE, MOVE_DEFAULT, DELETE_ONE]


def test_24_11s_other_wording_of_the_default_account_refusal_is_recognised() -> None:
    # 24.11.5 refusing "delete user where name=U account=DEFAULT" for a user with another
    # association (22.05.8 deletes it and leaves an empty default account).
    stderr = (
        " Error with request: You can not remove the default account of a user\n"
        "  C = test2411        A = h13c-d     U = slurmtest3\n"
        " You must change the default account of these users or remove the users "
        "completely from the affected clusters to allow these changes.\n"
        " Changes Discarded\n"
    )
    argv = [*SI, "delete", "user", "where", "name=slurmtest3", "account=h13c-d"]
    assert classify(argv, 1, "", stderr) is Answer.DEFAULT_ACCOUNT
