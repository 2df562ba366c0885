"""Project directories: one shared directory per project below ``project_directory.base_path``.

A project's directory is ``base_path/<project account>``, owned by ``owner`` and by the
project's group, with mode ``permissions`` (plus the setgid bit with ``set_gid``, so files
made inside belong to the project's group), a default ACL with ``set_acl`` and, with
``lustre_quota``, a Lustre project quota. The numeric Lustre project id is the group's
gid: it is unique per project on the site, stable, and already known to every node.

Every change is planned first from what the directory looks like now, then applied, so
running it again corrects an existing directory and writes nothing when it is right.
Nothing here ever removes a directory or its contents.

The path is built only from a checked account name, must be a direct child of
``base_path`` (after resolving symlinks on both sides) and must not itself be a
symlink; ownership and mode are set through a descriptor opened with ``O_NOFOLLOW``.
``setfacl``, ``getfacl`` and ``lfs`` run through the command runner as argv lists with
its timeout.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import InvalidValueError, SlurmConfigError, SlurmError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.runner import Runner

if TYPE_CHECKING:
    from waldur_site_agent_slurm.config import LustreQuotaConfig, ProjectDirectoryConfig

KEY = "backend_settings.project_directory"
# The gid of a project's POSIX group, or None when the project has no group (yet).
GroupSource = Callable[[str], "int | None"]
# lfs takes block limits in kilobytes, or with one of these suffixes.
_BLOCK_RE = re.compile(r"(\d+)([kKmMgGtTpPeE]?)")
_BLOCK_UNITS = {"": 1, "k": 1, "m": 2**10, "g": 2**20, "t": 2**30, "p": 2**40, "e": 2**50}
_PERMISSIONS_RE = re.compile(r"[0-7]{3,4}")
MAX_PROJECT_ID = 2**32 - 2  # Lustre project ids are 32 bits; the top value means "none"


class ProjectDirectoryError(SlurmError):
    """A project directory cannot be made or corrected safely; nothing further was done."""


@dataclass(frozen=True)
class LustreQuota:
    """Project quota limits as ``lfs setquota -p`` takes them; 0 is Lustre's "no limit"."""

    mount_point: str
    block_soft: str
    block_hard: str
    inode_soft: int
    inode_hard: int


@dataclass(frozen=True)
class Layout:
    """The validated ``project_directory`` block."""

    base_path: Path
    owner: str
    mode: int
    set_acl: bool
    quota: LustreQuota | None = None

    def path(self, project: str) -> Path:
        """``base_path/<project>`` for a valid account name, never a path elsewhere."""
        name = validation.account_name(project, "project account")
        path = self.base_path / name
        if path.parent != self.base_path or path.name != name:
            raise InvalidValueError("project account", project, f"no name below {self.base_path}")
        return path

    def default_acl(self) -> tuple[str, str, str]:
        """The default ACL entries: owner, group and others get what the mode gives them.

        New files and directories inside then get the group's bits whatever a user's
        umask is, so a project's members can work on each other's files.
        """
        bits = self.mode & 0o777
        return (
            f"user::{_rwx(bits >> 6)}",
            f"group::{_rwx(bits >> 3)}",
            f"other::{_rwx(bits)}",
        )


def _rwx(bits: int) -> str:
    return "".join(c if bits & m else "-" for c, m in (("r", 4), ("w", 2), ("x", 1)))


# ---- configuration ---------------------------------------------------------------------


def layout(config: ProjectDirectoryConfig) -> Layout:
    """Check the ``project_directory`` block; errors name the key.

    Raises:
        SlurmConfigError: a relative path, permissions that are no octal mode, an owner
            that is no user name, a negative or malformed quota.
    """
    base = _absolute(config.base_path, "base_path")
    try:
        owner = validation.username(config.owner, f"{KEY}.owner")
    except InvalidValueError as err:
        raise SlurmConfigError(str(err)) from err
    mode = _permissions(config.permissions)
    if config.set_gid:
        mode |= stat.S_ISGID
    quota = None if config.lustre_quota is None else _quota(config.lustre_quota, base)
    return Layout(Path(base), owner, mode, config.set_acl, quota)


def _absolute(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise SlurmConfigError(f"{KEY}.{key} {value!r}: must be an absolute path")
    if ".." in PurePosixPath(value).parts or "\0" in value:
        raise SlurmConfigError(f"{KEY}.{key} {value!r}: must not contain '..' or NUL")
    path = os.path.normpath(value)
    if PurePosixPath(path).parent == PurePosixPath(path):
        raise SlurmConfigError(f"{KEY}.{key} {value!r}: must not be the root directory")
    return path


def _permissions(value: object) -> int:
    """``770`` or ``"0770"``: octal digits (an unquoted YAML number is read digit by digit)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _PERMISSIONS_RE.fullmatch(text):
        raise SlurmConfigError(
            f"{KEY}.permissions {value!r}: must be an octal mode of 3 or 4 digits, e.g. '770'"
        )
    return int(text, 8)


def _quota(config: LustreQuotaConfig, base: str) -> LustreQuota:
    where = f"{KEY}.lustre_quota"
    mount = _absolute(config.mount_point, "lustre_quota.mount_point")
    if os.path.commonpath([mount, base]) != mount:
        raise SlurmConfigError(
            f"{KEY}.base_path {base!r} is not below {where}.mount_point {mount!r}: "
            "a Lustre project quota counts only files on that file system"
        )
    block_soft, soft_kb = _blocks(config.block_softlimit, "block_softlimit")
    block_hard, hard_kb = _blocks(config.block_hardlimit, "block_hardlimit")
    inode_soft = _inodes(config.inode_softlimit, "inode_softlimit")
    inode_hard = _inodes(config.inode_hardlimit, "inode_hardlimit")
    if 0 < hard_kb < soft_kb:
        raise SlurmConfigError(
            f"{where}.block_softlimit {block_soft!r} is above {where}.block_hardlimit "
            f"{block_hard!r}"
        )
    if 0 < inode_hard < inode_soft:
        raise SlurmConfigError(
            f"{where}.inode_softlimit {inode_soft} is above {where}.inode_hardlimit {inode_hard}"
        )
    return LustreQuota(mount, block_soft, block_hard, inode_soft, inode_hard)


def _blocks(value: object, key: str) -> tuple[str, int]:
    """A block limit as lfs takes it, and its size in kilobytes (to compare soft and hard)."""
    if value is None:
        return "0", 0
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _BLOCK_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SlurmConfigError(
            f"{KEY}.lustre_quota.{key} {value!r}: must be a non-negative size in kilobytes "
            "or with a unit (k, M, G, T, P, E), e.g. 500G"
        )
    return match.group(0), int(match.group(1)) * _BLOCK_UNITS[match.group(2).lower()]


def _inodes(value: object, key: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SlurmConfigError(
            f"{KEY}.lustre_quota.{key} {value!r}: must be a non-negative number of files"
        )
    return value


# ---- groups ------------------------------------------------------------------------------


def named_group(project: str) -> int | None:
    """The gid of the POSIX group named after the project account (from NSS), or None."""
    try:
        return grp.getgrnam(project).gr_gid
    except KeyError:
        return None


# ---- plan and apply ----------------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    """What the project directory looks like now (``exists`` False: nothing else is read)."""

    exists: bool
    uid: int = -1
    gid: int = -1
    mode: int = -1
    default_acl: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Action:
    """One change to a project directory, as a site admin would type it, and why."""

    kind: str  # mkdir, chown, chmod or command
    shown: str
    reason: str
    argv: tuple[str, ...] = ()


class ProjectDirectories:
    """Makes and corrects project directories; never removes one."""

    def __init__(self, layout_: Layout, runner: Runner, group_source: GroupSource) -> None:
        """Use ``runner`` for setfacl, getfacl and lfs, and ``group_source`` for the gid."""
        self.layout = layout_
        self.runner = runner
        self.group_source = group_source

    def checked_path(self, project: str) -> Path:
        """The project's directory, refused when it could lead outside ``base_path``.

        Nothing is made or changed here; this is the check done before any write.
        """
        path = self.layout.path(project)
        base = self.layout.base_path
        if not base.is_dir():
            raise ProjectDirectoryError(
                f"{KEY}.base_path {base} does not exist or is no directory; it is not created "
                "by the agent (is the file system mounted?)"
            )
        if path.is_symlink():
            raise ProjectDirectoryError(f"Project directory {path} is a symlink; refusing it")
        if path.exists() and not path.is_dir():
            raise ProjectDirectoryError(f"Project directory {path} exists but is no directory")
        if path.resolve().parent != base.resolve(strict=True):
            raise ProjectDirectoryError(f"Project directory {path} resolves outside {base}")
        return path

    def gid(self, project: str) -> int:
        """The project's group id from the group source; a project without one is refused."""
        gid = self.group_source(project)
        if gid is None:
            raise ProjectDirectoryError(
                f"Project {project} has no POSIX group, so its directory under "
                f"{self.layout.base_path} cannot get one; create the group {project}"
            )
        if isinstance(gid, bool) or not isinstance(gid, int) or not 0 < gid <= MAX_PROJECT_ID:
            raise ProjectDirectoryError(f"Project {project} has group id {gid!r}; refusing it")
        return gid

    def owner_uid(self) -> int:
        """The uid of ``owner``; an owner unknown to the host is refused."""
        try:
            return pwd.getpwnam(self.layout.owner).pw_uid
        except KeyError as err:
            raise ProjectDirectoryError(
                f"{KEY}.owner {self.layout.owner!r} is not a user on this host"
            ) from err

    def problems(self) -> list[str]:
        """What would stop every project directory from being made (for diagnostics)."""
        found = []
        if not self.layout.base_path.is_dir():
            found.append(f"{KEY}.base_path {self.layout.base_path} does not exist")
        try:
            self.owner_uid()
        except ProjectDirectoryError as err:
            found.append(str(err))
        return found

    def read(self, path: Path) -> Current:
        """Owner, group, mode and default ACL of ``path`` (without following a symlink)."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return Current(exists=False)
        acl: frozenset[str] = frozenset()
        if self.layout.set_acl:
            argv = ["getfacl", "--omit-header", "--default", "--absolute-names", "--", str(path)]
            out = self.runner.run(argv, mutating=False).stdout
            acl = frozenset(line.strip() for line in out.splitlines() if line.strip())
        return Current(True, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), acl)

    def plan(self, path: Path, current: Current, uid: int, gid: int) -> list[Action]:
        """The changes that make ``path`` what the configuration says, each with its reason."""
        layout_ = self.layout
        mode = f"{layout_.mode:04o}"
        actions = []
        if not current.exists:
            actions.append(Action("mkdir", f"mkdir -m 0700 {path}", "missing"))
        if (current.uid, current.gid) != (uid, gid):
            was = f"{current.uid}:{current.gid}" if current.exists else "new"
            actions.append(Action("chown", f"chown {uid}:{gid} {path}", f"owner was {was}"))
        if current.mode != layout_.mode:
            was = f"{current.mode:04o}" if current.exists else "new"
            actions.append(Action("chmod", f"chmod {mode} {path}", f"mode was {was}"))
        wanted = layout_.default_acl()
        if layout_.set_acl and not set(wanted) <= current.default_acl:
            argv = ("setfacl", "--default", "--modify", ",".join(wanted), "--", str(path))
            actions.append(Action("command", " ".join(argv), "default ACL differs", argv))
        if layout_.quota is not None:
            actions.extend(_lustre(layout_.quota, path, gid))
        return actions

    def ensure(self, project: str) -> list[Action]:
        """Make or correct the project's directory; return what was done."""
        path = self.checked_path(project)
        gid = self.gid(project)
        uid = self.owner_uid()
        actions = self.plan(path, self.read(path), uid, gid)
        for action in actions:
            logger.info("Project directory %s: %s (%s)", project, action.shown, action.reason)
            self._apply(path, action, uid, gid)
        return actions

    def _apply(self, path: Path, action: Action, uid: int, gid: int) -> None:
        if action.kind == "mkdir":
            try:
                path.mkdir(mode=0o700)  # closed until owner and mode are set
            except FileExistsError:
                self.checked_path(path.name)  # made meanwhile: only a real directory will do
        elif action.kind in ("chown", "chmod"):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                if action.kind == "chown":
                    os.fchown(fd, uid, gid)
                else:
                    os.fchmod(fd, self.layout.mode)
            finally:
                os.close(fd)
        else:
            self.runner.run(action.argv, mutating=True)

    def keep(self, project: str) -> None:
        """The project's last allocation is gone: its directory stays, and the log says so."""
        path = self.layout.path(project)
        if path.is_dir() and not path.is_symlink():
            logger.info(
                "Project %s has no allocations left; its directory %s and its data are kept "
                "(remove them by hand when no longer needed)",
                project,
                path,
            )


def _lustre(quota: LustreQuota, path: Path, project_id: int) -> list[Action]:
    """Tag the directory tree with the project id, then set the project's quota."""
    pid = str(project_id)
    tag = ("lfs", "project", "-p", pid, "-r", "-s", str(path))
    limits = (
        "lfs", "setquota", "-p", pid,
        "-b", quota.block_soft, "-B", quota.block_hard,
        "-i", str(quota.inode_soft), "-I", str(quota.inode_hard),
        quota.mount_point,
    )  # fmt: skip
    return [
        Action("command", " ".join(tag), "Lustre project id (inherited)", tag),
        Action("command", " ".join(limits), "Lustre project quota", limits),
    ]
