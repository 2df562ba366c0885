"""Limit planning: Waldur limits → TRES-minutes, and the difference to what SLURM has.

Limits are absolute: the desired value of each TRES is recomputed from Waldur every
time and only TRES whose value differs are written.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    limits: Mapping[str, object], components: Mapping[str, Component], known_tres: frozenset[str]
) -> tuple[dict[str, int], dict[str, float]]:
    """Convert ``{component: Waldur amount}`` to ``{tres: minutes}``.

    Returns the SLURM limits and the Waldur limits they came from. Components without a
    TRES, or whose TRES the cluster does not account for, are skipped with a warning.
    Raises ``InvalidValueError`` for a value that is not a non-negative number.
    """
    tres_limits: dict[str, int] = {}
    waldur_limits: dict[str, float] = {}
    for key, raw in limits.items():
        comp = components.get(key)
        if comp is None or comp.tres is None:
            logger.warning("No SLURM TRES for component %s; its limit is not applied", key)
            continue
        if comp.tres not in known_tres:
            logger.warning(
                "TRES %s (component %s) is not accounted on this cluster "
                "(add it to AccountingStorageTRES); its limit is not applied",
                comp.tres,
                key,
            )
            continue
        amount = validation.amount(raw, f"limit of {key}")
        minutes = waldur_to_tres_minutes(amount, comp.unit_factor)
        tres_limits[comp.tres] = validation.limit_value(minutes, f"limit of {key} in TRES-minutes")
        waldur_limits[key] = float(amount)
    return tres_limits, waldur_limits


def to_waldur(
    tres_limits: Mapping[str, int], components: Mapping[str, Component]
) -> dict[str, float]:
    """Convert ``{tres: minutes}`` back to ``{component: Waldur amount}``."""
    result = {}
    for key, comp in components.items():
        if comp.tres and comp.tres in tres_limits:
            result[key] = float(tres_minutes_to_waldur(tres_limits[comp.tres], comp.unit_factor))
    return result


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
