"""A local stand-in for Waldur Mastermind's REST API, for tests and demos.

It answers the endpoints ``waldur-site-agent`` 1.0.7 calls in every mode, from state
seeded by a YAML scenario, records every write, and checks every answer with
``waldur_api_client``'s own parsers so it cannot drift from the real API::

    from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

    with StandIn(load_scenario("examples/standin-scenario.yaml")) as standin:
        ...  # point the agent at standin.api_url; inspect standin.state

The names are loaded on first use, so ``waldur_slurm_standin --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from waldur_site_agent_slurm.devtools.standin.scenario import (
        Scenario,
        ScenarioError,
        load_scenario,
    )
    from waldur_site_agent_slurm.devtools.standin.server import StandIn
    from waldur_site_agent_slurm.devtools.standin.state import State, StateError

__all__ = ["Scenario", "ScenarioError", "StandIn", "State", "StateError", "load_scenario"]

_HOMES = {
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "load_scenario": "scenario",
    "StandIn": "server",
    "State": "state",
    "StateError": "state",
}


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module when it is first asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOMES[name]}")
    return getattr(module, name)
