"""The diagnostic console script follows the offering's ``enforce_qos`` plugin option.

With ``qos_enforcement_enabled`` and no ``enforce_offering_qos``, the agent's processors
take enforcement from the offering; the diagnostic reads the same option, so a pause in
Waldur is expected on the account's GrpSubmitJobs there and on its QoS elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import FLOOD, SCENARIO, Agent, agent_config
from tests.e2e.test_diagnose import ACCOUNT, CLUSTER, WHERE, diagnose
from tests.emulator.test_partitions_and_qos_on_emulator import qos_of, submit_limit
from waldur_site_agent_slurm.devtools.standin import StandIn
from waldur_site_agent_slurm.devtools.standin.scenario import parse_scenario


@pytest.fixture(params=[True, False], ids=["enforcing-offering", "plain-offering"])
def offering_enforces(
    request: pytest.FixtureRequest, emulator: Path, tmp_path: Path
) -> Iterator[tuple[bool, Path, StandIn]]:
    """The scenario's allocations, made by the agent; the offering's enforce_qos as given."""
    data = yaml.safe_load(SCENARIO.read_text())
    data["offering"]["plugin_options"]["enforce_qos"] = request.param
    with StandIn(parse_scenario(data)) as server:
        config = agent_config(
            tmp_path / "agent-config.yaml",
            server.api_url,
            cluster_name=CLUSTER,
            qos_enforcement_enabled=True,
        )
        Agent(config, {}).run("order_process")
        yield request.param, config, server


def test_a_waldur_pause_is_expected_where_the_offering_says_it_is_applied(
    offering_enforces: tuple[bool, Path, StandIn],
) -> None:
    enforces, config, standin = offering_enforces
    standin.state.update_resource(standin.state.resource_by_name(FLOOD)["uuid"], paused=True)

    found = diagnose(config, ACCOUNT)

    assert found.returncode == 1, found.stdout + found.stderr
    if enforces:
        assert "[MISMATCH] GrpSubmitJobs: unlimited != 0 (expected)" in found.stdout
        assert "] qos:" not in found.stdout
        assert f"sacctmgr --immediate modify account {WHERE} set GrpSubmitJobs=0" in found.stdout
    else:
        assert "[MISMATCH] qos: normal != blocked (expected)" in found.stdout
        assert "GrpSubmitJobs" not in found.stdout

    fixed = diagnose(config, ACCOUNT, "--fix", "--yes")

    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert submit_limit(ACCOUNT) == ("0" if enforces else "")
    assert qos_of(ACCOUNT) == (("normal", "") if enforces else ("blocked", "blocked"))
