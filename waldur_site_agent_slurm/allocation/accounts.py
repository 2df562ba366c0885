"""Where an allocation lives in the account tree: names, parents and the chain above it.

The backend creates ``customer → project → allocation`` below ``root_account``, or, in a
flat hierarchy, ``project → allocation`` below ``parent_account`` (no customer account).
Order processing, project moves, usage reading and the diagnostic all ask these functions
where an account belongs, so the tree has one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation


@dataclass(frozen=True)
class AccountSpec:
    """An account as ``sacctmgr add account`` creates it."""

    name: str
    description: str
    organization: str
    parent: str


def customer_account(settings: SlurmSettings, slug: str) -> str:
    """The customer account of a Waldur organization slug."""
    return f"{settings.customer_prefix}{slug}".lower()


def project_account(settings: SlurmSettings, slug: str) -> str:
    """The project account of a Waldur project slug."""
    return f"{settings.project_prefix}{slug}".lower()


def allocation_account(settings: SlurmSettings, slug: str) -> str:
    """The allocation account of a Waldur resource slug."""
    return f"{settings.allocation_prefix}{slug}".lower()


def allocation_parent(settings: SlurmSettings, project_slug: str) -> str:
    """The parent an allocation belongs under: its project account (in both hierarchies)."""
    return project_account(settings, project_slug)


def project_parent(settings: SlurmSettings, customer_slug: str) -> str:
    """The parent a project account belongs under: ``parent_account`` or its customer."""
    return settings.parent_account or customer_account(settings, customer_slug)


def in_allocation_tier(settings: SlurmSettings, parent: str, grandparent: str) -> bool:
    """Whether an account below ``parent`` (itself below ``grandparent``) is where allocations go.

    In a flat hierarchy allocations sit two levels below ``parent_account`` (under their
    project account); in the customer hierarchy any depth below the root qualifies.
    """
    if settings.parent_account:
        return grandparent == settings.parent_account
    return bool(parent)


def customer_spec(settings: SlurmSettings, customer_slug: str, customer_name: str) -> AccountSpec:
    """The customer account below ``root_account`` (customer hierarchy only)."""
    customer = validation.account_name(
        customer_account(settings, customer_slug), "customer account"
    )
    return AccountSpec(
        customer,
        validation.description(customer_name, customer),
        customer,
        validation.account_name(settings.root_account, "root_account"),
    )


def parent_chain(
    settings: SlurmSettings,
    *,
    customer_slug: str,
    customer_name: str,
    project_slug: str,
    project_name: str,
) -> list[AccountSpec]:
    """The accounts above an allocation, top first: customer and project, or the project.

    A flat project account names itself as organization: no customer account exists, and
    a customer label would go stale when the project moves to another customer.
    """
    project = validation.account_name(project_account(settings, project_slug), "project account")
    description = validation.description(project_name, project)
    if settings.parent_account:
        parent = validation.account_name(settings.parent_account, "parent_account")
        return [AccountSpec(project, description, project, parent)]
    customer = customer_spec(settings, customer_slug, customer_name)
    return [customer, AccountSpec(project, description, customer.name, customer.name)]


def allocation_spec(
    settings: SlurmSettings, name: str, resource_name: str, project_slug: str
) -> AccountSpec:
    """The allocation account as order processing creates it (organization: its project)."""
    account = validation.account_name(name, "allocation account")
    organization = validation.account_name(project_account(settings, project_slug), "organization")
    return AccountSpec(
        account,
        validation.description(resource_name, account),
        organization,
        validation.account_name(allocation_parent(settings, project_slug), "parent account"),
    )
