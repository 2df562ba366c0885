"""The route table: every /api/ endpoint the stand-in serves.

Each entry names the method, the path (relative to ``/api/``), who may call it, the
handler and the ``waldur_api_client.api`` module whose
``_parse_response`` must accept the answer.
"""

from __future__ import annotations

from waldur_site_agent_slurm.devtools.standin.api import Permission, Route, route
from waldur_site_agent_slurm.devtools.standin.handlers import (
    agent,
    offering,
    orders,
    resources,
    usage,
)

PUBLIC = Permission.PUBLIC
USER = Permission.USER
READ = Permission.PROVIDER_READ
PROVIDER = Permission.PROVIDER
STAFF = Permission.STAFF

IDENT = "marketplace-site-agent-identities"
OFFER = "marketplace-provider-offerings/{uuid}"
ORDER = "marketplace-orders/{uuid}"
RES = "marketplace-provider-resources/{uuid}"
POLICY = "marketplace-slurm-periodic-usage-policies"
USAGE = "marketplace-component-usages"

_IDS = "marketplace_site_agent_identities.marketplace_site_agent_identities"
_OFF = "marketplace_provider_offerings.marketplace_provider_offerings"
_ORD = "marketplace_orders.marketplace_orders"
_RES = "marketplace_provider_resources.marketplace_provider_resources"
_POL = "marketplace_slurm_periodic_usage_policies.marketplace_slurm_periodic_usage_policies"
_USE = "marketplace_component_usages.marketplace_component_usages"

ROUTES: tuple[Route, ...] = (
    # prologue
    route("GET", "version/", PUBLIC, agent.version, "version.version_retrieve"),
    route("GET", "users/me/", USER, agent.users_me, "users.users_me_retrieve"),
    route("GET", f"{IDENT}/", PROVIDER, agent.identities_list, f"{_IDS}_list", is_list=True),
    route("POST", f"{IDENT}/", PROVIDER, agent.identities_create, f"{_IDS}_create"),
    route("PUT", f"{IDENT}/{{uuid}}/", PROVIDER, agent.identities_update, f"{_IDS}_update"),
    route(
        "POST",
        f"{IDENT}/{{uuid}}/register_service/",
        PROVIDER,
        agent.register_service,
        f"{_IDS}_register_service",
    ),
    route(
        "POST",
        f"{IDENT}/{{uuid}}/register_queue/",
        PROVIDER,
        agent.register_queue,
        f"{_IDS}_register_queue",
    ),
    route(
        "POST",
        "marketplace-site-agent-services/{uuid}/register_processor/",
        PROVIDER,
        agent.register_processor,
        "marketplace_site_agent_services.marketplace_site_agent_services_register_processor",
    ),
    route(
        "GET",
        "marketplace-service-providers/",
        USER,
        agent.service_providers_list,
        "marketplace_service_providers.marketplace_service_providers_list",
        is_list=True,
    ),
    route(
        "GET",
        "marketplace-service-providers/{service_provider_uuid}/keys/",
        READ,
        agent.service_provider_keys,
        "marketplace_service_providers.marketplace_service_providers_keys_list",
        is_list=True,
    ),
    # offering and plan
    route("GET", f"{OFFER}/", READ, offering.offering_retrieve, f"{_OFF}_retrieve"),
    route(
        "GET",
        f"{OFFER}/user-attribute-config/",
        READ,
        offering.user_attribute_config,
        f"{_OFF}_user_attribute_config_retrieve",
    ),
    route(
        "GET",
        f"{OFFER}/list_project_service_accounts/",
        READ,
        offering.project_service_accounts,
        f"{_OFF}_list_project_service_accounts_list",
        is_list=True,
    ),
    route(
        "GET",
        f"{OFFER}/list_course_accounts/",
        READ,
        offering.course_accounts,
        f"{_OFF}_list_course_accounts_list",
        is_list=True,
    ),
    route(
        "POST",
        f"{OFFER}/check_unique_backend_id/",
        PROVIDER,
        offering.check_unique_backend_id,
        f"{_OFF}_check_unique_backend_id",
    ),
    route(
        "GET",
        "marketplace-plans/{uuid}/",
        READ,
        offering.plan_retrieve,
        "marketplace_plans.marketplace_plans_retrieve",
    ),
    # orders
    route("GET", "marketplace-orders/", READ, orders.orders_list, f"{_ORD}_list", is_list=True),
    route("GET", f"{ORDER}/", READ, orders.orders_retrieve, f"{_ORD}_retrieve"),
    route(
        "POST",
        f"{ORDER}/approve_by_provider/",
        PROVIDER,
        orders.approve_by_provider,
        f"{_ORD}_approve_by_provider",
    ),
    route(
        "POST",
        f"{ORDER}/reject_by_provider/",
        PROVIDER,
        orders.reject_by_provider,
        f"{_ORD}_reject_by_provider",
    ),
    route(
        "POST",
        f"{ORDER}/set_state_done/",
        PROVIDER,
        orders.set_state_done,
        f"{_ORD}_set_state_done",
    ),
    route(
        "POST",
        f"{ORDER}/set_state_erred/",
        PROVIDER,
        orders.set_state_erred,
        f"{_ORD}_set_state_erred",
    ),
    route(
        "POST",
        f"{ORDER}/set_backend_id/",
        PROVIDER,
        orders.set_order_backend_id,
        f"{_ORD}_set_backend_id",
    ),
    # provider resources
    route(
        "GET",
        "marketplace-provider-resources/",
        READ,
        resources.resources_list,
        f"{_RES}_list",
        is_list=True,
    ),
    route("GET", f"{RES}/", READ, resources.resources_retrieve, f"{_RES}_retrieve"),
    # what the framework's waldur_sync_resource_limits lists (the same resources)
    route(
        "GET",
        "marketplace-resources/",
        READ,
        resources.resources_list,
        "marketplace_resources.marketplace_resources_list",
        is_list=True,
    ),
    route(
        "GET",
        f"{RES}/team/",
        READ,
        resources.resource_team,
        f"{_RES}_team_list",
        is_list=True,
        paginated=False,
    ),
    *(
        route("POST", f"{RES}/{action}/", PROVIDER, handler, f"{_RES}_{action}")
        for action, handler in (
            ("set_backend_id", resources.set_backend_id),
            ("set_limits", resources.set_limits),
            ("set_backend_metadata", resources.set_backend_metadata),
            ("set_endpoints", resources.set_endpoints),
            ("refresh_last_sync", resources.refresh_last_sync),
            ("set_as_ok", resources.set_as_ok),
            ("set_as_erred", resources.set_as_erred),
            ("set_membership_sync_statuses", resources.set_membership_sync_statuses),
        )
    ),
    route(
        "GET",
        "marketplace-offering-users/",
        READ,
        resources.offering_users_list,
        "marketplace_offering_users.marketplace_offering_users_list",
        is_list=True,
    ),
    route(
        "GET",
        "component-user-usage-limits/",
        READ,
        resources.user_limits_list,
        "component_user_usage_limits.component_user_usage_limits_list",
        is_list=True,
    ),
    # usage
    route("GET", f"{USAGE}/", READ, usage.usages_list, f"{_USE}_list", is_list=True),
    route("POST", f"{USAGE}/set_usage/", PROVIDER, usage.set_usage, f"{_USE}_set_usage"),
    route(
        "POST",
        f"{USAGE}/{{uuid}}/set_user_usages/",
        PROVIDER,
        usage.set_user_usages,
        f"{_USE}_set_user_usages",
    ),
    route(
        "POST",
        f"{USAGE}/{{uuid}}/set_user_usage/",
        PROVIDER,
        usage.set_user_usage,
        f"{_USE}_set_user_usage",
    ),
    route(
        "GET",
        "marketplace-component-user-usages/",
        READ,
        usage.user_usages_list,
        "marketplace_component_user_usages.marketplace_component_user_usages_list",
        is_list=True,
    ),
    # periodic usage policies
    route("GET", f"{POLICY}/", READ, agent.policies_list, f"{_POL}_list", is_list=True),
    route("GET", f"{POLICY}/{{uuid}}/", READ, agent.policies_retrieve, f"{_POL}_retrieve"),
    route(
        "POST",
        f"{POLICY}/{{uuid}}/report-command-result/",
        STAFF,
        agent.report_command_result,
        f"{_POL}_report_command_result",
    ),
)


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving ``method path`` (path relative to ``/api/``) and its arguments."""
    for candidate in ROUTES:
        args = candidate.match(method, path)
        if args is not None:
            return candidate, args
    return None


def allowed_methods(path: str) -> list[str]:
    """Methods some route accepts on ``path`` (for 405 answers)."""
    return sorted({r.method for r in ROUTES if r.pattern.fullmatch(path)})
