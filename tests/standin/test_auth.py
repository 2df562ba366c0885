"""Tokens and permissions behave like Mastermind's."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_orders import (
    marketplace_orders_approve_by_provider,
    marketplace_orders_list,
)
from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_retrieve,
)
from waldur_api_client.api.marketplace_slurm_periodic_usage_policies import (
    marketplace_slurm_periodic_usage_policies_report_command_result,
)
from waldur_api_client.api.users import users_me_retrieve
from waldur_api_client.api.version import version_retrieve
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import OrderApproveByProviderRequest, SlurmCommandResultRequest

from tests.standin.conftest import (
    FLOOD,
    FLOOD_ORDER,
    POLICY,
    PROVIDER_TOKEN,
    USER_TOKEN,
    base_url,
)
from waldur_site_agent_slurm.devtools.standin import StandIn


def test_an_unknown_token_gets_401_invalid_token(api: Callable[..., AuthenticatedClient]) -> None:
    with pytest.raises(UnexpectedStatus) as err:
        users_me_retrieve.sync_detailed(client=api("not-a-token"))
    assert err.value.status_code == 401
    assert b"Invalid token." in err.value.content


def test_a_request_without_a_token_gets_401_except_for_the_version(standin: StandIn) -> None:
    with httpx.Client(base_url=base_url(standin)) as anonymous:
        assert anonymous.get("/api/users/me/").status_code == 401
        assert anonymous.get("/api/version/").status_code == 200


def test_users_me_reports_staff_status_per_token(api: Callable[..., AuthenticatedClient]) -> None:
    staff = users_me_retrieve.sync_detailed(client=api()).parsed
    user = users_me_retrieve.sync_detailed(client=api(USER_TOKEN)).parsed
    assert (staff.username, staff.is_staff) == ("site-agent", True)
    assert (user.username, user.is_staff) == ("demo-user", False)


def test_report_command_result_is_staff_only(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    body = SlurmCommandResultRequest(resource_uuid=uuid.UUID(FLOOD), success=True)
    with pytest.raises(UnexpectedStatus) as err:
        marketplace_slurm_periodic_usage_policies_report_command_result.sync_detailed(
            POLICY, client=api(PROVIDER_TOKEN), body=body
        )
    assert err.value.status_code == 403
    assert standin.state.command_results() == []


def test_a_non_provider_token_cannot_approve_an_order(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    with pytest.raises(UnexpectedStatus) as err:
        marketplace_orders_approve_by_provider.sync_detailed(
            FLOOD_ORDER, client=api(USER_TOKEN), body=OrderApproveByProviderRequest()
        )
    assert err.value.status_code == 403
    assert standin.state.order(FLOOD_ORDER)["state"] == "pending-provider"


def test_a_provider_token_that_is_not_staff_may_approve(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    marketplace_orders_approve_by_provider.sync_detailed(
        FLOOD_ORDER, client=api(PROVIDER_TOKEN), body=OrderApproveByProviderRequest()
    )
    assert standin.state.order(FLOOD_ORDER)["state"] == "executing"


def test_provider_data_is_invisible_to_a_non_provider(
    api: Callable[..., AuthenticatedClient],
) -> None:
    client = api(USER_TOKEN)
    assert marketplace_orders_list.sync_detailed(client=client).parsed == []
    with pytest.raises(UnexpectedStatus) as err:
        marketplace_provider_resources_retrieve.sync_detailed(FLOOD, client=client)
    assert err.value.status_code == 404


def test_the_version_answers_any_valid_token(api: Callable[..., AuthenticatedClient]) -> None:
    assert version_retrieve.sync_detailed(client=api(USER_TOKEN)).status_code == 200
