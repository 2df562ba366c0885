"""The stand-in against the real client: every route through ``waldur_api_client``.

Each call goes through the client's own ``sync_detailed``, so the client's parser reads
every answer (in 8.1.2 the parsers always raise ``UnexpectedStatus`` on an undocumented
status). The walk must touch every route in the table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.component_user_usage_limits import component_user_usage_limits_list
from waldur_api_client.api.marketplace_component_usages import (
    marketplace_component_usages_list,
    marketplace_component_usages_set_usage,
    marketplace_component_usages_set_user_usage,
    marketplace_component_usages_set_user_usages,
)
from waldur_api_client.api.marketplace_component_user_usages import (
    marketplace_component_user_usages_list,
)
from waldur_api_client.api.marketplace_offering_users import marketplace_offering_users_list
from waldur_api_client.api.marketplace_orders import (
    marketplace_orders_approve_by_provider,
    marketplace_orders_list,
    marketplace_orders_reject_by_provider,
    marketplace_orders_retrieve,
    marketplace_orders_set_backend_id,
    marketplace_orders_set_state_done,
    marketplace_orders_set_state_erred,
)
from waldur_api_client.api.marketplace_plans import marketplace_plans_retrieve
from waldur_api_client.api.marketplace_provider_offerings import (
    marketplace_provider_offerings_check_unique_backend_id,
    marketplace_provider_offerings_list_course_accounts_list,
    marketplace_provider_offerings_list_project_service_accounts_list,
    marketplace_provider_offerings_retrieve,
    marketplace_provider_offerings_user_attribute_config_retrieve,
)
from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_list,
    marketplace_provider_resources_refresh_last_sync,
    marketplace_provider_resources_retrieve,
    marketplace_provider_resources_set_as_erred,
    marketplace_provider_resources_set_as_ok,
    marketplace_provider_resources_set_backend_id,
    marketplace_provider_resources_set_backend_metadata,
    marketplace_provider_resources_set_endpoints,
    marketplace_provider_resources_set_limits,
    marketplace_provider_resources_set_membership_sync_statuses,
    marketplace_provider_resources_team_list,
)
from waldur_api_client.api.marketplace_resources import marketplace_resources_list
from waldur_api_client.api.marketplace_service_providers import (
    marketplace_service_providers_keys_list,
    marketplace_service_providers_list,
)
from waldur_api_client.api.marketplace_site_agent_identities import (
    marketplace_site_agent_identities_create,
    marketplace_site_agent_identities_list,
    marketplace_site_agent_identities_register_queue,
    marketplace_site_agent_identities_register_service,
    marketplace_site_agent_identities_update,
)
from waldur_api_client.api.marketplace_site_agent_services import (
    marketplace_site_agent_services_register_processor,
)
from waldur_api_client.api.marketplace_slurm_periodic_usage_policies import (
    marketplace_slurm_periodic_usage_policies_list,
    marketplace_slurm_periodic_usage_policies_report_command_result,
    marketplace_slurm_periodic_usage_policies_retrieve,
)
from waldur_api_client.api.users import users_me_retrieve
from waldur_api_client.api.version import version_retrieve
from waldur_api_client.models import (
    AgentIdentity,
    AgentIdentityRequest,
    AgentProcessorCreateRequest,
    AgentQueueRegistrationRequest,
    AgentServiceCreateRequest,
    CheckUniqueBackendIDRequest,
    ComponentUsageCreateRequest,
    ComponentUsageItemRequest,
    ComponentUserUsageBulkCreateRequest,
    ComponentUserUsageCreateRequest,
    MemberSyncStatusReportRequest,
    ObservableObjectTypeEnum,
    OfferingUserState,
    OrderApproveByProviderRequest,
    OrderBackendIDRequest,
    OrderErrorDetailsRequest,
    OrderProviderRejectionRequest,
    OrderState,
    ResourceBackendIDRequest,
    ResourceBackendMetadataRequest,
    ResourceBackendMetadataRequestBackendMetadata,
    ResourceEndpointRequest,
    ResourceEndpointsRequest,
    ResourceSetLimitsRequest,
    ResourceSetLimitsRequestLimits,
    ResourceSetStateErredRequest,
    ResourceState,
    SlurmCommandResultRequest,
)
from waldur_api_client.types import Response

from tests.standin.conftest import (
    FLOOD,
    FLOOD_ORDER,
    OFFERING,
    PLAN,
    POLICY,
    PROVIDER_CUSTOMER,
    SKY,
    SKY_ORDER,
)
from waldur_site_agent_slurm.devtools.standin import StandIn
from waldur_site_agent_slurm.devtools.standin.routes import ROUTES

OFF = uuid.UUID(OFFERING)


def ok(response: Response[Any], status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


def test_every_route_through_the_real_client(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    client = api()
    walk_prologue(client)
    walk_offering(client)
    walk_orders(client, standin)
    walk_resources(client)
    walk_usage(client)
    walk_policies(client)

    served = [r for r in standin.state.requests() if 200 <= r["status"] < 300]
    untouched = [
        f"{route.method} {route.pattern.pattern}"
        for route in ROUTES
        if all(route.match(r["method"], r["path"].removeprefix("/api/")) is None for r in served)
    ]
    assert untouched == []


def walk_prologue(client: AuthenticatedClient) -> None:
    assert ok(version_retrieve.sync_detailed(client=client)).version
    me = ok(users_me_retrieve.sync_detailed(client=client))
    assert (me.username, me.is_staff) == ("site-agent", True)

    name = f"agent-{OFFERING}"
    assert ok(marketplace_site_agent_identities_list.sync_detailed(client=client, name=name)) == []
    body = AgentIdentityRequest(offering=OFF, name=name, version="1.0.7")
    identity: AgentIdentity = ok(
        marketplace_site_agent_identities_create.sync_detailed(client=client, body=body), 201
    )
    listed = ok(marketplace_site_agent_identities_list.sync_detailed(client=client, name=name))
    assert [i.uuid for i in listed] == [identity.uuid]
    body.config_file_path = "/etc/agent.yaml"
    updated = ok(
        marketplace_site_agent_identities_update.sync_detailed(
            identity.uuid, client=client, body=body
        )
    )
    assert updated.config_file_path == "/etc/agent.yaml"

    svc_body = AgentServiceCreateRequest(name="order_process", mode="order_process")
    service = ok(
        marketplace_site_agent_identities_register_service.sync_detailed(
            identity.uuid, client=client, body=svc_body
        ),
        201,
    )
    again = ok(
        marketplace_site_agent_identities_register_service.sync_detailed(
            identity.uuid, client=client, body=svc_body
        )
    )
    assert again.uuid == service.uuid

    proc_body = AgentProcessorCreateRequest(name="P", backend_type="m.C", backend_version="1")
    processor = ok(
        marketplace_site_agent_services_register_processor.sync_detailed(
            service.uuid, client=client, body=proc_body
        ),
        201,
    )
    assert processor.service == service.uuid

    queue_body = AgentQueueRegistrationRequest(object_types=[ObservableObjectTypeEnum.ORDER])
    queue = ok(
        marketplace_site_agent_identities_register_queue.sync_detailed(
            identity.uuid, client=client, body=queue_body
        ),
        201,
    )
    assert queue.queue_name == f"consumer_{OFFERING}"
    assert list(queue.observable_object_types) == ["order"]

    providers = ok(
        marketplace_service_providers_list.sync_detailed(
            client=client, customer_uuid=uuid.UUID(PROVIDER_CUSTOMER)
        )
    )
    assert len(providers) == 1
    keys = marketplace_service_providers_keys_list.sync_detailed(
        providers[0].uuid.hex, client=client
    )
    assert ok(keys) == []


def walk_offering(client: AuthenticatedClient) -> None:
    offering = ok(marketplace_provider_offerings_retrieve.sync_detailed(OFF, client=client))
    assert [c.type_ for c in offering.components] == ["cpu", "mem", "gpu"]
    assert {c.billing_type.value for c in offering.components} == {"usage"}
    assert offering.customer_uuid.hex == PROVIDER_CUSTOMER
    config = ok(
        marketplace_provider_offerings_user_attribute_config_retrieve.sync_detailed(
            OFF, client=client
        )
    )
    assert "username" in config.exposed_fields
    for lister in (
        marketplace_provider_offerings_list_project_service_accounts_list,
        marketplace_provider_offerings_list_course_accounts_list,
    ):
        assert ok(lister.sync_detailed(OFF, client=client)) == []
    unique = marketplace_provider_offerings_check_unique_backend_id.sync_detailed(
        OFF, client=client, body=CheckUniqueBackendIDRequest(backend_id="a_new")
    )
    assert ok(unique).is_unique is True
    plan = ok(marketplace_plans_retrieve.sync_detailed(uuid.UUID(PLAN), client=client))
    assert plan.name == "Usage-based"


def walk_orders(client: AuthenticatedClient, standin: StandIn) -> None:
    pending = ok(
        marketplace_orders_list.sync_detailed(
            client=client,
            offering_uuid=OFF,
            state=[OrderState.PENDING_PROVIDER, OrderState.EXECUTING],
        )
    )
    assert {o.uuid.hex for o in pending} == {FLOOD_ORDER, SKY_ORDER}
    order = ok(marketplace_orders_retrieve.sync_detailed(uuid.UUID(FLOOD_ORDER), client=client))
    assert order.marketplace_resource_uuid.hex == FLOOD
    assert order.limits.to_dict() == {"cpu": 100, "mem": 200, "gpu": 10}
    assert (order.project_slug, order.customer_slug) == ("hydro-sim", "hydro")

    for uid in (FLOOD_ORDER, SKY_ORDER):
        approved = marketplace_orders_approve_by_provider.sync_detailed(
            uid, client=client, body=OrderApproveByProviderRequest()
        )
        assert ok(approved).detail
    ok(
        marketplace_orders_set_backend_id.sync_detailed(
            FLOOD_ORDER, client=client, body=OrderBackendIDRequest(backend_id="remote-1")
        )
    )
    ok(marketplace_orders_set_state_done.sync_detailed(FLOOD_ORDER, client=client))
    erred = OrderErrorDetailsRequest(error_message="boom", error_traceback="tb")
    ok(marketplace_orders_set_state_erred.sync_detailed(SKY_ORDER, client=client, body=erred))
    done = ok(marketplace_orders_retrieve.sync_detailed(FLOOD_ORDER, client=client))
    assert (done.state, done.backend_id) == (OrderState.DONE, "remote-1")

    update = standin.state.add_order("Update", resource_uuid=FLOOD, limits={"cpu": 1})
    rejection = OrderProviderRejectionRequest(provider_rejection_comment="no")
    ok(marketplace_orders_reject_by_provider.sync_detailed(update, client=client, body=rejection))
    assert standin.state.order(update)["state"] == "rejected"
    assert standin.state.resource(FLOOD)["state"] == "OK"


def walk_resources(client: AuthenticatedClient) -> None:
    listed = ok(
        marketplace_provider_resources_list.sync_detailed(
            client=client, offering_uuid=[OFF], state=[ResourceState.OK, ResourceState.ERRED]
        )
    )
    assert {(r.uuid.hex, r.state) for r in listed} == {
        (FLOOD, ResourceState.OK),
        (SKY, ResourceState.ERRED),
    }
    everyone = ok(
        marketplace_resources_list.sync_detailed(
            client=client, offering_uuid=[OFF], state=[ResourceState.OK, ResourceState.ERRED]
        )
    )
    assert {(r.uuid.hex, r.state) for r in everyone} == {(r.uuid.hex, r.state) for r in listed}
    res = ok(marketplace_provider_resources_retrieve.sync_detailed(FLOOD, client=client))
    assert res.offering_plugin_options.additional_properties == {
        "username_generation_policy": "waldur_username"
    }
    team = ok(marketplace_provider_resources_team_list.sync_detailed(FLOOD, client=client))
    assert {(m.offering_user_username, m.offering_user_state) for m in team} == {
        ("alice", "OK"),
        ("bob", "OK"),
    }

    ok(
        marketplace_provider_resources_set_backend_id.sync_detailed(
            FLOOD, client=client, body=ResourceBackendIDRequest(backend_id="a_flood-model")
        )
    )
    limits = ResourceSetLimitsRequestLimits.from_dict({"cpu": 7, "mem": 8, "gpu": 9})
    ok(
        marketplace_provider_resources_set_limits.sync_detailed(
            FLOOD, client=client, body=ResourceSetLimitsRequest(limits=limits)
        )
    )
    metadata = ResourceBackendMetadataRequestBackendMetadata.from_dict({"qos": "normal"})
    ok(
        marketplace_provider_resources_set_backend_metadata.sync_detailed(
            FLOOD, client=client, body=ResourceBackendMetadataRequest(backend_metadata=metadata)
        )
    )
    endpoints = ResourceEndpointsRequest(
        endpoints=[ResourceEndpointRequest(name="login", url="ssh://login.example.org")]
    )
    ok(
        marketplace_provider_resources_set_endpoints.sync_detailed(
            FLOOD, client=client, body=endpoints
        )
    )
    ok(marketplace_provider_resources_refresh_last_sync.sync_detailed(FLOOD, client=client))
    erred = ResourceSetStateErredRequest(error_message="x", error_traceback="y")
    ok(marketplace_provider_resources_set_as_erred.sync_detailed(FLOOD, client=client, body=erred))
    ok(marketplace_provider_resources_set_as_ok.sync_detailed(FLOOD, client=client))
    statuses = MemberSyncStatusReportRequest.from_dict({"statuses": []})
    result = marketplace_provider_resources_set_membership_sync_statuses.sync_detailed(
        FLOOD, client=client, body=statuses
    )
    assert ok(result).stored == 0

    res = ok(marketplace_provider_resources_retrieve.sync_detailed(FLOOD, client=client))
    assert (res.state, res.backend_id) == (ResourceState.OK, "a_flood-model")
    assert res.limits.to_dict() == {"cpu": 7, "mem": 8, "gpu": 9}
    assert res.backend_metadata.to_dict() == {"qos": "normal"}
    assert [e.name for e in res.endpoints] == ["login"]

    users = ok(
        marketplace_offering_users_list.sync_detailed(
            client=client, offering_uuid=[OFF], is_restricted=False
        )
    )
    assert {u.username for u in users} == {"alice", "bob", "carol", "dave"}
    ok_users = ok(
        marketplace_offering_users_list.sync_detailed(
            client=client, offering_uuid=[OFF], state=[OfferingUserState.OK]
        )
    )
    assert {u.username for u in ok_users} == {"alice", "bob", "carol"}
    limits_list = ok(
        component_user_usage_limits_list.sync_detailed(client=client, resource_uuid=FLOOD)
    )
    assert [(lim.user, lim.component_type, lim.limit) for lim in limits_list] == [
        ("alice", "cpu", "5")
    ]


def walk_usage(client: AuthenticatedClient) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    period = now.date().replace(day=1)
    body = ComponentUsageCreateRequest(
        usages=[ComponentUsageItemRequest(type_="cpu", amount="12.35")],
        resource=uuid.UUID(FLOOD),
        date=now,
    )
    ok(marketplace_component_usages_set_usage.sync_detailed(client=client, body=body), 201)
    usages = ok(
        marketplace_component_usages_list.sync_detailed(
            client=client, resource_uuid=FLOOD, billing_period=period
        )
    )
    assert [(u.type_, u.usage, u.billing_period) for u in usages] == [("cpu", "12.35", period)]
    alice_url = next(
        u.url
        for u in ok(marketplace_offering_users_list.sync_detailed(client=client))
        if u.username == "alice"
    )
    bulk = ComponentUserUsageBulkCreateRequest(
        usages=[ComponentUserUsageCreateRequest(username="alice", usage="10.00", user=alice_url)]
    )
    ok(
        marketplace_component_usages_set_user_usages.sync_detailed(
            usages[0].uuid, client=client, body=bulk
        ),
        201,
    )
    single = ComponentUserUsageCreateRequest(username="bob", usage="2.35", date=now)
    ok(
        marketplace_component_usages_set_user_usage.sync_detailed(
            usages[0].uuid, client=client, body=single
        ),
        201,
    )
    user_usages = ok(
        marketplace_component_user_usages_list.sync_detailed(
            client=client, resource_uuid=FLOOD, component_usage_billing_period=period
        )
    )
    assert sorted((u.username, u.usage, u.user) for u in user_usages) == [
        ("alice", "10.00", alice_url),
        ("bob", "2.35", None),
    ]
    assert all(u.component_usage.rstrip("/").endswith(usages[0].uuid.hex) for u in user_usages)


def walk_policies(client: AuthenticatedClient) -> None:
    policies = ok(marketplace_slurm_periodic_usage_policies_list.sync_detailed(client=client))
    assert [p.uuid.hex for p in policies] == [POLICY]
    policy = ok(
        marketplace_slurm_periodic_usage_policies_retrieve.sync_detailed(POLICY, client=client)
    )
    assert policy.scope_uuid.hex == OFFERING
    result = SlurmCommandResultRequest(
        resource_uuid=uuid.UUID(FLOOD), success=True, commands_executed=["sacctmgr ..."]
    )
    ok(
        marketplace_slurm_periodic_usage_policies_report_command_result.sync_detailed(
            POLICY, client=client, body=result
        )
    )


def test_report_command_result_is_stored_with_its_sender(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    result = SlurmCommandResultRequest(
        resource_uuid=uuid.UUID(FLOOD), success=False, error_message="no", commands_executed=[]
    )
    marketplace_slurm_periodic_usage_policies_report_command_result.sync_detailed(
        POLICY, client=api(), body=result
    )

    [stored] = standin.state.command_results()
    assert stored["policy_uuid"] == POLICY
    assert stored["username"] == "site-agent"
    assert stored["body"]["success"] is False
    assert stored["body"]["error_message"] == "no"


@pytest.mark.parametrize("dashed", [True, False])
def test_uuids_in_paths_may_carry_dashes(
    api: Callable[..., AuthenticatedClient], dashed: bool
) -> None:
    uid = uuid.UUID(FLOOD)
    res = marketplace_provider_resources_retrieve.sync_detailed(
        str(uid) if dashed else uid.hex, client=api()
    )
    assert ok(res).uuid == uid


def test_a_resource_end_date_reaches_the_client_as_a_date(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    client = api()
    uid = uuid.UUID(FLOOD)
    assert (
        ok(marketplace_provider_resources_retrieve.sync_detailed(uid, client=client)).end_date
        is None
    )

    standin.state.update_resource(FLOOD, end_date="2027-05-31")

    resource = ok(marketplace_provider_resources_retrieve.sync_detailed(uid, client=client))
    assert resource.end_date == dt.date(2027, 5, 31)
    standin.state.update_resource(FLOOD, end_date=None)
    assert (
        ok(marketplace_provider_resources_retrieve.sync_detailed(uid, client=client)).end_date
        is None
    )
    with pytest.raises(ValueError, match="end_date"):
        standin.state.update_resource(FLOOD, end_date="31.05.2027")
