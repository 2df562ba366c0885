"""The accounts a Waldur resource names: its project account and the chain above it.

``accounts`` builds names from slugs; this module reads the slugs off the resource and
checks the names, so a name that cannot go on a command line stops before any command.
"""

from __future__ import annotations

from waldur_api_client.models.resource import Resource as WaldurResource
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation import accounts
from waldur_site_agent_slurm.allocation.resource_fields import text
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation


def project_of(settings: SlurmSettings, waldur_resource: WaldurResource, slug: str = "") -> str:
    """The allocation's project account, name checked (``slug`` overrides the resource's)."""
    project = accounts.project_account(settings, slug or text(waldur_resource.project_slug))
    return validation.account_name(project, "project account")


def group_project(settings: SlurmSettings, waldur_resource: WaldurResource, slug: str = "") -> str:
    """The project account whose LDAP group the resource's users belong to.

    ``slug`` overrides the resource's project slug (a terminate order names the project
    itself); without either the group cannot be found.
    """
    if not (slug or text(waldur_resource.project_slug)):
        raise BackendError(
            f"Resource {waldur_resource.uuid} names no project: its LDAP project group "
            "cannot be found"
        )
    return project_of(settings, waldur_resource, slug)


def parent_chain(
    settings: SlurmSettings, waldur_resource: WaldurResource
) -> list[accounts.AccountSpec]:
    """The customer and project accounts above the allocation, names checked."""
    return accounts.parent_chain(
        settings,
        customer_slug=text(waldur_resource.customer_slug),
        customer_name=text(waldur_resource.customer_name),
        project_slug=text(waldur_resource.project_slug),
        project_name=text(waldur_resource.project_name),
    )


def moved_project(
    settings: SlurmSettings, waldur_resource: WaldurResource
) -> tuple[str, accounts.AccountSpec] | None:
    """The project account and the customer account it belongs under (names checked).

    None, with a warning, when the resource names no customer or project.
    """
    customer_slug = text(waldur_resource.customer_slug)
    project_slug = text(waldur_resource.project_slug)
    if not customer_slug or not project_slug:
        logger.warning("Resource %s names no customer or project", waldur_resource.uuid)
        return None
    customer = accounts.customer_spec(settings, customer_slug, text(waldur_resource.customer_name))
    project = validation.account_name(
        accounts.project_account(settings, project_slug), "project account"
    )
    return project, customer
