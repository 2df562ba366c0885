"""event_process in REST mode: a periodic-limits message applied over slurmrestd.

The real agent consumes the message from the RabbitMQ of scripts/rabbitmq.sh and applies
fairshare and GrpTRESMins through slurm-emulator's slurmrestd; the RawUsage reset, which
slurmrestd has no call for, runs the emulator's sacctmgr (the README's REST mode section).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker.conftest import rabbitmq  # noqa: F401 - the broker tier's guard fixture
from tests.e2e.conftest import FLOOD
from tests.e2e.events import READY, SUBSCRIBED, event_config, message
from tests.e2e.test_event_periodic import (  # noqa: F401 - fixtures: the queue, the stand-in
    emulator_account,
    mastermind_settings,
    policy_standin,
    queue,
    send,
)
from tests.e2e.test_rest_mode_e2e import empty_state, rest_backend, restd  # noqa: F401
from tests.mastermind import expected_grp_tres_mins
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentProcess, start_agent
from waldur_site_agent_slurm.devtools.restd import RestdEmulator
from waldur_site_agent_slurm.devtools.standin import StandIn

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.usefixtures("rabbitmq")]


@pytest.fixture
def rest_event_agent(
    policy_standin: StandIn,  # noqa: F811
    restd: RestdEmulator,  # noqa: F811
    queue: None,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AgentProcess]:
    """The real agent in event_process mode over slurmrestd, subscribed to the queue."""
    empty_state(restd, monkeypatch)
    backend = rest_backend(restd, tmp_path)
    # The RawUsage reset runs sacctmgr: the emulator's, on the same state.
    backend.update(emulator_mode=True, slurm_bin_path=None)
    config = event_config(
        tmp_path / "agent-config.yaml",
        policy_standin.api_url,
        {"state_dir": str(tmp_path / "periodic-state")},
        **backend,
    )
    with start_agent("event_process", config) as agent:
        agent.wait_for_log(SUBSCRIBED)
        agent.wait_for_log(READY)
        yield agent
        finished = agent.stop()
    assert finished.returncode == 0, finished.output[-3000:]


def test_a_periodic_message_is_applied_over_slurmrestd(
    policy_standin: StandIn,  # noqa: F811
    rest_event_agent: AgentProcess,
) -> None:
    flood = policy_standin.state.resource_by_name(FLOOD)
    assert (flood["state"], flood["backend_id"]) == ("OK", "a_flood-model")
    settings = mastermind_settings({"cpu": 80.0, "mem": 200.0, "gpu": 0.0}, reset=True)

    report, records = send(policy_standin, rest_event_agent, message(flood, settings))

    assert report["success"], report
    applied, reset = report["commands_executed"]
    assert applied.startswith("slurmrestd v0.0.42 (cluster default): modify account")
    assert "RawUsage=0" in reset
    assert emulator_account("a_flood-model") == ("111", expected_grp_tres_mins(settings))
    assert not [r for r in records if r.get("level") == "error"]
