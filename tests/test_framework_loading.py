"""The real framework finds and builds our backend from the installed entry points."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from waldur_site_agent.common import utils
from waldur_site_agent.common.plugin_schemas import (
    get_plugin_backend_settings_schemas,
    get_plugin_component_schemas,
)

from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.config import SlurmBackendSettingsSchema, SlurmComponentSchema
from waldur_site_agent_slurm.errors import SlurmConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_entry_points_register_backend_and_schemas() -> None:
    assert utils.BACKENDS["slurm"][:2] == (SlurmBackend, "waldur-site-agent-slurm")
    assert get_plugin_backend_settings_schemas()["slurm"] is SlurmBackendSettingsSchema
    assert get_plugin_component_schemas()["slurm"] is SlurmComponentSchema


@pytest.mark.parametrize("name", ["emulator-config.yaml", "cluster-config.yaml"])
def test_framework_builds_backend_from_example_config_for_every_mode(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        config = utils.load_configuration(str(EXAMPLES / name), "test")
    assert "schema validation failed" not in caplog.text
    offering = config.offerings[0]
    for key in ("order_processing_backend", "membership_sync_backend", "reporting_backend"):
        backend, _version = utils.get_backend_for_offering(offering, key)
        assert isinstance(backend, SlurmBackend)
        assert backend.backend_type == "slurm"


def test_invalid_setting_stops_the_backend_naming_key_and_allowed_values(tmp_path: Path) -> None:
    text = (
        (EXAMPLES / "emulator-config.yaml")
        .read_text()
        .replace("default_account_policy: individual", "default_account_policy: personal")
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = utils.load_configuration(str(path), "test")
    with pytest.raises(SlurmConfigError) as err:
        utils.get_backend_for_offering(config.offerings[0], "reporting_backend")
    assert "backend_settings.default_account_policy" in str(err.value)
    assert "'common', 'individual', 'none'" in str(err.value)


def test_agent_cli_discovers_the_plugin_with_the_example_config(tmp_path: Path) -> None:
    """The real waldur_site_agent process starts with our config and sees the plugin.

    No Waldur listens at the example's URL, so the agent stops after start-up; what it
    logs before that shows that the installed entry points were found.
    """
    env = {
        **os.environ,
        "SLURM_EMULATOR_STATE_FILE": str(tmp_path / "state.json"),
        "SLURM_EMULATOR_TIME_FILE": str(tmp_path / "time.json"),
    }
    agent = Path(sys.executable).parent / "waldur_site_agent"
    proc = subprocess.Popen(
        [str(agent), "-m", "report", "-c", str(EXAMPLES / "emulator-config.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "Running agent in report mode" in line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=10)
    text = "".join(seen)
    assert "waldur-site-agent-slurm=" in text
    assert "validation failed" not in text
