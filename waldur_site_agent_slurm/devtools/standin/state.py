"""The stand-in's in-memory Waldur state and the methods tests and demos drive it with.

One re-entrant lock guards everything: the HTTP server holds it while a handler runs,
and every public method here takes it, so a test may change state while an agent is
talking to the server. Methods that return data return API-shaped dicts (the same
dicts the HTTP API sends), never the records themselves.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, get_args

from waldur_site_agent_slurm.devtools.standin import agent_views, views
from waldur_site_agent_slurm.devtools.standin.database import Database
from waldur_site_agent_slurm.devtools.standin.records import (
    Fault,
    OfferingUser,
    Order,
    Project,
    Resource,
    User,
    new_uuid,
    utc_now,
)
from waldur_site_agent_slurm.devtools.standin.scenario import (
    OfferingUserState,
    OrderType,
    ResourceState,
    Scenario,
    normalize_uuid,
)

RESOURCE_STATES: tuple[str, ...] = get_args(ResourceState)
OFFERING_USER_STATES: tuple[str, ...] = get_args(OfferingUserState)
ORDER_TYPES: tuple[str, ...] = get_args(OrderType)
UPDATABLE_RESOURCE_FIELDS = frozenset(
    {
        "paused",
        "downscaled",
        "limits",
        "end_date",
        "state",
        "backend_id",
        "name",
        "slug",
        "backend_metadata",
    }
)


class StateError(ValueError):
    """A control call names something that does not exist or an invalid value."""


def slugify(name: str) -> str:
    """Mastermind-like slug: lower case, runs of other characters become one dash."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:48] or "resource"


class State:
    """The Waldur state one stand-in serves."""

    def __init__(self, scenario: Scenario, clock: Callable[[], dt.datetime] | None = None) -> None:
        """Seed the state from ``scenario``; ``clock`` returns aware UTC "now"."""
        self.scenario = scenario
        self.lock = threading.RLock()
        self.clock = clock or utc_now
        self.base_url = "http://127.0.0.1"
        self.started = self.clock()
        self.db = Database.from_scenario(scenario, self.started)
        self._writes: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._faults: list[Fault] = []

    def ensure_user(
        self, username: str, full_name: str = "", email: str = "", uuid: str | None = None
    ) -> User:
        """Return the Waldur user ``username``, creating it if needed."""
        with self.lock:
            return self.db.ensure_user(username, full_name, email, uuid)

    # ------------------------------------------------------------- lookups
    @staticmethod
    def _key(uuid: str) -> str:
        try:
            return normalize_uuid(uuid)
        except ValueError as err:
            raise StateError(str(err)) from err

    def offering_user_by_username(self, username: str) -> OfferingUser | None:
        """The offering user whose cluster username is ``username``."""
        return self.db.offering_user_by_username(username)

    def _resource(self, uuid: str) -> Resource:
        rec = self.db.resources.get(self._key(uuid))
        if rec is None:
            raise StateError(f"no resource {uuid}")
        return rec

    def _project(self, uuid: str) -> Project:
        rec = self.db.projects.get(self._key(uuid))
        if rec is None:
            raise StateError(f"no project {uuid}; known: {sorted(self.db.projects)}")
        return rec

    def _check_limits(self, limits: dict[str, Any]) -> dict[str, int]:
        types = {c.type for c in self.scenario.offering.components}
        unknown = sorted(set(limits) - types)
        if unknown:
            raise StateError(f"unknown component(s) {unknown}; offering has {sorted(types)}")
        return {k: int(v) for k, v in limits.items()}

    # ------------------------------------------------------------- recording
    def record(self, entry: dict[str, Any], *, write: bool) -> None:
        """Append one served request (and, for non-GET, one write)."""
        with self.lock:
            self._requests.append(entry)
            if write:
                self._writes.append(entry)

    def writes(
        self, path_contains: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded non-GET /api/ requests, oldest first, optionally filtered."""
        with self.lock:
            return _filtered(self._writes, path_contains, method)

    def requests(
        self, path_contains: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Every recorded /api/ request, oldest first, optionally filtered."""
        with self.lock:
            return _filtered(self._requests, path_contains, method)

    def clear_writes(self) -> None:
        """Forget the recorded writes."""
        with self.lock:
            self._writes.clear()

    def clear_requests(self) -> None:
        """Forget the recorded requests (writes included in that log)."""
        with self.lock:
            self._requests.clear()

    # ------------------------------------------------------------- faults
    def add_fault(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = 500,
        delay: float = 0.0,
        times: int | None = 1,
        body: Any = None,
        drop: bool = False,
    ) -> None:
        """Make the next ``times`` requests whose path matches regex ``path`` misbehave.

        With ``status`` the request is answered with that status (and ``body``, after
        ``delay``) and not handled; with ``status=None`` it is handled normally after
        ``delay`` seconds; with ``drop`` the connection is closed without an answer
        (recorded with status 0). ``times=None`` keeps the fault until ``clear_faults``.
        """
        try:
            re.compile(path)
        except re.error as err:
            raise StateError(f"fault path {path!r} is not a regular expression: {err}") from err
        if status is None and delay <= 0 and not drop:
            raise StateError("a fault needs a status, a positive delay or drop")
        with self.lock:
            self._faults.append(
                Fault(path, method.upper() if method else None, status, delay, times, body, drop)
            )

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting one use of it."""
        with self.lock:
            for fault in self._faults:
                if fault.method not in (None, method) or not re.search(fault.path, path):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
            return None

    # ------------------------------------------------------------- control
    def update_resource(self, uuid: str, **fields: Any) -> dict[str, Any]:
        """Change a resource as a Waldur user or admin would; returns the new view."""
        unknown = sorted(set(fields) - UPDATABLE_RESOURCE_FIELDS)
        if unknown:
            raise StateError(
                f"cannot update {unknown}; allowed: {sorted(UPDATABLE_RESOURCE_FIELDS)}"
            )
        with self.lock:
            rec = self._resource(uuid)
            if "state" in fields and fields["state"] not in RESOURCE_STATES:
                raise StateError(f"state {fields['state']!r} not one of {RESOURCE_STATES}")
            if "limits" in fields:
                fields["limits"] = self._check_limits(fields["limits"])
            if "end_date" in fields:
                fields["end_date"] = _end_date(fields["end_date"])
            for key, value in fields.items():
                setattr(rec, key, value)
            rec.modified = self.clock()
            return views.resource(self, rec)

    def add_order(  # noqa: PLR0917 - the documented positional order
        self,
        type: str,
        resource_uuid: str | None = None,
        limits: dict[str, Any] | None = None,
        project_uuid: str | None = None,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> str:
        """Place an order in ``pending-provider``; returns its UUID.

        A ``Create`` order without ``resource_uuid`` makes a new resource in state
        ``Creating`` in ``project_uuid``, named ``name``. ``Update`` and ``Terminate``
        move the resource to ``Updating`` / ``Terminating`` as Mastermind does.
        """
        if type not in ORDER_TYPES:
            raise StateError(f"order type {type!r} not one of {ORDER_TYPES}")
        with self.lock:
            now = self.clock()
            checked = self._check_limits(limits or {})
            if resource_uuid is None:
                if type != "Create" or project_uuid is None or not name:
                    raise StateError(
                        "without resource_uuid give type Create, project_uuid and name"
                    )
                res = self._new_resource(self._project(project_uuid), name, checked, now)
            else:
                res = self._resource(resource_uuid)
                if type == "Update":
                    res.state = "Updating"
                elif type == "Terminate":
                    res.state = "Terminating"
            order = Order(
                uuid=new_uuid(),
                type=type,
                resource_uuid=res.uuid,
                state="pending-provider",
                created=now,
                modified=now,
                limits=checked,
                attributes=dict(attributes or {"name": res.name}),
            )
            self.db.orders[order.uuid] = order
            return order.uuid

    def _new_resource(
        self, project: Project, name: str, limits: dict[str, int], now: dt.datetime
    ) -> Resource:
        base = slugify(name)
        taken = {r.slug for r in self.db.resources.values()}
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        res = Resource(new_uuid(), name, slug, project.uuid, "Creating", now, now, limits=limits)
        self.db.resources[res.uuid] = res
        return res

    def add_team_member(
        self, project_uuid: str, username: str, role: str = "PROJECT.MEMBER"
    ) -> None:
        """Add ``username`` (or change its role) in the project's team."""
        with self.lock:
            project = self._project(project_uuid)
            self.ensure_user(username)
            project.team[username] = role

    def remove_team_member(self, project_uuid: str, username: str) -> None:
        """Remove ``username`` from the project's team."""
        with self.lock:
            project = self._project(project_uuid)
            if project.team.pop(username, None) is None:
                raise StateError(f"{username!r} is not in project {project.slug}")

    def add_offering_user(
        self, username: str, state: str = "OK", full_name: str = "", email: str = ""
    ) -> dict[str, Any]:
        """Give ``username`` an account on the offering (or change its state)."""
        if state not in OFFERING_USER_STATES:
            raise StateError(f"state {state!r} not one of {OFFERING_USER_STATES}")
        with self.lock:
            now = self.clock()
            rec = self.offering_user_by_username(username)
            if rec is None:
                user = self.ensure_user(username, full_name, email)
                rec = OfferingUser(
                    new_uuid(), username, user.uuid, full_name, email, state, now, now
                )
                self.db.offering_users[rec.uuid] = rec
            rec.state, rec.modified = state, now
            return views.offering_user(self, rec)

    # ------------------------------------------------------------- inspection
    def order(self, uuid: str) -> dict[str, Any]:
        """The order as ``GET marketplace-orders/<uuid>/`` shows it."""
        with self.lock:
            rec = self.db.orders.get(self._key(uuid))
            if rec is None:
                raise StateError(f"no order {uuid}")
            return views.order(self, rec)

    def orders(self) -> list[dict[str, Any]]:
        """Every order, oldest first."""
        with self.lock:
            return [views.order(self, o) for o in self.db.orders.values()]

    def resource(self, uuid: str) -> dict[str, Any]:
        """The resource as ``GET marketplace-provider-resources/<uuid>/`` shows it."""
        with self.lock:
            return views.resource(self, self._resource(uuid))

    def resources(self) -> list[dict[str, Any]]:
        """Every resource, oldest first."""
        with self.lock:
            return [views.resource(self, r) for r in self.db.resources.values()]

    def resource_by_name(self, name: str) -> dict[str, Any]:
        """The resource called ``name``."""
        with self.lock:
            for rec in self.db.resources.values():
                if rec.name == name:
                    return views.resource(self, rec)
            raise StateError(f"no resource named {name!r}")

    def component_usages(self, resource_uuid: str) -> list[dict[str, Any]]:
        """The resource's ComponentUsage records, as the API lists them."""
        with self.lock:
            uuid = self._resource(resource_uuid).uuid
            return [
                views.component_usage(self, u)
                for u in self.db.usages.values()
                if u.resource_uuid == uuid
            ]

    def user_usages(self, resource_uuid: str) -> list[dict[str, Any]]:
        """The resource's ComponentUserUsage records, as the API lists them."""
        with self.lock:
            uuid = self._resource(resource_uuid).uuid
            return [
                views.user_usage(self, u)
                for u in self.db.user_usages.values()
                if self.db.usages[u.component_usage_uuid].resource_uuid == uuid
            ]

    def command_results(self) -> list[dict[str, Any]]:
        """Bodies posted to report-command-result, with policy UUID and poster."""
        with self.lock:
            return [dict(r) for r in self.db.command_results]

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-ready data."""
        with self.lock:
            db = self.db
            return {
                "api_url": f"{self.base_url}/api/",
                "offering": views.offering(self),
                "customers": [asdict(c) for c in db.customers.values()],
                "projects": [
                    {**asdict(p), "team": views.team(self, p)} for p in db.projects.values()
                ],
                "offering_users": [
                    views.offering_user(self, u) for u in db.offering_users.values()
                ],
                "resources": [views.resource(self, r) for r in db.resources.values()],
                "orders": [views.order(self, o) for o in db.orders.values()],
                "component_usages": [views.component_usage(self, u) for u in db.usages.values()],
                "user_usages": [views.user_usage(self, u) for u in db.user_usages.values()],
                "user_limits": [views.user_limit(self, u) for u in db.user_limits.values()],
                "identities": [agent_views.identity(self, i) for i in db.identities.values()],
                "policies": [agent_views.policy(self, p) for p in db.policies.values()],
                "command_results": self.command_results(),
                "faults": [asdict(f) for f in self._faults],
            }


def _end_date(value: object) -> dt.date | None:
    """A resource's end date: a date, an ISO ``YYYY-MM-DD`` text, or None (no end)."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise StateError(f"end_date {value!r} is not a date (YYYY-MM-DD) or null")


def _filtered(
    entries: list[dict[str, Any]], path_contains: str | None, method: str | None
) -> list[dict[str, Any]]:
    return [
        dict(e)
        for e in entries
        if (path_contains is None or path_contains in e["path"])
        and (method is None or e["method"] == method.upper())
    ]
