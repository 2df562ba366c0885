"""Who belongs on an allocation, and the steps that add or remove user associations.

Membership sync hands the backend the team's offering usernames; users whose offering
user is not ``OK`` are not added. Each user association of an allocation carries its
``Grant``: one association per partition (the resource's ``partition`` attribute under
QoS enforcement, else the offering's partitions with ``enforce_offering_partitions``,
else ``default_partition``) and, under QoS enforcement, the resource's ``qos`` as its
only and default QoS. Additions follow ``default_account_policy``;
removals first move a user's default account elsewhere, and remove the whole user when
the allocation was its last association. The backend applies these steps and the
diagnostic prints them, so both follow one set of rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation

OK_STATE = "OK"
NO_DEFAULT = ""  # a user's DefaultAccount after SLURM deleted the default's association


@dataclass(frozen=True)
class Grant:
    """What each user association of an allocation carries.

    ``partitions``: one association per partition (``()``: one without a partition);
    ``qos``: the association's only and default QoS (None: inherited from the account).
    """

    partitions: tuple[str, ...] = ()
    qos: str | None = None


@dataclass(frozen=True)
class UserAddition:
    """One ``sacctmgr add user``: these users on these accounts, with this default."""

    users: tuple[str, ...]
    accounts: tuple[str, ...]
    default_account: str | None
    grant: Grant = field(default_factory=Grant)


@dataclass(frozen=True)
class UserRemoval:
    """Remove ``user`` from ``account``; ``new_default`` first, whole user if last.

    ``accounts`` are the accounts whose associations go with it (whose jobs are
    cancelled first): ``account``, and the common default account when the user goes
    as a whole. ``fallback_default`` is where the user's default account goes should
    SLURM still refuse because ``account`` is the default (None when the user goes as
    a whole).
    """

    user: str
    account: str
    new_default: str | None
    whole_user: bool
    accounts: tuple[str, ...] = ()
    fallback_default: str | None = None


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


def resource_attributes(waldur_resource: object) -> dict[str, object]:
    """A Waldur resource's ``attributes`` as a dict ({} when Waldur left them unset)."""
    raw = getattr(waldur_resource, "attributes", None)
    to_dict = getattr(raw, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return dict(raw) if isinstance(raw, dict) else {}


def grant(
    settings: SlurmSettings,
    *,
    offering_partitions: Iterable[str] = (),
    qos_enforced: bool = False,
    attributes: Mapping[str, object] | None = None,
) -> Grant:
    """The associations an allocation's users get; every name is checked first.

    Under QoS enforcement the resource's ``partition`` and ``qos`` attributes decide;
    without a ``partition`` attribute (or without enforcement) the offering's
    partitions apply when ``enforce_offering_partitions`` is set, else
    ``default_partition``.
    """
    attrs = attributes or {}
    qos = None
    partitions: tuple[str, ...] = ()
    if qos_enforced:
        if attrs.get("qos"):
            qos = validation.resource_qos(attrs["qos"], "resource attribute qos")
        if attrs.get("partition"):
            partitions = (
                validation.offering_partition(attrs["partition"], "resource attribute partition"),
            )
    if not partitions and settings.enforce_offering_partitions:
        names = {validation.offering_partition(name) for name in offering_partitions}
        partitions = tuple(sorted(names))
    if not partitions and settings.default_partition:
        partitions = (settings.default_partition,)
    return Grant(partitions, qos)


def missing_partitions(grant_: Grant, have: Iterable[str]) -> tuple[str, ...]:
    """The partitions of ``grant_`` a user lacks, given the partitions it has (``''``: none)."""
    present = set(have)
    wanted = grant_.partitions or ("",)
    return tuple(p for p in wanted if p not in present)


def completions(
    account: str,
    present: Iterable[str],
    grant_: Grant,
    partitions_of: Mapping[str, set[str]],
) -> list[UserAddition]:
    """The ``add user`` commands giving users already on ``account`` the partitions they lack.

    Users lacking the same partitions share one command. A user with every partition
    of the grant needs nothing, so membership sync never re-adds a complete user.
    """
    if not grant_.partitions:
        return []
    by_missing: dict[tuple[str, ...], list[str]] = {}
    for user in sorted(present):
        missing = missing_partitions(grant_, partitions_of.get(user, set()))
        if missing:
            by_missing.setdefault(missing, []).append(user)
    return [
        UserAddition(tuple(users), (account,), None, Grant(missing, grant_.qos))
        for missing, users in sorted(by_missing.items())
    ]


def additions(
    account: str,
    new: Sequence[str],
    settings: SlurmSettings,
    user_accounts: Mapping[str, set[str]],
    grant_: Grant | None = None,
) -> list[UserAddition]:
    """The ``add user`` commands that associate ``new`` users with ``account``.

    One command where possible. A QoS grant belongs to the allocation only, so with
    the ``common`` policy the default account is then added in a command of its own.
    """
    users = tuple(sorted(new))
    if not users:
        return []
    given = grant_ or Grant()
    only_this = (account,)
    policy = settings.default_account_policy
    if policy == "common":
        default = settings.default_account
        assert default is not None  # noqa: S101 - load_settings guarantees it
        if given.qos is None:
            return [UserAddition(users, (account, default), default, given)]
        return [
            UserAddition(users, (default,), default, Grant(given.partitions)),
            UserAddition(users, only_this, None, given),
        ]
    if policy == "individual":
        unknown = tuple(u for u in users if u not in user_accounts)
        known = tuple(u for u in users if u in user_accounts)
        return [
            step
            for step in (
                UserAddition(unknown, only_this, account, given),
                UserAddition(known, only_this, None, given),
            )
            if step.users
        ]
    return [UserAddition(users, only_this, None, given)]


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

    The same on every SLURM release, although they differ where a default account
    goes: deleting the default association of a user who has others, 22.05 does it and
    leaves the user with an empty default account, 24.11 refuses; deleting an account
    that is a user's only association, 22.05 drops the user too, 24.11 keeps the user
    with an empty default account. So a user whose last association this is (apart from
    the plugin's common default account) leaves as a whole: every association goes, one
    command each, the default account last (see ``deletion_order``); and a user who
    stays keeps a default account: when it is ``account``, or empty (as either release
    can leave it), it moves to the common default account if the user has it, else to
    the user's first other account, before the association goes.
    """
    common_default = settings.default_account
    ours = {plugin_default(settings)} - {None}
    steps = []
    for user in sorted(present):
        others = sorted(user_accounts.get(user, set()) - {account})
        if not set(others) - ours:
            steps.append(UserRemoval(user, account, None, True, (account, *others)))
            continue
        fallback = common_default if common_default in others else others[0]
        new_default = fallback if defaults.get(user) in (account, NO_DEFAULT) else None
        steps.append(UserRemoval(user, account, new_default, False, (account,), fallback))
    return steps


def deletion_order(step: UserRemoval, default_account: str | None) -> list[str]:
    """The accounts whose association with ``step.user`` is deleted, one command each.

    A user leaving as a whole loses ``step.accounts``, the default account last: a
    request that deletes a user's default-account association while another association
    of the user on the cluster remains is refused (by 22.05 even when the same request
    deletes the others too, by 24.11 always), while deleting the last association is
    accepted by both.
    """
    if not step.whole_user:
        return [step.account]
    return sorted(step.accounts, key=lambda account: account == default_account)
