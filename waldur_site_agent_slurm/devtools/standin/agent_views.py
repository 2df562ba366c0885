"""How agent-side objects look on the wire.

Identities, services, processors, periodic policies, the current user, the service
provider and the offering's user attribute config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waldur_site_agent_slurm.devtools.standin.records import Identity, Processor, Service, User
from waldur_site_agent_slurm.devtools.standin.scenario import PolicySpec
from waldur_site_agent_slurm.devtools.standin.views import (
    derived_uuid,
    iso,
    service_provider_uuid,
    url,
)

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State


def processor(st: State, rec: Processor, *, nested: bool = False) -> dict[str, Any]:
    """An AgentProcessor (or the NestedAgentProcessor inside a service)."""
    data: dict[str, Any] = {
        "uuid": rec.uuid,
        "url": url(st, "marketplace-site-agent-processors", rec.uuid),
        "name": rec.name,
        "backend_type": rec.backend_type,
        "backend_version": rec.backend_version,
        "created": iso(rec.created),
        "modified": iso(rec.modified),
        "last_run": None,
    }
    if not nested:
        data["service"] = rec.service_uuid
        data["service_name"] = st.db.services[rec.service_uuid].name
    return data


def service(st: State, rec: Service, *, nested: bool = False) -> dict[str, Any]:
    """An AgentService (or the NestedAgentService inside an identity)."""
    data: dict[str, Any] = {
        "uuid": rec.uuid,
        "url": url(st, "marketplace-site-agent-services", rec.uuid),
        "name": rec.name,
        "mode": rec.mode,
        "state": rec.state,
        "created": iso(rec.created),
        "modified": iso(rec.modified),
    }
    if not nested:
        data["identity"] = rec.identity_uuid
        data["identity_name"] = st.db.identities[rec.identity_uuid].name
        data["processors"] = [
            processor(st, p, nested=True)
            for p in st.db.processors.values()
            if p.service_uuid == rec.uuid
        ]
        data["statistics"] = {}
    return data


def identity(st: State, rec: Identity) -> dict[str, Any]:
    """An AgentIdentity."""
    return {
        **rec.fields,
        "uuid": rec.uuid,
        "url": url(st, "marketplace-site-agent-identities", rec.uuid),
        "offering": rec.offering_uuid,
        "created_by": rec.created_by,
        "name": rec.name,
        "created": iso(rec.created),
        "modified": iso(rec.modified),
        "services": [
            service(st, s, nested=True)
            for s in st.db.services.values()
            if s.identity_uuid == rec.uuid
        ],
    }


def policy(st: State, spec: PolicySpec) -> dict[str, Any]:
    """A SlurmPeriodicUsagePolicy."""
    off = st.scenario.offering
    return {
        "uuid": spec.uuid,
        "url": url(st, "marketplace-slurm-periodic-usage-policies", spec.uuid),
        "scope": url(st, "marketplace-provider-offerings", off.uuid),
        "scope_name": off.name,
        "scope_uuid": off.uuid,
        "actions": spec.actions,
        "created": iso(st.started),
        "created_by_full_name": "",
        "created_by_username": "",
        "has_fired": False,
        "fired_datetime": iso(st.started),
        "affected_resources_count": 0,
        "component_limits_set": [{"type": c.type, "limit": c.limit} for c in spec.component_limits],
        "period_name": {1: "1 month", 2: "3 months", 3: "12 months", 4: "Total"}[spec.period],
        "warnings": [],
        "options": {},
        "organization_groups": [],
        "apply_to_all": True,
        "period": spec.period,
        "limit_type": spec.limit_type,
        "tres_billing_enabled": spec.tres_billing_enabled,
        "tres_billing_weights": {},
        "carryover_factor": spec.carryover_factor,
        "grace_ratio": spec.grace_ratio,
        "carryover_enabled": spec.carryover_enabled,
        "raw_usage_reset": spec.raw_usage_reset,
        "qos_strategy": spec.qos_strategy,
    }


def user_me(st: State, user: User) -> dict[str, Any]:
    """UserMe for the token's owner."""
    first, _, last = user.full_name.partition(" ")
    return {
        "url": url(st, "users", user.uuid),
        "uuid": user.uuid,
        "username": user.username,
        "slug": user.username,
        "full_name": user.full_name,
        "first_name": first,
        "last_name": last,
        "email": user.email,
        "is_staff": user.is_staff,
        "is_active": True,
        "is_support": False,
        "registration_method": "default",
        "date_joined": iso(st.started),
        "notifications_enabled": True,
        "preferred_language": "en",
        "permissions": [],
        "affiliations": [],
        "has_active_session": False,
        "has_usable_password": False,
        "identity_provider_fields": [],
    }


def service_provider(st: State) -> dict[str, Any]:
    """The ServiceProvider behind the offering."""
    cust = st.scenario.offering.customer
    sp_uuid = service_provider_uuid(st)
    return {
        "url": url(st, "marketplace-service-providers", sp_uuid),
        "uuid": sp_uuid,
        "created": iso(st.started),
        "description": "",
        "enable_notifications": True,
        "customer": url(st, "customers", cust.uuid),
        "customer_name": cust.name,
        "customer_uuid": cust.uuid,
        "customer_slug": cust.slug,
        "customer_abbreviation": "",
        "customer_native_name": "",
        "customer_country": "",
        "image": None,
        "customer_image": None,
        "organization_groups": [],
        "offering_count": 1,
        "allowed_domains": [],
    }


def user_attribute_config(st: State) -> dict[str, Any]:
    """The default OfferingUserAttributeConfig (username, full name and e-mail exposed)."""
    off = st.scenario.offering
    return {
        "uuid": derived_uuid("attribute-config", off.uuid),
        "created": iso(st.started),
        "modified": iso(st.started),
        "exposed_fields": ["username", "full_name", "email"],
        "is_default": True,
        "offering_uuid": off.uuid,
        "offering_name": off.name,
        "expose_username": True,
        "expose_full_name": True,
        "expose_email": True,
    }
