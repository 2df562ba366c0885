"""Start-up rules of ``backend_settings`` beyond their types.

The schemas in ``config`` check each value; the rules here look at the whole block:
which keys nothing reads (named in one warning, never an error, so older
configurations keep loading) and which combinations contradict each other. A
configuration is refused before the backend runs any command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from waldur_site_agent.common.structures import BackendComponent

from waldur_site_agent_slurm.errors import SlurmConfigError

if TYPE_CHECKING:
    from waldur_site_agent_slurm.config import SlurmBackendSettingsSchema

POLICIES = ("common", "individual", "none")
EXECUTION_MODES = ("cli", "rest")
SETTINGS = "backend_settings"
# slurmrestd data parsers whose QoS has no GrpTRESMins (limits.max.tres.minutes.total):
# SLURM 24.11 answers a write of it with "Ignoring unknown field" and stores nothing.
QOS_WITHOUT_LIMITS = ("v0.0.40", "v0.0.41")


def unknown_keys(model: BaseModel, path: str = SETTINGS) -> list[str]:
    """Full key paths of every key ``model`` and its nested blocks kept as extras."""
    found = [f"{path}.{key}" for key in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found.extend(unknown_keys(value, f"{path}.{name}"))
    return found


def unknown_component_keys(components: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``backend_components.<key>.<name>`` of every component key neither side reads."""
    from waldur_site_agent_slurm.config import SlurmComponentSchema  # noqa: PLC0415

    known = set(BackendComponent.model_fields) | set(SlurmComponentSchema.model_fields)
    return [
        f"backend_components.{key}.{name}"
        for key, raw in components.items()
        for name in raw
        if name not in known
    ]


def default_account_policy(value: str | None, default_account: str | None) -> str:
    """The policy, defaulted from ``default_account``; anything else is refused."""
    if value is None:
        return "common" if default_account else "none"
    if value not in POLICIES:
        raise SlurmConfigError(
            f"Invalid default_account_policy {value!r} (backend_settings.default_account_policy):"
            f" allowed values are {_quoted(POLICIES)}"
        )
    return value


def check_conflicts(schema: SlurmBackendSettingsSchema) -> None:
    """Refuse settings whose keys contradict each other, naming the keys."""
    mode = _value(schema.execution_mode)
    if mode == "rest":
        if schema.rest_api is None or not schema.rest_api.url:
            raise SlurmConfigError(
                "backend_settings.execution_mode is 'rest' but rest_api.url is not set: "
                "give slurmrestd's address in backend_settings.rest_api.url, "
                "or use execution_mode 'cli'"
            )
        if not schema.cluster_name:
            raise SlurmConfigError(
                "backend_settings.execution_mode is 'rest' but cluster_name is not set: "
                "slurmrestd needs the cluster's name in backend_settings.cluster_name"
            )
    qos_keys = _set(schema, "qos_paused", "qos_downscaled")
    if schema.qos_enforcement_enabled and schema.enforce_offering_qos and qos_keys:
        raise SlurmConfigError(
            "backend_settings.qos_enforcement_enabled with enforce_offering_qos pauses and "
            "downscales through the account's GrpSubmitJobs, so "
            f"{_keys(qos_keys)} would never be used: "
            "remove them or turn off enforce_offering_qos"
        )
    management = schema.qos_management
    if management is None:
        return
    swap_keys = _set(schema, "qos_default", "qos_paused", "qos_downscaled")
    if management.skip_qos_swap and swap_keys:
        raise SlurmConfigError(
            "backend_settings.qos_management.skip_qos_swap pauses and downscales through "
            "GrpSubmitJobs instead of swapping QoS, so "
            f"{_keys(swap_keys)} cannot be set with it: "
            "remove them or set skip_qos_swap: false"
        )
    if management.enabled and not management.skip_qos_swap and schema.qos_default is not None:
        raise SlurmConfigError(
            "backend_settings.qos_management.enabled without skip_qos_swap restores each "
            "allocation to its own QoS, so backend_settings.qos_default would never be used: "
            "remove qos_default or turn off qos_management.enabled"
        )
    version = schema.rest_api.api_version if schema.rest_api is not None else None
    if mode == "rest" and management.apply_limits_to_qos and version in QOS_WITHOUT_LIMITS:
        raise SlurmConfigError(
            "backend_settings.qos_management.apply_limits_to_qos keeps GrpTRESMins on the "
            f"allocation's QoS, which slurmrestd's data parser {version} "
            "(backend_settings.rest_api.api_version) does not have: SLURM ignores it with a "
            "warning. Set rest_api.api_version to v0.0.42 or later, or execution_mode: cli"
        )
    if management.apply_limits_to_qos and not (management.enabled and management.skip_qos_swap):
        missing = [
            f"{SETTINGS}.qos_management.{key}: true"
            for key in ("enabled", "skip_qos_swap")
            if not getattr(management, key)
        ]
        raise SlurmConfigError(
            "backend_settings.qos_management.apply_limits_to_qos puts GrpTRESMins on the "
            "allocation's own QoS, which needs "
            + " and ".join(missing)
            + ": set "
            + ("them" if len(missing) > 1 else "it")
            + " or remove apply_limits_to_qos"
        )


def _set(schema: SlurmBackendSettingsSchema, *keys: str) -> list[str]:
    return [key for key in keys if getattr(schema, key) is not None]


def _value(mode: Any) -> str | None:
    return None if mode is None else str(getattr(mode, "value", mode))


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _keys(keys: Iterable[str]) -> str:
    return " and ".join(f"{SETTINGS}.{key}" for key in keys)
