"""The ``/_standin/`` control endpoints: inspect and steer the state over HTTP.

They need no token and answer only loopback clients. Each maps onto one ``State``
method, so a shell demo can do with curl what a test does in Python.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from waldur_site_agent_slurm.devtools.standin.control_help import HELP
from waldur_site_agent_slurm.devtools.standin.state import StateError

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State

PREFIX = "/_standin/"
FAULT_KEYS = frozenset({"method", "path", "status", "delay", "times", "body", "drop"})
ORDER_KEYS = frozenset({"type", "resource_uuid", "limits", "project_uuid", "name", "attributes"})
OFFERING_USER_KEYS = frozenset({"username", "state", "full_name", "email"})


Answer = tuple[int, Any]
Query = dict[str, list[str]]


def _object(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise StateError("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise StateError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return body


def _query_filters(query: Query) -> dict[str, str | None]:
    return {
        key: values[-1] if (values := query.get(key)) else None
        for key in ("path_contains", "method")
    }


def handle(st: State, method: str, path: str, query: dict[str, list[str]], body: Any) -> Answer:
    """Serve one control request; returns (status, JSON body)."""
    try:
        return _dispatch(st, method, path[len(PREFIX) :].strip("/"), query, body)
    except StateError as err:
        return 400, {"detail": str(err)}
    except (TypeError, ValueError) as err:
        return 400, {"detail": f"bad request: {err}"}


def _help(_st: State, _m: re.Match[str], _q: Query, _b: Any) -> Answer:
    return 200, {"help": HELP}


def _state(st: State, _m: re.Match[str], _q: Query, _b: Any) -> Answer:
    return 200, st.dump()


def _log(st: State, m: re.Match[str], query: Query, _b: Any) -> Answer:
    getter = st.writes if m.group(1) == "writes" else st.requests
    return 200, getter(**_query_filters(query))


def _clear_log(st: State, m: re.Match[str], _q: Query, _b: Any) -> Answer:
    (st.clear_writes if m.group(1) == "writes" else st.clear_requests)()
    return 200, {"detail": f"{m.group(1)} cleared"}


def _add_fault(st: State, _m: re.Match[str], _q: Query, body: Any) -> Answer:
    spec = _object(body, FAULT_KEYS)
    if "path" not in spec:
        raise StateError("a fault needs a 'path' regex")
    st.add_fault(**spec)
    return 201, {"detail": "fault added"}


def _clear_faults(st: State, _m: re.Match[str], _q: Query, _b: Any) -> Answer:
    st.clear_faults()
    return 200, {"detail": "faults cleared"}


def _add_order(st: State, _m: re.Match[str], _q: Query, body: Any) -> Answer:
    order_uuid = st.add_order(**_object(body, ORDER_KEYS))
    return 201, {"uuid": order_uuid, "order": st.order(order_uuid)}


def _offering_user(st: State, _m: re.Match[str], _q: Query, body: Any) -> Answer:
    return 200, st.add_offering_user(**_object(body, OFFERING_USER_KEYS))


def _patch_resource(st: State, m: re.Match[str], _q: Query, body: Any) -> Answer:
    if not isinstance(body, dict):
        raise StateError("the body must be a JSON object")
    return 200, st.update_resource(m.group(1), **body)


def _add_member(st: State, m: re.Match[str], _q: Query, body: Any) -> Answer:
    member = _object(body, frozenset({"username", "role"}))
    st.add_team_member(m.group(1), **member)
    return 200, {"detail": f"{member.get('username')} added"}


def _remove_member(st: State, m: re.Match[str], _q: Query, _b: Any) -> Answer:
    st.remove_team_member(m.group(1), m.group(2))
    return 200, {"detail": f"{m.group(2)} removed"}


_UUID = r"([0-9a-fA-F-]+)"
ENDPOINTS: tuple[tuple[str, re.Pattern[str], Any], ...] = tuple(
    (method, re.compile(regex), func)
    for method, regex, func in (
        ("GET", r"(?:help)?", _help),
        ("GET", r"state", _state),
        ("GET", r"(writes|requests)", _log),
        ("DELETE", r"(writes|requests)", _clear_log),
        ("POST", r"faults", _add_fault),
        ("DELETE", r"faults", _clear_faults),
        ("POST", r"orders", _add_order),
        ("POST", r"offering-users", _offering_user),
        ("PATCH", rf"resources/{_UUID}", _patch_resource),
        ("POST", rf"projects/{_UUID}/team", _add_member),
        ("DELETE", rf"projects/{_UUID}/team/([^/]+)", _remove_member),
    )
)


def _dispatch(st: State, method: str, rel: str, query: Query, body: Any) -> Answer:
    for verb, pattern, func in ENDPOINTS:
        found = pattern.fullmatch(rel)
        if found is not None and verb == method:
            answer: Answer = func(st, found, query, body)
            return answer
    return 404, {"detail": f"no control endpoint {method} {PREFIX}{rel}", "help": HELP}
