"""``username_management_backend: waldur``: usernames exactly as Waldur assigns them.

SLURM users are the offering users' usernames, which Waldur sets through the offering's
username generation policy. The agent then needs no username backend, but its default
name, ``base``, belongs to a separate package; without it the agent falls back to its
built-in "unknown" backend (which generates no usernames) and says so in a warning
every membership cycle. This backend is that same fallback under a name a site can
configure on purpose: the agent generates no usernames and syncs no user profiles.
"""

from __future__ import annotations

from waldur_site_agent.backend.backends import UnknownUsernameManagementBackend


class WaldurUsernames(UnknownUsernameManagementBackend):
    """Usernames come from Waldur; nothing is generated or synced locally."""
