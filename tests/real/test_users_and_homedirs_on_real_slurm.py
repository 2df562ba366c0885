"""User removal, job cancellation and home directories on a real SLURM and a real host.

Whether a user can still submit is asked of slurmctld with ``sbatch``. Deleting a
user's only (default) association is refused by some SLURM releases and allowed by
others; these tests check only what the backend promises: which associations remain
and who can submit afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.real.conftest import (
    ROOT,
    USERS,
    assoc_rows,
    real_backend,
    remove_accounts,
    run,
    stack,
    submit,
    submit_until,
)
from tests.test_backend_commands import resource

pytestmark = pytest.mark.real_slurm

ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "SUSPENDED"}


def user_accounts(user: str) -> set[str]:
    """The accounts ``user`` has an association with on this cluster."""
    out = run(
        "sacctmgr",
        "-P",
        "-n",
        "show",
        "assoc",
        "where",
        f"user={user}",
        f"cluster={stack().cluster}",
        "format=Account",
    ).stdout
    return set(out.split())


def idle_user(timeout: float = 60) -> str:
    """A test user with no association at all, so leaving an allocation is their last.

    The test users are shared by every real-tier test; wait a little for one to be free.
    """
    deadline = time.monotonic() + timeout
    while True:
        for user in reversed(USERS):
            if not user_accounts(user):
                return user
        if time.monotonic() >= deadline:
            raise AssertionError(f"every test user of {USERS} keeps associations for {timeout}s")
        time.sleep(2)


def default_account_of(user: str) -> str:
    out = run("sacctmgr", "-P", "-n", "show", "user", f"name={user}", "format=DefaultAccount")
    return out.stdout.strip()


def job_state(job_id: str) -> str:
    """The job's state as squeue shows it, else as sacct recorded it (first word)."""
    out = run("squeue", "-h", "-j", job_id, "-o", "%T", check=False).stdout.strip()
    if out:
        return out
    out = run("sacct", "-X", "-n", "-P", "-j", job_id, "--format=State").stdout.strip()
    return out.split(" ")[0] if out else ""


def wait_state(job_id: str, wanted: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = job_state(job_id)
        if state in wanted or time.monotonic() >= deadline:
            return state
        time.sleep(0.5)


@pytest.fixture
def common(names: dict[str, str]) -> Iterator[str]:
    """A default account of this test under the root (the site's ``common``)."""
    name = f"rd-{names['slug'][3:]}"
    run("sacctmgr", "-i", "add", "account", name, "parent=root", f"cluster={stack().cluster}")
    yield name
    remove_accounts([names["slug"], name])


def joined(names: dict[str, str], common: str, user: str, **settings: object) -> None:
    """Create the allocation with the common policy and put ``user`` on it."""
    res = resource(**names, limits={})
    backend = real_backend(default_account=common, default_account_policy="common", **settings)
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {user})
    assert user_accounts(user) == {names["slug"], common}
    assert default_account_of(user) == common
    for account in (names["slug"], common):
        run("scancel", submit_until(user, account, accepted=True), check=False)


def test_leaving_the_last_allocation_removes_the_default_association_and_submission(
    names: dict[str, str], common: str
) -> None:
    user = idle_user()
    joined(names, common, user)

    removed = real_backend(
        default_account=common, default_account_policy="common"
    ).remove_users_from_resource(resource(**names), {user})

    assert removed == [user]
    assert user not in {row[1] for row in assoc_rows(names["slug"])}
    assert user not in {row[1] for row in assoc_rows(common)}
    assert user_accounts(user) == set()
    submit_until(user, names["slug"], accepted=False)
    submit_until(user, common, accepted=False)


def test_a_cycle_that_read_an_account_a_terminate_then_removed_adds_and_sets_nothing(
    names: dict[str, str],
) -> None:
    # The cycle wrote nothing since its read, so it believes the account is there:
    # SLURM's refusals ("account does not exist", "Nothing modified") are checked anew.
    res = resource(**names, limits={})
    real_backend().create_resource_with_id(res, names["slug"])
    cycle = real_backend()
    assert set(cycle.pull_resources([res])) == {names["slug"]}
    real_backend().delete_resource(res)
    user = USERS[0]

    assert cycle.add_users_to_resource(res, {user}, offering_user_states={user: "OK"}) == set()
    assert cycle.pause_resource(names["slug"]) is False

    assert assoc_rows(names["slug"]) == []
    with pytest.raises(BackendError, match="does not exist"):
        real_backend().add_users_to_resource(res, {user})  # an order's create: an error


def test_keep_default_account_association_keeps_submission_under_the_default(
    names: dict[str, str], common: str
) -> None:
    user = idle_user()
    settings = {"keep_default_account_association": True}
    joined(names, common, user, **settings)

    real_backend(
        default_account=common, default_account_policy="common", **settings
    ).remove_users_from_resource(resource(**names), {user})

    assert user not in {row[1] for row in assoc_rows(names["slug"])}
    assert user_accounts(user) == {common}
    assert default_account_of(user) == common
    submit_until(user, names["slug"], accepted=False)
    run("scancel", submit_until(user, common, accepted=True), check=False)


def test_removing_a_user_cancels_only_their_jobs_in_the_allocation(
    names: dict[str, str],
) -> None:
    leaver, stayer = USERS[0], USERS[1]
    res = resource(**names, limits={})
    backend = real_backend(default_account_policy="individual")
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {leaver, stayer})
    slug = names["slug"]
    code, first = submit(leaver, slug, "-n1", wrap="sleep 300")
    assert code == 0, first
    code, pending = submit(leaver, slug, "-n1", "--begin=now+1hour", wrap="sleep 300")
    assert code == 0, pending
    code, other = submit(stayer, slug, "-n1", wrap="sleep 300")
    assert code == 0, other
    # Running or pending, as the shared node allows; the held job pends either way.
    assert wait_state(first, {"RUNNING"}) in ACTIVE
    assert wait_state(other, {"RUNNING"}) in ACTIVE
    assert job_state(pending) == "PENDING"

    assert sorted(real_backend().list_active_user_jobs(slug, leaver)) == sorted([first, pending])
    assert real_backend().list_active_user_jobs(slug, stayer) == [other]

    real_backend().cancel_active_jobs_for_account_user(slug, leaver)

    assert wait_state(first, {"CANCELLED"}) == "CANCELLED"
    assert wait_state(pending, {"CANCELLED"}) == "CANCELLED"
    assert real_backend().list_active_user_jobs(slug, leaver) == []
    assert job_state(other) in ACTIVE

    code, again = submit(leaver, slug, "-n1", wrap="sleep 300")
    assert code == 0, again
    assert wait_state(again, ACTIVE) in ACTIVE

    assert real_backend().remove_users_from_resource(res, {leaver}) == [leaver]

    assert wait_state(again, {"CANCELLED"}) == "CANCELLED"
    assert leaver not in {row[1] for row in assoc_rows(slug)}
    assert job_state(other) in ACTIVE
    assert real_backend().list_active_user_jobs(slug, stayer) == [other]


# ---- home directories ---------------------------------------------------------------------


def home_parent() -> Path:
    """The directory holding the test users' home directories (their passwd entries)."""
    parents = {Path(pwd.getpwnam(user).pw_dir).parent for user in USERS}
    assert len(parents) == 1, f"the test users' homes are not in one directory: {parents}"
    return parents.pop()


def run_hook(homes: Path, hook: str, users: list[tuple[str, str]], **settings: object) -> None:
    """Call a backend hook with ``homes`` bound over the users' home parent, in private.

    ``mkhomedir_helper`` makes the directory the user's passwd entry names. A private
    mount namespace shows ``homes`` at that place to the hook's process only, so the
    real test users get real directories in a temporary base path and nothing else on
    the host changes.
    """
    parent = home_parent()
    call = {
        "base": str(parent),
        "hook": hook,
        "users": users,
        "settings": settings,
        "version": stack().version,
    }
    proc = subprocess.run(
        [
            "/usr/bin/unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            'mount --bind "$1" "$2" && shift 2 && exec "$@"',
            "sh",
            str(homes),
            str(parent),
            sys.executable,
            "-m",
            "tests.real.homedir_hook",
            json.dumps(call),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    base = tmp_path / "home"
    base.mkdir()
    base.chmod(0o755)
    return base


def test_home_directories_are_made_at_creation_and_for_existing_users(homes: Path) -> None:
    made_at_creation, requested, existing = USERS
    keep = homes / existing
    keep.mkdir()
    keep.chmod(0o751)
    (keep / "notes.txt").write_text("mine")
    os.utime(keep, (1_000_000_000, 1_000_000_000))
    before = keep.stat()
    team = [(made_at_creation, "OK"), (requested, "Requested"), (existing, "OK")]

    run_hook(homes, "post_create_resource", team, default_homedir_umask="0027")

    made = (homes / made_at_creation).stat()
    who = pwd.getpwnam(made_at_creation)
    assert (made.st_uid, made.st_gid) == (who.pw_uid, who.pw_gid)
    assert stat.S_ISDIR(made.st_mode)
    assert stat.S_IMODE(made.st_mode) == 0o750
    assert not (homes / requested).exists()  # offering user not OK yet: no directory

    run_hook(homes, "process_existing_users", [(requested, "OK"), (existing, "OK")])

    later = (homes / requested).stat()
    who = pwd.getpwnam(requested)
    assert (later.st_uid, later.st_gid) == (who.pw_uid, who.pw_gid)
    assert stat.S_IMODE(later.st_mode) == 0o700  # default_homedir_umask 0077
    after = keep.stat()
    assert (after.st_mtime, after.st_uid, after.st_gid) == (
        before.st_mtime,
        before.st_uid,
        before.st_gid,
    )
    assert stat.S_IMODE(after.st_mode) == 0o751
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    assert (keep / "notes.txt").read_text() == "mine"
