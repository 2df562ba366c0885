"""Project groups in a real OpenLDAP, driven by the backend on slurm-emulator's commands."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from waldur_site_agent.backend.exceptions import BackendError, BackendNotReadyError

from tests.emulator.conftest import assoc_rows, emulator_backend
from tests.ldap import add_posix_group, group, ldap_block, password
from tests.ldap.conftest import slapd_stopped
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.errors import LdapError, LdapUnavailableError

pytestmark = pytest.mark.ldap


def backend(prefix: str, **settings: Any) -> SlurmBackend:
    return emulator_backend(ldap=ldap_block(prefix), **settings)


def accounts() -> set[str]:
    """The emulator's accounts besides its root."""
    return {row[0] for row in assoc_rows() if not row[1]} - {"root"}


def users_of(account: str) -> set[str]:
    return {row[1] for row in assoc_rows() if row[0] == account and row[1]}


def members(name: str) -> set[str] | None:
    found = group(name)
    return None if found is None else found[1]


def create(prefix: str, slug: str, users: set[str], project: str = "proj-1") -> Any:
    res = resource(slug=slug, backend_id=slug, project_slug=project)
    agent = backend(prefix)
    agent.create_resource_with_id(res, slug)
    if users:
        agent.add_users_to_resource(res, users)
    return res


def test_a_create_makes_the_project_group_with_a_gid_in_range_and_the_users_as_members(
    emulator: Path, prefix: str
) -> None:
    create(prefix, "alloc-1", {"alice", "bob"})

    found = group(f"{prefix}proj-1")
    assert found is not None
    gid, members = found
    assert 10000 <= gid <= 65000
    assert members == {"alice", "bob"}
    assert users_of("alloc-1") == {"alice", "bob"}
    assert backend(prefix).project_group_gid("proj-1") == gid


def test_a_gid_used_anywhere_in_the_directory_is_never_given_again(
    emulator: Path, prefix: str
) -> None:
    # The gid the name hashes to, once taken elsewhere in the tree, is skipped.
    groups = backend(prefix).project_groups
    assert groups is not None
    first = groups.ensure("proj-1").gid
    groups.delete("proj-1")
    add_posix_group(f"{prefix}someone-else", first, ou="People")

    second = groups.ensure("proj-1").gid

    assert second != first
    assert group(f"{prefix}proj-1") == (second, set())


def test_the_same_project_gets_the_same_gid_back_after_its_group_was_removed(
    emulator: Path, prefix: str
) -> None:
    groups = backend(prefix).project_groups
    assert groups is not None
    first = groups.ensure("proj-1").gid
    groups.delete("proj-1")
    assert groups.ensure("proj-1").gid == first


def test_members_follow_the_users_of_all_the_projects_allocations(
    emulator: Path, prefix: str
) -> None:
    first = create(prefix, "alloc-1", {"alice", "bob"})
    create(prefix, "alloc-2", {"bob", "carol"})
    assert members(f"{prefix}proj-1") == {"alice", "bob", "carol"}

    backend(prefix).remove_users_from_resource(first, {"alice", "bob"})

    # bob still has alloc-2 in the project: he stays; alice had only alloc-1.
    assert members(f"{prefix}proj-1") == {"bob", "carol"}
    assert users_of("alloc-1") == set()


def test_members_the_directory_missed_are_added_by_the_next_membership_cycle(
    emulator: Path, prefix: str
) -> None:
    res = create(prefix, "alloc-1", set())
    with slapd_stopped(), pytest.raises(LdapUnavailableError):
        backend(prefix).add_users_to_resource(res, {"alice"})
    assert users_of("alloc-1") == {"alice"}  # SLURM first; the group lags behind

    backend(prefix).reconcile_existing_user_roles(res, {"alice"}, {}, {})

    assert members(f"{prefix}proj-1") == {"alice"}


def test_the_group_goes_with_the_last_allocation_of_the_project(
    emulator: Path, prefix: str
) -> None:
    first = create(prefix, "alloc-1", {"alice"})
    second = create(prefix, "alloc-2", {"bob"})

    backend(prefix).delete_resource(first, project_slug="proj-1")
    assert members(f"{prefix}proj-1") == {"bob"}

    backend(prefix).delete_resource(second, project_slug="proj-1")
    assert group(f"{prefix}proj-1") is None
    assert "proj-1" not in accounts()


def test_soft_delete_keeps_the_group_but_takes_the_members_out(emulator: Path, prefix: str) -> None:
    res = create(prefix, "alloc-1", {"alice"})
    backend(prefix, soft_delete=True).delete_resource(res, project_slug="proj-1")
    assert members(f"{prefix}proj-1") == set()


def test_ldap_down_during_a_create_makes_nothing_and_the_retry_makes_everything(
    emulator: Path, prefix: str
) -> None:
    res = resource(slug="alloc-1", backend_id="alloc-1")
    with slapd_stopped(), pytest.raises(BackendNotReadyError) as err:
        backend(prefix).create_resource_with_id(res, "alloc-1")
    assert "cannot be reached" in str(err.value)
    assert accounts() == set()  # not even the customer and project accounts

    backend(prefix).create_resource_with_id(res, "alloc-1")
    assert {"cust-1", "proj-1", "alloc-1"} <= accounts()
    assert group(f"{prefix}proj-1") is not None


def test_a_create_that_slurm_refuses_removes_the_group_it_made(emulator: Path, prefix: str) -> None:
    res = resource(slug="alloc-1", backend_id="alloc-1")
    with pytest.raises(BackendError, match="root_account 'missing' does not exist"):
        backend(prefix, root_account="missing").create_resource_with_id(res, "alloc-1")
    assert group(f"{prefix}proj-1") is None
    assert accounts() == set()


def test_ldap_down_during_a_terminate_removes_nothing_until_it_is_back(
    emulator: Path, prefix: str
) -> None:
    res = create(prefix, "alloc-1", {"alice"})
    with slapd_stopped(), pytest.raises(BackendNotReadyError):
        backend(prefix).delete_resource(res, project_slug="proj-1")
    assert "alloc-1" in accounts()
    assert users_of("alloc-1") == {"alice"}

    backend(prefix).delete_resource(res, project_slug="proj-1")
    assert "alloc-1" not in accounts()
    assert group(f"{prefix}proj-1") is None


def test_ldap_down_while_removing_users_leaves_them_for_the_retry(
    emulator: Path, prefix: str
) -> None:
    res = create(prefix, "alloc-1", {"alice", "bob"})
    with slapd_stopped(), pytest.raises(LdapUnavailableError):
        backend(prefix).remove_users_from_resource(res, {"alice"})
    assert users_of("alloc-1") == {"alice", "bob"}

    backend(prefix).remove_users_from_resource(res, {"alice"})
    assert users_of("alloc-1") == {"bob"}
    assert members(f"{prefix}proj-1") == {"bob"}


def test_a_wrong_password_is_a_clear_error_that_never_shows_the_password(
    emulator: Path, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + password()[:12]
    secret_file = tmp_path / "wrong"
    secret_file.write_text(wrong)
    secret_file.chmod(0o600)
    agent = emulator_backend(ldap=ldap_block(prefix, bind_password_file=str(secret_file)))
    res = resource(slug="alloc-1", backend_id="alloc-1")

    with pytest.raises(LdapError) as err:
        agent.create_resource_with_id(res, "alloc-1")

    assert "refused the bind as cn=admin,dc=waldur-test,dc=local: invalidCredentials" in str(
        err.value
    )
    assert not isinstance(err.value, BackendNotReadyError)
    assert accounts() == set()
    for text in (str(err.value), repr(err.value), caplog.text):
        assert wrong not in text
        assert password() not in text


def test_a_whole_allocation_life_logs_no_password(
    emulator: Path, prefix: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    res = create(prefix, "alloc-1", {"alice", "bob"})
    agent = backend(prefix)
    agent.diagnostics()
    agent.remove_users_from_resource(res, {"bob"})
    agent.delete_resource(res, project_slug="proj-1")
    out, err = capfd.readouterr()
    assert "Created LDAP project group" in caplog.text
    for text in (caplog.text, out, err):
        assert password() not in text


def test_a_project_directory_belongs_to_the_projects_ldap_group(
    emulator: Path, prefix: str, tmp_path: Path
) -> None:
    # No host group of that name exists: the gid can only come from the LDAP group.
    directories = {"enabled": True, "base_path": str(tmp_path), "set_acl": False}
    res = resource(slug="alloc-1", backend_id="alloc-1", project_slug="proj-1")
    agent = backend(prefix, project_directory=directories)
    agent.create_resource_with_id(res, "alloc-1")

    found = group(f"{prefix}proj-1")
    assert found is not None
    made = (tmp_path / "proj-1").stat()
    assert made.st_gid == found[0]
    assert made.st_mode & 0o7777 == 0o2770
