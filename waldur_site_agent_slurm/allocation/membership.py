"""Who belongs on an allocation, and the steps that add or remove user associations.

Membership sync hands the backend the team's offering usernames; users whose offering
user is not ``OK`` are not added. Additions follow ``default_account_policy``;
removals first move a user's default account elsewhere, and remove the whole user when
the allocation was its last association. The backend applies these steps and the
diagnostic prints them, so both follow one set of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.config import SlurmSettings

OK_STATE = "OK"


@dataclass(frozen=True)
class UserAddition:
    """One ``sacctmgr add user``: these users on these accounts, with this default."""

    users: tuple[str, ...]
    accounts: tuple[str, ...]
    default_account: str | None


@dataclass(frozen=True)
class UserRemoval:
    """Remove ``user`` from ``account``; ``new_default`` first, whole user if last.

    ``accounts`` are the accounts whose associations go with it (whose jobs are
    cancelled first): ``account``, and the common default account when the user goes
    as a whole.
    """

    user: str
    account: str
    new_default: str | None
    whole_user: bool
    accounts: tuple[str, ...] = ()


def state_name(state: object) -> str | None:
    """An offering user state as text (enums carry it in ``value``); None when unknown."""
    if state is None:
        return None
    return str(getattr(state, "value", state))


def wanted_users(usernames: Iterable[str], states: Mapping[str, object]) -> set[str]:
    """The users to associate: every one whose offering user state is OK or unknown."""
    wanted = set()
    for name in usernames:
        state = state_name(states.get(name))
        if state is not None and state != OK_STATE:
            logger.info("Skipping user %s: offering user state is %s", name, state)
            continue
        wanted.add(name)
    return wanted


def additions(
    account: str,
    new: Sequence[str],
    settings: SlurmSettings,
    user_accounts: Mapping[str, set[str]],
) -> list[UserAddition]:
    """The ``add user`` commands that associate ``new`` users with ``account``."""
    users = tuple(sorted(new))
    if not users:
        return []
    only_this = (account,)
    policy = settings.default_account_policy
    if policy == "common":
        default = settings.default_account
        assert default is not None  # noqa: S101 - load_settings guarantees it
        return [UserAddition(users, (account, default), default)]
    if policy == "individual":
        unknown = tuple(u for u in users if u not in user_accounts)
        known = tuple(u for u in users if u in user_accounts)
        return [
            step
            for step in (
                UserAddition(unknown, only_this, account),
                UserAddition(known, only_this, None),
            )
            if step.users
        ]
    return [UserAddition(users, only_this, None)]


def plugin_default(settings: SlurmSettings) -> str | None:
    """The default account whose association the plugin adds with every user, if any.

    Under the ``common`` policy each user is associated with ``default_account`` too;
    that association goes when the user leaves their last allocation, unless
    ``keep_default_account_association`` keeps it.
    """
    if settings.default_account_policy != "common" or settings.keep_default_account_association:
        return None
    return settings.default_account


def removals(
    account: str,
    present: Sequence[str],
    user_accounts: Mapping[str, set[str]],
    defaults: Mapping[str, str],
    settings: SlurmSettings,
) -> list[UserRemoval]:
    """How to remove each of ``present`` from ``account``, in order.

    A user whose only other association is the plugin's common default account leaves
    as a whole (``delete user name=U`` drops every association at once: SLURM 22.05
    refuses to delete a user's default-account association on its own).
    """
    common_default = settings.default_account
    ours = {plugin_default(settings)} - {None}
    steps = []
    for user in sorted(present):
        others = sorted(user_accounts.get(user, set()) - {account})
        if not set(others) - ours:
            steps.append(UserRemoval(user, account, None, True, (account, *others)))
            continue
        new_default = None
        if defaults.get(user) == account:
            new_default = common_default if common_default in others else others[0]
        steps.append(UserRemoval(user, account, new_default, False, (account,)))
    return steps
