"""The real framework's order cycle, in-process, against the stand-in and slurm-emulator.

This is the proof the stand-in satisfies waldur-site-agent 1.0.7: the prologue
(identity, service, processor), the order listing, approval, account creation through
the SLURM plugin on the emulator, ``set_backend_id``/``set_limits`` and
``set_state_done`` all go through the framework's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from waldur_site_agent.common import utils
from waldur_site_agent.polling_processing import agent_order_process

from tests.standin.conftest import EXAMPLE_CONFIG, SCENARIO
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

pytestmark = pytest.mark.emulator


@pytest.fixture
def emulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SLURM_EMULATOR_STATE_FILE", str(tmp_path / "emulator-state.json"))
    monkeypatch.setenv("SLURM_EMULATOR_TIME_FILE", str(tmp_path / "emulator-time.json"))
    yield tmp_path


def test_the_framework_order_cycle_completes_both_demo_orders(emulated: Path) -> None:
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    assert config["offerings"][0]["backend_settings"]["emulator_mode"] is True

    with StandIn(load_scenario(SCENARIO)) as standin:
        config["offerings"][0]["waldur_api_url"] = standin.api_url
        path = emulated / "agent-config.yaml"
        path.write_text(yaml.safe_dump(config))
        conf = utils.load_configuration(str(path), "order_process")
        conf.waldur_site_agent_mode = "order_process"

        agent_order_process._process_offerings(conf, {})

        orders = standin.state.orders()
        flood = standin.state.resource_by_name("Flood model 2026")
        sky = standin.state.resource_by_name("Sky survey")
        refused = [r for r in standin.state.requests() if r["status"] >= 400]
        processors = standin.state.writes(path_contains="register_processor")

    assert [o["state"] for o in orders] == ["done", "done"]
    assert (flood["state"], flood["backend_id"]) == ("OK", "a_flood-model")
    assert (sky["state"], sky["backend_id"]) == ("OK", "a_sky-survey")
    assert flood["limits"] == {"cpu": 100, "mem": 200, "gpu": 10}
    assert refused == []
    assert processors[0]["body"]["backend_type"] == "waldur_site_agent_slurm.backend.SlurmBackend"
    assert processors[0]["user_agent"].startswith("waldur-site-agent-order_process")
