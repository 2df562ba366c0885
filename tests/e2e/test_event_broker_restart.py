"""RabbitMQ restarted under a running ``event_process``: the agent reconnects and goes on.

The real agent consumes the offering's queue on the broker of scripts/rabbitmq.sh. One
periodic-settings message is applied; the broker is stopped and started again
(``scripts/rabbitmq.sh down`` / ``up``); the next message, published once the broker
is back, is applied and reported too, by the same agent process.

Restarting the broker disturbs every other user of it: outside CI the test skips while
another pytest process runs, and the broker is always started again.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import SCRIPT, publish, purge
from tests.broker.conftest import rabbitmq  # noqa: F401 - the broker tier's guard fixture
from tests.e2e.conftest import FLOOD
from tests.e2e.events import (
    READY,
    SUBSCRIBED,
    alone_or_skip,
    event_config,
    message,
    policy_scenario,
    wait_for_reports,
)
from tests.emulator.conftest import sacctmgr
from waldur_site_agent_slurm.devtools.demo.agentrun import start_agent
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.usefixtures("rabbitmq")]

RECONNECT_WAIT = 240  # seconds: the broker's boot plus the agent's reconnect back-off


def broker(command: str) -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def restartable_broker() -> Iterator[None]:
    """The broker may be restarted by the test; it is up again afterwards."""
    alone_or_skip("restarts RabbitMQ")
    purge()
    try:
        yield
    finally:
        broker("up")
        purge()


def fairshare(account: str) -> str:
    out = sacctmgr("-P", "-n", "show", "assoc", "format=Account,User,Fairshare")
    return next(line.split("|")[2] for line in out.splitlines() if line.startswith(f"{account}||"))


@pytest.mark.usefixtures("emulator", "restartable_broker")
def test_after_a_broker_restart_the_agent_reconnects_and_applies_the_next_message(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(policy_scenario(tmp_path / "scenario.yaml"))
    with StandIn(scenario) as standin:
        config = event_config(
            tmp_path / "agent.yaml", standin.api_url, {"state_dir": str(tmp_path / "state")}
        )
        with start_agent("event_process", config) as agent:
            agent.wait_for_log(SUBSCRIBED)
            agent.wait_for_log(READY)
            flood = standin.state.resource_by_name(FLOOD)
            account = flood["backend_id"]
            publish(message(flood, {"fairshare": 111}))
            [first] = wait_for_reports(standin, agent, 1)
            assert first["success"] is True, first
            assert fairshare(account) == "111"
            seen = len(agent.snapshot().records)

            broker("down")
            agent.wait_for_log("Disconnected from queue", after=seen)
            broker("up")
            publish(message(flood, {"fairshare": 222}))

            bodies = wait_for_reports(standin, agent, 2, timeout=RECONNECT_WAIT)
            assert bodies[1] == {
                "resource_uuid": str(uuid.UUID(flood["uuid"])),
                "success": True,
                "error_message": "",
                "mode": "production",
                "commands_executed": [
                    f"sacctmgr --immediate modify account where name={account} cluster=default "
                    "set Fairshare=222"
                ],
            }
            assert fairshare(account) == "222"
            assert agent.process.poll() is None  # the same process, still consuming
            finished = agent.stop()
    assert finished.returncode == 0, finished.output[-3000:]
