"""Limit planning: Waldur limits → TRES-minutes, and the difference to what SLURM has.

Limits are absolute: the desired value of each TRES is recomputed from Waldur every
time and only TRES whose value differs are written. A component is limited through each
of its targets (its own TRES, or those of ``target_components``) as ``value × factor``;
a prepaid component (``accounting_type: one``) also × the months it is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.allocation.units import tres_minutes_to_waldur, waldur_to_tres_minutes
from waldur_site_agent_slurm.config import Component
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import format_tres

CLEAR = -1  # sacctmgr removes a single TRES limit when it is set to -1


def requested(
    resource_limits: Mapping[str, object], components: Mapping[str, Component]
) -> dict[str, object]:
    """Waldur limits of an allocation: the resource's own, else each component's ``limit``."""
    wanted: dict[str, object] = {}
    for key, comp in components.items():
        if key in resource_limits:
            wanted[key] = resource_limits[key]
        elif comp.limit is not None:
            wanted[key] = comp.limit
    return wanted


def to_tres_minutes(
    limits: Mapping[str, object],
    components: Mapping[str, Component],
    known_tres: frozenset[str],
    months: int = 1,
) -> tuple[dict[str, int], dict[str, float]]:
    """Convert ``{component: Waldur amount}`` to ``{tres: minutes}``.

    Each target TRES of a component gets ``amount × factor`` (× ``months`` for a
    prepaid component). Returns the SLURM limits and the Waldur limits they came from
    (the amounts as Waldur has them, not multiplied). Components without a TRES, and
    TRES the cluster does not account for, are skipped with a warning. Raises
    ``InvalidValueError`` for a value that is not a non-negative number.
    """
    tres_limits: dict[str, int] = {}
    waldur_limits: dict[str, float] = {}
    for key, raw in limits.items():
        comp = components.get(key)
        if comp is None or not comp.targets:
            logger.warning("No SLURM TRES for component %s; its limit is not applied", key)
            continue
        amount = validation.amount(raw, f"limit of {key}")
        paid = Decimal(str(amount)) * (months if comp.prepaid else 1)
        applied = False
        for target in comp.targets:
            if target.tres not in known_tres:
                logger.warning(
                    "TRES %s (component %s) is not accounted on this cluster "
                    "(add it to AccountingStorageTRES); its limit is not applied",
                    target.tres,
                    key,
                )
                continue
            minutes = waldur_to_tres_minutes(paid, target.factor)
            tres_limits[target.tres] = validation.limit_value(
                minutes, f"limit of {key} in TRES-minutes"
            )
            applied = True
        if applied:
            waldur_limits[key] = float(amount)
    return tres_limits, waldur_limits


def to_waldur(
    tres_limits: Mapping[str, int], components: Mapping[str, Component], months: int = 1
) -> dict[str, float]:
    """Convert ``{tres: minutes}`` back to ``{component: Waldur amount}``, in cents.

    A prepaid component's amount is per month (÷ ``months``). A component limited
    through several TRES gets the smallest of their amounts: the one that binds.
    """
    result = {}
    for key, comp in components.items():
        amounts = [
            tres_minutes_to_waldur(tres_limits[t.tres], t.factor * (months if comp.prepaid else 1))
            for t in comp.targets
            if t.tres in tres_limits
        ]
        if amounts:
            result[key] = float(min(amounts))
    return result


def whole_units(amounts: Mapping[str, float]) -> dict[str, int]:
    """Waldur amounts as the integers Waldur keeps limits in (rounded half up)."""
    return {
        key: int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_UP))
        for key, value in amounts.items()
    }


def changes(current: Mapping[str, int], desired: Mapping[str, int]) -> dict[str, int]:
    """TRES whose desired value differs from the current one (only those to write)."""
    return {tres: value for tres, value in desired.items() if current.get(tres) != value}


def replacement(current: Mapping[str, int], desired: Mapping[str, int]) -> dict[str, int]:
    """What to write so that exactly ``desired`` is set: changes plus clears."""
    result = changes(current, desired)
    result.update({tres: CLEAR for tres in current if tres not in desired})
    return result


def format_setting(values: Mapping[str, int]) -> str:
    """``cpu=60,gres/gpu=-1`` for a ``set`` clause (sorted, like SLURM prints it)."""
    return format_tres({validation.tres_name(k): v for k, v in values.items()})


def prepaid_tres(components: Mapping[str, Component]) -> frozenset[str]:
    """The TRES limited through prepaid components."""
    return frozenset(t.tres for comp in components.values() if comp.prepaid for t in comp.targets)


def waldur_update(
    waldur: Mapping[str, object], backend: Mapping[str, int]
) -> dict[str, object] | None:
    """Waldur's limits with SLURM's values over them, or None when nothing differs.

    Only components SLURM holds a limit for change; the others keep Waldur's value.
    """
    if not backend or all(waldur.get(key) == value for key, value in backend.items()):
        return None
    return {**waldur, **backend}
