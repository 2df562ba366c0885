"""``waldur_site_diagnose_slurm_account --check-config -c FILE`` through the console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def check_config(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("waldur_site_diagnose_slurm_account")
    return subprocess.run(
        [str(script), "--check-config", "-c", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def example(name: str = "cluster-config.yaml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return data


@pytest.mark.parametrize("name", ["cluster-config.yaml", "emulator-config.yaml"])
def test_the_shipped_examples_pass_without_a_warning(name: str) -> None:
    result = check_config(EXAMPLES / name)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "OK: 0 errors, 0 warnings"
    assert result.stderr == ""


def test_legacy_event_processing_keys_are_named_with_their_replacements(tmp_path: Path) -> None:
    config = example()
    config["event_processing"] = {"enabled": True, "stomp_settings": {"host": "mq", "port": 61613}}
    config["offerings"][0]["observable_object_types"] = ["RESOURCE_PERIODIC_LIMITS_UPDATE"]

    result = check_config(write(tmp_path, config))

    assert result.returncode == 1
    out = result.stdout
    assert "ERROR   event_processing: legacy key, ignored" in out
    assert "stomp_enabled: true, stomp_ws_host, stomp_ws_port, stomp_ws_path" in out
    assert "websocket_use_tls" in out
    assert "ERROR   offerings[0].observable_object_types: legacy key, ignored" in out
    assert "periodic_limits.enabled: true" in out


def test_every_problem_is_listed_with_its_key_path_not_only_the_first(tmp_path: Path) -> None:
    config = example()
    offering = config["offerings"][0]
    offering["backend_settings"]["command_timeout"] = -3
    offering["backend_settings"]["default_account"] = None
    offering["backend_components"]["cpu"] = {"unit_factor": 60}
    offering["backend_components"]["mem"]["unit_factor"] = -1

    result = check_config(write(tmp_path, config))

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    expected = [
        "offerings[0].backend_settings.command_timeout: Input should be greater than 0 (given: -3)",
        "offerings[0].backend_components.cpu.measured_unit: Field required",
        "offerings[0].backend_components.cpu.accounting_type: Field required",
        "offerings[0].backend_components.cpu.label: Field required",
        "offerings[0].backend_settings.default_account_policy: backend_settings."
        "default_account_policy is 'common' but default_account is not set",
        "offerings[0].backend_components.mem.unit_factor: Invalid backend_components.mem."
        "unit_factor -1",
    ]
    for text in expected:
        assert any(text in line for line in lines), f"{text!r} not in:\n{result.stdout}"
    assert "add this key: waldur-site-agent 1.0.7 requires it" in result.stdout
    assert lines[-1] == "INVALID: 6 errors, 0 warnings"


def test_a_multi_line_validation_message_is_printed_whole(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("offerings:\n  - name: [unclosed\n")

    result = check_config(path)

    assert result.returncode == 1
    assert "not valid YAML:" in result.stdout
    assert "line 2, column" in result.stdout  # the parser's position, from a later line


def test_keys_nothing_reads_are_warnings_and_leave_the_exit_status_0(tmp_path: Path) -> None:
    config = example()
    config["offerings"][0]["backend_settings"]["periodic_limits"]["grace_ratio"] = 0.2

    result = check_config(write(tmp_path, config))

    assert result.returncode == 0, result.stdout
    assert (
        "WARNING offerings[0].backend_settings.periodic_limits.grace_ratio: nothing reads this key"
        in result.stdout
    )


def test_periodic_limits_without_stomp_warns_that_no_settings_arrive(tmp_path: Path) -> None:
    config = example()
    config["offerings"][0]["backend_settings"]["periodic_limits"]["enabled"] = True
    config["offerings"][0]["stomp_enabled"] = False

    result = check_config(write(tmp_path, config))

    assert "WARNING offerings[0].stomp_enabled: periodic_limits.enabled is true" in result.stdout


def test_a_backend_timezone_that_differs_from_the_agents_is_an_error(tmp_path: Path) -> None:
    config = example()
    config["timezone"] = "UTC"
    config["offerings"][0]["backend_settings"]["timezone"] = "Europe/Tallinn"

    result = check_config(write(tmp_path, config))

    assert result.returncode == 1
    assert "differs from the agent's timezone 'UTC'" in result.stdout


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = check_config(tmp_path / "nope.yaml")

    assert result.returncode == 1
    assert "cannot read: No such file or directory" in result.stdout


def test_check_config_refuses_the_diagnosis_options(tmp_path: Path) -> None:
    result = check_config(EXAMPLES / "cluster-config.yaml", "--all")

    assert result.returncode == 2
    assert "--check-config takes only -c FILE, not --all" in result.stderr


def test_values_of_the_wrong_type_are_reported_once_and_never_crash_the_check(
    tmp_path: Path,
) -> None:
    config = example()
    components = config["offerings"][0]["backend_components"]
    components["cpu"] = 5
    components["mem"]["limit"] = "abc"

    result = check_config(write(tmp_path, config))

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "ERROR   offerings[0].backend_components.cpu: must be a mapping of keys" in result.stdout
    assert "offerings[0].backend_components.mem.limit: Input should be a valid number" in (
        result.stdout
    )
    assert result.stdout.splitlines()[-1] == "INVALID: 2 errors, 0 warnings"
