"""The pieces every route handler uses: the request, the reply, errors and permissions."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from waldur_site_agent_slurm.devtools.standin.scenario import TokenSpec

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.state import State

NOT_FOUND = {"detail": "No object matches the given query."}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}


class Permission(enum.Enum):
    """Who may call a route.

    ``PROVIDER_READ`` routes behave like Mastermind's filtered querysets: a caller
    who is neither staff nor the offering's provider sees an empty list, or 404 for
    one object. ``PROVIDER`` and ``STAFF`` routes answer 403 to other callers.
    """

    PUBLIC = "public"
    USER = "user"
    PROVIDER_READ = "provider-read"
    PROVIDER = "provider"
    STAFF = "staff"


class ApiError(Exception):
    """An error answer (4xx) a handler gives on purpose, as Mastermind would."""

    def __init__(self, status: int, body: Any) -> None:
        """Keep the status and the JSON body to send."""
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def hex_uuid(value: object) -> str:
    """A UUID as the stand-in keys it: 32 lower-case hex digits (dashes dropped)."""
    return str(value).replace("-", "").lower()


def not_found() -> ApiError:
    """A 404 in DRF's shape."""
    return ApiError(404, NOT_FOUND)


_Rec = TypeVar("_Rec")


def lookup(table: Mapping[str, _Rec], req: ApiRequest) -> _Rec:
    """The record the request's ``uuid`` argument names, or a 404."""
    rec = table.get(req.args["uuid"])
    if rec is None:
        raise not_found()
    return rec


def bad_request(detail: str, key: str = "non_field_errors") -> ApiError:
    """A 400 in DRF's shape: ``{key: [detail]}``."""
    return ApiError(400, {key: [detail]} if key != "detail" else {"detail": detail})


@dataclass(frozen=True)
class ApiRequest:
    """One /api/ request as a handler sees it."""

    method: str
    path: str
    params: dict[str, list[str]]
    body: Any
    caller: TokenSpec | None
    args: dict[str, str] = field(default_factory=dict)
    user_agent: str = ""

    def param(self, name: str) -> str | None:
        """The last value of a query parameter, or None."""
        values = self.params.get(name)
        return values[-1] if values else None

    def multi(self, name: str) -> list[str]:
        """All values of a multi-value filter, repeated (``a=1&a=2``) or comma-joined."""
        return [v for raw in self.params.get(name, []) for v in raw.split(",") if v]

    def flag(self, name: str) -> bool | None:
        """A boolean filter (``true``/``false``/``1``/``0``), or None when absent."""
        value = self.param(name)
        if value is None:
            return None
        return value.lower() in ("true", "1", "yes")

    def uuid_param(self, name: str) -> list[str]:
        """UUID filter values normalised to hex (dashes dropped, lower case)."""
        return [hex_uuid(v) for v in self.multi(name)]

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when it is something else."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise bad_request("Invalid data. Expected a dictionary.")
        return self.body

    @property
    def username(self) -> str | None:
        """The caller's username, if authenticated."""
        return self.caller.username if self.caller else None

    @property
    def is_staff(self) -> bool:
        """Whether the caller is staff."""
        return bool(self.caller and self.caller.is_staff)

    @property
    def is_provider(self) -> bool:
        """Whether the caller manages the offering (staff counts as provider)."""
        return bool(self.caller and (self.caller.provider or self.caller.is_staff))


@dataclass
class Reply:
    """What a handler answers: status, JSON body (None = empty) and extra headers.

    ``drop`` closes the connection without any answer (an injected network failure).
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


Handler = Callable[["State", ApiRequest], Reply]


@dataclass(frozen=True)
class Route:
    """One /api/ endpoint.

    ``api`` is ``<tag>.<module>`` under ``waldur_api_client.api``; that module's
    ``_parse_response`` validates every successful answer before it is sent.
    """

    method: str
    pattern: re.Pattern[str]
    permission: Permission
    handler: Handler
    api: str
    is_list: bool = False
    paginated: bool = False

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path arguments (UUIDs as hex) if this route serves the request."""
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {k: hex_uuid(v) for k, v in found.groupdict().items()}


UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def route(
    method: str,
    path: str,
    permission: Permission,
    handler: Handler,
    api: str,
    *,
    is_list: bool = False,
    paginated: bool | None = None,
) -> Route:
    """Build a route; ``{uuid}``-style placeholders in ``path`` match dashed or hex UUIDs."""
    regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{UUID_RE})", path)
    return Route(
        method=method,
        pattern=re.compile(regex),
        permission=permission,
        handler=handler,
        api=api,
        is_list=is_list,
        paginated=is_list if paginated is None else paginated,
    )


def check_body(req: ApiRequest, model: type[Any]) -> dict[str, Any]:
    """The body as a dict after ``model.from_dict`` accepted it; 400 naming the problem.

    ``model`` is the ``waldur_api_client`` request model the real client builds the
    body from, so a body the client could not have sent is refused as Mastermind's
    serializer would refuse it.
    """
    body = req.json_object()
    try:
        model.from_dict(body)
    except KeyError as err:
        raise bad_request("This field is required.", str(err.args[0])) from err
    except (TypeError, ValueError) as err:
        raise bad_request(f"Invalid {model.__name__}: {err}") from err
    return body
