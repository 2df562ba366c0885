"""Component usages and per-user component usages.

``set_usage`` keeps one ComponentUsage per (resource, component, billing period) and
``set_user_usage(s)`` one ComponentUserUsage per (component usage, username): posting
the same numbers twice changes nothing, posting new numbers replaces the old ones.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from waldur_api_client.models import (
    ComponentUsageCreateRequest,
    ComponentUserUsageBulkCreateRequest,
    ComponentUserUsageCreateRequest,
)

from waldur_site_agent_slurm.devtools.standin import views
from waldur_site_agent_slurm.devtools.standin.api import (
    ApiRequest,
    Reply,
    bad_request,
    check_body,
    hex_uuid,
    lookup,
)
from waldur_site_agent_slurm.devtools.standin.records import ComponentUsage, UserUsage, new_uuid

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State

BACKFILL_MESSAGE = (
    "Only staff can report usage of usage-based components for a past billing period "
    "(backfilling past billing periods is not allowed)."
)
MAX_DECIMAL_PLACES = 2


def _date(value: Any, now: dt.datetime, key: str) -> dt.datetime:
    if value is None:
        return now
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as err:
        raise bad_request(f"Datetime has wrong format: {value!r}.", key) from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _amount(value: Any, key: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as err:
        raise bad_request(f"A valid number is required, got {value!r}.", key) from err
    if not number.is_finite() or number < 0:
        raise bad_request(f"Usage must be a non-negative number, got {value!r}.", key)
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        raise bad_request(
            f"Ensure that there are no more than {MAX_DECIMAL_PLACES} decimal places "
            f"(got {value!r}).",
            key,
        )
    return number


def set_usage(st: State, req: ApiRequest) -> Reply:
    """``POST marketplace-component-usages/set_usage/`` → 201, upserting per period."""
    body = check_body(req, ComponentUsageCreateRequest)
    if body.get("resource") is None:
        raise bad_request("This field is required.", "resource")
    res = st.db.resources.get(hex_uuid(body["resource"]))
    if res is None:
        raise bad_request(f'Invalid pk "{body["resource"]}" - object does not exist.', "resource")
    now = st.clock()
    date = _date(body.get("date"), now, "date")
    period = date.date().replace(day=1)
    components = {c.type: c for c in st.scenario.offering.components}
    items = []
    for item in body["usages"]:
        if item["type"] not in components:
            raise bad_request(f'Component "{item["type"]}" is not found.', "usages")
        items.append((item["type"], _amount(item["amount"], "usages"), item))
    current_period = now.astimezone(dt.timezone.utc).date().replace(day=1)
    usage_based = any(components[t].billing_type == "usage" for t, _, _ in items)
    if period < current_period and usage_based and not req.is_staff:
        raise bad_request(BACKFILL_MESSAGE)
    for ctype, number, item in items:
        rec = next(
            (
                u
                for u in st.db.usages.values()
                if u.resource_uuid == res.uuid and u.type == ctype and u.billing_period == period
            ),
            None,
        )
        if rec is None:
            rec = ComponentUsage(new_uuid(), res.uuid, ctype, number, period, date, now)
            st.db.usages[rec.uuid] = rec
        rec.usage, rec.date = number, date
        rec.recurring = bool(item.get("recurring", False))
        rec.description = str(item.get("description") or "")
        rec.modified_by = req.username or ""
    return Reply(201)


def _offering_user_url(st: State, value: Any) -> str | None:
    if value in (None, ""):
        return None
    target = hex_uuid(str(value).rstrip("/").rsplit("/", 1)[-1])
    if target not in st.db.offering_users:
        raise bad_request("Invalid hyperlink - Object does not exist.", "user")
    return views.url(st, "marketplace-offering-users", target)


def _store_user_usage(st: State, usage: ComponentUsage, item: dict[str, Any]) -> None:
    now = st.clock()
    number = _amount(item.get("usage", 0), "usage")
    user_url = _offering_user_url(st, item.get("user"))
    date = _date(item.get("date"), now, "date")
    rec = next(
        (
            u
            for u in st.db.user_usages.values()
            if u.component_usage_uuid == usage.uuid and u.username == item["username"]
        ),
        None,
    )
    if rec is None:
        rec = UserUsage(new_uuid(), usage.uuid, str(item["username"]), number, date, now, now)
        st.db.user_usages[rec.uuid] = rec
    rec.usage, rec.date, rec.modified, rec.user_url = number, date, now, user_url


def set_user_usages(st: State, req: ApiRequest) -> Reply:
    """``POST marketplace-component-usages/<uuid>/set_user_usages/`` → 201."""
    usage = lookup(st.db.usages, req)
    body = check_body(req, ComponentUserUsageBulkCreateRequest)
    for item in body["usages"]:
        _store_user_usage(st, usage, item)
    return Reply(201)


def set_user_usage(st: State, req: ApiRequest) -> Reply:
    """``POST marketplace-component-usages/<uuid>/set_user_usage/`` → 201."""
    usage = lookup(st.db.usages, req)
    _store_user_usage(st, usage, check_body(req, ComponentUserUsageCreateRequest))
    return Reply(201)


def _period(req: ApiRequest, name: str) -> dt.date | None:
    value = req.param(name)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise bad_request(f"Enter a valid date, got {value!r}.", name) from err


def usages_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-component-usages/`` (resource_uuid, billing_period, type)."""
    resources = req.uuid_param("resource_uuid")
    period = _period(req, "billing_period")
    ctype = req.param("type")
    return Reply(
        200,
        [
            views.component_usage(st, rec)
            for rec in st.db.usages.values()
            if (not resources or rec.resource_uuid in resources)
            and (period is None or rec.billing_period == period)
            and (ctype is None or rec.type == ctype)
        ],
    )


def user_usages_list(st: State, req: ApiRequest) -> Reply:
    """``GET marketplace-component-user-usages/``.

    Filters: resource_uuid, component_usage__billing_period, username.
    """
    resources = req.uuid_param("resource_uuid")
    period = _period(req, "component_usage__billing_period")
    username = req.param("username")
    answer = []
    for rec in st.db.user_usages.values():
        parent = st.db.usages[rec.component_usage_uuid]
        if resources and parent.resource_uuid not in resources:
            continue
        if period is not None and parent.billing_period != period:
            continue
        if username is not None and rec.username != username:
            continue
        answer.append(views.user_usage(st, rec))
    return Reply(200, answer)
