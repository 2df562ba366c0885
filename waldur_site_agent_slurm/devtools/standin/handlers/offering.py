"""The provider offering, its plan and the offering-scoped helper endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waldur_api_client.models import CheckUniqueBackendIDRequest

from waldur_site_agent_slurm.devtools.standin import agent_views, views
from waldur_site_agent_slurm.devtools.standin.api import ApiRequest, Reply, check_body, not_found

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State


def _check_offering(st: State, req: ApiRequest) -> None:
    if req.args["uuid"] != st.scenario.offering.uuid:
        raise not_found()


def offering_retrieve(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-provider-offerings/<uuid>/``: components, customer, plans."""
    _check_offering(st, req)
    return Reply(200, views.offering(st))


def user_attribute_config(st: State, req: ApiRequest) -> Reply:
    """``GET …/user-attribute-config/``: the default configuration."""
    _check_offering(st, req)
    return Reply(200, agent_views.user_attribute_config(st))


def project_service_accounts(st: State, req: ApiRequest) -> Reply:
    """``GET …/list_project_service_accounts/``: the scenario has none."""
    _check_offering(st, req)
    return Reply(200, [])


def course_accounts(st: State, req: ApiRequest) -> Reply:
    """``GET …/list_course_accounts/``: the scenario has none."""
    _check_offering(st, req)
    return Reply(200, [])


def check_unique_backend_id(st: State, req: ApiRequest) -> Reply:
    """``POST …/check_unique_backend_id/``: unique unless a resource already uses it."""
    _check_offering(st, req)
    body = check_body(req, CheckUniqueBackendIDRequest)
    backend_id = str(body["backend_id"])
    used = any(r.backend_id == backend_id for r in st.db.resources.values())
    return Reply(200, {"is_unique": not used, "is_valid_format": True, "errors": []})


def plan_retrieve(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-plans/<uuid>/``."""
    if req.args["uuid"] != st.scenario.offering.plan.uuid:
        raise not_found()
    return Reply(200, views.plan(st))
