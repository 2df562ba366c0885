"""The public client on each real SLURM: no-argument construction, list_accounts, create."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.real.conftest import assoc_rows, remove_accounts, run, stack
from waldur_site_agent_slurm.client import SlurmClient

pytestmark = pytest.mark.real_slurm


@pytest.fixture
def accounts() -> Iterator[tuple[str, str]]:
    """Two unique account names, removed afterwards (child first)."""
    tag = uuid.uuid4().hex[:8]
    names = (f"clp-{tag}", f"cla-{tag}")
    yield names
    remove_accounts([names[1], names[0]])


def test_client_without_arguments_lists_accounts_with_organization_and_description(
    accounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = accounts
    monkeypatch.setenv("PATH", f"{stack().bin}:/bin")
    run(
        "sacctmgr",
        "-i",
        "add",
        "account",
        project,
        "Description=Team A",
        "Organization=uni",
        f"Cluster={stack().cluster}",
    )
    listed = {a.name: (a.organization, a.description) for a in SlurmClient().list_accounts()}
    assert listed[project] == ("uni", "team a")  # sacctmgr stores both in lower case
    assert "root" in listed


def test_create_resource_without_parent_puts_the_account_under_root(
    accounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, allocation = accounts
    monkeypatch.setenv("PATH", f"{stack().bin}:/bin")
    client = SlurmClient(cluster_name=stack().cluster)
    client.create_resource(project, "Project X", "cust-x")
    client.create_resource(allocation, "Allocation X", project, parent_name=project)
    assert [row[2] for row in assoc_rows(project) if not row[1]] == ["root"]
    assert [row[2] for row in assoc_rows(allocation) if not row[1]] == [project]
    orgs = {a.name: a.organization for a in client.list_accounts()}
    assert (orgs[project], orgs[allocation]) == ("cust-x", project)
