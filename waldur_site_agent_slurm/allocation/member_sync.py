"""Applying the membership steps to SLURM: user associations added and removed.

``membership`` decides the steps; this module runs them through the client. A user who
leaves has their active jobs under the allocation cancelled first, and a removal SLURM
refuses while those jobs are still ending is retried for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation import membership
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.errors import SlurmCommandError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient, AssociationSnapshot
from waldur_site_agent_slurm.slurm.answers import Answer

JOB_WAIT_ATTEMPTS = 15
JOB_WAIT_SECONDS = 2.0


def retry_while_jobs_active(action: Callable[[], None], what: str) -> None:
    """Run ``action``; while SLURM refuses because jobs are still ending, wait and retry."""
    for attempt in range(1, JOB_WAIT_ATTEMPTS + 1):
        try:
            action()
            return
        except SlurmCommandError as err:
            if err.answer is not Answer.JOBS_ACTIVE or attempt == JOB_WAIT_ATTEMPTS:
                raise
            logger.info("Jobs of %s are still ending (attempt %s); waiting", what, attempt)
            time.sleep(JOB_WAIT_SECONDS)


def active_jobs(client: AccountingClient, account: str, user: str) -> list[str]:
    """Ids of the user's pending, running and suspended jobs under the account."""
    name = validation.account_name(account, "allocation account")
    return client.active_jobs(name, validation.username(user))


def cancel_jobs(client: AccountingClient, account: str, user: str) -> None:
    """Cancel the user's active jobs under the account (no command when there are none)."""
    jobs = active_jobs(client, account, user)
    if jobs:
        logger.info("Cancelling jobs %s of %s in %s", ", ".join(jobs), user, account)
        client.cancel_user_jobs(user, account)


def add(client: AccountingClient, steps: Iterable[membership.UserAddition]) -> None:
    """Add the user associations of ``steps``."""
    for step in steps:
        client.add_users(
            step.users,
            step.accounts,
            step.default_account,
            partitions=step.grant.partitions,
            qos=step.grant.qos,
        )


def add_users(
    client: AccountingClient,
    settings: SlurmSettings,
    account: str,
    wanted: set[str],
    grant: Callable[[], membership.Grant],
) -> list[str]:
    """Associate ``wanted`` with ``account``; complete the associations members lack.

    ``grant`` gives what the associations carry, once the account is found. Returns the
    users who were not members before.
    """
    snapshot = client.snapshot()
    state = snapshot.account(account)
    if state is None:
        raise BackendError(f"Account {account} does not exist; cannot add users")
    carried = grant()
    new = sorted(wanted - set(state.users))
    steps = membership.additions(account, new, settings, snapshot.user_accounts, carried)
    steps += membership.completions(account, wanted & set(state.users), carried, state.partitions)
    add(client, steps)
    return new


def complete(
    client: AccountingClient, account: str, members: set[str], grant: membership.Grant
) -> set[str] | None:
    """Give the members already on ``account`` the associations they lack.

    Returns those found on the account; None when the account does not exist.
    """
    state = client.snapshot().account(account)
    if state is None:
        return None
    present = members & set(state.users)
    add(client, membership.completions(account, present, grant, state.partitions))
    return present


def remove_users(
    client: AccountingClient,
    settings: SlurmSettings,
    account: str,
    usernames: set[str],
    snapshot: AssociationSnapshot,
) -> list[str]:
    """Remove the users' associations with ``account`` as ``snapshot`` found them.

    A user's default account moves elsewhere first; a user whose last association this
    is goes as a whole. Returns the users removed.
    """
    state = snapshot.account(account)
    present = sorted(usernames & set(state.users)) if state else []
    if not present:
        return []
    defaults = client.user_defaults(present)
    removed = []
    for step in membership.removals(account, present, snapshot.user_accounts, defaults, settings):
        user = step.user
        for where in step.accounts:
            cancel_jobs(client, where, user)
        if step.new_default:
            client.modify_user(user, None, {"DefaultAccount": step.new_default})
        if step.whole_user:
            for where in membership.deletion_order(step, defaults.get(user)):
                retry_while_jobs_active(
                    partial(client.remove_user, user, where), f"{user} in {where}"
                )
            removed.append(user)
            continue
        remove = partial(client.remove_user, user, account)
        try:
            retry_while_jobs_active(remove, f"{user} in {account}")
        except SlurmCommandError as err:
            if err.answer is not Answer.DEFAULT_ACCOUNT or step.fallback_default is None:
                raise
            # The default changed since it was read: move it, then remove again.
            logger.info(
                "%s is the default account of %s; moving it to %s first",
                account,
                user,
                step.fallback_default,
            )
            client.modify_user(user, None, {"DefaultAccount": step.fallback_default})
            retry_while_jobs_active(remove, f"{user} in {account}")
        removed.append(user)
    return removed
