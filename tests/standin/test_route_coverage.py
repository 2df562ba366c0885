"""The route table against the framework and the client.

The table must serve every ``waldur_api_client`` function the framework imports for the
modes the stand-in covers, and each route must match the request the client module
itself builds.
"""

from __future__ import annotations

import inspect
import re
import uuid
from pathlib import Path
from typing import Any

import waldur_site_agent

from waldur_site_agent_slurm.devtools.standin.routes import ROUTES

# Every waldur_api_client function the framework imports that the covered modes call.
SERVED = {
    "version.version_retrieve",
    "users.users_me_retrieve",
    "marketplace_site_agent_identities.marketplace_site_agent_identities_list",
    "marketplace_site_agent_identities.marketplace_site_agent_identities_create",
    "marketplace_site_agent_identities.marketplace_site_agent_identities_update",
    "marketplace_site_agent_identities.marketplace_site_agent_identities_register_service",
    "marketplace_site_agent_identities.marketplace_site_agent_identities_register_queue",
    "marketplace_site_agent_services.marketplace_site_agent_services_register_processor",
    "marketplace_provider_offerings.marketplace_provider_offerings_retrieve",
    "marketplace_provider_offerings.marketplace_provider_offerings_user_attribute_config_retrieve",
    "marketplace_provider_offerings.marketplace_provider_offerings_list_project_service_accounts_list",
    "marketplace_provider_offerings.marketplace_provider_offerings_list_course_accounts_list",
    "marketplace_provider_offerings.marketplace_provider_offerings_check_unique_backend_id",
    "marketplace_service_providers.marketplace_service_providers_list",
    "marketplace_service_providers.marketplace_service_providers_keys_list",
    "marketplace_plans.marketplace_plans_retrieve",
    "marketplace_orders.marketplace_orders_list",
    "marketplace_orders.marketplace_orders_retrieve",
    "marketplace_orders.marketplace_orders_approve_by_provider",
    "marketplace_orders.marketplace_orders_reject_by_provider",
    "marketplace_orders.marketplace_orders_set_state_done",
    "marketplace_orders.marketplace_orders_set_state_erred",
    "marketplace_orders.marketplace_orders_set_backend_id",
    "marketplace_provider_resources.marketplace_provider_resources_list",
    "marketplace_provider_resources.marketplace_provider_resources_retrieve",
    "marketplace_resources.marketplace_resources_list",
    "marketplace_provider_resources.marketplace_provider_resources_team_list",
    "marketplace_provider_resources.marketplace_provider_resources_set_backend_id",
    "marketplace_provider_resources.marketplace_provider_resources_set_limits",
    "marketplace_provider_resources.marketplace_provider_resources_set_backend_metadata",
    "marketplace_provider_resources.marketplace_provider_resources_set_endpoints",
    "marketplace_provider_resources.marketplace_provider_resources_refresh_last_sync",
    "marketplace_provider_resources.marketplace_provider_resources_set_as_ok",
    "marketplace_provider_resources.marketplace_provider_resources_set_as_erred",
    "marketplace_provider_resources.marketplace_provider_resources_set_membership_sync_statuses",
    "marketplace_offering_users.marketplace_offering_users_list",
    "component_user_usage_limits.component_user_usage_limits_list",
    "marketplace_component_usages.marketplace_component_usages_list",
    "marketplace_component_usages.marketplace_component_usages_set_usage",
    "marketplace_component_usages.marketplace_component_usages_set_user_usages",
    "marketplace_component_usages.marketplace_component_usages_set_user_usage",
    "marketplace_component_user_usages.marketplace_component_user_usages_list",
    "marketplace_slurm_periodic_usage_policies.marketplace_slurm_periodic_usage_policies_report_command_result",
}
# Served too, though the framework does not import them: what a demo or test reads.
EXTRA = {
    "marketplace_slurm_periodic_usage_policies.marketplace_slurm_periodic_usage_policies_list",
    "marketplace_slurm_periodic_usage_policies.marketplace_slurm_periodic_usage_policies_retrieve",
}
# Imported by the framework but outside these modes (resource API keys, backend
# resource imports, offering-user username lifecycle, project hierarchy, components CLI).
NOT_SERVED = {
    "backend_resource_requests.backend_resource_requests_retrieve",
    "backend_resource_requests.backend_resource_requests_set_done",
    "backend_resource_requests.backend_resource_requests_set_erred",
    "backend_resource_requests.backend_resource_requests_start_processing",
    "backend_resources.backend_resources_create",
    "backend_resources.backend_resources_list",
    "marketplace_resource_api_keys.marketplace_resource_api_keys_list",
    "marketplace_resource_api_keys.marketplace_resource_api_keys_report_created",
    "marketplace_resource_api_keys.marketplace_resource_api_keys_set_erred",
    "marketplace_resource_api_keys.marketplace_resource_api_keys_set_key",
    "marketplace_offering_users.marketplace_offering_users_begin_creating",
    "marketplace_offering_users.marketplace_offering_users_partial_update",
    "marketplace_offering_users.marketplace_offering_users_set_error_creating",
    "marketplace_offering_users.marketplace_offering_users_set_pending_account_linking",
    "marketplace_offering_users.marketplace_offering_users_set_pending_additional_validation",
    "marketplace_offering_users.marketplace_offering_users_set_validation_complete",
    "marketplace_provider_offerings.marketplace_provider_offerings_create_offering_component",
    "marketplace_provider_offerings.marketplace_provider_offerings_update_offering_component",
    "marketplace_service_providers.marketplace_service_providers_projects_list",
    "projects.projects_list",
}


def framework_imports() -> set[str]:
    """``tag.function`` for every ``from waldur_api_client.api.<tag> import …`` in the framework."""
    found: set[str] = set()
    for path in Path(waldur_site_agent.__file__).parent.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(
            r"from waldur_api_client\.api\.(\w+) import (\([^)]*\)|[\w, ]+)", text
        ):
            found.update(f"{match.group(1)}.{name}" for name in re.findall(r"\w+", match.group(2)))
    return found


def test_the_framework_imports_nothing_unclassified() -> None:
    assert framework_imports() == SERVED | NOT_SERVED


def test_the_route_table_serves_exactly_the_covered_functions() -> None:
    assert {r.api for r in ROUTES} == SERVED | EXTRA


def test_each_route_matches_the_request_its_client_module_builds() -> None:
    """The client's own ``_get_kwargs`` (method and URL) must hit the route."""

    class Body:
        def to_dict(self) -> dict[str, Any]:
            return {}

    for route in ROUTES:
        module = __import__(f"waldur_api_client.api.{route.api}", fromlist=["_get_kwargs"])
        params = inspect.signature(module._get_kwargs).parameters
        kwargs: dict[str, Any] = {}
        for name, param in params.items():
            if param.default is not inspect.Parameter.empty:
                continue
            kwargs[name] = Body() if name == "body" else uuid.uuid4()
        request = module._get_kwargs(**kwargs)
        path = request["url"].removeprefix("/api/")
        assert route.match(request["method"].upper(), path) is not None, route.api
