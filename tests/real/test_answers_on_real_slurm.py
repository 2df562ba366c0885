"""sacctmgr's answers mean the same to the plugin on the real SLURM, whatever its release.

Each write that changes nothing, is refused or lies is made through the client, and the
plugin must take it the same way on 22.05 and 24.11 (their words differ; see the README's
"SLURM versions and error handling"). Users are made up (``u<tag>…``): sacctmgr accepts
users the host does not know, and no shared test user is touched.
"""

from __future__ import annotations

import pytest
from waldur_api_client.models.resource import Resource

from tests.real.conftest import real_backend, run
from waldur_site_agent_slurm.errors import SlurmCommandError
from waldur_site_agent_slurm.slurm.answers import Answer


def refused(action: object) -> Answer:
    """The answer of the error ``action`` (a no-argument callable) raises."""
    assert callable(action)
    with pytest.raises(SlurmCommandError) as caught:
        action()
    return caught.value.answer


def defaults(user: str) -> list[str]:
    out = run("sacctmgr", "-P", "-n", "list", "user", f"name={user}", "format=DefaultAccount")
    return out.stdout.split()


def test_idempotent_and_refused_writes_are_recognised(tag: str) -> None:
    client = real_backend().client
    top, alloc, gone, user = f"c{tag}_top", f"a{tag}_one", f"a{tag}_gone", f"u{tag}a"
    assert client.add_account(top, "top", "org", "root") is True
    assert client.add_account(top, "top", "org", "root") is False  # already there
    assert refused(lambda: client.add_account(alloc, "a", "org", f"c{tag}_nosuch")) is (
        Answer.MISSING_PARENT
    )
    assert client.add_account(alloc, "a", "org", top) is True
    assert refused(lambda: client.add_users([user], [gone])) is Answer.MISSING_ACCOUNT
    client.add_users([user], [alloc])
    client.add_users([user], [alloc])  # already there: no error
    assert refused(lambda: client.modify_account(gone, {"Fairshare": "5"})) is Answer.NO_MATCH
    assert refused(lambda: client.modify_user(user, top, {"MaxTRESMins": "cpu=5"})) is (
        Answer.NO_MATCH
    )
    client.remove_account(gone)  # nothing to delete: no error
    client.remove_user(user)


def test_a_limit_stored_differently_with_exit_0_is_an_error(tag: str) -> None:
    client = real_backend().client
    alloc = f"a{tag}_bad"
    client.add_account(alloc, "a", "org", "root", {"cpu": 600})
    with pytest.raises(SlurmCommandError) as caught:
        client.modify_account(alloc, {"GrpTRESMins": "cpu=abc"})
    assert caught.value.returncode == 0
    assert "Invalid unit type" in str(caught.value)
    record = client.account_record(alloc, fresh=True)
    assert record is not None
    assert record.grp_tres_mins == {"cpu": 0}  # what SLURM stored although it said "Modified"


def resource(backend_id: str) -> Resource:
    return Resource.from_dict(
        {"uuid": "3f2b0c7e1d2a4b6c9f000123456789ab", "backend_id": backend_id, "name": "A"}
    )


def test_user_removal_keeps_a_default_or_removes_the_whole_user(tag: str) -> None:
    backend = real_backend()
    client = backend.client
    first, second = f"a{tag}_first", f"a{tag}_second"
    leaving, staying = f"u{tag}l", f"u{tag}s"
    for name in (first, second):
        client.add_account(name, "a", "org", "root")
    client.add_users([leaving], [first], first)
    client.add_users([staying], [first, second], first)

    # The account a user leaves is its default: it moves to the other account first
    # (24.11 would refuse the removal, 22.05 would leave the user without a default).
    assert backend.remove_users_from_resource(resource(first), {leaving, staying}) == [
        leaving,
        staying,
    ]
    assert defaults(staying) == [second]
    assert defaults(leaving) == []  # its only association: the whole user went
    assert client.snapshot().user_accounts.get(staying) == {second}
    client.remove_user(staying)
