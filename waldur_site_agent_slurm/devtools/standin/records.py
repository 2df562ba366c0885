"""The stand-in's internal records: what Mastermind would keep in its database.

Records hold plain values (hex UUIDs, aware UTC datetimes, ``Decimal`` amounts). How a
record looks on the wire is decided in ``views``, never here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def new_uuid() -> str:
    """A fresh random UUID as 32 hex digits."""
    return uuid.uuid4().hex


def user_uuid_for(username: str) -> str:
    """A stable UUID for a user the scenario names only by username."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"standin-user:{username}").hex


@dataclass
class User:
    """A Waldur user (a token owner or a project member)."""

    uuid: str
    username: str
    full_name: str = ""
    email: str = ""
    is_staff: bool = False


@dataclass
class Customer:
    """An organization."""

    uuid: str
    name: str
    slug: str


@dataclass
class Project:
    """A project; ``team`` maps username to role, in insertion order."""

    uuid: str
    name: str
    slug: str
    customer_uuid: str
    team: dict[str, str] = field(default_factory=dict)


@dataclass
class OfferingUser:
    """A user's account on the offering."""

    uuid: str
    username: str
    user_uuid: str
    full_name: str
    email: str
    state: str
    created: dt.datetime
    modified: dt.datetime


@dataclass
class Resource:
    """A marketplace resource of the offering."""

    uuid: str
    name: str
    slug: str
    project_uuid: str
    state: str
    created: dt.datetime
    modified: dt.datetime
    backend_id: str = ""
    limits: dict[str, int] = field(default_factory=dict)
    end_date: dt.date | None = None
    paused: bool = False
    downscaled: bool = False
    backend_metadata: dict[str, Any] = field(default_factory=dict)
    endpoints: list[dict[str, str]] = field(default_factory=list)
    last_sync: dt.datetime | None = None
    error_message: str = ""
    error_traceback: str = ""
    membership_sync_statuses: list[Any] = field(default_factory=list)


@dataclass
class Order:
    """A marketplace order."""

    uuid: str
    type: str
    resource_uuid: str
    state: str
    created: dt.datetime
    modified: dt.datetime
    limits: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    error_message: str = ""
    error_traceback: str = ""
    backend_id: str = ""
    completed_at: dt.datetime | None = None
    provider_reviewed_by: str | None = None
    provider_reviewed_at: dt.datetime | None = None


@dataclass
class ComponentUsage:
    """Usage of one component of one resource in one billing period."""

    uuid: str
    resource_uuid: str
    type: str
    usage: Decimal
    billing_period: dt.date
    date: dt.datetime
    created: dt.datetime
    modified_by: str = ""
    recurring: bool = False
    description: str = ""


@dataclass
class UserUsage:
    """One user's share of a component usage."""

    uuid: str
    component_usage_uuid: str
    username: str
    usage: Decimal
    date: dt.datetime
    created: dt.datetime
    modified: dt.datetime
    user_url: str | None = None


@dataclass
class UserLimit:
    """A per-user component limit on a resource."""

    uuid: str
    resource_uuid: str
    username: str
    component_type: str
    limit: int


@dataclass
class Identity:
    """A site agent identity."""

    uuid: str
    name: str
    offering_uuid: str
    created_by: str
    created: dt.datetime
    modified: dt.datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Service:
    """A service (one mode) of an agent identity."""

    uuid: str
    identity_uuid: str
    name: str
    mode: str | None
    created: dt.datetime
    modified: dt.datetime
    state: str = "Active"


@dataclass
class Processor:
    """A processor registered by a service."""

    uuid: str
    service_uuid: str
    name: str
    backend_type: str
    backend_version: str | None
    created: dt.datetime
    modified: dt.datetime


@dataclass
class Fault:
    """A failure to inject into matching /api/ requests."""

    path: str
    method: str | None = None
    status: int | None = 500
    delay: float = 0.0
    times: int | None = 1
    body: Any = None
    drop: bool = False
