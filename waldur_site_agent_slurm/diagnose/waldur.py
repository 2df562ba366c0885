"""Waldur's side of the diagnosis, read with ``waldur_api_client`` and the offering's token.

Resources come from ``marketplace-provider-resources`` (by ``backend_id``, or every
page of the offering's), teams from ``…/<uuid>/team/`` (one read per project: resources
of one project share a team), the offering's component units from
``marketplace-provider-offerings/<uuid>/`` and the periodic usage policy from
``marketplace-slurm-periodic-usage-policies`` scoped to the offering. Answers are
reduced to the records of ``diagnose.model``.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from waldur_api_client.api.marketplace_provider_offerings import (
    marketplace_provider_offerings_retrieve,
)
from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_list,
    marketplace_provider_resources_team_list,
)
from waldur_api_client.api.marketplace_slurm_periodic_usage_policies import (
    marketplace_slurm_periodic_usage_policies_list,
)
from waldur_api_client.client import AuthenticatedClient
from waldur_api_client.errors import UnexpectedStatus
from waldur_api_client.types import Response

from waldur_site_agent_slurm.diagnose.model import (
    OfferingView,
    PolicyView,
    ResourceView,
    TeamMember,
)
from waldur_site_agent_slurm.errors import SlurmError

PERIODS = {1: "monthly", 2: "quarterly", 3: "annual", 4: "total"}
LIMIT_PERIODS = {"month": 1, "quarterly": 2, "annual": 3, "total": 4}
GONE = "Terminated"
PAGE_SIZE = 200
T = TypeVar("T")


class WaldurUnavailableError(SlurmError):
    """Waldur could not be reached or refused a read."""


def _call(what: str, read: Callable[[], T]) -> T:
    """Run one read; turn transport errors and refusals into one clear error."""
    try:
        return read()
    except UnexpectedStatus as err:
        hint = " (check waldur_api_token)" if err.status_code in (401, 403) else ""
        raise WaldurUnavailableError(f"Waldur answered {err.status_code} to {what}{hint}") from err
    except httpx.HTTPError as err:
        raise WaldurUnavailableError(
            f"Waldur unreachable while reading {what}: {type(err).__name__}: {err}"
        ) from err


def _checked(response: Response[T]) -> Response[T]:
    """The response of a ``sync_detailed`` call; its status checked like ``sync`` does."""
    if response.status_code != HTTPStatus.OK:
        raise UnexpectedStatus(response.status_code, response.content, httpx.URL(""))
    return response


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class WaldurReader:
    """Reads one offering's resources, teams, units and policy."""

    def __init__(self, client: AuthenticatedClient, offering_uuid: str) -> None:
        """Use ``client`` (authenticated with the offering's token)."""
        self.client = client
        self.offering_uuid = uuidlib.UUID(offering_uuid)
        self._teams: dict[str, tuple[TeamMember, ...]] = {}
        self._limit_period: int | None = None

    def offering(self) -> OfferingView:
        """The offering's name, component units and ``plugin_options.enforce_qos``."""
        details = _call(
            "the offering",
            lambda: marketplace_provider_offerings_retrieve.sync(
                self.offering_uuid, client=self.client
            ),
        ).to_dict()
        units: dict[str, str] = {}
        for component in details.get("components") or []:
            units[str(component.get("type"))] = _text(component, "measured_unit")
            period = component.get("limit_period")
            if component.get("billing_type") == "limit" and period in LIMIT_PERIODS:
                self._limit_period = LIMIT_PERIODS[period]
        options = details.get("plugin_options")
        # As the agent's processors read it: a missing option means False.
        enforce_qos = bool(options.get("enforce_qos")) if isinstance(options, dict) else False
        return OfferingView(self.offering_uuid.hex, _text(details, "name"), units, enforce_qos)

    def policy(self) -> PolicyView | None:
        """The offering's SLURM periodic usage policy (Waldur allows one), or None."""
        found = _call(
            "the periodic usage policies",
            lambda: marketplace_slurm_periodic_usage_policies_list.sync_all(
                client=self.client, scope_uuid=self.offering_uuid
            ),
        )
        mine = [p.to_dict() for p in found]
        mine = [p for p in mine if str(p.get("scope_uuid", "")).replace("-", "") == self.uuid_hex]
        if not mine:
            return None
        data = mine[0]
        period = self._limit_period or int(data.get("period") or 2)
        raw_weights = data.get("tres_billing_weights") or {}
        weights = {str(k): _number(v) for k, v in raw_weights.items()}
        return PolicyView(
            uuid=str(data.get("uuid", "")).replace("-", ""),
            period=PERIODS.get(period, str(period)),
            limit_type=str(data.get("limit_type") or "GrpTRESMins"),
            tres_billing_enabled=bool(data.get("tres_billing_enabled", True)),
            weights=weights,
            grace_ratio=_number(data.get("grace_ratio", 0.2)),
            carryover_enabled=bool(data.get("carryover_enabled", True)),
            carryover_factor=int(data.get("carryover_factor", 50)),
            one_off=period == LIMIT_PERIODS["total"],
        )

    @property
    def uuid_hex(self) -> str:
        """The offering UUID as 32 hex digits."""
        return self.offering_uuid.hex

    def resource_by_backend_id(self, backend_id: str) -> ResourceView | None:
        """The offering's resource with ``backend_id`` (a live one before a Terminated one)."""
        found = _call(
            f"the resource with backend_id {backend_id}",
            lambda: marketplace_provider_resources_list.sync_all(
                client=self.client, offering_uuid=[self.offering_uuid], backend_id=backend_id
            ),
        )
        items = [r.to_dict() for r in found]
        items = [r for r in items if r.get("backend_id") == backend_id]
        if not items:
            return None
        items.sort(key=lambda r: (r.get("state") == GONE, r.get("state") != "OK"))
        return self._view(items[0])

    def resources(self) -> list[ResourceView]:
        """Every resource of the offering that has a backend_id, page by page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            response = _call(
                f"page {page} of the offering's resources",
                lambda page=page: _checked(  # type: ignore[misc]
                    marketplace_provider_resources_list.sync_detailed(
                        client=self.client,
                        offering_uuid=[self.offering_uuid],
                        page=page,
                        page_size=PAGE_SIZE,
                    )
                ),
            )
            items += [r.to_dict() for r in response.parsed or []]
            if 'rel="next"' not in response.headers.get("link", ""):
                break
            page += 1
        by_id: dict[str, dict[str, Any]] = {}
        for item in items:
            key = _text(item, "backend_id")
            if not key:
                continue
            kept = by_id.get(key)
            if kept is None or (kept.get("state") == GONE and item.get("state") != GONE):
                by_id[key] = item
        return [self._view(item) for _, item in sorted(by_id.items())]

    def _team(self, resource_uuid: str, project_uuid: str) -> tuple[TeamMember, ...]:
        if project_uuid not in self._teams:
            members = _call(
                f"the team of resource {resource_uuid}",
                lambda: marketplace_provider_resources_team_list.sync(
                    uuidlib.UUID(resource_uuid), client=self.client
                ),
            )
            team = []
            for member in members:
                data = member.to_dict()
                name = data.get("offering_user_username")
                if isinstance(name, str) and name:
                    state = data.get("offering_user_state")
                    team.append(TeamMember(name, state if isinstance(state, str) else None))
            self._teams[project_uuid] = tuple(sorted(team, key=lambda m: m.username))
        return self._teams[project_uuid]

    def _view(self, data: Mapping[str, Any]) -> ResourceView:
        uuid = str(data.get("uuid", "")).replace("-", "")
        project = str(data.get("project_uuid", "")).replace("-", "")
        limits = data.get("limits") or {}
        state = _text(data, "state")
        return ResourceView(
            uuid=uuid,
            name=_text(data, "name"),
            backend_id=_text(data, "backend_id"),
            state=state,
            limits={str(k): _number(v) for k, v in limits.items()},
            paused=bool(data.get("paused")),
            downscaled=bool(data.get("downscaled")),
            restrict_member_access=bool(data.get("restrict_member_access")),
            project_uuid=project,
            project_slug=_text(data, "project_slug"),
            project_name=_text(data, "project_name"),
            customer_slug=_text(data, "customer_slug"),
            customer_name=_text(data, "customer_name"),
            team=() if state == GONE else self._team(uuid, project),
            created=_moment(data.get("created")),
            end_date=_day(data.get("end_date")),
        )


def _moment(value: object) -> datetime | None:
    """An ISO moment of the API (``created``), or None."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _day(value: object) -> date | None:
    """An ISO date of the API (``end_date``), or None."""
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
