"""Domain tests: the project_directory block, the plan of changes and the create flow."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import COMPONENTS, make_backend
from tests.fakes import FakeRunner, assoc_lines
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmConfigError
from waldur_site_agent_slurm.site import projectdirs
from waldur_site_agent_slurm.site.projectdirs import (
    Current,
    Layout,
    LustreQuota,
    ProjectDirectories,
    ProjectDirectoryError,
)

SI_DELETE = ["sacctmgr", "--immediate", "delete", "account"]
ACL = ("user::rwx", "group::rwx", "other::---")


def layout_of(**block: Any) -> Layout:
    settings = load_settings({"project_directory": {"enabled": True, **block}}, {})
    assert settings.project_directory_layout is not None
    return settings.project_directory_layout


def config_error(**block: Any) -> str:
    with pytest.raises(SlurmConfigError) as err:
        layout_of(**block)
    return str(err.value)


# ---- configuration ------------------------------------------------------------------


def test_defaults_are_those_of_the_spec() -> None:
    layout = layout_of()
    assert layout.base_path == Path("/valhalla/projects")
    assert layout.owner == "nobody"
    assert layout.mode == 0o2770  # 770 plus setgid
    assert layout.set_acl is True
    assert layout.quota is None


def test_a_disabled_block_is_not_checked() -> None:
    settings = load_settings({"project_directory": {"enabled": False, "base_path": "rel"}}, {})
    assert settings.project_directory_layout is None


@pytest.mark.parametrize(
    ("value", "mode"), [(770, 0o770), ("0750", 0o750), ("2775", 0o2775), ("700", 0o700)]
)
def test_permissions_are_octal_digits_quoted_or_not(value: object, mode: int) -> None:
    assert layout_of(permissions=value, set_gid=False).mode == mode


@pytest.mark.parametrize("value", ["rwxrwx---", "78", "0o770", "77777", "", -770, True])
def test_permissions_that_are_no_octal_mode_stop_start_up(value: object) -> None:
    text = config_error(permissions=value)
    assert "backend_settings.project_directory.permissions" in text
    assert "octal" in text


@pytest.mark.parametrize("value", ["projects", "./projects", "", "/valhalla/../etc", "/", "//"])
def test_a_base_path_that_is_not_absolute_and_plain_stops_start_up(value: str) -> None:
    assert "backend_settings.project_directory.base_path" in config_error(base_path=value)


def test_an_owner_that_is_no_user_name_stops_start_up() -> None:
    assert "backend_settings.project_directory.owner" in config_error(owner="root;id")


def test_quota_limits_are_passed_as_configured_and_unset_ones_as_no_limit() -> None:
    quota = layout_of(
        lustre_quota={"block_softlimit": "900G", "block_hardlimit": "1T", "inode_hardlimit": 10}
    ).quota
    assert quota == LustreQuota("/valhalla", "900G", "1T", 0, 10)


@pytest.mark.parametrize(
    ("quota", "key"),
    [
        ({"block_softlimit": -1}, "lustre_quota.block_softlimit"),
        ({"block_hardlimit": "-5G"}, "lustre_quota.block_hardlimit"),
        ({"block_hardlimit": "5 G"}, "lustre_quota.block_hardlimit"),
        ({"inode_softlimit": -3}, "lustre_quota.inode_softlimit"),
        ({"mount_point": "valhalla"}, "lustre_quota.mount_point"),
    ],
)
def test_a_negative_or_malformed_quota_stops_start_up(quota: dict[str, Any], key: str) -> None:
    assert f"backend_settings.project_directory.{key}" in config_error(lustre_quota=quota)


def test_a_soft_limit_above_the_hard_limit_names_both_keys() -> None:
    text = config_error(lustre_quota={"block_softlimit": "2T", "block_hardlimit": "1500G"})
    assert "lustre_quota.block_softlimit" in text
    assert "lustre_quota.block_hardlimit" in text


def test_a_base_path_outside_the_lustre_mount_names_both_keys() -> None:
    text = config_error(base_path="/scratch/projects", lustre_quota={"mount_point": "/valhalla"})
    assert "project_directory.base_path" in text
    assert "lustre_quota.mount_point" in text


def test_an_enabled_block_no_longer_stops_start_up() -> None:
    backend = SlurmBackend(
        {"project_directory": {"enabled": True}}, {k: dict(v) for k, v in COMPONENTS.items()}
    )
    assert backend.project_directories is not None


# ---- paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["..", "../etc", "a/b", "/etc", ".hidden", "", "P_upper"])
def test_a_project_name_that_could_leave_base_path_is_refused(project: str) -> None:
    with pytest.raises(InvalidValueError):
        layout_of().path(project)


def test_the_directory_is_the_project_account_below_base_path() -> None:
    assert layout_of(base_path="/srv/p/").path("p_hydro") == Path("/srv/p/p_hydro")


# ---- the plan ------------------------------------------------------------------------


def directories(layout: Layout, runner: FakeRunner | None = None) -> ProjectDirectories:
    return ProjectDirectories(layout, runner or FakeRunner(), lambda project: 5000)


def test_a_missing_directory_is_made_closed_then_owned_moded_and_given_acls() -> None:
    layout = layout_of(base_path="/srv/p")
    actions = directories(layout).plan(Path("/srv/p/p_x"), Current(False), 65534, 5000)
    assert [a.shown for a in actions] == [
        "mkdir -m 0700 /srv/p/p_x",
        "chown 65534:5000 /srv/p/p_x",
        "chmod 2770 /srv/p/p_x",
        "setfacl --default --modify user::rwx,group::rwx,other::--- -- /srv/p/p_x",
    ]


def test_a_directory_as_configured_needs_no_change() -> None:
    layout = layout_of(base_path="/srv/p")
    current = Current(True, 65534, 5000, 0o2770, frozenset({*ACL, "user:alice:r-x", "mask::rwx"}))
    assert directories(layout).plan(Path("/srv/p/p_x"), current, 65534, 5000) == []


def test_an_existing_directory_gets_only_what_differs() -> None:
    layout = layout_of(base_path="/srv/p", permissions="750")
    current = Current(True, 65534, 100, 0o2750, frozenset(ACL))
    actions = directories(layout).plan(Path("/srv/p/p_x"), current, 65534, 5000)
    assert [(a.kind, a.reason) for a in actions] == [
        ("chown", "owner was 65534:100"),
        ("command", "default ACL differs"),
    ]
    assert actions[1].argv[3] == "user::rwx,group::r-x,other::---"


def test_without_set_gid_and_set_acl_the_mode_is_exact_and_no_acl_is_written() -> None:
    layout = layout_of(base_path="/srv/p", set_gid=False, set_acl=False)
    current = Current(True, 65534, 5000, 0o2770)
    actions = directories(layout).plan(Path("/srv/p/p_x"), current, 65534, 5000)
    assert [a.shown for a in actions] == ["chmod 0770 /srv/p/p_x"]


def test_lustre_tags_the_tree_with_the_gid_then_sets_the_project_quota() -> None:
    layout = layout_of(
        base_path="/lustre/projects",
        lustre_quota={
            "mount_point": "/lustre",
            "block_softlimit": "1T",
            "block_hardlimit": "2T",
            "inode_softlimit": 1000,
            "inode_hardlimit": 2000,
        },
    )
    current = Current(True, 65534, 5000, 0o2770, frozenset(ACL))
    actions = directories(layout).plan(Path("/lustre/projects/p_x"), current, 65534, 5000)
    assert [list(a.argv) for a in actions] == [
        ["lfs", "project", "-p", "5000", "-r", "-s", "/lustre/projects/p_x"],
        ["lfs", "setquota", "-p", "5000", "-b", "1T", "-B", "2T", "-i", "1000", "-I", "2000",
         "/lustre"],
    ]  # fmt: skip


@pytest.mark.parametrize("gid", [None, 0, -1, 2**32, True])
def test_a_project_without_a_usable_group_is_refused(gid: int | None) -> None:
    dirs = ProjectDirectories(layout_of(), FakeRunner(), lambda project: gid)
    with pytest.raises(ProjectDirectoryError):
        dirs.gid("p_x")


def test_the_default_group_source_is_the_group_named_after_the_project() -> None:
    assert projectdirs.named_group("root") == 0
    assert projectdirs.named_group("p_no-such-group-here") is None


# ---- the create flow -----------------------------------------------------------------


def resource() -> Resource:
    return Resource.from_dict(
        {
            "uuid": "3f2b0c7e1d2a4b6c9f000123456789ab",
            "name": "Flood",
            "slug": "flood",
            "customer_slug": "hydro",
            "customer_name": "Hydro",
            "project_slug": "sim",
            "project_name": "Sim",
        }
    )


def test_a_symlinked_project_directory_stops_the_create_before_any_slurm_command(
    runner: FakeRunner, tmp_path: Path
) -> None:
    base = tmp_path / "projects"
    base.mkdir()
    (base / "p_sim").symlink_to(tmp_path)
    backend = make_backend(
        runner,
        project_prefix="p_",
        project_directory={"enabled": True, "base_path": str(base)},
    )
    with pytest.raises(ProjectDirectoryError, match="symlink"):
        backend.create_resource_with_id(resource(), "a_flood")
    assert runner.calls == []


def test_a_missing_base_path_stops_the_create_and_is_not_made(
    runner: FakeRunner, tmp_path: Path
) -> None:
    base = tmp_path / "unmounted"
    backend = make_backend(runner, project_directory={"enabled": True, "base_path": str(base)})
    with pytest.raises(BackendError, match="base_path"):
        backend.create_resource_with_id(resource(), "a_flood")
    assert runner.calls == []
    assert not base.exists()


def test_terminating_the_last_allocation_keeps_the_directory_and_says_so(
    runner: FakeRunner,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    base = tmp_path / "projects"
    (base / "p_sim").mkdir(parents=True)
    (base / "p_sim" / "results.dat").write_text("data")
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|", "p_sim|||root|1||||normal|", "a_flood|||p_sim|1||||normal|"
    )
    backend = make_backend(
        runner, project_prefix="p_", project_directory={"enabled": True, "base_path": str(base)}
    )
    original = backend.client.remove_account

    def remove_account(name: str) -> None:
        original(name)
        if name == "a_flood":  # the next read shows the project without allocations
            runner.outputs["show assoc"] = assoc_lines(
                "root||||1||||normal|", "p_sim|||root|1||||normal|"
            )

    backend.client.remove_account = remove_account  # type: ignore[method-assign]
    gone = Resource.from_dict({**resource().to_dict(), "backend_id": "a_flood"})
    backend.delete_resource(gone, project_slug="sim")

    assert [*SI_DELETE, "where", "name=p_sim"] in runner.writes
    assert (base / "p_sim" / "results.dat").read_text() == "data"
    text = caplog.text + capsys.readouterr().out
    assert f"its directory {base / 'p_sim'} and its data are kept" in text


def test_diagnostics_name_a_missing_base_path_and_an_unknown_owner(tmp_path: Path) -> None:
    layout = layout_of(base_path=str(tmp_path / "unmounted"), owner="no-such-user-here")
    problems = directories(layout).problems()
    assert problems == [
        f"backend_settings.project_directory.base_path {tmp_path / 'unmounted'} does not exist",
        "backend_settings.project_directory.owner 'no-such-user-here' is not a user on this host",
    ]
    assert directories(layout_of(base_path=str(tmp_path))).problems() == []
