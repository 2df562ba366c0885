"""The stand-in's scenario: the Waldur state it starts from, read from a YAML file.

Every UUID may be written with or without dashes; it is stored as 32 lower-case hex
digits, the form Mastermind puts in URLs. Cross references (a resource's project, an
order's resource, a team member's offering user) are checked when the file is loaded,
so a typo fails with the key that holds it rather than as a confusing HTTP answer.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

OrderState = Literal[
    "pending-consumer", "pending-provider", "executing", "done", "erred", "canceled", "rejected"
]
ResourceState = Literal["Creating", "OK", "Erred", "Updating", "Terminating", "Terminated"]
OfferingUserState = Literal[
    "Requested",
    "Creating",
    "OK",
    "Error creating",
    "Pending account linking",
    "Pending additional validation",
    "Requested deletion",
    "Deleting",
    "Deleted",
    "Error deleting",
]
OrderType = Literal["Create", "Update", "Terminate", "Restore"]


class ScenarioError(ValueError):
    """The scenario file is missing, unreadable or does not describe a valid state."""


def normalize_uuid(value: Any) -> str:
    """Return ``value`` as 32 lower-case hex digits, accepting the dashed form.

    Raises:
        ValueError: ``value`` is not a UUID (an unquoted all-digit UUID arrives as int).
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a quoted UUID string, got {type(value).__name__} {value!r}")
    try:
        return uuid.UUID(value).hex
    except ValueError as err:
        raise ValueError(f"{value!r} is not a UUID") from err


Uuid = Annotated[str, BeforeValidator(normalize_uuid)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenSpec(_Strict):
    """An API token and the user it authenticates."""

    token: str = Field(min_length=1)
    username: str = Field(min_length=1)
    is_staff: bool = False
    provider: bool = False
    full_name: str = ""
    email: str = ""


class ComponentSpec(_Strict):
    """One offering component as Mastermind describes it."""

    type: str = Field(min_length=1)
    name: str = Field(min_length=1)
    measured_unit: str = ""
    billing_type: Literal["usage", "limit", "one"] = "usage"
    unit_factor: int = 1
    limit_period: Literal["month", "quarterly", "annual", "total"] | None = None
    limit_amount: int | None = None


class PlanSpec(_Strict):
    """The offering's single plan."""

    uuid: Uuid
    name: str = "Default"
    quotas: dict[str, int] = Field(default_factory=dict)


class CustomerRef(_Strict):
    """An organization: uuid, name and slug."""

    uuid: Uuid
    name: str = Field(min_length=1)
    slug: str = Field(min_length=1)


class OfferingSpec(_Strict):
    """The offering the agent serves."""

    uuid: Uuid
    name: str = Field(min_length=1)
    customer: CustomerRef
    components: list[ComponentSpec] = Field(min_length=1)
    plan: PlanSpec
    backend_id: str = ""
    plugin_options: dict[str, Any] = Field(default_factory=dict)


class TeamMemberSpec(_Strict):
    """A project member."""

    username: str = Field(min_length=1)
    role: str = "PROJECT.MEMBER"


class ProjectSpec(_Strict):
    """A project and its team."""

    uuid: Uuid
    name: str = Field(min_length=1)
    slug: str = Field(min_length=1)
    team: list[TeamMemberSpec] = Field(default_factory=list)


class CustomerSpec(CustomerRef):
    """An organization with its projects."""

    projects: list[ProjectSpec] = Field(default_factory=list)


class OfferingUserSpec(_Strict):
    """A user's account on the offering (username = cluster login)."""

    username: str = Field(min_length=1)
    user_uuid: Uuid
    uuid: Uuid | None = None
    full_name: str = ""
    email: str = ""
    state: OfferingUserState = "OK"


class ResourceSpec(_Strict):
    """A marketplace resource of the offering."""

    uuid: Uuid
    name: str = Field(min_length=1)
    slug: str = Field(min_length=1)
    project: Uuid
    state: ResourceState = "Creating"
    backend_id: str = ""
    limits: dict[str, int] = Field(default_factory=dict)
    paused: bool = False
    downscaled: bool = False


class OrderSpec(_Strict):
    """An order of the offering."""

    uuid: Uuid
    type: OrderType
    resource: Uuid
    state: OrderState = "pending-provider"
    limits: dict[str, int] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)


class StompSpec(_Strict):
    """What ``register_queue`` answers."""

    vhost: str = "waldur"
    rmq_username: str = "site-agent"
    queue_name: str = "consumer_site_agent"


class ComponentLimitSpec(_Strict):
    """A component limit a periodic policy sets."""

    type: str
    limit: int


class PolicySpec(_Strict):
    """A SLURM periodic usage policy on the offering."""

    uuid: Uuid
    period: Literal[1, 2, 3, 4] = 2
    limit_type: Literal["GrpTRES", "GrpTRESMins", "MaxTRESMins"] = "GrpTRESMins"
    grace_ratio: float = 0.2
    carryover_enabled: bool = True
    carryover_factor: int = 50
    raw_usage_reset: bool = True
    qos_strategy: Literal["threshold", "progressive"] = "threshold"
    tres_billing_enabled: bool = False
    actions: str = "notify_organization_owners"
    component_limits: list[ComponentLimitSpec] = Field(default_factory=list)


class UserLimitSpec(_Strict):
    """A per-user component limit on a resource."""

    resource: Uuid
    username: str = Field(min_length=1)
    component: str = Field(min_length=1)
    limit: int = Field(ge=0)


class Scenario(_Strict):
    """Everything the stand-in knows at start-up."""

    tokens: list[TokenSpec] = Field(min_length=1)
    offering: OfferingSpec
    customers: list[CustomerSpec] = Field(default_factory=list)
    offering_users: list[OfferingUserSpec] = Field(default_factory=list)
    resources: list[ResourceSpec] = Field(default_factory=list)
    orders: list[OrderSpec] = Field(default_factory=list)
    stomp: StompSpec = Field(default_factory=StompSpec)
    policies: list[PolicySpec] = Field(default_factory=list)
    user_limits: list[UserLimitSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        _unique("tokens", [t.token for t in self.tokens])
        _unique("offering.components", [c.type for c in self.offering.components])
        projects = {p.uuid for c in self.customers for p in c.projects}
        _unique("customers", [c.uuid for c in self.customers])
        _unique("customers[].projects", [p.uuid for c in self.customers for p in c.projects])
        _unique("offering_users", [u.username for u in self.offering_users])
        _unique("resources", [r.uuid for r in self.resources])
        _unique("orders", [o.uuid for o in self.orders])
        types = {c.type for c in self.offering.components}
        for i, res in enumerate(self.resources):
            if res.project not in projects:
                raise ValueError(f"resources.{i}.project: no project {res.project} in customers")
            _known_components(f"resources.{i}.limits", res.limits, types)
        resources = {r.uuid for r in self.resources}
        for i, order in enumerate(self.orders):
            if order.resource not in resources:
                raise ValueError(f"orders.{i}.resource: no resource {order.resource} in resources")
            _known_components(f"orders.{i}.limits", order.limits, types)
        for i, lim in enumerate(self.user_limits):
            if lim.resource not in resources:
                raise ValueError(f"user_limits.{i}.resource: no resource {lim.resource}")
            _known_components(f"user_limits.{i}.component", {lim.component: 0}, types)
        return self

    def token(self, value: str) -> TokenSpec | None:
        """Return the token entry whose secret is ``value``."""
        return next((t for t in self.tokens if t.token == value), None)


def _unique(key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{key}: {value!r} appears twice")
        seen.add(value)


def _known_components(key: str, limits: dict[str, int], types: set[str]) -> None:
    unknown = sorted(set(limits) - types)
    if unknown:
        raise ValueError(f"{key}: unknown component(s) {unknown}; offering has {sorted(types)}")


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed YAML/JSON data as a scenario.

    Raises:
        ScenarioError: naming the offending key for every problem found.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            loc = ".".join(str(part) for part in item["loc"]) or "(top level)"
            problems.append(f"  {loc}: {item['msg']}")
        raise ScenarioError(f"{source}: invalid scenario\n" + "\n".join(problems)) from err


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    Raises:
        ScenarioError: the file cannot be read, is not YAML, or names a bad key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read scenario file: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path}: not valid YAML: {err}") from err
    return parse_scenario(data, str(path))
