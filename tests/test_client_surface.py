"""The public client: built with no arguments, list_accounts, create_resource's parent."""

from __future__ import annotations

import pytest

from tests.fakes import FakeRunner
from waldur_site_agent_slurm.client import SlurmClient
from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm.runner import CommandRunner

ACCOUNTS = "root|root|default root account\nzeta|org-z|a | b\nalpha|org-a|Alpha team\n"


def test_client_without_arguments_runs_slurm_from_path_unscoped() -> None:
    client = SlurmClient()
    assert isinstance(client.runner, CommandRunner)
    assert client.runner.bin_path is None
    assert client.cluster_name is None


def test_list_accounts_reads_every_account_once_sorted_with_organization_and_description() -> None:
    runner = FakeRunner(outputs={"list account": ACCOUNTS})
    accounts = SlurmClient(runner).list_accounts()
    assert runner.calls == [
        [
            "sacctmgr",
            "--parsable2",
            "--noheader",
            "list",
            "account",
            "format=Account,Organization,Description",
        ]
    ]
    assert [(a.name, a.organization, a.description, a.backend_id) for a in accounts] == [
        ("alpha", "org-a", "Alpha team", "alpha"),
        ("root", "root", "default root account", "root"),
        ("zeta", "org-z", "a | b", "zeta"),
    ]


def test_list_accounts_refuses_a_row_with_missing_columns() -> None:
    runner = FakeRunner(outputs={"list account": "alpha|org-a\n"})
    with pytest.raises(SlurmParseError, match="Account,Organization,Description"):
        SlurmClient(runner).list_accounts()


def test_create_resource_without_parent_puts_the_account_under_root() -> None:
    runner = FakeRunner()
    assert SlurmClient(runner, "hpc").create_resource("alloc-1", "Team A", "proj-1") == "alloc-1"
    assert runner.writes == [
        [
            "sacctmgr",
            "--immediate",
            "add",
            "account",
            "alloc-1",
            "Description=Team A",
            "Organization=proj-1",
            "Parent=root",
            "Cluster=hpc",
        ]
    ]


def test_create_resource_with_parent_uses_it_and_keeps_the_organization() -> None:
    runner = FakeRunner()
    SlurmClient(runner).create_resource("alloc-1", "Team A", "cust-1", parent_name="proj-1")
    assert runner.writes[0][-2:] == ["Organization=cust-1", "Parent=proj-1"]
