"""Usage records: one per period and component, replaced, never added up."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_component_usages import (
    marketplace_component_usages_set_usage,
    marketplace_component_usages_set_user_usages,
)
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.models import (
    ComponentUsageCreateRequest,
    ComponentUsageItemRequest,
    ComponentUserUsageBulkCreateRequest,
    ComponentUserUsageCreateRequest,
)

from tests.standin.conftest import FLOOD, PROVIDER_TOKEN
from waldur_site_agent_slurm.devtools.standin import StandIn

NOW = dt.datetime.now(dt.timezone.utc)
LAST_MONTH = (NOW.replace(day=1) - dt.timedelta(days=1)).replace(day=1, hour=0, minute=0)


def set_usage(
    client: AuthenticatedClient, amounts: dict[str, str], date: dt.datetime = NOW
) -> None:
    body = ComponentUsageCreateRequest(
        usages=[ComponentUsageItemRequest(type_=t, amount=a) for t, a in amounts.items()],
        resource=uuid.UUID(FLOOD),
        date=date,
    )
    marketplace_component_usages_set_usage.sync_detailed(client=client, body=body)


def test_set_usage_twice_leaves_one_record_per_component_with_the_latest_value(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    set_usage(api(), {"cpu": "10.00", "mem": "1.50"})
    set_usage(api(), {"cpu": "12.25", "mem": "1.50"})

    records = standin.state.component_usages(FLOOD)
    assert sorted((r["type"], r["usage"]) for r in records) == [("cpu", "12.25"), ("mem", "1.50")]
    assert {r["billing_period"] for r in records} == {NOW.date().replace(day=1).isoformat()}


def test_usage_of_another_month_is_a_separate_record(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    set_usage(api(), {"cpu": "1.00"})
    set_usage(api(), {"cpu": "2.00"}, LAST_MONTH)
    periods = {r["billing_period"]: r["usage"] for r in standin.state.component_usages(FLOOD)}
    assert periods == {
        NOW.date().replace(day=1).isoformat(): "1.00",
        LAST_MONTH.date().isoformat(): "2.00",
    }


def test_user_usages_posted_twice_are_replaced(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    set_usage(api(), {"cpu": "10.00"})
    [parent] = standin.state.component_usages(FLOOD)
    for value in ("4.00", "6.50"):
        body = ComponentUserUsageBulkCreateRequest(
            usages=[ComponentUserUsageCreateRequest(username="alice", usage=value)]
        )
        marketplace_component_usages_set_user_usages.sync_detailed(
            parent["uuid"], client=api(), body=body
        )

    assert [(u["username"], u["usage"]) for u in standin.state.user_usages(FLOOD)] == [
        ("alice", "6.50")
    ]


def test_backfilling_a_past_month_needs_a_staff_token(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    with pytest.raises(UnexpectedStatus) as err:
        set_usage(api(PROVIDER_TOKEN), {"cpu": "1.00"}, LAST_MONTH)
    assert err.value.status_code == 400
    assert b"backfilling past billing periods" in err.value.content
    assert standin.state.component_usages(FLOOD) == []

    set_usage(api(PROVIDER_TOKEN), {"cpu": "1.00"})
    set_usage(api(), {"cpu": "3.00"}, LAST_MONTH)
    assert len(standin.state.component_usages(FLOOD)) == 2


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        ({"cpu": "1.005"}, b"no more than 2 decimal places"),
        ({"ram": "1.00"}, b'Component \\"ram\\" is not found'),
        ({"cpu": "-1"}, b"non-negative"),
    ],
)
def test_invalid_usage_is_refused_without_storing_anything(
    standin: StandIn,
    api: Callable[..., AuthenticatedClient],
    amounts: dict[str, str],
    message: bytes,
) -> None:
    with pytest.raises(UnexpectedStatus) as err:
        set_usage(api(), {"mem": "1.00", **amounts})
    assert err.value.status_code == 400
    assert message in err.value.content
    assert standin.state.component_usages(FLOOD) == []


def test_a_user_url_that_is_no_offering_user_is_refused(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    set_usage(api(), {"cpu": "10.00"})
    [parent] = standin.state.component_usages(FLOOD)
    body = ComponentUserUsageBulkCreateRequest(
        usages=[
            ComponentUserUsageCreateRequest(
                username="mallory",
                usage="1.00",
                user=f"{standin.api_url}marketplace-offering-users/{'0' * 32}/",
            )
        ]
    )
    with pytest.raises(UnexpectedStatus) as err:
        marketplace_component_usages_set_user_usages.sync_detailed(
            parent["uuid"], client=api(), body=body
        )
    assert err.value.status_code == 400
    assert standin.state.user_usages(FLOOD) == []
