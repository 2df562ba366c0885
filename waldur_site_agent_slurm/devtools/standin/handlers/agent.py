"""Prologue and event-mode endpoints.

Version, users/me, agent identities, services, processors, queue registration,
service providers and SLURM periodic usage policies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waldur_api_client.models import (
    AgentIdentityRequest,
    AgentProcessorCreateRequest,
    AgentQueueRegistrationRequest,
    AgentServiceCreateRequest,
    SlurmCommandResultRequest,
)

from waldur_site_agent_slurm.devtools.standin import agent_views, views
from waldur_site_agent_slurm.devtools.standin.api import (
    ApiError,
    ApiRequest,
    Reply,
    bad_request,
    check_body,
    hex_uuid,
    lookup,
    not_found,
)
from waldur_site_agent_slurm.devtools.standin.records import Identity, Processor, Service, new_uuid

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State

IDENTITY_FIELDS = (
    "version",
    "dependencies",
    "config_file_path",
    "config_file_content",
    "last_restarted",
)


def version(_st: State, _req: ApiRequest) -> Reply:
    """``GET version/``."""
    return Reply(200, {"version": views.WALDUR_VERSION, "latest_version": views.WALDUR_VERSION})


def users_me(st: State, req: ApiRequest) -> Reply:
    """``GET users/me/``: the token's owner, with ``is_staff``."""
    if req.caller is None:
        raise ApiError(401, {"detail": "Authentication credentials were not provided."})
    return Reply(200, agent_views.user_me(st, st.ensure_user(req.caller.username)))


def identities_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-site-agent-identities/`` (filters: name, offering_uuid)."""
    name = req.param("name")
    offerings = req.uuid_param("offering_uuid")
    return Reply(
        200,
        [
            agent_views.identity(st, rec)
            for rec in st.db.identities.values()
            if (name is None or rec.name == name)
            and (not offerings or rec.offering_uuid in offerings)
        ],
    )


def _identity_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in IDENTITY_FIELDS if k in body}


def _check_offering(st: State, body: dict[str, Any]) -> str:
    offering = hex_uuid(body["offering"])
    if offering != st.scenario.offering.uuid:
        raise bad_request(f'Invalid pk "{body["offering"]}" - object does not exist.', "offering")
    return offering


def identities_create(st: State, req: ApiRequest) -> Reply:
    """``POST marketplace-site-agent-identities/`` → 201."""
    body = check_body(req, AgentIdentityRequest)
    offering = _check_offering(st, body)
    if any(i.name == body["name"] for i in st.db.identities.values()):
        raise bad_request("Agent identity with this name already exists.", "name")
    now = st.clock()
    creator = st.ensure_user(req.username or "")
    rec = Identity(
        uuid=new_uuid(),
        name=body["name"],
        offering_uuid=offering,
        created_by=views.url(st, "users", creator.uuid),
        created=now,
        modified=now,
        fields=_identity_fields(body),
    )
    st.db.identities[rec.uuid] = rec
    return Reply(201, agent_views.identity(st, rec))


def identities_update(st: State, req: ApiRequest) -> Reply:
    """``PUT marketplace-site-agent-identities/<uuid>/`` → 200."""
    rec = lookup(st.db.identities, req)
    body = check_body(req, AgentIdentityRequest)
    rec.offering_uuid = _check_offering(st, body)
    rec.name = body["name"]
    rec.fields.update(_identity_fields(body))
    rec.modified = st.clock()
    return Reply(200, agent_views.identity(st, rec))


def register_service(st: State, req: ApiRequest) -> Reply:
    """``POST …/<identity>/register_service/``: 201 when new, 200 when it existed."""
    identity = lookup(st.db.identities, req)
    body = check_body(req, AgentServiceCreateRequest)
    now = st.clock()
    for rec in st.db.services.values():
        if rec.identity_uuid == identity.uuid and rec.name == body["name"]:
            rec.mode, rec.modified, rec.state = body.get("mode"), now, "Active"
            return Reply(200, agent_views.service(st, rec))
    rec = Service(new_uuid(), identity.uuid, body["name"], body.get("mode"), now, now)
    st.db.services[rec.uuid] = rec
    return Reply(201, agent_views.service(st, rec))


def register_processor(st: State, req: ApiRequest) -> Reply:
    """``POST marketplace-site-agent-services/<svc>/register_processor/``: 201 or 200."""
    service = st.db.services.get(req.args["uuid"])
    if service is None:
        raise not_found()
    body = check_body(req, AgentProcessorCreateRequest)
    now = st.clock()
    for rec in st.db.processors.values():
        if rec.service_uuid == service.uuid and rec.name == body["name"]:
            rec.backend_type = body["backend_type"]
            rec.backend_version = body.get("backend_version")
            rec.modified = now
            return Reply(200, agent_views.processor(st, rec))
    rec = Processor(
        uuid=new_uuid(),
        service_uuid=service.uuid,
        name=body["name"],
        backend_type=body["backend_type"],
        backend_version=body.get("backend_version"),
        created=now,
        modified=now,
    )
    st.db.processors[rec.uuid] = rec
    return Reply(201, agent_views.processor(st, rec))


def register_queue(st: State, req: ApiRequest) -> Reply:
    """``POST …/<identity>/register_queue/``: the scenario's STOMP block; 201 first time."""
    identity = lookup(st.db.identities, req)
    body = check_body(req, AgentQueueRegistrationRequest)
    types = list(body.get("object_types") or [])
    first = "queue" not in identity.fields
    identity.fields["queue"] = types
    stomp = st.scenario.stomp
    answer = {
        "rmq_username": stomp.rmq_username,
        "queue_name": stomp.queue_name,
        "vhost": stomp.vhost,
        "observable_object_types": types,
    }
    return Reply(201 if first else 200, answer)


def service_providers_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-service-providers/`` (filter: customer_uuid)."""
    customers = req.uuid_param("customer_uuid")
    if customers and st.scenario.offering.customer.uuid not in customers:
        return Reply(200, [])
    return Reply(200, [agent_views.service_provider(st)])


def service_provider_keys(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-service-providers/<sp>/keys/``: no SSH keys are known."""
    if req.args["service_provider_uuid"] != views.service_provider_uuid(st):
        raise not_found()
    return Reply(200, [])


def _policy_uuid(st: State, req: ApiRequest) -> str:
    if req.args["uuid"] not in st.db.policies:
        raise not_found()
    return req.args["uuid"]


def policies_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-slurm-periodic-usage-policies/`` (filter: scope_uuid)."""
    scopes = req.uuid_param("scope_uuid")
    if scopes and st.scenario.offering.uuid not in scopes:
        return Reply(200, [])
    return Reply(200, [agent_views.policy(st, p) for p in st.db.policies.values()])


def policies_retrieve(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-slurm-periodic-usage-policies/<uuid>/``."""
    return Reply(200, agent_views.policy(st, st.db.policies[_policy_uuid(st, req)]))


def report_command_result(st: State, req: ApiRequest) -> Reply:
    """``POST …/<policy>/report-command-result/`` (staff only): the body is stored."""
    policy_uuid = _policy_uuid(st, req)
    body = check_body(req, SlurmCommandResultRequest)
    st.db.command_results.append(
        {
            "policy_uuid": policy_uuid,
            "body": body,
            "username": req.username,
            "user_agent": req.user_agent,
            "received": views.iso(st.clock()),
        }
    )
    return Reply(200, {"status": "Command result recorded."})
