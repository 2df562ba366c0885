"""The public client on slurm-emulator: no-argument construction, list_accounts, create."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.conftest import BIN, assoc_rows, sacctmgr
from waldur_site_agent_slurm.client import SlurmClient

pytestmark = pytest.mark.emulator


@pytest.fixture
def emulator_on_path(emulator: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's commands first on PATH, from a directory of their own.

    The runner never takes SLURM commands from the Python environment's own bin
    directory (where slurm-emulator installs them), so they are linked elsewhere, as a
    head node has them in its own directory.
    """
    bin_dir = emulator / "bin"
    bin_dir.mkdir()
    for command in ("sacctmgr", "sacct", "scancel"):
        (bin_dir / command).symlink_to(BIN / command)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_client_without_arguments_lists_accounts_from_sacctmgr_on_path(
    emulator_on_path: None,
) -> None:
    sacctmgr("-i", "add", "account", "team-a", "Description=Team A", "Organization=uni")
    accounts = {a.name: (a.organization, a.description) for a in SlurmClient().list_accounts()}
    assert accounts["team-a"] == ("uni", "team a")  # stored in lower case, as SLURM does
    assert "root" in accounts


def test_create_resource_without_parent_puts_the_account_under_root(
    emulator_on_path: None,
) -> None:
    client = SlurmClient()
    client.create_resource("proj-x", "Project X", "cust-x")
    client.create_resource("alloc-x", "Allocation X", "proj-x", parent_name="proj-x")
    parents = {row[0]: row[2] for row in assoc_rows() if not row[1]}
    assert (parents["proj-x"], parents["alloc-x"]) == ("root", "proj-x")
    accounts = {a.name: a.organization for a in client.list_accounts()}
    assert (accounts["proj-x"], accounts["alloc-x"]) == ("cust-x", "proj-x")
