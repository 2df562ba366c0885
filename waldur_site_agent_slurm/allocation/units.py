"""Waldur units ↔ SLURM TRES-minutes, in one place.

A component's ``unit_factor`` is the number of TRES-minutes in one Waldur unit
(60 for CPU-hours, 60000 for CPU k-hours, 61440 for GB-hours of memory in MB).
Arithmetic is decimal so that 0.29 × 100 is 29, not 28.999….
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
SECONDS_PER_MINUTE = 60


def _decimal(value: float | int | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def waldur_to_tres_minutes(value: float | int | Decimal, unit_factor: float) -> int:
    """Convert a Waldur amount to whole TRES-minutes, rounding half up."""
    minutes = _decimal(value) * _decimal(unit_factor)
    return int(minutes.to_integral_value(rounding=ROUND_HALF_UP))


def tres_minutes_to_waldur(minutes: int, unit_factor: float) -> Decimal:
    """Convert TRES-minutes to a Waldur amount, rounded to cents."""
    return (Decimal(minutes) / _decimal(unit_factor)).quantize(CENT, rounding=ROUND_HALF_UP)


def tres_seconds_to_waldur(seconds: int, unit_factor: float) -> Decimal:
    """Convert TRES-seconds (TRES × seconds of use) to a Waldur amount, rounded to cents."""
    return targets_seconds_to_waldur([(seconds, unit_factor)])


def targets_seconds_to_waldur(seconds_and_factors: Iterable[tuple[int, float]]) -> Decimal:
    """Usage of a component reported through several TRES, in Waldur units, in cents.

    Each TRES's TRES-seconds are brought to Waldur units with its own factor
    (``seconds ÷ 60 ÷ factor``) and the sum is rounded once. This is the only rounding
    usage goes through: per-user values are rounded here once and account totals are
    sums of those rounded values.
    """
    total = sum(
        (Decimal(seconds) / SECONDS_PER_MINUTE / _decimal(factor))
        for seconds, factor in seconds_and_factors
    )
    return Decimal(total).quantize(CENT, rounding=ROUND_HALF_UP)
