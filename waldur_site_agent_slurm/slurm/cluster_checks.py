"""What the configuration names that the cluster lacks: its cluster, TRES, QoS, accounts.

``ping`` and the start-up ``diagnostics`` report these problems, each with what to do.
"""

from __future__ import annotations

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm.accounting import AccountingClient

LEVEL_QOS = ("qos_default", "qos_downscaled", "qos_paused")


def usable(client: AccountingClient, settings: SlurmSettings, raise_exception: bool) -> bool:
    """Whether SLURM's accounting database answers (and knows the cluster); logs why not.

    ``raise_exception``: a ``BackendError`` naming the problems instead of False.
    """
    try:
        problems = ping_problems(client, settings)
    except BackendError as err:
        problems = [str(err)]
    if problems and raise_exception:
        raise BackendError("; ".join(problems))
    for problem in problems:
        logger.error("SLURM is not usable: %s", problem)
    return not problems


def ping_problems(client: AccountingClient, settings: SlurmSettings) -> list[str]:
    """The accounting database must know ``cluster_name`` (when set)."""
    clusters = client.clusters()
    name = settings.cluster_name
    if name and name not in clusters:
        return [
            f"cluster {name!r} is not in the accounting database (known: "
            f"{', '.join(sorted(clusters)) or 'none'}); check cluster_name"
        ]
    return []


def configuration_problems(client: AccountingClient, settings: SlurmSettings) -> list[str]:
    """Components without an accounted TRES, and QoS and accounts that do not exist."""
    problems = []
    known = client.tres_names()
    for key, comp in settings.components.items():
        if not comp.targets:
            problems.append(f"component {key} maps to no TRES (set tres_name)")
        for tres in (t.tres for t in comp.targets if t.tres not in known):
            problems.append(
                f"component {key} maps to TRES {tres}, which the cluster does not "
                f"account (known: {', '.join(sorted(known))}); add it to "
                "AccountingStorageTRES or set tres_name"
            )
    existing_qos = client.qos_names()
    management = settings.qos_management
    # Under skip_qos_swap the level QoS are never put on an account; swapping with
    # qos_management restores an allocation to its own QoS, never to qos_default.
    swapped: tuple[str, ...] = () if management and management.skip_qos_swap else LEVEL_QOS
    if settings.managed_qos is not None:
        swapped = tuple(field for field in swapped if field != "qos_default")
    for field in swapped:
        name = getattr(settings, field)
        if name not in existing_qos:
            problems.append(f"{field} {name!r} does not exist: sacctmgr add qos {name}")
    own = settings.managed_qos
    for name in own.additional_qos if own else ():
        if name not in existing_qos:
            where = f"qos_management.additional_qos {name!r}"
            problems.append(f"{where} does not exist: sacctmgr add qos {name}")
    snapshot = client.snapshot()
    for field in ("root_account", "parent_account", "default_account"):
        name = getattr(settings, field)
        if name and snapshot.account(name) is None:
            problems.append(f"{field} {name!r} does not exist: sacctmgr add account {name}")
    return problems
