"""Which users need a home directory made, decided before any command runs.

The framework's ``BaseBackend.create_user_homedirs`` makes them (``mkhomedir_helper``,
then the ``homedir_quota``); this module picks the users it is given. Usernames are
checked first, so no path is ever built from a name that could leave the base path,
and a user whose home directory already exists is left out: no command, no quota
change.
"""

from __future__ import annotations

import pwd
from collections.abc import Iterable, Mapping
from pathlib import Path

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.allocation.membership import OK_STATE, state_name
from waldur_site_agent_slurm.slurm import validation


def home_path(username: str, base_path: str | None) -> Path | None:
    """Where ``username``'s home directory is: ``base_path/<user>``, else the passwd entry.

    None when there is no base path and the host does not know the user (then
    ``mkhomedir_helper`` could not make one either).
    """
    if base_path:
        return validation.home_directory(base_path, username)
    name = validation.username(username)
    try:
        return Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        return None


def missing(usernames: Iterable[str], base_path: str | None) -> list[str]:
    """The users among ``usernames`` whose home directory does not exist yet, sorted."""
    names = sorted(validation.usernames(set(usernames)))
    todo = []
    for name in names:
        path = home_path(name, base_path)
        if path is None:
            logger.warning("User %s is unknown to this host; no home directory made", name)
        elif not path.is_dir():
            todo.append(name)
    return todo


def offering_usernames(user_context: Mapping[str, object] | None) -> set[str]:
    """Usernames of the ``OK`` offering users in the framework's ``user_context``."""
    mappings = (user_context or {}).get("offering_user_mappings")
    if not isinstance(mappings, Mapping):
        return set()
    names = set()
    for offering_user in mappings.values():
        username = getattr(offering_user, "username", None)
        state = state_name(getattr(offering_user, "state", None))
        if isinstance(username, str) and username and state in {None, OK_STATE}:
            names.add(username)
    return names
