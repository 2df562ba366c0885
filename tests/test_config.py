"""Configuration: every key of waldur-site-agent-slurm 1.0.7 loads, bad values stop start-up."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from waldur_site_agent.backend.exceptions import BackendError
from waldur_site_agent.common import utils
from waldur_site_agent.common.plugin_schemas import (
    validate_backend_settings_with_plugin_schema,
    validate_component_with_plugin_schema,
)

from tests.conftest import COMPONENTS
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import SlurmConfigError

UNUSED = "Ignoring configuration keys this plugin does not use"

# A site's configuration for 1.0.7: every key of its backend_settings, the features this
# release does not have switched off, and the legacy and unknown keys sites still carry.
PEER_SETTINGS: dict[str, Any] = {
    "default_account": "noaccess",
    "default_account_policy": "common",
    "customer_prefix": "hpc_",
    "project_prefix": "hpc_",
    "allocation_prefix": "hpc_",
    "cluster_name": "hpc",
    "slurm_bin_path": "/usr/bin",
    "soft_delete": False,
    "execution_mode": "cli",
    "rest_api": {
        "url": "http://127.0.0.1:6820",
        "api_version": "v0.0.41",
        "username": "slurm",
        "token_file": "/etc/slurm/jwt",
        "token_env": "SLURM_JWT",
        "verify_ssl": False,
        "timeout": 10,
        "pool_size": 4,
    },
    "default_partition": "batch",
    "enforce_offering_partitions": True,
    "qos_default": "normal",
    "qos_downscaled": "slowdown",
    "qos_paused": "blocked",
    "qos_enforcement_enabled": True,
    "enforce_offering_qos": None,
    "qos_management": {
        "enabled": False,
        "flags": ["DenyOnLimit"],
        "grp_tres": {"cpu": 64},
        "max_jobs": 10,
        "max_submit": 20,
        "max_wall": "1-00:00:00",
        "min_tres_per_job": {"cpu": 1},
        "additional_qos": ["debug"],
        "skip_qos_swap": False,
        "apply_limits_to_qos": False,
        "naming": "per-account",
    },
    "project_directory": {
        "enabled": False,
        "base_path": "/valhalla/projects",
        "owner": "nobody",
        "permissions": "770",
        "set_gid": True,
        "set_acl": True,
        "lustre_quota": {"mount_point": "/valhalla", "block_softlimit": "1T", "pool": "ost"},
    },
    "ldap": {"enabled": False, "uri": "ldaps://ldap.example.org"},
    "periodic_limits": {
        "enabled": False,
        "emulator_mode": False,
        "limit_type": "GrpTRESMins",
        "grace_ratio": 0.2,
        "raw_usage_reset": True,
        "carryover_enabled": True,
    },
    "enable_user_homedir_account_creation": True,
    "default_homedir_umask": "0077",
    "homedir_base_path": "/home",
    "homedir_quota": {"provider": "xfs", "mount_point": "/home", "project_id_base": 1000},
    "legacy_top_level": "x",
}
PEER_UNKNOWN = [
    "backend_settings.legacy_top_level",
    "backend_settings.rest_api.pool_size",
    "backend_settings.qos_management.naming",
    "backend_settings.project_directory.lustre_quota.pool",
    "backend_settings.periodic_limits.grace_ratio",
    "backend_settings.periodic_limits.raw_usage_reset",
    "backend_settings.periodic_limits.carryover_enabled",
    "backend_settings.homedir_quota.project_id_base",
]
PEER_COMPONENTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "measured_unit": "k-Hours",
        "unit_factor": 60000,
        "accounting_type": "limit",
        "label": "CPU",
        "target_components": {"cpu": {"factor": 1.0}},
        "legacy_weight": 2,
    },
}


def peer_settings(**changes: Any) -> dict[str, Any]:
    settings = copy.deepcopy(PEER_SETTINGS)
    settings.update(changes)
    return settings


class Logs:
    """What the framework's logger printed: through logging (caplog) until
    ``load_configuration`` points it at stdout (capsys)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
        self.caplog, self.capsys, self.out = caplog, capsys, ""

    def text(self) -> str:
        self.out += self.capsys.readouterr().out
        return self.caplog.text + self.out

    def unused(self) -> list[list[str]]:
        """Every unused-keys warning, as its sorted list of key paths."""
        found = re.findall(UNUSED + r": ([^'\"]+)", self.text())
        return [sorted(keys.split(", ")) for keys in found]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Logs:
    caplog.set_level(logging.WARNING)
    return Logs(caplog, capsys)


ALL_UNKNOWN = sorted([*PEER_UNKNOWN, "backend_components.cpu.legacy_weight"])


def test_legacy_keys_nested_in_periodic_limits_or_homedir_quota_no_longer_recurse(
    logs: Logs,
) -> None:
    settings = {
        "periodic_limits": {"enabled": False, "grace_ratio": 0.2, "raw_usage_reset": True},
        "homedir_quota": {"provider": "xfs", "unknown_quota_key": 1},
    }
    backend = SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
    assert backend.settings.periodic.enabled is False
    assert logs.unused() == [
        [
            "backend_settings.homedir_quota.unknown_quota_key",
            "backend_settings.periodic_limits.grace_ratio",
            "backend_settings.periodic_limits.raw_usage_reset",
        ]
    ]


def test_every_key_of_a_1_0_7_configuration_loads_with_one_warning_naming_unused_keys(
    logs: Logs,
) -> None:
    settings = load_settings(peer_settings(), copy.deepcopy(PEER_COMPONENTS))
    assert logs.unused() == [ALL_UNKNOWN]
    assert settings.execution_mode == "cli"
    assert settings.rest_api is not None
    assert (settings.rest_api.url, settings.rest_api.timeout) == ("http://127.0.0.1:6820", 10)
    assert settings.qos_enforcement_enabled is True
    assert settings.enforce_offering_qos is None
    assert settings.enforce_offering_partitions is True
    assert settings.qos_management is not None
    assert settings.qos_management.max_jobs == 10
    assert settings.project_directory is not None
    assert settings.project_directory.base_path == "/valhalla/projects"
    assert settings.ldap is None  # enabled: false
    assert settings.homedir_base_path == "/home"
    assert settings.default_partition == "batch"


def test_configuration_without_unused_keys_warns_about_nothing(logs: Logs) -> None:
    load_settings({"periodic_limits": {"enabled": False}}, {"cpu": {"unit_factor": 60}})
    assert logs.unused() == []


def test_the_frameworks_schema_validation_accepts_a_1_0_7_configuration(logs: Logs) -> None:
    """The framework validates with our schema first and would only log a failure."""
    validated = validate_backend_settings_with_plugin_schema("slurm", peer_settings())
    component = validate_component_with_plugin_schema(
        "slurm", "cpu", copy.deepcopy(PEER_COMPONENTS["cpu"])
    )
    assert "validation failed" not in logs.text()
    assert validated["periodic_limits"]["grace_ratio"] == 0.2
    assert validated["homedir_quota"]["project_id_base"] == 1000
    assert component["legacy_weight"] == 2
    load_settings(validated, {"cpu": component})
    assert logs.unused() == [ALL_UNKNOWN]


def test_the_framework_builds_the_backend_from_a_1_0_7_configuration_file(
    tmp_path: Path, logs: Logs
) -> None:
    offering = {
        "name": "hpc",
        "waldur_api_url": "http://127.0.0.1:1/api/",
        "waldur_api_token": "token",
        "waldur_offering_uuid": "d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50",
        "backend_type": "slurm",
        "order_processing_backend": "slurm",
        "membership_sync_backend": "slurm",
        "reporting_backend": "slurm",
        "backend_settings": peer_settings(),
        "backend_components": copy.deepcopy(PEER_COMPONENTS),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"offerings": [offering]}))
    config = utils.load_configuration(str(path), "test")
    backend, _version = utils.get_backend_for_offering(config.offerings[0], "reporting_backend")
    assert "validation failed" not in logs.text()
    assert isinstance(backend, SlurmBackend)
    assert backend.settings.enforce_offering_partitions is True
    assert logs.unused() == [ALL_UNKNOWN]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"execution_mode": "rset"}, r"backend_settings\.execution_mode: .*'cli' or 'rest'"),
        ({"execution_mode": "rest"}, r"execution_mode is 'rest' but rest_api\.url is not set"),
        (
            {"execution_mode": "rest", "rest_api": {"api_version": "v0.0.41"}},
            r"execution_mode is 'rest' but rest_api\.url is not set",
        ),
        (
            {"execution_mode": "rest", "rest_api": {"url": "http://127.0.0.1:6820"}},
            "execution_mode is 'rest' but cluster_name is not set",
        ),
        (
            {"qos_enforcement_enabled": True, "enforce_offering_qos": True, "qos_paused": "hold"},
            r"qos_enforcement_enabled with enforce_offering_qos .* backend_settings\.qos_paused",
        ),
        (
            {
                "qos_enforcement_enabled": True,
                "enforce_offering_qos": True,
                "qos_downscaled": "slow",
            },
            r"backend_settings\.qos_downscaled would never be used",
        ),
        (
            {"qos_management": {"skip_qos_swap": True}, "qos_paused": "hold"},
            r"qos_management\.skip_qos_swap .* backend_settings\.qos_paused cannot be set",
        ),
        (
            {"qos_management": {"skip_qos_swap": True}, "qos_downscaled": "slow"},
            r"backend_settings\.qos_downscaled cannot be set",
        ),
        (
            {"qos_management": {"skip_qos_swap": True}, "qos_default": "normal"},
            r"backend_settings\.qos_default cannot be set",
        ),
        (
            {"qos_management": {"apply_limits_to_qos": True, "skip_qos_swap": True}},
            r"apply_limits_to_qos .* needs backend_settings\.qos_management\.enabled: true: ",
        ),
        (
            {"qos_management": {"apply_limits_to_qos": True, "enabled": True}},
            r"qos_management\.skip_qos_swap: true",
        ),
        (
            {"qos_management": {"enabled": True}, "qos_default": "normal"},
            r"qos_management\.enabled without skip_qos_swap .* backend_settings\.qos_default",
        ),
        ({"default_account_policy": "everyone"}, r"^Invalid default_account_policy 'everyone'"),
        ({"rest_api": {"timeout": 0}}, r"backend_settings\.rest_api\.timeout"),
    ],
)
def test_invalid_values_stop_start_up_naming_the_key(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(SlurmConfigError, match=message):
        SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})


def test_unknown_default_account_policy_is_a_backend_error_listing_the_policies() -> None:
    with pytest.raises(BackendError) as err:
        load_settings({"default_account_policy": "personal"}, {})
    assert str(err.value).startswith("Invalid default_account_policy 'personal'")
    assert "'common', 'individual', 'none'" in str(err.value)


def test_forced_qos_enforcement_without_qos_swap_keys_loads() -> None:
    settings = load_settings({"qos_enforcement_enabled": True, "enforce_offering_qos": True}, {})
    assert (settings.qos_enforcement_enabled, settings.enforce_offering_qos) == (True, True)


def test_offering_dependent_qos_enforcement_keeps_the_qos_levels() -> None:
    settings = load_settings({"qos_enforcement_enabled": True, "qos_paused": "hold"}, {})
    assert settings.qos_paused == "hold"


def test_qos_management_in_rest_mode_loads() -> None:
    rest = {
        "execution_mode": "rest",
        "rest_api": {"url": "http://127.0.0.1:6820", "username": "root", "token_env": "T"},
        "cluster_name": "hpc",
        "qos_management": {"enabled": True, "skip_qos_swap": True, "apply_limits_to_qos": True},
    }
    settings = load_settings(rest, {})
    assert (settings.execution_mode, settings.managed_qos is not None) == ("rest", True)


@pytest.mark.parametrize("version", ["v0.0.40", "v0.0.41"])
def test_limits_on_the_qos_with_a_data_parser_without_them_is_refused(version: str) -> None:
    rest = {
        "execution_mode": "rest",
        "rest_api": {"url": "http://127.0.0.1:6820", "api_version": version},
        "cluster_name": "hpc",
        "qos_management": {"enabled": True, "skip_qos_swap": True, "apply_limits_to_qos": True},
    }
    with pytest.raises(SlurmConfigError, match=f"data parser {version}"):
        load_settings(rest, {})
    rest["qos_management"]["apply_limits_to_qos"] = False  # type: ignore[index]
    assert load_settings(rest, {}).managed_qos is not None


@pytest.mark.parametrize(
    "settings",
    [
        {"execution_mode": "cli"},
        {"qos_management": {"enabled": False, "max_jobs": 4}},
        {"project_directory": {"enabled": False, "base_path": "/projects"}},
        {"ldap": {}},
        {"ldap": {"enabled": False, "uri": "ldaps://ldap.example.org"}},
    ],
)
def test_disabled_feature_blocks_load(settings: dict[str, Any]) -> None:
    assert load_settings(settings, {}).execution_mode == "cli"


@pytest.mark.parametrize(
    ("settings", "root"),
    [
        ({}, "root"),
        ({"default_account": "noaccess"}, "noaccess"),
        ({"default_account": "noaccess", "root_account": "waldur"}, "waldur"),
        ({"default_account": "NoAccess", "default_account_policy": "individual"}, "noaccess"),
    ],
)
def test_root_account_defaults_to_the_default_account_else_root(
    settings: dict[str, Any], root: str
) -> None:
    assert load_settings(settings, {}).root_account == root
