"""Waldur Mastermind's periodic-policy formulas, written here independently of the plugin.

``mastermind-periodic-policy.md`` §2-3: carry-over of unused allocation, the billing
figure with the policy's weights, grace on every limit, fairshare = Σ totals // 3. Tests
use it to build the settings Mastermind would send and to predict thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Mastermind's default billing weights (per CPU-, MB- and GPU-unit).
DEFAULT_WEIGHTS = {"CPU": 0.015625, "Mem": 0.001953125, "GRES/gpu": 0.25}
MB_PER_GB = 1024


@dataclass(frozen=True)
class Policy:
    """A GrpTRESMins policy with billing on: base limits per component, in Waldur units."""

    base: dict[str, float]
    grace: float = 0.2
    carryover_factor: int = 50  # percent of the base that unused allocation may add
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def weight(self, component: str) -> float:
        """The billing weight of ``component``: exact key, then case-insensitive, else 0."""
        if component in self.weights:
            return self.weights[component]
        return {k.lower(): v for k, v in self.weights.items()}.get(component.lower(), 0.0)

    def totals(self, previous_usage: dict[str, float]) -> dict[str, float]:
        """This period's allocation: base plus the capped carry-over of last period's rest."""
        totals = {}
        for component, base in self.base.items():
            unused = max(0.0, base - previous_usage.get(component, 0.0))
            totals[component] = base + min(unused, self.carryover_factor / 100 * base)
        return totals

    def billing_minutes(self, usage: dict[str, float]) -> float:
        """``usage`` (Waldur units) weighed into billing-minutes."""
        return sum(v * self.weight(c) for c, v in usage.items()) * 60

    def settings(
        self, previous_usage: dict[str, float], *, previous_period: str, reset: bool
    ) -> dict[str, Any]:
        """``calculate_slurm_settings``: the ``settings`` of one periodic message."""
        total = self.totals(previous_usage)
        tres = {c: int(v * 60) for c, v in total.items()}
        scalar = sum(v * self.weight(c) for c, v in total.items())
        tres["billing"] = int(scalar * 60)
        return {
            "fairshare": max(1, int(sum(total.values()) // 3)),
            "qos_threshold": {"billing": int(scalar * 60)},
            "grace_limit": {"billing": int(scalar * (1 + self.grace) * 60)},
            "limit_type": "GrpTRESMins",
            "reset_raw_usage": reset,
            "carryover_details": {
                "carryover_applied": True,
                "previous_period": previous_period,
                "carryover_factor": self.carryover_factor,
            },
            "grp_tres_mins": {k: int(v * (1 + self.grace)) for k, v in tres.items()},
        }


def expected_grp_tres_mins(settings: dict[str, Any]) -> dict[str, int]:
    """What SLURM holds for the settings' ``grp_tres_mins`` with the example components.

    Minutes as sent; memory GB-minutes become MB-minutes; ``gpu`` is ``gres/gpu``.
    """
    sent = settings["grp_tres_mins"]
    return {
        "billing": sent["billing"],
        "cpu": sent["cpu"],
        "gres/gpu": sent["gpu"],
        "mem": sent["mem"] * MB_PER_GB,
    }
