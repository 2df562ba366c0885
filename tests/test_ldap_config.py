"""The ``ldap`` block: checked at start-up, errors naming the key, the password never shown."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from waldur_site_agent.common.plugin_schemas import validate_backend_settings_with_plugin_schema

from tests.conftest import COMPONENTS
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmConfigError
from waldur_site_agent_slurm.site.ldap_groups import ProjectGroups

SECRET = "s3cret-Bind-Pa55word"  # noqa: S105 - a test value that must never show


def ldap(**changes: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "uri": "ldaps://ldap.example.org:636",
        "bind_dn": "cn=agent,ou=Services,dc=example,dc=org",
        "bind_password": SECRET,
        "base_dn": "dc=example,dc=org",
    }
    block.update(changes)
    return {k: v for k, v in block.items() if v is not None}


def load(block: dict[str, Any]) -> Any:
    return load_settings({"ldap": block}, {})


def refused(block: dict[str, Any]) -> str:
    with pytest.raises(SlurmConfigError) as err:
        load(block)
    text = str(err.value)
    assert SECRET not in text
    return text


def test_a_full_block_is_loaded_with_the_defaults_of_the_ldap_package() -> None:
    settings = load(ldap()).ldap
    assert settings.uri == "ldaps://ldap.example.org:636"
    assert settings.groups_dn == "ou=Groups,dc=example,dc=org"
    assert settings.gid_range == (10000, 65000)
    assert settings.object_classes == ("posixGroup", "top")
    assert settings.tls is True
    assert settings.password.get_secret_value() == SECRET
    assert settings.client_settings()["bind_password"] == SECRET


def test_the_password_is_not_in_the_settings_repr_nor_the_diagnostics_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A closed loopback port: the diagnostics' directory check fails at once.
    block = ldap(uri="ldaps://127.0.0.1:1")
    backend = SlurmBackend({"ldap": block}, {k: dict(v) for k, v in COMPONENTS.items()})
    assert SECRET not in repr(backend.settings)
    backend.client.clusters = set  # type: ignore[method-assign]
    backend._configuration_problems = lambda: []  # type: ignore[method-assign]
    backend.diagnostics()  # logs the settings whole, then fails to reach the directory
    assert "SLURM backend settings" in caplog.text
    assert "LDAP server ldaps://127.0.0.1:1 cannot be reached" in caplog.text
    assert SECRET not in caplog.text


def test_the_password_file_is_read_at_start_up(tmp_path: Path) -> None:
    secret_file = tmp_path / "bind-password"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    settings = load(ldap(bind_password=None, bind_password_file=str(secret_file))).ldap
    assert settings.password.get_secret_value() == SECRET


def test_a_missing_password_file_is_named_without_its_content(tmp_path: Path) -> None:
    text = refused(ldap(bind_password=None, bind_password_file=str(tmp_path / "nope")))
    assert "backend_settings.ldap.bind_password_file" in text
    assert "nope" in text


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in refused(ldap(bind_password=None, bind_password_file=str(empty)))


def test_a_password_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file = tmp_path / "bind-password"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)
    load(ldap(bind_password=None, bind_password_file=str(secret_file)))
    assert "can be read by other users" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("block", "named"),
    [
        (ldap(uri=None), "backend_settings.ldap.uri is not set"),
        (ldap(uri="http://ldap.example.org"), "backend_settings.ldap.uri"),
        (ldap(uri="ldap://ldap.example.org:99999"), "backend_settings.ldap.uri"),
        (ldap(uri="ldap://ldap.example.org/dc=x?cn"), "only scheme, host and port"),
        (ldap(bind_dn=None), "backend_settings.ldap.bind_dn is not set"),
        (ldap(bind_dn="admin"), "backend_settings.ldap.bind_dn"),
        (ldap(base_dn=None), "backend_settings.ldap.base_dn is not set"),
        (ldap(groups_ou="Groups"), "backend_settings.ldap.groups_ou"),
        (ldap(bind_password=None), "neither is set"),
        (ldap(bind_password_file="/etc/x"), "both are set"),  # noqa: S106 - a path
        (ldap(bind_password=""), "backend_settings.ldap.bind_password: must not be empty"),
        (ldap(use_starttls=True), "backend_settings.ldap.use_starttls is set but"),
        (ldap(tls_ca_file="/nonexistent/ca.pem"), "backend_settings.ldap.tls_ca_file"),
        (ldap(gid_range_start=70000), "gid_range_start (70000) is above"),
        (ldap(gid_range_end=0), "backend_settings.ldap.gid_range_end: 0"),
        (ldap(project_group_prefix="Grp "), "backend_settings.ldap.project_group_prefix"),
        (ldap(project_group_object_classes=["top"]), "must include posixGroup"),
        (ldap(project_group_object_classes=["posixGroup", "a b"]), "not an object class"),
    ],
)
def test_a_bad_block_stops_start_up_naming_the_key(block: dict[str, Any], named: str) -> None:
    assert named in refused(block)


def test_a_wrongly_typed_key_is_named_by_the_schema_without_the_password() -> None:
    with pytest.raises(SlurmConfigError) as err:
        load(ldap(timeout="soon"))
    assert "backend_settings.ldap.timeout" in str(err.value)
    assert SECRET not in str(err.value)


def test_the_frameworks_failed_validation_warning_does_not_quote_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The framework logs a failed validation whole; pydantic would quote the inputs.
    caplog.set_level(logging.WARNING)
    for bad in (ldap(bind_password={"nested": SECRET}), {**ldap(), "timeout": [SECRET]}):
        validate_backend_settings_with_plugin_schema("slurm", {"ldap": bad})
    assert "Plugin schema validation failed" in caplog.text
    assert "ldap.bind_password" in caplog.text
    assert SECRET not in caplog.text


def test_the_framework_hands_the_password_on_as_a_plain_string() -> None:
    # The LDAP username backend reads the same block from the validated settings.
    validated = validate_backend_settings_with_plugin_schema("slurm", {"ldap": ldap()})
    assert validated["ldap"]["bind_password"] == SECRET


def test_unknown_keys_are_warned_about_but_the_username_backends_keys_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    load(ldap(username_format="waldur_username", uid_range_start=20000, colour="blue"))
    assert "backend_settings.ldap.colour" in caplog.text
    assert "username_format" not in caplog.text
    assert "uid_range_start" not in caplog.text


@pytest.mark.parametrize("block", [{}, {"enabled": False, "uri": "not a uri"}])
def test_an_empty_or_disabled_block_turns_project_groups_off(block: dict[str, Any]) -> None:
    assert load(block).ldap is None


def test_without_the_ldap_extra_start_up_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "waldur_site_agent_ldap.client", None)
    text = refused(ldap())
    assert "pip install 'waldur-site-agent-slurm[ldap]'" in text


def test_without_an_ldap_block_there_is_no_project_gid() -> None:
    backend = SlurmBackend({}, {k: dict(v) for k, v in COMPONENTS.items()})
    assert backend.project_groups is None
    assert backend.project_group_gid("hpc_proj-1") is None


def groups(**changes: Any) -> ProjectGroups:
    settings = load(ldap(**changes)).ldap
    return ProjectGroups(settings, directory=lambda _: pytest.fail("no directory call expected"))


@pytest.mark.parametrize(
    ("prefix", "project", "group"),
    [("", "hpc_proj-1", "hpc_proj-1"), ("grp_", "9lives", "grp_9lives")],
)
def test_the_group_is_named_after_the_project_account(
    prefix: str, project: str, group: str
) -> None:
    assert groups(project_group_prefix=prefix).group_name(project) == group


@pytest.mark.parametrize(
    "project",
    ["9lives", "proj.one", "p" * 33, "proj,cn=admin", "proj)(cn=*", "Proj"],
)
def test_a_project_account_that_is_no_posix_group_name_is_refused_before_ldap(
    project: str,
) -> None:
    with pytest.raises(InvalidValueError):
        groups().group_name(project)
