"""Terminating an allocation in SLURM: its jobs and users, then its account and own QoS.

With ``soft_delete`` the account stays, emptied, with zero limits.
"""

from __future__ import annotations

from collections.abc import Callable

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.allocation.limit_sync import AllocationLimits
from waldur_site_agent_slurm.allocation.member_sync import retry_while_jobs_active


def remove_allocation(
    limits: AllocationLimits, account: str, empty: Callable[[], None], *, soft: bool
) -> bool:
    """Empty the account (``empty``: cancel its jobs, remove its users), then remove it.

    The own QoS (``qos_management``) goes after the account: SLURM refuses a QoS in use.
    Returns False after a soft delete, which keeps everything above the account too.
    """
    client = limits.client
    if client.snapshot().account(account) is None:
        logger.warning("Account %s does not exist; nothing to delete", account)
    elif soft:
        empty()
        zero = dict.fromkeys(limits.settings.tres_components(), 0)
        limits.apply(account, limits.to_tres(zero))
        return False
    else:
        empty()
        retry_while_jobs_active(lambda: client.remove_account(account), account)
    if limits.settings.managed_qos is not None and not soft:
        client.remove_qos(account)
    return True
