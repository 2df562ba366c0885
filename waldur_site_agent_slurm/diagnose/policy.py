"""The periodic settings Waldur's policy sends for a resource, as Mastermind builds them.

The plugin never computes these itself: it applies what arrives. To say what SLURM
should hold, the diagnostic rebuilds the message from the policy and the resource's
limits (Mastermind's ``calculate_slurm_settings``: limits × 60, a weighted ``billing``
entry, grace on every entry, fairshare = Σ totals // 3) and hands it to the plugin's
own ``parse_settings`` and ``plan_settings``, the code that applies real messages.

Carry-over depends on the previous period's usage, which only Mastermind sums. With
carry-over on, a total lies between the base and base × (1 + carryover_factor/100), so
two messages are built, one at each end, and a value in between is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waldur_site_agent_slurm.diagnose.model import PolicyView
from waldur_site_agent_slurm.periodic.settings import (
    BILLING,
    DEFAULT_WEIGHTS,
    LIMIT_KEYS,
    MINUTES_PER_HOUR,
    weight_of,
)

SIBLING_ACCOUNTS = 3  # Mastermind's fixed divisor of the fairshare


def carries_over(policy: PolicyView) -> bool:
    """Whether totals may exceed the base (carry-over on, a period with a predecessor)."""
    return policy.carryover_enabled and not policy.one_off and policy.carryover_factor > 0


def mastermind_settings(
    policy: PolicyView, limits: Mapping[str, float], *, with_carryover: bool
) -> dict[str, Any]:
    """The settings payload for ``limits``; ``with_carryover``: the largest carry-over.

    Every truthy limit counts (Mastermind drops zero limits); values are Waldur units,
    taken to be hours as Mastermind does.
    """
    factor = 1 + policy.carryover_factor / 100 if with_carryover else 1.0
    total = {key: float(value) * factor for key, value in limits.items() if value}
    weights = policy.weights or DEFAULT_WEIGHTS
    billing = policy.tres_billing_enabled and bool(weights)
    tres = {key: int(value * MINUTES_PER_HOUR) for key, value in total.items()}
    if billing:
        weighted = sum(value * weight_of(key, weights) for key, value in total.items())
        tres[BILLING] = int(weighted * MINUTES_PER_HOUR)
        scalar = weighted
    else:
        scalar = sum(total.values())
    grace = policy.grace_ratio
    if grace > 0:
        tres = {key: int(value * (1 + grace)) for key, value in tres.items()}
    threshold_key = BILLING if billing else "node"
    return {
        "fairshare": max(1, int(sum(total.values()) // SIBLING_ACCOUNTS)),
        "limit_type": policy.limit_type,
        LIMIT_KEYS.get(policy.limit_type, "grp_tres"): tres,
        "qos_threshold": {threshold_key: int(scalar * MINUTES_PER_HOUR)},
        "grace_limit": {threshold_key: int(scalar * (1 + grace) * MINUTES_PER_HOUR)},
        "reset_raw_usage": False,
    }
