"""How each record looks on the wire: API dicts with the keys ``waldur_api_client`` reads.

Every function builds its dict deliberately, including the keys a model requires and
the ones the framework reads (``offering_plugin_options``, ``marketplace_resource_uuid``,
``offering_user_username`` …). The server checks each answer against the client's own
parser, so a missing or misspelt key shows up as a 500 naming the model.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from waldur_site_agent_slurm.devtools.standin.records import (
    ComponentUsage,
    OfferingUser,
    Order,
    Project,
    Resource,
    UserLimit,
    UserUsage,
)
from waldur_site_agent_slurm.devtools.standin.scenario import ComponentSpec

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State

WALDUR_VERSION = "8.1.2"
OFFERING_TYPE = "Marketplace.Slurm"


def iso(value: dt.datetime | dt.date | None) -> str | None:
    """ISO 8601 text, or None."""
    return None if value is None else value.isoformat()


def amount(value: Decimal) -> str:
    """A usage amount the way Mastermind's decimal fields print it."""
    return f"{value:.2f}"


def url(st: State, collection: str, uuid: str | None = None) -> str:
    """Absolute API URL of a collection or of one object in it."""
    base = f"{st.base_url}/api/{collection}/"
    return f"{base}{uuid}/" if uuid else base


def derived_uuid(*parts: str) -> str:
    """A stable UUID for objects the scenario does not name (components, providers)."""
    return uuidlib.uuid5(uuidlib.NAMESPACE_URL, "standin:" + ":".join(parts)).hex


def service_provider_uuid(st: State) -> str:
    """The service provider of the offering's customer."""
    return derived_uuid("service-provider", st.scenario.offering.customer.uuid)


def component(st: State, spec: ComponentSpec) -> dict[str, Any]:
    """An OfferingComponent."""
    off = st.scenario.offering
    return {
        "uuid": derived_uuid("component", off.uuid, spec.type),
        "offering_uuid": off.uuid,
        "billing_type": spec.billing_type,
        "type": spec.type,
        "name": spec.name,
        "description": "",
        "measured_unit": spec.measured_unit,
        "unit_factor": spec.unit_factor,
        "limit_period": spec.limit_period,
        "limit_amount": spec.limit_amount,
        "article_code": "",
        "max_value": None,
        "min_value": None,
        "max_available_limit": None,
        "is_boolean": False,
        "default_limit": None,
        "is_builtin": False,
        "is_prepaid": False,
    }


def plan(st: State) -> dict[str, Any]:
    """The offering's plan as ``marketplace-plans/<uuid>/`` shows it (ProviderPlanDetails)."""
    off = st.scenario.offering
    quotas = dict(off.plan.quotas)
    return {
        "url": url(st, "marketplace-plans", off.plan.uuid),
        "uuid": off.plan.uuid,
        "name": off.plan.name,
        "description": "",
        "article_code": "",
        "max_amount": None,
        "archived": False,
        "is_active": True,
        "unit_price": "0.0000000",
        "unit": "month",
        "init_price": 0,
        "switch_price": 0,
        "backend_id": "",
        "organization_groups": [],
        "components": [
            {
                "type": c.type,
                "name": c.name,
                "measured_unit": c.measured_unit,
                "amount": quotas.get(c.type, 0),
                "price": "0.0000000",
                "future_price": None,
            }
            for c in off.components
        ],
        "offering": url(st, "marketplace-provider-offerings", off.uuid),
        "prices": {c.type: 0.0 for c in off.components},
        "future_prices": {},
        "quotas": quotas,
        "resources_count": len(st.db.resources),
        "plan_type": "usage-based",
        "minimal_price": 0.0,
    }


def offering(st: State) -> dict[str, Any]:
    """ProviderOfferingDetails of the served offering."""
    off = st.scenario.offering
    brief_plan = {k: v for k, v in plan(st).items() if k != "offering"}
    return {
        "url": url(st, "marketplace-provider-offerings", off.uuid),
        "uuid": off.uuid,
        "created": iso(st.started),
        "name": off.name,
        "slug": off.name.lower().replace(" ", "-"),
        "description": "",
        "customer": url(st, "customers", off.customer.uuid),
        "customer_uuid": off.customer.uuid,
        "customer_name": off.customer.name,
        "state": "Active",
        "type": OFFERING_TYPE,
        "shared": True,
        "billable": True,
        "backend_id": off.backend_id,
        "components": [component(st, c) for c in off.components],
        "plans": [brief_plan],
        "plugin_options": dict(off.plugin_options),
        "partitions": [],
        "attributes": {},
        "options": {"order": [], "options": {}},
        "resource_options": {"order": [], "options": {}},
        "backend_metadata": {},
    }


def _owner(st: State, res: Resource) -> dict[str, Any]:
    """Project, customer, offering and plan keys shared by resources and orders."""
    off = st.scenario.offering
    project = st.db.projects[res.project_uuid]
    customer = st.db.customers[project.customer_uuid]
    return {
        "offering": url(st, "marketplace-provider-offerings", off.uuid),
        "offering_name": off.name,
        "offering_uuid": off.uuid,
        "offering_description": "",
        "offering_type": OFFERING_TYPE,
        "offering_shared": True,
        "offering_billable": True,
        "offering_plugin_options": dict(off.plugin_options),
        "provider_name": off.customer.name,
        "provider_uuid": off.customer.uuid,
        "provider_slug": off.customer.slug,
        "plan": url(st, "marketplace-plans", off.plan.uuid),
        "plan_name": off.plan.name,
        "plan_uuid": off.plan.uuid,
        "plan_unit": "month",
        "plan_description": "",
        "project_uuid": project.uuid,
        "project_name": project.name,
        "project_slug": project.slug,
        "project_description": "",
        "customer_uuid": customer.uuid,
        "customer_name": customer.name,
        "customer_slug": customer.slug,
    }


def resource(st: State, res: Resource) -> dict[str, Any]:
    """A Resource as the provider-resources endpoints show it."""
    off = st.scenario.offering
    billing = {c.billing_type for c in off.components}
    return {
        **_owner(st, res),
        "url": url(st, "marketplace-resources", res.uuid),
        "uuid": res.uuid,
        "resource_uuid": res.uuid,
        "resource_type": OFFERING_TYPE,
        "name": res.name,
        "slug": res.slug,
        "description": "",
        "state": res.state,
        "created": iso(res.created),
        "modified": iso(res.modified),
        "backend_id": res.backend_id,
        "effective_id": "",
        "attributes": {"name": res.name},
        "limits": dict(res.limits),
        "current_usages": {},
        "backend_metadata": dict(res.backend_metadata),
        "project": url(st, "projects", res.project_uuid),
        "project_end_date": None,
        "offering_slug": off.name.lower().replace(" ", "-"),
        "offering_backend_id": off.backend_id,
        "offering_components": [component(st, c) for c in off.components],
        "is_usage_based": "usage" in billing,
        "is_limit_based": "limit" in billing,
        "can_terminate": res.state in ("OK", "Erred"),
        "end_date": res.end_date.isoformat() if res.end_date else None,
        "end_date_requested_by": None,
        "username": None,
        "paused": res.paused,
        "downscaled": res.downscaled,
        "restrict_member_access": False,
        "endpoints": [
            {"uuid": derived_uuid("endpoint", res.uuid, e["name"]), **e} for e in res.endpoints
        ],
        "error_message": res.error_message,
        "error_traceback": res.error_traceback,
        "options": {},
        "available_actions": [],
        "last_sync": iso(res.last_sync or res.modified),
        "order_in_progress": None,
        "creation_order": None,
        "user_requires_reconsent": False,
        "renewal_date": None,
        "has_api_keys": False,
    }


def order(st: State, rec: Order) -> dict[str, Any]:
    """OrderDetails."""
    res = st.db.resources[rec.resource_uuid]
    return {
        **_owner(st, res),
        "url": url(st, "marketplace-orders", rec.uuid),
        "uuid": rec.uuid,
        "created": iso(rec.created),
        "modified": iso(rec.modified),
        "type": rec.type,
        "state": rec.state,
        "attributes": dict(rec.attributes),
        "limits": dict(rec.limits),
        "resource_uuid": res.uuid,
        "marketplace_resource_uuid": res.uuid,
        "resource_type": OFFERING_TYPE,
        "resource_name": res.name,
        "slug": res.slug,
        "cost": "0.00",
        "output": "",
        "error_message": rec.error_message,
        "error_traceback": rec.error_traceback,
        "completed_at": iso(rec.completed_at),
        "backend_id": rec.backend_id,
        "request_comment": None,
        "start_date": None,
        "callback_url": None,
        "can_terminate": False,
        "created_by_username": "",
        "created_by_full_name": "",
        "consumer_reviewed_by": None,
        "provider_reviewed_by": rec.provider_reviewed_by,
        "provider_reviewed_at": iso(rec.provider_reviewed_at),
    }


def offering_user(st: State, rec: OfferingUser) -> dict[str, Any]:
    """An OfferingUser."""
    off = st.scenario.offering
    return {
        "url": url(st, "marketplace-offering-users", rec.uuid),
        "uuid": rec.uuid,
        "user": url(st, "users", rec.user_uuid),
        "offering": url(st, "marketplace-provider-offerings", off.uuid),
        "username": rec.username,
        "offering_uuid": off.uuid,
        "offering_name": off.name,
        "user_uuid": rec.user_uuid,
        "user_username": rec.username,
        "user_full_name": rec.full_name,
        "user_email": rec.email,
        "created": iso(rec.created),
        "modified": iso(rec.modified),
        "customer_uuid": off.customer.uuid,
        "customer_name": off.customer.name,
        "is_restricted": False,
        "state": rec.state,
        "service_provider_comment": "",
        "has_consent": True,
        "requires_reconsent": False,
        "is_profile_complete": True,
        "missing_profile_attributes": [],
    }


def team(st: State, project: Project) -> list[dict[str, Any]]:
    """The project's members as ProjectUser dicts (``…/team/``)."""
    members = []
    for username, role in project.team.items():
        user = st.db.users[username]
        ou = st.offering_user_by_username(username)
        members.append(
            {
                "url": url(st, "users", user.uuid),
                "uuid": user.uuid,
                "username": user.username,
                "full_name": user.full_name,
                "email": user.email,
                "role": role,
                "expiration_time": None,
                "offering_user_username": ou.username if ou else None,
                "offering_user_state": ou.state if ou else None,
            }
        )
    return members


def component_usage(st: State, rec: ComponentUsage) -> dict[str, Any]:
    """A ComponentUsage."""
    res = st.db.resources[rec.resource_uuid]
    owner = _owner(st, res)
    spec = next((c for c in st.scenario.offering.components if c.type == rec.type), None)
    return {
        "uuid": rec.uuid,
        "created": iso(rec.created),
        "description": rec.description,
        "type": rec.type,
        "name": spec.name if spec else rec.type,
        "measured_unit": spec.measured_unit if spec else "",
        "usage": amount(rec.usage),
        "date": iso(rec.date),
        "recurring": rec.recurring,
        "resource_name": res.name,
        "resource_uuid": res.uuid,
        "offering_name": owner["offering_name"],
        "offering_uuid": owner["offering_uuid"],
        "project_name": owner["project_name"],
        "project_uuid": owner["project_uuid"],
        "customer_name": owner["customer_name"],
        "customer_uuid": owner["customer_uuid"],
        "billing_period": iso(rec.billing_period),
        "modified_by": None,
    }


def user_usage(st: State, rec: UserUsage) -> dict[str, Any]:
    """A ComponentUserUsage."""
    parent = component_usage(st, st.db.usages[rec.component_usage_uuid])
    return {
        "uuid": rec.uuid,
        "user": rec.user_url,
        "username": rec.username,
        "component_usage": url(st, "marketplace-component-usages", rec.component_usage_uuid),
        "usage": amount(rec.usage),
        "measured_unit": parent["measured_unit"],
        "description": "",
        "created": iso(rec.created),
        "modified": iso(rec.modified),
        "backend_id": "",
        "component_type": parent["type"],
        "date": iso(rec.date),
        "billing_period": parent["billing_period"],
        **{
            k: parent[k]
            for k in (
                "resource_name",
                "resource_uuid",
                "offering_name",
                "offering_uuid",
                "project_name",
                "project_uuid",
                "customer_name",
                "customer_uuid",
            )
        },
    }


def user_limit(st: State, rec: UserLimit) -> dict[str, Any]:
    """A ComponentUserUsageLimit (``user`` is the username, as the framework reads it)."""
    off = st.scenario.offering
    return {
        "url": url(st, "component-user-usage-limits", rec.uuid),
        "uuid": rec.uuid,
        "resource": url(st, "marketplace-resources", rec.resource_uuid),
        "component": derived_uuid("component", off.uuid, rec.component_type),
        "component_type": rec.component_type,
        "user": rec.username,
        "limit": str(rec.limit),
    }
