"""POSIX groups per project in LDAP: named after the project account, members its users.

A project's allocations share one group, ``<project_group_prefix><project account>``.
It is made before the first allocation's SLURM account, holds as ``memberUid`` every
user of the project's allocations, and goes when the last allocation goes. Its gid is
what the project's directory is owned by: ``project_group_gid`` is the group source
other site features ask.

Names are checked before anything reaches the directory; the client escapes them in
DNs and filters as well. Every operation is idempotent: an existing group is adopted,
adding a member twice or removing an absent one changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import InvalidValueError
from waldur_site_agent_slurm.site.ldap_settings import (
    GROUP_NAME_RE,
    MAX_GROUP_NAME,
    LdapSettings,
)
from waldur_site_agent_slurm.slurm import validation


class GidSource(Protocol):
    """Where a project's group id comes from (the LDAP project group here)."""

    def project_group_gid(self, project_account: str) -> int | None:
        """The gid of the project's group, or None when it has none."""


class Directory(Protocol):
    """The LDAP operations project groups need (``ProjectGroupClient``)."""

    def group(self, name: str) -> tuple[int, frozenset[str]] | None:
        """The group's gid and members, or None."""

    def create_group(self, name: str) -> int:
        """Create the group with a free gid; return it."""

    def add_user_to_group(self, group_name: str, username: str) -> None:
        """Add ``memberUid: username`` (no change when present)."""

    def remove_user_from_group(self, group_name: str, username: str) -> None:
        """Remove ``memberUid: username`` (no change when absent)."""

    def delete_group(self, group_name: str) -> None:
        """Delete the group entry."""

    def ping(self) -> bool:
        """Connect and bind."""


@dataclass(frozen=True)
class ProjectGroup:
    """A project's POSIX group as the directory holds it."""

    project: str
    name: str
    gid: int
    members: frozenset[str]
    created: bool = False


def _client(settings: LdapSettings) -> Directory:
    from waldur_site_agent_slurm.site.ldap_client import ProjectGroupClient  # noqa: PLC0415

    return ProjectGroupClient(settings)


class ProjectGroups:
    """The project groups of one offering's directory."""

    def __init__(
        self,
        settings: LdapSettings,
        directory: Callable[[LdapSettings], Directory] = _client,
    ) -> None:
        """Connect lazily: nothing reaches the directory until a group is needed."""
        self.settings = settings
        self._make_directory = directory
        self._directory: Directory | None = None

    @property
    def directory(self) -> Directory:
        """The directory client, built on first use."""
        if self._directory is None:
            self._directory = self._make_directory(self.settings)
        return self._directory

    def group_name(self, project_account: str) -> str:
        """``<project_group_prefix><project account>``, checked as a POSIX group name."""
        account = validation.account_name(project_account, "project account")
        name = f"{self.settings.group_prefix}{account}"
        if len(name) > MAX_GROUP_NAME or not GROUP_NAME_RE.fullmatch(name):
            raise InvalidValueError(
                "LDAP project group name",
                name,
                f"a POSIX group name has at most {MAX_GROUP_NAME} lower-case letters, digits, "
                "'_' and '-', starting with a letter or '_' (set "
                "backend_settings.ldap.project_group_prefix, or a shorter project_prefix)",
            )
        return name

    def find(self, project_account: str) -> ProjectGroup | None:
        """The project's group, or None."""
        name = self.group_name(project_account)
        found = self.directory.group(name)
        return None if found is None else ProjectGroup(project_account, name, *found)

    def ensure(self, project_account: str) -> ProjectGroup:
        """The project's group, created (with a free gid) when missing."""
        group = self.find(project_account)
        if group is not None:
            return group
        name = self.group_name(project_account)
        gid = self.directory.create_group(name)
        logger.info("Created LDAP project group %s with gid %s", name, gid)
        return ProjectGroup(project_account, name, gid, frozenset(), created=True)

    def add_members(self, project_account: str, usernames: Iterable[str]) -> list[str]:
        """Add the users the group lacks (the group is created if missing); the added ones."""
        wanted = validation.usernames(set(usernames))
        if not wanted:
            return []
        group = self.ensure(project_account)
        todo = sorted(wanted - group.members)
        for user in todo:
            self.directory.add_user_to_group(group.name, user)
        if todo:
            logger.info("Added %s to LDAP group %s", ", ".join(todo), group.name)
        return todo

    def remove_members(self, project_account: str, usernames: Iterable[str]) -> list[str]:
        """Remove the users that are members; the removed ones."""
        unwanted = validation.usernames(set(usernames))
        if not unwanted:
            return []
        group = self.find(project_account)
        if group is None:
            return []
        todo = sorted(unwanted & group.members)
        for user in todo:
            self.directory.remove_user_from_group(group.name, user)
        if todo:
            logger.info("Removed %s from LDAP group %s", ", ".join(todo), group.name)
        return todo

    def delete(self, project_account: str, *, only_empty: bool = False) -> bool:
        """Delete the project's group; False when there is none (or, ``only_empty``, members)."""
        group = self.find(project_account)
        if group is None or (only_empty and group.members):
            return False
        self.directory.delete_group(group.name)
        logger.info("Deleted LDAP project group %s (gid %s)", group.name, group.gid)
        return True

    def project_group_gid(self, project_account: str) -> int | None:
        """The gid of the project's group, or None when it has none (``GidSource``)."""
        group = self.find(project_account)
        return None if group is None else group.gid

    def check(self) -> None:
        """Connect and bind; raise ``LdapError`` / ``LdapUnavailableError`` when that fails."""
        self.directory.ping()
