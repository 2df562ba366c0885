"""A project's host-side features, kept in step with its allocations: LDAP group, directory.

Both are optional: ``groups`` is None without ``backend_settings.ldap`` and
``directories`` None without ``project_directory``; the steps of a missing feature do
nothing. ``project`` is the project account (None without ``ldap`` where the group is
meant).
"""

from __future__ import annotations

from collections.abc import Iterable

from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.site import ldap_sync, projectdirs
from waldur_site_agent_slurm.site.ldap_groups import ProjectGroup, ProjectGroups
from waldur_site_agent_slurm.slurm.accounting import AccountingClient, AssociationSnapshot
from waldur_site_agent_slurm.slurm.runner import CommandRunner


class ProjectSite:
    """The LDAP project groups and the project directories of the configuration."""

    def __init__(self, settings: SlurmSettings) -> None:
        """Build what ``settings`` configure; nothing runs yet."""
        # POSIX groups per project in LDAP (backend_settings.ldap), None when not configured.
        self.groups: ProjectGroups | None = ProjectGroups(settings.ldap) if settings.ldap else None
        layout = settings.project_directory_layout
        self.directories: projectdirs.ProjectDirectories | None = None
        if layout is not None:
            site_runner = CommandRunner(timeout=settings.command_timeout, kind="Host")
            self.directories = projectdirs.ProjectDirectories(
                layout, site_runner, self._group_source()
            )

    def _group_source(self) -> projectdirs.GroupSource:
        """Where a project directory's group comes from.

        The POSIX group named after the project account, as the host's NSS knows it; LDAP
        project groups plug their ``gid`` in here.
        """
        if self.groups is not None:
            return self.gid
        return projectdirs.named_group

    def gid(self, project: str) -> int | None:
        """The gid of the project's LDAP group; None without ``ldap`` or without a group."""
        if self.groups is None:
            return None
        return self.groups.project_group_gid(project)

    def check_groups(self) -> None:
        """Raise when the directory is configured but cannot be used."""
        if self.groups is not None:
            self.groups.check()

    def ensure_group(self, project: str | None) -> ProjectGroup | None:
        """The project's group, made when missing."""
        if self.groups is None or project is None:
            return None
        return self.groups.ensure(project)

    def undo_group(self, group: ProjectGroup | None) -> None:
        """Remove the project group a failed create made, unless someone joined it since."""
        if group is None or not group.created or self.groups is None:
            return
        ldap_sync.undo_group(self.groups, group)

    def add_members(self, project: str | None, usernames: set[str]) -> None:
        """Put the users into the project's group (made when missing)."""
        if self.groups is not None and project is not None and usernames:
            self.groups.add_members(project, usernames)

    def remove_leaving(
        self,
        snapshot: AssociationSnapshot,
        project: str | None,
        account: str,
        usernames: Iterable[str],
    ) -> None:
        """Remove from the project's group the users who leave its last allocation."""
        if self.groups is not None and project is not None:
            leaving = ldap_sync.leaving_project(snapshot, project, account, usernames)
            self.groups.remove_members(project, leaving)

    def remove_group_if_unused(self, client: AccountingClient, project: str | None) -> None:
        """Delete the project's group once the project has no allocation left."""
        if self.groups is not None and project is not None:
            ldap_sync.remove_group_if_unused(self.groups, client.snapshot(), project)

    def problems(self) -> list[str]:
        """What keeps the project directories from being made."""
        return self.directories.problems() if self.directories is not None else []

    def keep_directory(self, project: str) -> None:
        """The project's last allocation is gone: its directory stays, and the log says so."""
        if self.directories is not None:
            self.directories.keep(project)
