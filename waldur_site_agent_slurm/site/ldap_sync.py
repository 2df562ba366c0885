"""Which project-group changes SLURM's associations call for.

A project's group holds the users of all its allocations, so a user leaves it only with
their last association under the project, and the group goes only with the project's
last allocation. Both are read from the cycle's association snapshot: in either account
hierarchy an allocation sits directly under its project account.
"""

from __future__ import annotations

from collections.abc import Iterable

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.site.ldap_groups import ProjectGroup, ProjectGroups
from waldur_site_agent_slurm.slurm.client import AssociationSnapshot


def leaving_project(
    snapshot: AssociationSnapshot, project: str, account: str, usernames: Iterable[str]
) -> set[str]:
    """The users among ``usernames`` with no association under ``project`` but ``account``."""
    state = snapshot.account(project)
    staying: set[str] = set()
    for other in state.children if state else []:
        sibling = snapshot.account(other)
        if other != account and sibling is not None:
            staying.update(sibling.users)
    return set(usernames) - staying


def remove_group_if_unused(
    groups: ProjectGroups, snapshot: AssociationSnapshot, project: str
) -> bool:
    """Delete the project's group once the project has no allocation left; True if deleted."""
    state = snapshot.account(project)
    if state is not None and state.children:
        return False
    return groups.delete(project)


def undo_group(groups: ProjectGroups, group: ProjectGroup) -> None:
    """Delete a group a failed create made, if it is still empty; never raise."""
    try:
        if groups.delete(group.project, only_empty=True):
            logger.info("Removed LDAP group %s again: the allocation was not created", group.name)
    except BackendError as err:
        logger.error("Could not remove LDAP group %s, remove it by hand: %s", group.name, err)
