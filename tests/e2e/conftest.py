"""End to end: the real ``waldur_site_agent`` command against the Waldur stand-in.

Each test gets a fresh stand-in (seeded from the demo scenario), a fresh emulator state
and an agent configuration pointing at both; ``agent.run(mode)`` starts the real agent
process for one cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulator.conftest import emulator  # noqa: F401 - the per-test emulator fixture
from tests.real.conftest import (  # noqa: F401 - fixtures: the real SLURM and account-name tags
    real_slurm,
    tag,
)
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentRun, run_agent_cycle
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "standin-scenario.yaml"
EXAMPLE_CONFIG = ROOT / "examples" / "emulator-config.yaml"

FLOOD = "Flood model 2026"
SKY = "Sky survey"

pytestmark = pytest.mark.e2e


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(load_scenario(SCENARIO)) as server:
        yield server


@dataclass
class Agent:
    """The agent configuration of one test and a way to run the real agent with it."""

    config: Path
    env: dict[str, str]

    def run(self, mode: str, *, expect_ok: bool = True, **kwargs: Any) -> AgentRun:
        result = run_agent_cycle(mode, self.config, env=self.env, **kwargs)
        assert result.returncode == 0, result.output[-3000:]
        if expect_ok:
            errors = result.messages("error")
            # The run's last log lines with the errors: what the agent did just before.
            assert not errors, (errors, result.output[-6000:])
        return result


@contextmanager
def membership_held_at_team(
    agent: Agent, standin: StandIn, resource_uuid: str, delay: float
) -> Iterator[Future[AgentRun]]:
    """A ``membership_sync`` cycle held for ``delay`` s while it asks Waldur for a team.

    Yields the cycle once it waits on the resource's team request, so a test can change
    Waldur or SLURM under it; the caller takes ``.result()``.
    """
    standin.state.add_fault(f"{resource_uuid}/team/$", method="GET", status=None, delay=delay)
    with ThreadPoolExecutor(1) as pool:
        cycle = pool.submit(agent.run, "membership_sync")
        while standin.state.dump()["faults"]:
            assert not cycle.done(), cycle.result().output[-3000:]
            time.sleep(0.05)
        yield cycle


def demo_scenario(path: Path, names: dict[str, str] | None = None) -> Path:
    """Write the demo scenario to ``path``, its users renamed by ``names`` (demo → real)."""
    text = SCENARIO.read_text()
    for demo, real in (names or {}).items():
        text = text.replace(f"username: {demo}", f"username: {real}")
    path.write_text(text)
    return path


def agent_config(
    path: Path, api_url: str, *, cpu_minutes: bool = False, **backend_settings: Any
) -> Path:
    """The example emulator configuration, pointed at ``api_url``.

    ``cpu_minutes`` reports CPU in minutes (unit factor 1), easy to check by hand.
    """
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    offering = config["offerings"][0]
    offering["waldur_api_url"] = api_url
    offering["backend_settings"].update(backend_settings)
    if cpu_minutes:
        offering["backend_components"]["cpu"]["unit_factor"] = 1
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def agent(standin: StandIn, emulator: Path, tmp_path: Path) -> Agent:  # noqa: F811
    return Agent(agent_config(tmp_path / "agent-config.yaml", standin.api_url), {})
