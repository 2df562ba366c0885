"""Server mechanics: pagination, faults, recording, validation and control endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from waldur_api_client import AuthenticatedClient
from waldur_api_client.api.marketplace_orders import marketplace_orders_list
from waldur_api_client.api.users import users_me_retrieve
from waldur_api_client.errors import UnexpectedStatus

from tests.standin.conftest import FLOOD, HYDRO_PROJECT, STAFF_TOKEN, USER_TOKEN
from waldur_site_agent_slurm.devtools.standin import StandIn, StateError, agent_views

ORDERS = "/api/marketplace-orders/"


def add_orders(standin: StandIn, count: int) -> None:
    for n in range(count):
        standin.state.add_order("Create", project_uuid=HYDRO_PROJECT, name=f"Run {n}")


def test_a_single_page_has_no_link_header(http: httpx.Client) -> None:
    response = http.get(ORDERS)
    assert response.status_code == 200
    assert "link" not in response.headers
    assert response.headers["x-result-count"] == "2"


def test_pages_link_to_the_next_one_until_the_last(standin: StandIn, http: httpx.Client) -> None:
    add_orders(standin, 3)  # five orders in all

    first = http.get(ORDERS, params={"page_size": 2})
    last = http.get(ORDERS, params={"page_size": 2, "page": 3})

    assert len(first.json()) == 2
    assert first.headers["link"].endswith('page=2>; rel="next"')
    assert "page_size=2" in first.headers["link"]
    assert len(last.json()) == 1
    assert "link" not in last.headers
    assert http.get(ORDERS, params={"page_size": 2, "page": 4}).status_code == 404


def test_the_client_follows_pages_to_collect_everything(
    standin: StandIn, api: Callable[..., AuthenticatedClient]
) -> None:
    add_orders(standin, 130)  # more than sync_all's page size of 100
    orders = marketplace_orders_list.sync_all(client=api())
    assert len({o.uuid for o in orders}) == 132


def test_an_injected_status_answers_once_then_the_route_works_again(
    standin: StandIn, http: httpx.Client
) -> None:
    standin.state.add_fault(path="marketplace-orders", method="GET", status=503)

    assert http.get(ORDERS).status_code == 503
    assert http.post(f"{ORDERS}x/approve_by_provider/").status_code == 404  # not a GET
    assert http.get(ORDERS).status_code == 200


def test_a_fault_may_last_several_requests_and_carry_a_body(
    standin: StandIn, http: httpx.Client
) -> None:
    standin.state.add_fault(path="users/me", status=502, times=2, body={"detail": "gateway"})
    answers = [http.get("/api/users/me/") for _ in range(3)]
    assert [a.status_code for a in answers] == [502, 502, 200]
    assert answers[0].json() == {"detail": "gateway"}


def test_a_delay_fault_still_handles_the_request_and_is_used_up(
    standin: StandIn, http: httpx.Client
) -> None:
    standin.state.add_fault(path="users/me", status=None, delay=0.05)
    assert http.get("/api/users/me/").json()["username"] == "site-agent"
    assert standin.state.dump()["faults"] == []


def test_a_drop_fault_closes_the_connection_without_an_answer(
    standin: StandIn, http: httpx.Client
) -> None:
    standin.state.add_fault(path="users/me", drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/users/me/")
    assert http.get("/api/users/me/").status_code == 200
    assert [r["status"] for r in standin.state.requests(path_contains="users/me")] == [0, 200]


def test_a_fault_needs_a_valid_regex_and_something_to_do(standin: StandIn) -> None:
    with pytest.raises(StateError, match="regular expression"):
        standin.state.add_fault(path="(")
    with pytest.raises(StateError, match="status, a positive delay or drop"):
        standin.state.add_fault(path="x", status=None)


def test_an_answer_the_client_would_reject_becomes_a_500_naming_the_model(
    standin: StandIn,
    api: Callable[..., AuthenticatedClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_user_me(st: Any, user: Any) -> dict[str, Any]:
        return {"uuid": "not-a-uuid", "username": user.username}

    monkeypatch.setattr(agent_views, "user_me", broken_user_me)

    with pytest.raises(UnexpectedStatus) as err:
        users_me_retrieve.sync_detailed(client=api())
    assert err.value.status_code == 500
    body = httpx.Response(500, content=err.value.content).json()
    assert body["model"] == "UserMe"
    assert body["api"] == "users.users_me_retrieve"
    assert body["route"] == "GET /api/users/me/"
    assert "badly formed hexadecimal UUID" in body["error"]


def test_writes_are_recorded_with_body_status_agent_and_user(
    standin: StandIn, http: httpx.Client
) -> None:
    http.get(ORDERS)
    http.post(
        f"/api/marketplace-provider-resources/{FLOOD}/set_limits/",
        json={"limits": {"cpu": 1}},
        headers={"User-Agent": "waldur-site-agent-membership_sync/1.0.7"},
    )

    [write] = standin.state.writes()
    assert write["method"] == "POST"
    assert write["path"] == f"/api/marketplace-provider-resources/{FLOOD}/set_limits/"
    assert write["body"] == {"limits": {"cpu": 1}}
    assert write["status"] == 200
    assert write["user_agent"] == "waldur-site-agent-membership_sync/1.0.7"
    assert write["username"] == "site-agent"
    assert [r["method"] for r in standin.state.requests()] == ["GET", "POST"]
    assert standin.state.writes(path_contains="set_limits", method="GET") == []

    standin.state.clear_writes()
    assert standin.state.writes() == []


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    assert http.get("/api/no-such-thing/").status_code == 404
    assert http.delete(ORDERS).status_code == 405
    assert http.get("/elsewhere/").status_code == 404


def test_control_endpoints_steer_the_state(standin: StandIn, http: httpx.Client) -> None:
    anonymous = httpx.Client(base_url=http.base_url)

    patched = anonymous.patch(f"/_standin/resources/{FLOOD}", json={"paused": True})
    assert patched.json()["paused"] is True
    created = anonymous.post(
        "/_standin/orders",
        json={"type": "Create", "project_uuid": HYDRO_PROJECT, "name": "New run"},
    )
    assert created.status_code == 201
    assert standin.state.order(created.json()["uuid"])["resource_name"] == "New run"
    assert anonymous.post(
        f"/_standin/projects/{HYDRO_PROJECT}/team", json={"username": "carol"}
    ).is_success
    assert anonymous.delete(f"/_standin/projects/{HYDRO_PROJECT}/team/bob").is_success
    team = next(p for p in standin.state.dump()["projects"] if p["uuid"] == HYDRO_PROJECT)["team"]
    assert {m["username"] for m in team} == {"alice", "carol"}

    assert anonymous.post("/_standin/faults", json={"path": "users/me", "status": 500}).is_success
    assert http.get("/api/users/me/").status_code == 500
    anonymous.post("/_standin/faults", json={"path": "users/me", "status": 500})
    anonymous.delete("/_standin/faults")
    assert http.get("/api/users/me/").status_code == 200

    writes = anonymous.get("/_standin/writes").json()
    assert writes == []  # the /api/ traffic above was all GETs
    state = anonymous.get("/_standin/state").json()
    assert state["offering"]["uuid"] == standin.scenario.offering.uuid
    assert anonymous.get("/_standin/requests", params={"path_contains": "users/me"}).json()
    assert anonymous.delete("/_standin/requests").is_success
    assert anonymous.get("/_standin/requests").json() == []


def test_control_endpoints_explain_bad_input(http: httpx.Client) -> None:
    anonymous = httpx.Client(base_url=http.base_url)
    bad_state = anonymous.patch(f"/_standin/resources/{FLOOD}", json={"state": "Happy"})
    assert bad_state.status_code == 400
    assert "Happy" in bad_state.json()["detail"]
    bad_key = anonymous.post("/_standin/faults", json={"path": "x", "colour": "red"})
    assert "colour" in bad_key.json()["detail"]
    assert anonymous.get("/_standin/nothing").status_code == 404


def test_team_changes_show_in_the_resource_team(standin: StandIn, http: httpx.Client) -> None:
    standin.state.add_offering_user("erin", state="OK")
    standin.state.add_team_member(HYDRO_PROJECT, "erin", "PROJECT.ADMIN")
    standin.state.remove_team_member(HYDRO_PROJECT, "alice")

    team = http.get(f"/api/marketplace-provider-resources/{FLOOD}/team/").json()
    assert {(m["offering_user_username"], m["role"]) for m in team} == {
        ("bob", "PROJECT.MEMBER"),
        ("erin", "PROJECT.ADMIN"),
    }


def test_a_member_without_an_offering_account_has_no_offering_username(
    standin: StandIn, http: httpx.Client
) -> None:
    standin.state.add_team_member(HYDRO_PROJECT, "frank")
    team = http.get(f"/api/marketplace-provider-resources/{FLOOD}/team/").json()
    frank = next(m for m in team if m["username"] == "frank")
    assert (frank["offering_user_username"], frank["offering_user_state"]) == (None, None)


def test_the_user_token_is_recorded_as_its_user(standin: StandIn, http: httpx.Client) -> None:
    http.get("/api/users/me/", headers={"Authorization": f"Token {USER_TOKEN}"})
    http.get("/api/users/me/", headers={"Authorization": f"Token {STAFF_TOKEN}"})
    assert [r["username"] for r in standin.state.requests()] == ["demo-user", "site-agent"]
