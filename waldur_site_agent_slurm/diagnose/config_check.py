"""``waldur_site_diagnose_slurm_account --check-config``: is this agent configuration usable?

Every SLURM offering of the file is loaded the way the agent loads it: first by the
framework's own code (``RootConfiguration``, its plugin-schema validation, every
``BackendComponent`` and the ``Offering``), then by this plugin's ``load_settings``
with its start-up rules. The framework only logs most of its validation failures and
goes on; here each failure is a problem, with its full key path, the whole validation
message and what to do. Keys the framework 1.0.7 silently ignores for event processing
(``event_processing``, ``observable_object_types``) are named with their replacements.

Errors make the exit status 1: the agent would refuse the offering, or would not do
what the file asks. Warnings (keys nothing reads, what the agent warns about at start)
leave it 0.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from waldur_site_agent.common import plugin_schemas, structures

from waldur_site_agent_slurm import config_rules
from waldur_site_agent_slurm.allocation.usage import usage_zone
from waldur_site_agent_slurm.config import SlurmBackendSettingsSchema, load_settings
from waldur_site_agent_slurm.errors import SlurmConfigError

SLURM = "slurm"
ERROR, WARNING = "ERROR", "WARNING"
BACKEND_KEYS = ("order_processing_backend", "membership_sync_backend", "reporting_backend")
STOMP_KEYS = (
    "stomp_enabled: true, stomp_ws_host, stomp_ws_port, stomp_ws_path and "
    "websocket_use_tls on each offering"
)
LEGACY_EVENT_KEYS = {
    "event_processing": (
        "waldur-site-agent 1.0.7 ignores it. Use "
        + STOMP_KEYS
        + " (Web-STOMP over WebSocket, e.g. stomp_ws_port: 443, stomp_ws_path: /rmqws-stomp; "
        "the STOMP user comes from Waldur and the password is the offering's "
        "waldur_api_token, so no username or password is configured)"
    ),
    "observable_object_types": (
        "waldur-site-agent 1.0.7 ignores it: the agent subscribes by itself to orders "
        "(order_processing_backend), membership events (membership_sync_backend) and "
        "periodic limits (backend_settings.periodic_limits.enabled: true). Remove it"
    ),
}
# The framework logs this when a plugin schema rejects settings or a component and goes
# on with the raw data; the check validates with the same schemas and reports each error.
FRAMEWORK_SCHEMA_WARNING = "Plugin schema validation failed"
# The plugin's messages for those same schema errors.
PLUGIN_SCHEMA_ERRORS = ("Invalid SLURM backend settings: ", "Invalid component: ")
KEY_IN_MESSAGE = re.compile(r"\bbackend_(?:settings|components)(?:\.[\w/-]+)*")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: where, what, and what to do."""

    severity: str
    path: str
    message: str
    action: str = ""

    def lines(self) -> list[str]:
        """The problem as printed: the message in full, the action on its own line."""
        first, *rest = self.message.splitlines() or [""]
        out = [f"  {self.severity:<7} {self.path}: {first}"]
        out += [f"          {line}" for line in rest]
        if self.action:
            out.append(f"          -> {self.action}")
        return out


@dataclass(frozen=True)
class CheckResult:
    """Every problem found, and the offerings that were checked."""

    problems: list[Problem]
    checked: list[str]

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return all(p.severity != ERROR for p in self.problems)


class _Collect(logging.Handler):
    """Keeps the text of every warning logged while a block runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        self.messages.append(str(event) if event is not None else record.getMessage())


@contextmanager
def _warnings() -> Iterator[_Collect]:
    """Collect the warnings logged inside the block instead of printing them."""
    root = logging.getLogger()
    handler = _Collect()
    saved = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    return ".".join([prefix, *(str(part) for part in loc)]) if loc else prefix


def _validation_problems(err: ValidationError, prefix: str) -> list[Problem]:
    """One problem per pydantic error, with the input that was given and what to do."""
    problems = []
    for item in err.errors():
        path = _path(prefix, tuple(item["loc"]))
        kind = item["type"]
        message = str(item["msg"])
        if kind == "missing":
            action = "add this key: waldur-site-agent 1.0.7 requires it"
        elif kind == "extra_forbidden":
            action = "remove this key"
        else:
            message += f" (given: {item.get('input')!r})"
            action = "correct the value"
        problems.append(Problem(ERROR, path, message, action))
    return problems


def _legacy_keys(data: Mapping[str, Any], prefix: str) -> list[Problem]:
    return [
        Problem(ERROR, _path(prefix, (key,)) if prefix else key, "legacy key, ignored", action)
        for key, action in LEGACY_EVENT_KEYS.items()
        if key in data
    ]


def _framework_problems(offering: dict[str, Any], where: str) -> list[Problem]:
    """The framework's own loading of one offering, each step's failure a problem."""
    data = copy.deepcopy(offering)
    backend_type = str(data.get("backend_type", ""))
    problems: list[Problem] = []
    components: dict[str, structures.BackendComponent] = {}
    raw_components = data.get("backend_components") or {}
    if not isinstance(raw_components, dict):
        return [Problem(ERROR, f"{where}.backend_components", "must be a mapping of components")]
    component_schema = plugin_schemas.get_plugin_component_schemas().get(backend_type)
    core_keys = set(structures.BackendComponent.model_fields)
    for name, raw in raw_components.items():
        if not isinstance(raw, dict):
            problems.append(
                Problem(ERROR, f"{where}.backend_components.{name}", "must be a mapping of keys")
            )
            continue
        plugin_keys = {k: v for k, v in raw.items() if k not in core_keys}
        if component_schema is not None and plugin_keys:
            try:
                component_schema(**plugin_keys)
            except ValidationError as err:
                problems += _validation_problems(err, f"{where}.backend_components.{name}")
        try:
            validated = plugin_schemas.validate_component_with_plugin_schema(
                backend_type, name, raw
            )
            components[name] = structures.BackendComponent(**validated)
        except ValidationError as err:
            problems += _validation_problems(err, f"{where}.backend_components.{name}")
    data["backend_components"] = components
    settings_schema = plugin_schemas.get_plugin_backend_settings_schemas().get(backend_type)
    if isinstance(data.get("backend_settings"), dict) and settings_schema is not None:
        try:
            settings_schema(**data["backend_settings"])
        except ValidationError as err:
            problems += _validation_problems(err, f"{where}.backend_settings")
    if isinstance(data.get("backend_settings"), dict):
        data["backend_settings"] = plugin_schemas.validate_backend_settings_with_plugin_schema(
            backend_type, data["backend_settings"]
        )
    try:
        structures.Offering(**data)
    except ValidationError as err:
        problems += [
            p
            for p in _validation_problems(err, where)
            if not p.path.startswith(f"{where}.backend_components.")
        ]
    return problems


def _plugin_problems(
    offering: dict[str, Any], agent_zone: str, where: str, reported: list[Problem]
) -> list[Problem]:
    """This plugin's load of the offering's settings and components, and its warnings.

    Components the framework's check already found wrong (``reported``) are left out.
    """
    settings = offering.get("backend_settings") or {}
    components = offering.get("backend_components") or {}
    if not isinstance(settings, dict) or not isinstance(components, dict):
        return []  # the framework's check has said so
    settings = _without_invalid_keys(settings)  # those are reported with the schema's
    # A component that is no mapping, or has a value of the wrong type, is the
    # framework's to report (its models check types); the plugin's rules see the rest.
    components = {
        name: raw
        for name, raw in components.items()
        if isinstance(raw, dict)
        and not any(p.path.startswith(f"{where}.backend_components.{name}") for p in reported)
    }
    errors: list[str] = []
    with _warnings() as logged:
        try:
            usage_zone(agent_zone, load_settings(settings, components).timezone)
        except (SlurmConfigError, ValueError, TypeError) as err:
            errors.append(str(err))
            # The settings and each component apart, so that the first problem of one
            # does not hide the others'.
            parts = [(settings, {}), *(({}, {name: raw}) for name, raw in components.items())]
            for part in parts:
                try:
                    load_settings(*part)
                except (SlurmConfigError, ValueError, TypeError) as other:
                    errors.append(str(other))
    problems = [
        Problem(ERROR, _key_path(message, where), message)
        for message in dict.fromkeys(errors)
        if not message.startswith(PLUGIN_SCHEMA_ERRORS)  # reported with the framework's
    ]
    unknown = _unknown_keys(settings, components)
    for message in dict.fromkeys(logged.messages):
        if message.startswith("Ignoring configuration keys") and unknown:
            continue  # listed one key at a time below
        problems.append(Problem(WARNING, where, message))
    problems += [
        Problem(WARNING, f"{where}.{key}", "nothing reads this key", "remove it") for key in unknown
    ]
    periodic = settings.get("periodic_limits") or {}
    if isinstance(periodic, dict) and periodic.get("enabled") and not offering.get("stomp_enabled"):
        problems.append(
            Problem(
                WARNING,
                f"{where}.stomp_enabled",
                "periodic_limits.enabled is true but STOMP is off, so `-m event_process` "
                "receives no periodic settings for this offering",
                "set " + STOMP_KEYS,
            )
        )
    return problems


def _without_invalid_keys(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` less the top-level keys the settings schema refuses."""
    kept = dict(settings)
    while True:
        try:
            SlurmBackendSettingsSchema(**kept)
        except ValidationError as err:
            bad = {str(item["loc"][0]) for item in err.errors() if item["loc"]}
            if not bad & set(kept):
                return {}
            kept = {k: v for k, v in kept.items() if k not in bad}
        else:
            return kept


def _key_path(message: str, where: str) -> str:
    """The first key path a plugin message names, below the offering."""
    found = KEY_IN_MESSAGE.search(message)
    return f"{where}.{found.group(0)}" if found else where


def _unknown_keys(settings: dict[str, Any], components: dict[str, Any]) -> list[str]:
    try:
        schema = SlurmBackendSettingsSchema(**settings)
    except ValidationError:
        return []
    found = config_rules.unknown_keys(schema)
    if all(isinstance(raw, dict) for raw in components.values()):
        found += config_rules.unknown_component_keys(components)
    return found


def _is_slurm(offering: Mapping[str, Any]) -> bool:
    return SLURM in (offering.get("backend_type"), *(offering.get(k) for k in BACKEND_KEYS))


def check(path: Path) -> CheckResult:
    """Check the configuration file at ``path``; never raises for a bad file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        return CheckResult([Problem(ERROR, str(path), f"cannot read: {err.strerror}")], [])
    except yaml.YAMLError as err:
        return CheckResult([Problem(ERROR, str(path), f"not valid YAML:\n{err}")], [])
    if not isinstance(raw, dict):
        return CheckResult([Problem(ERROR, str(path), "must be a YAML mapping with offerings")], [])
    problems = _legacy_keys(raw, "")
    offerings = raw.get("offerings")
    try:
        structures.RootConfiguration(**{**raw, "offerings": []})
    except ValidationError as err:
        problems += _validation_problems(err, "(top level)")
    if not isinstance(offerings, list):
        problems.append(Problem(ERROR, "offerings", "missing or not a list", "list the offerings"))
        return CheckResult(problems, [])
    agent_zone = str(raw.get("timezone") or "UTC")
    checked = []
    for index, offering in enumerate(offerings):
        where = f"offerings[{index}]"
        if not isinstance(offering, dict):
            problems.append(Problem(ERROR, where, "must be a mapping of keys"))
            continue
        if not _is_slurm(offering):
            continue
        checked.append(f"{where} {offering.get('name', '(no name)')!r}")
        problems += _legacy_keys(offering, where)
        with _warnings() as logged:
            framework = _framework_problems(offering, where)
        problems += framework
        problems += [
            Problem(WARNING, where, message)
            for message in logged.messages
            if not message.startswith(FRAMEWORK_SCHEMA_WARNING)
        ]
        problems += _plugin_problems(offering, agent_zone, where, framework)
    if not checked and not problems:
        problems.append(
            Problem(
                ERROR, "offerings", "no SLURM offering", "set backend_type: slurm on the offering"
            )
        )
    return CheckResult(problems, checked)


def render(path: Path, result: CheckResult) -> list[str]:
    """The report: the offerings checked, every problem, and the verdict."""
    lines = [f"Configuration {path}"]
    lines += [f"  checked SLURM offering {name}" for name in result.checked]
    for problem in result.problems:
        lines += problem.lines()
    errors = sum(p.severity == ERROR for p in result.problems)
    warnings = len(result.problems) - errors
    verdict = "OK" if result.ok else "INVALID"
    lines.append(
        f"{verdict}: {errors} {'error' if errors == 1 else 'errors'}, "
        f"{warnings} {'warning' if warnings == 1 else 'warnings'}"
    )
    return lines
