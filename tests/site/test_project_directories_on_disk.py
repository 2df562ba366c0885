"""Project directories on the real file system: real mkdir, chown, chmod and setfacl.

Each test has its own base path under pytest's temporary directory; results are read
back with ``os.stat`` and ``getfacl``. ``lfs`` is the stand-in of ``conftest``.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.site.conftest import LfsStandIn
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmCommandError
from waldur_site_agent_slurm.site.projectdirs import (
    ProjectDirectories,
    ProjectDirectoryError,
    named_group,
)
from waldur_site_agent_slurm.slurm.runner import CommandRunner

GID = 4242  # a group id no name needs to exist for: chown takes numbers
NOBODY = pwd.getpwnam("nobody").pw_uid


def directories(base: Path, gid: int | None = GID, **block: Any) -> ProjectDirectories:
    settings = load_settings(
        {"project_directory": {"enabled": True, "base_path": str(base), **block}}, {}
    )
    assert settings.project_directory_layout is not None
    runner = CommandRunner(timeout=30, kind="Host")
    return ProjectDirectories(settings.project_directory_layout, runner, lambda project: gid)


def getfacl(path: Path) -> list[str]:
    out = subprocess.run(
        ["getfacl", "--omit-header", "--absolute-names", "--numeric", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "projects"
    path.mkdir()
    return path


def quota(mount: Path) -> dict[str, Any]:
    return {
        "mount_point": str(mount),
        "block_softlimit": "900G",
        "block_hardlimit": "1T",
        "inode_softlimit": 90000,
        "inode_hardlimit": 100000,
    }


def test_a_new_project_directory_gets_owner_group_mode_setgid_and_default_acl(
    base: Path, lfs: LfsStandIn
) -> None:
    directories(base).ensure("p_hydro")

    info = os.stat(base / "p_hydro")
    assert (info.st_uid, info.st_gid) == (NOBODY, GID)
    assert stat.S_IMODE(info.st_mode) == 0o2770
    assert getfacl(base / "p_hydro") == [
        "user::rwx",
        "group::rwx",
        "other::---",
        "default:user::rwx",
        "default:group::rwx",
        "default:other::---",
    ]
    assert lfs.calls() == []  # no lustre_quota block


def test_members_files_are_group_writable_and_in_the_group_despite_a_strict_umask(
    base: Path, lfs: LfsStandIn
) -> None:
    directories(base).ensure("p_hydro")
    subprocess.run(
        ["sh", "-c", "umask 077 && touch f && mkdir d"], cwd=base / "p_hydro", check=True
    )
    made = {name: os.stat(base / "p_hydro" / name) for name in ("f", "d")}
    assert stat.S_IMODE(made["f"].st_mode) == 0o660
    assert stat.S_IMODE(made["d"].st_mode) == 0o2770  # setgid passes on to subdirectories
    assert {info.st_gid for info in made.values()} == {GID}


def test_lustre_gets_the_project_id_of_the_group_and_the_configured_quota(
    base: Path, tmp_path: Path, lfs: LfsStandIn
) -> None:
    directories(base, lustre_quota=quota(tmp_path)).ensure("p_hydro")
    assert lfs.calls() == [
        ["project", "-p", "4242", "-r", "-s", str(base / "p_hydro")],
        ["setquota", "-p", "4242", "-b", "900G", "-B", "1T", "-i", "90000", "-I", "100000",
         str(tmp_path)],
    ]  # fmt: skip


def test_an_existing_directory_is_corrected_and_its_contents_kept(
    base: Path, lfs: LfsStandIn
) -> None:
    project = base / "p_hydro"
    project.mkdir(mode=0o755)
    (project / "results.dat").write_text("data")
    subprocess.run(["setfacl", "-d", "-m", "u:1234:r-x", str(project)], check=True)

    done = directories(base, permissions="750").ensure("p_hydro")

    assert [a.kind for a in done] == ["chown", "chmod", "command"]
    info = os.stat(project)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, GID, 0o2750)
    assert (project / "results.dat").read_text() == "data"
    acl = getfacl(project)
    assert {"default:user::rwx", "default:group::r-x", "default:other::---"} <= set(acl)
    assert "default:user:1234:r-x" in acl  # an entry the site added stays


def test_running_again_changes_nothing_but_the_absolute_lustre_settings(
    base: Path, tmp_path: Path, lfs: LfsStandIn
) -> None:
    dirs = directories(base, lustre_quota=quota(tmp_path))
    dirs.ensure("p_hydro")
    before = os.stat(base / "p_hydro")

    again = dirs.ensure("p_hydro")

    assert [a.argv[:2] for a in again] == [("lfs", "project"), ("lfs", "setquota")]
    after = os.stat(base / "p_hydro")
    assert (after.st_ino, after.st_ctime_ns) == (before.st_ino, before.st_ctime_ns)


def test_a_symlinked_project_directory_is_refused_and_its_target_untouched(
    base: Path, tmp_path: Path, lfs: LfsStandIn
) -> None:
    outside = tmp_path / "etc-like"
    outside.mkdir(mode=0o755)
    (base / "p_hydro").symlink_to(outside)

    with pytest.raises(ProjectDirectoryError, match="symlink"):
        directories(base, lustre_quota=quota(tmp_path)).ensure("p_hydro")

    info = os.stat(outside)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o755)
    assert getfacl(outside) == ["user::rwx", "group::r-x", "other::r-x"]
    assert lfs.calls() == []


@pytest.mark.parametrize("project", ["..", "../p_hydro", "/tmp", "p_x/../../y"])
def test_names_that_would_leave_base_path_are_refused_before_anything_is_made(
    base: Path, lfs: LfsStandIn, project: str
) -> None:
    with pytest.raises(InvalidValueError):
        directories(base).ensure(project)
    assert set(base.parent.iterdir()) == {base, lfs.dir}
    assert list(base.iterdir()) == []
    assert lfs.calls() == []


def test_a_base_path_reached_through_a_symlink_is_fine(tmp_path: Path, lfs: LfsStandIn) -> None:
    real = tmp_path / "lustre-projects"
    real.mkdir()
    (tmp_path / "projects").symlink_to(real)
    directories(tmp_path / "projects").ensure("p_hydro")
    assert stat.S_IMODE(os.stat(real / "p_hydro").st_mode) == 0o2770


def test_a_file_where_the_directory_belongs_is_refused(base: Path, lfs: LfsStandIn) -> None:
    (base / "p_hydro").write_text("not a directory")
    with pytest.raises(ProjectDirectoryError, match="no directory"):
        directories(base).ensure("p_hydro")
    assert stat.S_IMODE(os.stat(base / "p_hydro").st_mode) != 0o2770


def test_a_project_without_a_group_gets_no_directory(base: Path, lfs: LfsStandIn) -> None:
    with pytest.raises(ProjectDirectoryError, match="create the group p_hydro"):
        directories(base, gid=None).ensure("p_hydro")
    assert list(base.iterdir()) == []


def test_the_group_named_after_the_project_owns_its_directory(base: Path, lfs: LfsStandIn) -> None:
    settings = load_settings({"project_directory": {"enabled": True, "base_path": str(base)}}, {})
    assert settings.project_directory_layout is not None
    dirs = ProjectDirectories(settings.project_directory_layout, CommandRunner(), named_group)
    dirs.ensure("nogroup")  # a group every Debian host has
    assert os.stat(base / "nogroup").st_gid == named_group("nogroup")


def test_a_failing_lfs_fails_with_its_message_and_leaves_the_directory(
    base: Path, tmp_path: Path, lfs: LfsStandIn
) -> None:
    lfs.fail_with("lfs setquota: quotactl failed: Operation not supported")
    with pytest.raises(SlurmCommandError, match="Operation not supported"):
        directories(base, lustre_quota=quota(tmp_path)).ensure("p_hydro")
    assert stat.S_IMODE(os.stat(base / "p_hydro").st_mode) == 0o2770


def test_a_missing_lfs_is_named_as_a_host_command(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # no lfs on this host
    with pytest.raises(SlurmCommandError) as err:
        directories(base, lustre_quota=quota(tmp_path)).ensure("p_hydro")
    assert "Host command 'lfs' not found in PATH" in str(err.value)
    assert "slurm_bin_path" not in str(err.value)
