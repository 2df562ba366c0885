"""Fixtures: a running stand-in seeded from the demo scenario and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from waldur_api_client import AuthenticatedClient

from waldur_site_agent_slurm.devtools.standin import Scenario, StandIn, load_scenario
from waldur_site_agent_slurm.devtools.standin.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "standin-scenario.yaml"
EXAMPLE_CONFIG = ROOT / "examples" / "emulator-config.yaml"

OFFERING = "d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50"
# The demo scenario's tokens, plus one the tests add (provider, not staff).
STAFF_TOKEN = "demo-offering-token"  # noqa: S105
USER_TOKEN = "demo-user-token"  # noqa: S105
PROVIDER_TOKEN = "provider-manager-token"  # noqa: S105
POLICY = "6a3b4c5d6e7f40819a2b3c4d5e6f7081"
FLOOD = "2c9d0e1f2a3b4c5d8e7f8091a2b3c4d5"
SKY = "3d0e1f2a3b4c4d5e9f8091a2b3c4d5e6"
FLOOD_ORDER = "4e1f2a3b4c5d4e6fa091a2b3c4d5e6f7"
SKY_ORDER = "5f2a3b4c5d6e4f70b1a2b3c4d5e6f708"
HYDRO_PROJECT = "b2c3d4e5f6a74b8c9d0e1f2a3b4c5d6e"
PLAN = "7a8b9c0d1e2f4a3b8c4d5e6f7a8b9c0d"
PROVIDER_CUSTOMER = "5e0a1b2c3d4e4f5a8b6c7d8e9f0a1b2c"


def demo_data() -> dict[str, Any]:
    """The demo scenario as YAML data, plus a non-staff provider token, a periodic
    policy and a per-user limit so every list has something to validate."""
    data: dict[str, Any] = yaml.safe_load(SCENARIO.read_text())
    data["tokens"].append(
        {"token": PROVIDER_TOKEN, "username": "manager", "is_staff": False, "provider": True}
    )
    data["policies"] = [
        {"uuid": POLICY, "component_limits": [{"type": "cpu", "limit": 1000}]},
    ]
    data["user_limits"] = [{"resource": FLOOD, "username": "alice", "component": "cpu", "limit": 5}]
    return data


@pytest.fixture
def scenario() -> Scenario:
    return parse_scenario(demo_data(), "demo+extras")


@pytest.fixture
def standin(scenario: Scenario) -> Iterator[StandIn]:
    with StandIn(scenario) as server:
        yield server


@pytest.fixture
def demo_standin() -> Iterator[StandIn]:
    """Seeded from examples/standin-scenario.yaml exactly as shipped."""
    with StandIn(load_scenario(SCENARIO)) as server:
        yield server


def base_url(standin: StandIn) -> str:
    return standin.api_url.removesuffix("/api/")


@pytest.fixture
def api(standin: StandIn) -> Callable[..., AuthenticatedClient]:
    """``api(token)``: a waldur_api_client client.

    waldur_api_client 8.1.2 has no ``raise_on_unexpected_status`` switch: its parsers
    always raise ``UnexpectedStatus`` for a status the API does not document.
    """

    def make(token: str = STAFF_TOKEN) -> AuthenticatedClient:
        return AuthenticatedClient(base_url=base_url(standin), token=token)

    return make


@pytest.fixture
def http(standin: StandIn) -> Iterator[httpx.Client]:
    """A plain HTTP client authenticated with the staff offering token."""
    with httpx.Client(
        base_url=base_url(standin), headers={"Authorization": f"Token {STAFF_TOKEN}"}
    ) as client:
        yield client
