"""Where an allocation lives in the account tree: names, parents and the chain above it.

The backend creates ``customer → project → allocation`` below ``root_account`` (or the
allocation directly below ``parent_account``); the diagnostic asks the same functions
where an allocation should be and what creating it again would add.
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
    """The parent an allocation belongs under: ``parent_account`` or its project account."""
    return settings.parent_account or project_account(settings, project_slug)


def parent_chain(
    settings: SlurmSettings,
    *,
    customer_slug: str,
    customer_name: str,
    project_slug: str,
    project_name: str,
) -> list[AccountSpec]:
    """The customer and project accounts above an allocation (none in a flat hierarchy)."""
    if settings.parent_account:
        return []
    customer = validation.account_name(
        customer_account(settings, customer_slug), "customer account"
    )
    project = validation.account_name(project_account(settings, project_slug), "project account")
    return [
        AccountSpec(
            customer,
            validation.description(customer_name, customer),
            customer,
            settings.root_account,
        ),
        AccountSpec(project, validation.description(project_name, project), customer, customer),
    ]


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
