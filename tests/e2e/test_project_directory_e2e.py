"""project_directory end to end: the real agent makes, keeps and refuses project directories.

The host's groups are real (``groupadd``, removed afterwards), the directories are made
on the real file system under a temporary base path, and ``lfs`` is the stand-in that
records its argv (Lustre is not available here).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows
from tests.site.conftest import LfsStandIn
from waldur_site_agent_slurm.devtools.standin import StandIn


@pytest.fixture
def project_prefix() -> Iterator[str]:
    """A project prefix of this test only; its ``hydro-sim`` project gets a real group."""
    if os.geteuid() != 0:
        pytest.skip("groupadd needs root")
    prefix = f"p{uuid.uuid4().hex[:6]}_"
    group = f"{prefix}hydro-sim"
    subprocess.run(["groupadd", group], check=True)
    yield prefix
    subprocess.run(["groupdel", group], check=True)


def test_orders_make_the_project_directory_and_terminate_keeps_it(
    standin: StandIn, emulator: Path, tmp_path: Path, project_prefix: str
) -> None:
    base = tmp_path / "projects"
    base.mkdir()
    lfs = LfsStandIn(tmp_path / "bin")
    config = agent_config(
        tmp_path / "agent.yaml",
        standin.api_url,
        project_prefix=project_prefix,
        project_directory={
            "enabled": True,
            "base_path": str(base),
            "owner": "nobody",
            "permissions": "770",
            "lustre_quota": {
                "mount_point": str(tmp_path),
                "block_softlimit": "900G",
                "block_hardlimit": "1T",
                "inode_softlimit": 90000,
                "inode_hardlimit": 100000,
            },
        },
    )
    agent = Agent(config, {"PATH": f"{lfs.dir}:{os.environ['PATH']}"})
    hydro = f"{project_prefix}hydro-sim"
    gid = grp.getgrnam(hydro).gr_gid

    run = agent.run("order_process", expect_ok=False)

    # Flood's project has a group: its directory is made as configured.
    assert standin.state.resource_by_name(FLOOD)["state"] == "OK"
    info = os.stat(base / hydro)
    assert (info.st_uid, info.st_gid) == (pwd.getpwnam("nobody").pw_uid, gid)
    assert stat.S_IMODE(info.st_mode) == 0o2770
    acl = subprocess.run(
        ["getfacl", "--omit-header", "--default", str(base / hydro)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert acl == ["user::rwx", "group::rwx", "other::---"]
    assert lfs.calls() == [
        ["project", "-p", str(gid), "-r", "-s", str(base / hydro)],
        ["setquota", "-p", str(gid), "-b", "900G", "-B", "1T", "-i", "90000", "-I", "100000",
         str(tmp_path)],
    ]  # fmt: skip
    # Sky's project has no group: its create fails, its accounts are removed again and
    # nothing is made under base_path.
    sky_orders = [
        o
        for o in standin.state.orders()
        if o["resource_uuid"] == standin.state.resource_by_name(SKY)["uuid"]
    ]
    assert [o["state"] for o in sky_orders] == ["erred"]
    assert any(f"create the group {project_prefix}astro-sky" in m for m in run.messages("error"))
    accounts = Tree.read(assoc_rows).accounts
    assert f"{project_prefix}astro-sky" not in accounts
    assert "a_sky-survey" not in accounts
    assert sorted(p.name for p in base.iterdir()) == [hydro]

    (base / hydro / "results.dat").write_text("data")
    flood = standin.state.resource_by_name(FLOOD)
    order = standin.state.add_order("Terminate", resource_uuid=flood["uuid"])
    run = agent.run("order_process")

    assert standin.state.order(order)["state"] == "done"
    assert hydro not in Tree.read(assoc_rows).accounts
    assert (base / hydro / "results.dat").read_text() == "data"
    assert any("its data are kept" in m for m in run.messages()), "\n".join(run.messages())
