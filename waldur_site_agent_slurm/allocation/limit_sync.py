"""An allocation's limits in SLURM: read, written where they live, and pushed to Waldur.

GrpTRESMins live on the allocation's account, or on its own QoS with
``apply_limits_to_qos``; a write sets only the TRES that differ. Prepaid components
(``accounting_type: one``) get their limit once per month from ``created`` to
``end_date``. Users' MaxTRESMins are on their associations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_set_limits,
)
from waldur_api_client.models.resource import Resource as WaldurResource
from waldur_api_client.models.resource_set_limits_request import ResourceSetLimitsRequest
from waldur_api_client.models.resource_set_limits_request_limits import (
    ResourceSetLimitsRequestLimits,
)
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation import limits, prepaid
from waldur_site_agent_slurm.allocation.resource_fields import limits_of, text
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient


def has_prepaid(settings: SlurmSettings) -> bool:
    """True when a component is prepaid (``accounting_type: one``)."""
    return any(comp.prepaid for comp in settings.components.values())


class AllocationLimits:
    """Limits of allocations through ``client``; ``zone`` cuts prepaid months."""

    def __init__(
        self, client: AccountingClient, settings: SlurmSettings, zone: Callable[[], str]
    ) -> None:
        """Read and write through ``client``; ``zone`` is asked only for prepaid months."""
        self.client = client
        self.settings = settings
        self.zone = zone

    def paid_months(self, waldur_resource: WaldurResource | None) -> int:
        """Months of limit a prepaid component gets: from ``created`` to ``end_date``."""
        if waldur_resource is None or not has_prepaid(self.settings):
            return 1
        return prepaid.resource_months(
            waldur_resource.created, waldur_resource.end_date, self.zone()
        )

    def collect(self, waldur_resource: WaldurResource) -> tuple[dict[str, int], dict[str, int]]:
        """GrpTRESMins for an allocation: Waldur limits × factor (× months if prepaid)."""
        requested = limits.requested(limits_of(waldur_resource), self.settings.components)
        tres_limits, waldur_limits = limits.to_tres_minutes(
            requested,
            self.settings.components,
            self.client.tres_names(),
            self.paid_months(waldur_resource),
        )
        return tres_limits, {k: int(v) if v.is_integer() else v for k, v in waldur_limits.items()}  # type: ignore[misc]

    def prepaid(self, waldur_resource: WaldurResource) -> dict[str, int]:
        """The GrpTRESMins of the prepaid components for the resource's current end date."""
        tres_limits, _ = self.collect(waldur_resource)
        paid = limits.prepaid_tres(self.settings.components)
        return {t: v for t, v in tres_limits.items() if t in paid}

    def to_tres(self, limits_: dict[str, int]) -> dict[str, int]:
        """Waldur limits as TRES-minutes."""
        tres_limits, _ = limits.to_tres_minutes(
            limits_, self.settings.components, self.client.tres_names()
        )
        return tres_limits

    def on_qos(self) -> bool:
        """Whether GrpTRESMins live on the allocation's QoS (``apply_limits_to_qos``)."""
        return self.settings.managed_qos is not None and self.settings.managed_qos.limits_on_qos

    def grp_tres_mins(self, account: str) -> dict[str, int]:
        """The allocation's GrpTRESMins: on its account, or on its QoS (apply_limits_to_qos)."""
        if not self.on_qos():
            return self.client.get_resource_limits(account)
        found = self.client.qos_record(account)
        return dict(found.grp_tres_mins) if found else {}

    def apply(self, account: str, tres_limits: dict[str, int]) -> None:
        """Set the allocation's GrpTRESMins, writing only the TRES that differ."""
        current = self.grp_tres_mins(account)
        todo = limits.changes(current, tres_limits)
        if not todo:
            logger.info("Limits of %s are already %s", account, tres_limits)
        elif self.on_qos():
            self.client.modify_qos(account, {"GrpTRESMins": limits.format_setting(todo)})
        else:
            self.client.modify_account(account, {"GrpTRESMins": limits.format_setting(todo)})

    def in_waldur_units(
        self, account: object, waldur_resource: WaldurResource | None
    ) -> dict[str, int]:
        """The allocation's GrpTRESMins in whole Waldur units (prepaid: per month of one)."""
        tres_limits = self.grp_tres_mins(validation.account_name(text(account)))
        months = self.paid_months(waldur_resource)
        return limits.whole_units(limits.to_waldur(tres_limits, self.settings.components, months))

    def set_user_limits(self, account: str, username: str, tres_limits: dict[str, int]) -> None:
        """Replace the user's MaxTRESMins with ``tres_limits`` ({} clears them)."""
        state = self.client.snapshot().account(account)
        record = state.users.get(username) if state else None
        if record is None:
            raise BackendError(f"User {username} has no association with {account}")
        todo = limits.replacement(record.max_tres_mins, tres_limits)
        if todo:
            setting = {"MaxTRESMins": limits.format_setting(todo)}
            self.client.modify_user(username, account, setting)

    def user_limits(self, account: str) -> dict[str, dict[str, int]]:
        """Each user's MaxTRESMins in Waldur units."""
        raw = self.client.get_resource_user_limits(account)
        return {
            user: limits.to_waldur(values, self.settings.components)  # type: ignore[misc]
            for user, values in raw.items()
        }


def push_to_waldur(
    waldur_resource: WaldurResource, backend: dict[str, int], waldur_rest_client: Any
) -> None:
    """Set the resource's limits in Waldur to ``backend`` where they differ."""
    update = limits.waldur_update(limits_of(waldur_resource), backend)
    if update is None:
        logger.info("Limits of %s are in sync with Waldur", waldur_resource.backend_id)
        return
    logger.info("Setting Waldur limits of %s to %s", waldur_resource.backend_id, update)
    marketplace_provider_resources_set_limits.sync(
        uuid=text(getattr(waldur_resource.uuid, "hex", "")),  # type: ignore[arg-type]
        client=waldur_rest_client,
        body=ResourceSetLimitsRequest(limits=ResourceSetLimitsRequestLimits.from_dict(update)),
    )
