"""Marketplace orders: listing and the provider's state transitions.

Transitions follow Mastermind: ``pending-provider`` →(approve)→ ``executing``
→(set_state_done)→ ``done``; ``set_state_erred`` → ``erred``; ``reject_by_provider``
→ ``rejected``. Finishing an order changes its resource the way Mastermind's order
callbacks do (a done Create makes the resource OK, a done Update applies the order's
limits, a done Terminate terminates it; an erred order errs the resource).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waldur_api_client.models import (
    OrderApproveByProviderRequest,
    OrderBackendIDRequest,
    OrderErrorDetailsRequest,
    OrderProviderRejectionRequest,
)

from waldur_site_agent_slurm.devtools.standin import views
from waldur_site_agent_slurm.devtools.standin.api import (
    ApiRequest,
    Reply,
    bad_request,
    check_body,
    lookup,
)
from waldur_site_agent_slurm.devtools.standin.records import Order

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State


def _require_state(rec: Order, action: str, *allowed: str) -> None:
    if rec.state not in allowed:
        raise bad_request(
            f"Order {action} is only possible in state {' or '.join(allowed)}; "
            f"the order is {rec.state}.",
            "detail",
        )


def orders_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-orders/`` (offering_uuid, state, type, resource_uuid, project_uuid)."""
    offerings = req.uuid_param("offering_uuid")
    states = req.multi("state")
    types = req.multi("type")
    resources = req.uuid_param("resource_uuid")
    projects = req.uuid_param("project_uuid")
    if offerings and st.scenario.offering.uuid not in offerings:
        return Reply(200, [])
    answer = []
    for rec in st.db.orders.values():
        if (states and rec.state not in states) or (types and rec.type not in types):
            continue
        res = st.db.resources[rec.resource_uuid]
        if (resources and res.uuid not in resources) or (
            projects and res.project_uuid not in projects
        ):
            continue
        answer.append(views.order(st, rec))
    return Reply(200, answer)


def orders_retrieve(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-orders/<uuid>/``."""
    return Reply(200, views.order(st, lookup(st.db.orders, req)))


def approve_by_provider(st: State, req: ApiRequest) -> Reply:
    """``POST …/approve_by_provider/``: pending-provider → executing."""
    rec = lookup(st.db.orders, req)
    check_body(req, OrderApproveByProviderRequest)
    _require_state(rec, "approval", "pending-provider")
    now = st.clock()
    rec.state, rec.modified = "executing", now
    rec.provider_reviewed_by, rec.provider_reviewed_at = req.username, now
    return Reply(200, {"detail": "Order has been approved."})


def reject_by_provider(st: State, req: ApiRequest) -> Reply:
    """``POST …/reject_by_provider/``: pending-provider → rejected."""
    rec = lookup(st.db.orders, req)
    check_body(req, OrderProviderRejectionRequest)
    _require_state(rec, "rejection", "pending-provider")
    now = st.clock()
    rec.state, rec.modified = "rejected", now
    rec.provider_reviewed_by, rec.provider_reviewed_at = req.username, now
    res = st.db.resources[rec.resource_uuid]
    res.state = "Terminated" if rec.type == "Create" else "OK"
    res.modified = now
    return Reply(200, {"detail": "Order has been rejected."})


def set_state_done(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_state_done/``: executing → done, applied to the resource."""
    rec = lookup(st.db.orders, req)
    _require_state(rec, "completion", "executing")
    now = st.clock()
    rec.state, rec.modified, rec.completed_at = "done", now, now
    res = st.db.resources[rec.resource_uuid]
    if rec.type in ("Create", "Restore"):
        res.state = "OK"
    elif rec.type == "Update":
        if rec.limits:
            res.limits = dict(rec.limits)
        res.state = "OK"
    elif rec.type == "Terminate":
        res.state = "Terminated"
    res.modified = now
    return Reply(200, {"detail": "Order has been marked as done."})


def set_state_erred(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_state_erred/``: pending-provider or executing → erred."""
    rec = lookup(st.db.orders, req)
    body = check_body(req, OrderErrorDetailsRequest)
    _require_state(rec, "failure", "pending-provider", "executing")
    now = st.clock()
    rec.state, rec.modified, rec.completed_at = "erred", now, now
    rec.error_message = str(body.get("error_message") or "")
    rec.error_traceback = str(body.get("error_traceback") or "")
    res = st.db.resources[rec.resource_uuid]
    res.state, res.modified = "Erred", now
    res.error_message, res.error_traceback = rec.error_message, rec.error_traceback
    return Reply(200, {"detail": "Order has been marked as erred."})


def set_order_backend_id(st: State, req: ApiRequest) -> Reply:
    """``POST …/set_backend_id/`` on an order (async backends)."""
    rec = lookup(st.db.orders, req)
    body = check_body(req, OrderBackendIDRequest)
    rec.backend_id, rec.modified = str(body["backend_id"]), st.clock()
    return Reply(200, {"status": "Order backend_id has been changed."})
