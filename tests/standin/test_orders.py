"""Order transitions and what they do to the resource, as in Mastermind."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_orders import (
    marketplace_orders_approve_by_provider,
    marketplace_orders_set_state_done,
    marketplace_orders_set_state_erred,
)
from waldur_api_client.api.marketplace_provider_resources import marketplace_provider_resources_list
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import (
    OrderApproveByProviderRequest,
    OrderErrorDetailsRequest,
    ResourceState,
)

from tests.standin.conftest import FLOOD, FLOOD_ORDER, HYDRO_PROJECT, OFFERING
from waldur_site_agent_slurm.devtools.standin import StandIn, StateError


def approve(client: AuthenticatedClient, order: str) -> None:
    marketplace_orders_approve_by_provider.sync_detailed(
        order, client=client, body=OrderApproveByProviderRequest()
    )


def finish(client: AuthenticatedClient, order: str) -> None:
    approve(client, order)
    marketplace_orders_set_state_done.sync_detailed(order, client=client)


def ok_or_erred(client: AuthenticatedClient) -> set[str]:
    listed = marketplace_provider_resources_list.sync_detailed(
        client=client, offering_uuid=[OFFERING], state=[ResourceState.OK, ResourceState.ERRED]
    ).parsed
    return {r.uuid.hex for r in listed}


def test_approval_moves_the_order_to_executing_and_keeps_the_resource_creating(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    approve(api(), FLOOD_ORDER)
    order = standin.state.order(FLOOD_ORDER)
    assert order["state"] == "executing"
    assert order["provider_reviewed_by"] == "site-agent"
    assert standin.state.resource(FLOOD)["state"] == "Creating"


def test_a_done_create_order_makes_the_resource_ok(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    finish(api(), FLOOD_ORDER)
    assert standin.state.order(FLOOD_ORDER)["state"] == "done"
    assert standin.state.resource(FLOOD)["state"] == "OK"
    assert FLOOD in ok_or_erred(api())


def test_a_done_update_order_applies_its_limits(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    finish(api(), FLOOD_ORDER)
    update = standin.state.add_order("Update", resource_uuid=FLOOD, limits={"cpu": 5, "gpu": 1})
    assert standin.state.resource(FLOOD)["state"] == "Updating"

    finish(api(), update)

    resource = standin.state.resource(FLOOD)
    assert resource["limits"] == {"cpu": 5, "gpu": 1}
    assert resource["state"] == "OK"


def test_a_done_terminate_order_terminates_the_resource_and_hides_it_from_syncs(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    finish(api(), FLOOD_ORDER)
    finish(api(), standin.state.add_order("Terminate", resource_uuid=FLOOD))
    assert standin.state.resource(FLOOD)["state"] == "Terminated"
    assert FLOOD not in ok_or_erred(api())


def test_an_erred_create_order_errs_the_resource_with_the_message(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    approve(api(), FLOOD_ORDER)
    body = OrderErrorDetailsRequest(error_message="sacctmgr failed", error_traceback="tb")
    marketplace_orders_set_state_erred.sync_detailed(FLOOD_ORDER, client=api(), body=body)

    order = standin.state.order(FLOOD_ORDER)
    assert (order["state"], order["error_message"], order["error_traceback"]) == (
        "erred",
        "sacctmgr failed",
        "tb",
    )
    resource = standin.state.resource(FLOOD)
    assert (resource["state"], resource["error_message"]) == ("Erred", "sacctmgr failed")


def test_completing_an_order_that_was_not_approved_is_a_400(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    with pytest.raises(UnexpectedStatus) as err:
        marketplace_orders_set_state_done.sync_detailed(FLOOD_ORDER, client=api())
    assert err.value.status_code == 400
    assert b"pending-provider" in err.value.content
    assert standin.state.order(FLOOD_ORDER)["state"] == "pending-provider"


def test_approving_twice_is_a_400(api: Callable[..., AuthenticatedClient]) -> None:
    approve(api(), FLOOD_ORDER)
    with pytest.raises(UnexpectedStatus) as err:
        approve(api(), FLOOD_ORDER)
    assert err.value.status_code == 400


def test_a_create_order_without_a_resource_makes_a_creating_resource_with_a_slug(
    standin: StandIn,
) -> None:
    order_uuid = standin.state.add_order(
        "Create", project_uuid=HYDRO_PROJECT, name="Flood model 2026", limits={"cpu": 3}
    )

    order = standin.state.order(order_uuid)
    resource = standin.state.resource(order["marketplace_resource_uuid"])
    assert order["state"] == "pending-provider"
    assert (resource["state"], resource["limits"]) == ("Creating", {"cpu": 3})
    assert resource["slug"] == "flood-model-2026"
    assert resource["project_slug"] == "hydro-sim"


def test_a_second_resource_with_the_same_name_gets_a_distinct_slug(standin: StandIn) -> None:
    first = standin.state.add_order("Create", project_uuid=HYDRO_PROJECT, name="Run A")
    second = standin.state.add_order("Create", project_uuid=HYDRO_PROJECT, name="Run A")
    slugs = {
        standin.state.resource(standin.state.order(o)["marketplace_resource_uuid"])["slug"]
        for o in (first, second)
    }
    assert slugs == {"run-a", "run-a-2"}


def test_add_order_rejects_unknown_components_and_projects(standin: StandIn) -> None:
    with pytest.raises(StateError, match="unknown component"):
        standin.state.add_order("Update", resource_uuid=FLOOD, limits={"ram": 1})
    with pytest.raises(StateError, match="no project"):
        standin.state.add_order("Create", project_uuid="0" * 32, name="x")
