"""Changes to the account tree: the accounts above an allocation, project moves, cleanup.

``accounts`` says where every account belongs; this module makes SLURM agree with it,
reading the cycle's association snapshot and writing only what is missing or misplaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation.accounts import AccountSpec
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm.accounting import AccountingClient


@dataclass
class CarriedLimits:
    """The GrpTRESMins a create puts on its ``add account``, and whether SLURM took them."""

    account: str
    tres: dict[str, int]
    stored: bool = False

    def cover(self, account: str, tres: dict[str, int]) -> bool:
        """True when ``account`` was just created with exactly ``tres`` (nothing to write)."""
        return self.stored and self.account == account and self.tres == tres


def require_top(client: AccountingClient, settings: SlurmSettings) -> None:
    """The account the tree hangs from (``parent_account`` or ``root_account``) must exist."""
    field = "parent_account" if settings.parent_account else "root_account"
    top = settings.parent_account or settings.root_account
    if client.snapshot().account(top) is None:
        raise BackendError(f"{field} {top!r} does not exist: sacctmgr add account {top}")


def ensure_chain(client: AccountingClient, chain: Sequence[AccountSpec]) -> None:
    """Create the missing accounts of ``chain`` (top first); refuse one under another parent."""
    for spec in chain:
        state = client.snapshot().account(spec.name)
        if state is None:
            client.add_account(spec.name, spec.description, spec.organization, spec.parent)
        elif state.parent != spec.parent:
            raise BackendError(
                f"Account {spec.name} already exists under {state.parent or '(top)'}, not "
                f"under {spec.parent}; move it (sacctmgr modify account {spec.name} set "
                f"parent={spec.parent}) or remove it"
            )


def move_project(client: AccountingClient, project: str, customer: AccountSpec) -> bool:
    """Put the project account under ``customer`` (created first if missing); check it.

    Returns True when the project was moved, False when it already is there or does not
    exist yet. The parent is set in one ``modify`` and read back, so a project never stays
    at the root or under a parent nobody asked for without an error saying so.
    """
    state = client.snapshot().account(project)
    if state is None:
        logger.info("Project account %s does not exist; nothing to move", project)
        return False
    old = state.parent
    if old == customer.name:
        return False
    if client.snapshot().account(customer.name) is None:
        if client.snapshot().account(customer.parent) is None:
            raise BackendError(
                f"Cannot move project account {project} to customer {customer.name}: "
                f"root_account {customer.parent!r} does not exist (sacctmgr add account "
                f"{customer.parent})"
            )
        client.add_account(
            customer.name, customer.description, customer.organization, customer.parent
        )
    command = client.modify_account(project, {"parent": customer.name})
    record = client.account_record(project, fresh=True)
    actual = record.parent if record else None
    if actual != customer.name:
        where = f"under {actual or '(top)'}" if record else "missing"
        raise BackendError(
            f"Project account {project} was moved from {old or '(top)'} to {customer.name}, "
            f"but SLURM now shows it {where}; put it back by hand: {command}"
        )
    logger.info("Moved project account %s from %s to %s", project, old, customer.name)
    return True


def remove_empty_project(client: AccountingClient, settings: SlurmSettings, project: str) -> bool:
    """Remove a project account left without allocations; True when it was removed.

    In a flat hierarchy only a project account directly under ``parent_account`` is ours
    to remove.
    """
    state = client.snapshot().account(project)
    if state is None or state.children:
        return False
    if settings.parent_account and state.parent != settings.parent_account:
        logger.info("Account %s is not under parent_account %s; leaving it", project, state.parent)
        return False
    logger.info("Project account %s has no allocations left; removing it", project)
    client.remove_account(project)
    return True
