"""Periodic usage-policy settings from Waldur Mastermind: parsed, checked, weighed.

Mastermind sends, per allocation, ``fairshare``, a limit dict under the key its
``limit_type`` selects (``grp_tres_mins``, ``max_tres_mins`` or ``grp_tres``; keys are
Waldur component names and ``billing``, values are Waldur units × 60 with grace already
added), ``reset_raw_usage``, ``qos_threshold``/``grace_limit`` and ``carryover_details``.

``parse_settings`` turns that payload into a frozen ``PeriodicSettings`` or raises one
error listing every problem, before any command runs. ``threshold_usage`` puts usage in
the unit of the thresholds. ``periodic_plan`` compares the settings with SLURM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from waldur_site_agent_slurm.allocation.units import waldur_to_tres_minutes
from waldur_site_agent_slurm.config import Component, PeriodicLimitsSchema
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmConfigError, SlurmError
from waldur_site_agent_slurm.periodic.periods import Period, parse_period
from waldur_site_agent_slurm.slurm import validation

# limit_type → the settings key carrying the limits (Mastermind's mapping).
LIMIT_KEYS = {"GrpTRESMins": "grp_tres_mins", "MaxTRESMins": "max_tres_mins", "GrpTRES": "grp_tres"}
# limit_type → the AssociationRecord attribute holding the current value (same names).
RECORD_FIELDS = LIMIT_KEYS
BILLING = "billing"
THRESHOLD_KEYS = (BILLING, "node")
KNOWN_KEYS = frozenset(
    {
        "fairshare",
        "limit_type",
        "reset_raw_usage",
        "qos_threshold",
        "grace_limit",
        "carryover_details",
        *LIMIT_KEYS.values(),
    }
)
# Mastermind's weights when a policy sets none (tres_billing_weights = {}).
DEFAULT_WEIGHTS = MappingProxyType({"CPU": 0.015625, "Mem": 0.001953125, "GRES/gpu": 0.25})
MINUTES_PER_HOUR = 60
NO_TRES_REASON = (
    "not applied: component {key} has no SLURM TRES (set backend_components.{key}.tres_name "
    "to limit it)"
)


class PeriodicSettingsError(SlurmError):
    """The settings Waldur sent cannot be applied; nothing was changed."""


@dataclass(frozen=True)
class PeriodicConfig:
    """The ``periodic_limits`` block, resolved: weights chosen, paths made paths."""

    enabled: bool
    limit_type: str
    tres_billing_enabled: bool
    weights: Mapping[str, float]
    threshold_qos: bool
    allow_blocking_limits: bool
    period_kind: str
    state_dir: Path
    emulator_base_url: str | None
    fairshare_decay_half_life: float | None
    emulator_mode: bool = False

    @property
    def mode(self) -> str:
        """``emulator`` when settings go to slurm-emulator's API, else ``production``."""
        return "emulator" if self.emulator_mode else "production"

    @classmethod
    def from_schema(
        cls, schema: PeriodicLimitsSchema, override: Mapping[str, Any] | None = None
    ) -> PeriodicConfig:
        """Resolve ``schema``, with the keys of ``override`` replacing its values."""
        if override:
            try:
                schema = PeriodicLimitsSchema(
                    **{**schema.model_dump(exclude_unset=True), **dict(override)}
                )
            except ValidationError as err:
                raise SlurmConfigError(f"Invalid periodic_limits override: {err}") from err
        weights = schema.tres_billing_weights or schema.billing_weights or DEFAULT_WEIGHTS
        return cls(
            enabled=schema.enabled,
            limit_type=schema.limit_type,
            tres_billing_enabled=schema.tres_billing_enabled,
            weights=MappingProxyType(dict(weights)),
            threshold_qos=schema.threshold_qos,
            allow_blocking_limits=schema.allow_blocking_limits,
            period_kind=schema.period,
            state_dir=Path(schema.state_dir),
            emulator_base_url=(
                validation.http_url(schema.emulator_base_url, "periodic_limits.emulator_base_url")
                if schema.emulator_base_url
                else None
            ),
            fairshare_decay_half_life=schema.fairshare_decay_half_life,
            emulator_mode=schema.emulator_mode,
        )


@dataclass(frozen=True)
class Threshold:
    """A usage level from the settings: ``key`` is ``billing`` or ``node``, in minutes."""

    key: str
    minutes: int

    def __str__(self) -> str:
        """``billing=12000`` as in the settings."""
        return f"{self.key}={self.minutes}"


@dataclass(frozen=True)
class LimitEntry:
    """One limit from the settings: the Waldur key as sent and the TRES value to set."""

    key: str
    tres: str
    sent: int
    minutes: int


@dataclass(frozen=True)
class Refusal:
    """Something from the settings that was not applied, and why."""

    item: str
    reason: str

    def __str__(self) -> str:
        """``item: reason``."""
        return f"{self.item}: {self.reason}"


@dataclass(frozen=True)
class PeriodicSettings:
    """The settings of one message, validated; ``None`` means "leave unchanged"."""

    fairshare: int | None = None
    limit_type: str | None = None
    limits: tuple[LimitEntry, ...] = ()
    reset_raw_usage: bool = False
    qos_threshold: Threshold | None = None
    grace_limit: Threshold | None = None
    previous_period: Period | None = None
    one_off: bool = False
    carryover_details: Mapping[str, Any] | None = field(default=None, compare=False)
    ignored_keys: tuple[str, ...] = ()
    skipped: tuple[Refusal, ...] = ()
    without_tres: tuple[str, ...] = ()


def tres_map(components: Mapping[str, Component]) -> dict[str, str]:
    """Settings key → TRES: every component with a TRES, and ``billing``."""
    mapping = {key: comp.tres for key, comp in components.items() if comp.tres}
    mapping[BILLING] = BILLING
    return mapping


def _to_tres_minutes(key: str, sent: int, components: Mapping[str, Component]) -> int:
    """Minutes as Mastermind sent them (Waldur units × 60) → TRES-minutes.

    ``billing`` is in billing-minutes already. A component's value is first brought back
    to Waldur units (÷ 60) and then converted with its ``unit_factor``, exactly once.
    """
    comp = components.get(key)
    if key == BILLING or comp is None:
        return sent
    return waldur_to_tres_minutes(Decimal(sent) / MINUTES_PER_HOUR, comp.unit_factor)


def _parse_limits(
    raw: Mapping[str, Any],
    name: str,
    config: PeriodicConfig,
    components: Mapping[str, Component],
    problems: list[str],
) -> tuple[tuple[LimitEntry, ...], tuple[Refusal, ...], tuple[str, ...]]:
    """The limits to set, the entries left out (with why), and the keys without a TRES."""
    values = raw.get(name)
    if not isinstance(values, Mapping):
        problems.append(f"{name} must be a mapping of component to minutes, got {values!r}")
        return (), (), ()
    known = tres_map(components)
    entries: list[LimitEntry] = []
    skipped: list[Refusal] = []
    without_tres: list[str] = []
    seen: dict[str, str] = {}
    for key, value in values.items():
        where = f"{name}.{key}"
        if key not in known and key in components:
            # A declared component SLURM does not account (e.g. storage): not a TRES limit.
            skipped.append(Refusal(where, NO_TRES_REASON.format(key=key)))
            without_tres.append(key)
            continue
        if key not in known:
            problems.append(
                f"unknown component {key!r} in {name} (known: "
                f"{', '.join(sorted({*known, *components}))}); "
                "declare it in backend_components (with tres_name to limit it in SLURM)"
            )
            continue
        try:
            sent = validation.limit_value(value, where)
            minutes = validation.limit_value(_to_tres_minutes(key, sent, components), where)
        except InvalidValueError as err:
            problems.append(str(err))
            continue
        tres = known[key]
        if tres in seen:
            problems.append(f"{name}.{key} and {name}.{seen[tres]} both set TRES {tres}")
            continue
        seen[tres] = key
        if key == BILLING and not config.tres_billing_enabled:
            skipped.append(
                Refusal(where, "not applied: periodic_limits.tres_billing_enabled is false")
            )
            continue
        entries.append(LimitEntry(key, tres, sent, minutes))
    return tuple(entries), tuple(skipped), tuple(without_tres)


def _parse_threshold(raw: Mapping[str, Any], name: str, problems: list[str]) -> Threshold | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping) or len(value) != 1:
        problems.append(f"{name} must hold exactly one entry (billing or node), got {value!r}")
        return None
    ((key, minutes),) = value.items()
    if key not in THRESHOLD_KEYS:
        problems.append(f"{name} key {key!r} is neither billing nor node")
        return None
    try:
        return Threshold(key, validation.limit_value(minutes, f"{name}.{key}"))
    except InvalidValueError as err:
        problems.append(str(err))
        return None


def _parse_limit_type(
    raw: Mapping[str, Any], config: PeriodicConfig, problems: list[str]
) -> str | None:
    """The limit type whose key may carry limits; None when the settings are unusable."""
    sent = raw.get("limit_type")
    if sent is not None and sent not in LIMIT_KEYS:
        problems.append(f"unknown limit_type {sent!r} (known: {', '.join(LIMIT_KEYS)})")
        return None
    if sent is not None and sent != config.limit_type:
        problems.append(
            f"limit_type {sent} differs from periodic_limits.limit_type {config.limit_type}"
            + (
                " (GrpTRES values are minutes, not a concurrent count: choose GrpTRES in the "
                "configuration to accept them)"
                if sent == "GrpTRES"
                else ""
            )
        )
        return None
    limit_type = str(sent or config.limit_type)
    stray = [
        k for k in LIMIT_KEYS.values() if k != LIMIT_KEYS[limit_type] and raw.get(k) is not None
    ]
    if stray:
        problems.append(
            f"{', '.join(stray)} present but limit_type is {limit_type}: exactly one limit key, "
            f"{LIMIT_KEYS[limit_type]}, is expected"
        )
        return None
    return limit_type


def _parse_carryover(
    raw: Mapping[str, Any], problems: list[str]
) -> tuple[Mapping[str, Any] | None, Period | None, bool]:
    details = raw.get("carryover_details")
    if details is None:
        return None, None, False
    if not isinstance(details, Mapping):
        problems.append(f"carryover_details must be a mapping, got {details!r}")
        return None, None, False
    previous = None
    if details.get("previous_period") is not None:
        try:
            previous = parse_period(details["previous_period"], "carryover_details.previous_period")
        except InvalidValueError as err:
            problems.append(str(err))
    return MappingProxyType(dict(details)), previous, details.get("reason") == "no_previous_period"


def parse_settings(
    raw: object, config: PeriodicConfig, components: Mapping[str, Component]
) -> PeriodicSettings:
    """Validate Mastermind's settings payload against the offering's configuration.

    Raises:
        PeriodicSettingsError: listing every problem; nothing may be applied then.
    """
    if not isinstance(raw, Mapping):
        raise PeriodicSettingsError(f"Periodic settings must be a mapping, got {raw!r}")
    problems: list[str] = []
    fairshare = None
    if raw.get("fairshare") is not None:
        try:
            fairshare = validation.fairshare(raw["fairshare"])
        except InvalidValueError as err:
            problems.append(str(err))
    limit_type = _parse_limit_type(raw, config, problems)
    entries: tuple[LimitEntry, ...] = ()
    skipped: tuple[Refusal, ...] = ()
    without_tres: tuple[str, ...] = ()
    if limit_type is not None and raw.get(LIMIT_KEYS[limit_type]) is not None:
        entries, skipped, without_tres = _parse_limits(
            raw, LIMIT_KEYS[limit_type], config, components, problems
        )
    reset = raw.get("reset_raw_usage", False)
    if not isinstance(reset, bool):
        problems.append(f"reset_raw_usage must be true or false, got {reset!r}")
    threshold = _parse_threshold(raw, "qos_threshold", problems)
    grace = _parse_threshold(raw, "grace_limit", problems)
    if threshold and grace:
        if threshold.key != grace.key:
            problems.append(f"qos_threshold ({threshold}) and grace_limit ({grace}) differ in key")
        elif grace.minutes < threshold.minutes:
            problems.append(f"grace_limit {grace} is below qos_threshold {threshold}")
    details, previous, one_off = _parse_carryover(raw, problems)
    if problems:
        raise PeriodicSettingsError(
            "Periodic settings refused, nothing applied: " + "; ".join(problems)
        )
    return PeriodicSettings(
        fairshare=fairshare,
        limit_type=limit_type if entries or skipped else None,
        limits=entries,
        reset_raw_usage=bool(reset),
        qos_threshold=threshold,
        grace_limit=grace,
        previous_period=previous,
        one_off=one_off,
        carryover_details=details,
        ignored_keys=tuple(sorted(k for k in raw if k not in KNOWN_KEYS)),
        skipped=skipped,
        without_tres=without_tres,
    )


def weight_of(key: str, weights: Mapping[str, float]) -> float:
    """A component's weight the way Mastermind looks it up: exact, then ignoring case.

    ``cpu`` finds ``CPU`` and ``mem`` finds ``Mem``; ``gpu`` does not find ``GRES/gpu``
    and weighs 0, as in Mastermind's billing figure.
    """
    if key in weights:
        return weights[key]
    folded = {name.lower(): weight for name, weight in weights.items()}
    return folded.get(key.lower(), 0.0)


def threshold_usage(usage: Mapping[str, float], key: str, weights: Mapping[str, float]) -> Decimal:
    """Period usage in the unit of ``qos_threshold``: minutes of billing units or of hours.

    ``billing``: Σ usage × weight × 60, the same weighting as Mastermind's billing
    threshold; ``node``: Σ usage × 60. Usage is in Waldur units (assumed hours).
    """
    total = Decimal(0)
    for component, amount in usage.items():
        weight = Decimal(str(weight_of(component, weights))) if key == BILLING else Decimal(1)
        total += Decimal(str(amount)) * weight
    return total * MINUTES_PER_HOUR


def usable_thresholds(
    settings: PeriodicSettings, allow_blocking: bool
) -> tuple[Threshold | None, Threshold | None, tuple[Refusal, ...]]:
    """The thresholds to compare usage with; a zero one would block at any usage."""
    kept: list[Threshold | None] = []
    refused: list[Refusal] = []
    pairs = (("qos_threshold", settings.qos_threshold), ("grace_limit", settings.grace_limit))
    for name, item in pairs:
        if item is not None and item.minutes == 0 and not allow_blocking:
            refused.append(
                Refusal(
                    f"{name} {item}",
                    "a zero threshold would block the account at any usage; set "
                    "periodic_limits.allow_blocking_limits to use it",
                )
            )
            kept.append(None)
        else:
            kept.append(item)
    return kept[0], kept[1], tuple(refused)
