"""Provider resources, their teams, offering users and per-user usage limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waldur_api_client.models import (
    MemberSyncStatusReportRequest,
    ResourceBackendIDRequest,
    ResourceBackendMetadataRequest,
    ResourceEndpointsRequest,
    ResourceSetLimitsRequest,
    ResourceSetStateErredRequest,
)

from waldur_site_agent_slurm.devtools.standin import views
from waldur_site_agent_slurm.devtools.standin.api import (
    ApiRequest,
    Reply,
    bad_request,
    check_body,
    lookup,
)
from waldur_site_agent_slurm.devtools.standin.records import Resource

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State


def _status(st: State, rec: Resource, text: str) -> Reply:
    rec.modified = st.clock()
    return Reply(200, {"status": text})


def resources_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-provider-resources/`` (and ``marketplace-resources/``).

    Filters: offering_uuid, state, backend_id, project_uuid, customer_uuid, name.
    """
    offerings = req.uuid_param("offering_uuid")
    states = req.multi("state")
    projects = req.uuid_param("project_uuid")
    customers = req.uuid_param("customer_uuid")
    backend_id, name = req.param("backend_id"), req.param("name")
    if offerings and st.scenario.offering.uuid not in offerings:
        return Reply(200, [])
    answer = []
    for rec in st.db.resources.values():
        customer = st.db.projects[rec.project_uuid].customer_uuid
        if (states and rec.state not in states) or (projects and rec.project_uuid not in projects):
            continue
        if (customers and customer not in customers) or (
            backend_id is not None and rec.backend_id != backend_id
        ):
            continue
        if name is not None and name.lower() not in rec.name.lower():
            continue
        answer.append(views.resource(st, rec))
    return Reply(200, answer)


def resources_retrieve(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-provider-resources/<uuid>/``."""
    return Reply(200, views.resource(st, lookup(st.db.resources, req)))


def resource_team(st: State, req: ApiRequest) -> Reply:
    """``GET …/<uuid>/team/``: the project's members with their offering usernames."""
    rec = lookup(st.db.resources, req)
    return Reply(200, views.team(st, st.db.projects[rec.project_uuid]))


def set_backend_id(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_backend_id/``."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, ResourceBackendIDRequest)
    rec.backend_id = str(body.get("backend_id") or "")
    return _status(st, rec, "Resource backend_id has been changed.")


def set_limits(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_limits/``: replaces the resource's limits."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, ResourceSetLimitsRequest)
    limits = body["limits"]
    if not isinstance(limits, dict):
        raise bad_request("Expected a dictionary of items.", "limits")
    types = {c.type for c in st.scenario.offering.components}
    unknown = sorted(set(limits) - types)
    if unknown:
        raise bad_request(f"Unknown components: {', '.join(unknown)}", "limits")
    try:
        rec.limits = {k: int(v) for k, v in limits.items()}
    except (TypeError, ValueError) as err:
        raise bad_request(f"Limits must be integers: {err}", "limits") from err
    return _status(st, rec, "Resource limits have been changed.")


def set_backend_metadata(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_backend_metadata/``."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, ResourceBackendMetadataRequest)
    rec.backend_metadata = dict(body["backend_metadata"] or {})
    return _status(st, rec, "Resource backend_metadata has been changed.")


def set_endpoints(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_endpoints/``."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, ResourceEndpointsRequest)
    rec.endpoints = [{"name": str(e["name"]), "url": str(e["url"])} for e in body["endpoints"]]
    return _status(st, rec, "Resource endpoints have been changed.")


def refresh_last_sync(st: State, req: ApiRequest) -> Reply:
    """``POST …/refresh_last_sync/``."""
    rec = lookup(st.db.resources, req)
    rec.last_sync = st.clock()
    return Reply(200, {"status": "Resource last sync has been refreshed."})


def set_as_ok(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_as_ok/``."""
    rec = lookup(st.db.resources, req)
    if rec.state == "Terminated":
        raise bad_request("A terminated resource cannot be set to OK.", "detail")
    rec.state, rec.error_message, rec.error_traceback = "OK", "", ""
    return _status(st, rec, "Resource state has been changed to OK.")


def set_as_erred(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_as_erred/``."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, ResourceSetStateErredRequest)
    rec.state = "Erred"
    rec.error_message = str(body.get("error_message") or "")
    rec.error_traceback = str(body.get("error_traceback") or "")
    return _status(st, rec, "Resource state has been changed to erred.")


def set_membership_sync_statuses(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_membership_sync_statuses/``: stores the report."""
    rec = lookup(st.db.resources, req)
    body = check_body(req, MemberSyncStatusReportRequest)
    statuses: list[Any] = list(body["statuses"])
    rec.membership_sync_statuses = statuses
    return Reply(200, {"stored": len(statuses), "skipped": []})


def offering_users_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-offering-users/``.

    Filters: offering_uuid, is_restricted, state, username, user_uuid.
    """
    offerings = req.uuid_param("offering_uuid")
    states = req.multi("state")
    users = req.uuid_param("user_uuid")
    username = req.param("username")
    if offerings and st.scenario.offering.uuid not in offerings:
        return Reply(200, [])
    if req.flag("is_restricted"):
        return Reply(200, [])
    return Reply(
        200,
        [
            views.offering_user(st, rec)
            for rec in st.db.offering_users.values()
            if (not states or rec.state in states)
            and (not users or rec.user_uuid in users)
            and (username is None or rec.username == username)
        ],
    )


def user_limits_list(st: State, req: ApiRequest) -> Reply:
    """``GET component-user-usage-limits/`` (filter: resource_uuid)."""
    resources = req.uuid_param("resource_uuid")
    return Reply(
        200,
        [
            views.user_limit(st, rec)
            for rec in st.db.user_limits.values()
            if not resources or rec.resource_uuid in resources
        ],
    )
