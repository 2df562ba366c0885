"""What the event-process tests share: the policy scenario, the STOMP configuration,
Mastermind's message body and waiting for the agent's command-result reports."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.broker import broker_env
from tests.e2e.conftest import agent_config, demo_scenario
from tests.real.slurmdbd import other_test_runs
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentProcess
from waldur_site_agent_slurm.devtools.standin import StandIn

POLICY = "11111111-2222-3333-4444-555555555555"
OFFERING = "d0e1f2a3-b4c5-4d6e-8f9a-0b1c2d3e4f50"
SUBSCRIBED = "Started unified STOMP connection for queue"
READY = "Signal handlers set"  # after it, SIGTERM takes the agent's graceful path
GRACE = 0.2  # the policy's grace ratio
CARRYOVER_FACTOR = 50  # the policy's carry-over, in percent


def policy_scenario(path: Path, names: dict[str, str] | None = None) -> Path:
    """The demo scenario with a periodic usage policy (and demo users renamed)."""
    data = yaml.safe_load(demo_scenario(path, names).read_text())
    data["policies"] = [
        {
            "uuid": POLICY,
            "period": 2,
            "limit_type": "GrpTRESMins",
            "grace_ratio": GRACE,
            "carryover_factor": CARRYOVER_FACTOR,
            "tres_billing_enabled": True,
        }
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def event_config(
    path: Path,
    api_url: str,
    periodic: dict[str, Any],
    *,
    token: str | None = None,
    **backend: Any,
) -> Path:
    """The example configuration with STOMP on the local broker and ``periodic_limits``.

    ``token`` replaces the offering's API token (and so the STOMP password).
    """
    env = broker_env()
    agent_config(path, api_url, periodic_limits={"enabled": True, **periodic}, **backend)
    config = yaml.safe_load(path.read_text())
    if token is not None:
        config["offerings"][0]["waldur_api_token"] = token
    config["offerings"][0].update(
        stomp_enabled=True,
        stomp_ws_host=env["RMQ_HOST"],
        stomp_ws_port=int(env["RMQ_WS_PORT"]),
        stomp_ws_path=env["RMQ_WS_PATH"],
        websocket_use_tls=False,
    )
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def message(resource: dict[str, Any], settings: Any, **changes: Any) -> dict[str, Any]:
    """The body Mastermind publishes for one allocation's periodic settings.

    Hyphenated UUIDs and a naive local timestamp, as Mastermind sends them; ``changes``
    replace fields, and a field set to None is left out.
    """
    body = {
        "resource_uuid": str(uuid.UUID(resource["uuid"])),
        "backend_id": resource["backend_id"],
        "offering_uuid": OFFERING,
        "policy_uuid": POLICY,
        "action": "apply_periodic_settings",
        "timestamp": datetime.now().isoformat(),
        "object_type": "resource_periodic_limits",
        "settings": settings,
        **changes,
    }
    return {k: v for k, v in body.items() if v is not None}


def wait_for_reports(
    standin: StandIn, agent: AgentProcess, count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """Wait until the stand-in holds ``count`` command results; return their bodies."""
    deadline = time.monotonic() + timeout
    while len(standin.state.command_results()) < count:
        if agent.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"{len(standin.state.command_results())} of {count} reports; agent output:\n"
                + agent.snapshot().output[-4000:]
            )
        time.sleep(0.1)
    return [r["body"] for r in standin.state.command_results()]


def alone_or_skip(what: str) -> None:
    """Skip (outside CI) a test that disturbs shared services while other pytest runs."""
    others = other_test_runs()
    if others and os.environ.get("CI") != "true":
        pytest.skip(f"{what}, which other pytest runs use now: {others[0][:120]}")
