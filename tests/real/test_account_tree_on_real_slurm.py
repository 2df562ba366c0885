"""The account tree on the real SLURM: flat hierarchy, project moves and the cost of a create."""

from __future__ import annotations

from typing import Any

import pytest
from waldur_api_client.models.resource import Resource

from tests.real.conftest import assoc_rows, real_backend, run, stack
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.real_slurm

# cpu unit_factor 1 on the real tier (tests/real/conftest.py): 100 CPU-minutes.
CREATED = "cpu=100,gres/gpu=300,mem=600G"


def prefixes(tag: str, **settings: Any) -> dict[str, Any]:
    return {
        "customer_prefix": f"c{tag}_",
        "project_prefix": f"p{tag}_",
        "allocation_prefix": f"a{tag}_",
        **settings,
    }


def tagged(tag: str, n: int = 1, **overrides: Any) -> Resource:
    """A resource whose accounts are c<tag>_cust, p<tag>_proj and a<tag>_r<n>."""
    values = {"customer_slug": "cust", "project_slug": "proj", "slug": f"r{n}"}
    values["backend_id"] = f"a{tag}_r{n}"
    return resource(**{**values, **overrides})


def own_row(account: str) -> list[str]:
    """(account, user, parent, GrpTRESMins, …) of the account's own association."""
    return next(row for row in assoc_rows(account) if not row[1])


def flat_parent(tag: str) -> str:
    name = f"c{tag}_flatp"
    run("sacctmgr", "-i", "add", "account", name, "Parent=root", f"Cluster={stack().cluster}")
    return name


def test_flat_hierarchy_builds_parent_project_allocation(tag: str) -> None:
    flatp = flat_parent(tag)
    backend = real_backend(**prefixes(tag, parent_account=flatp))
    backend.create_resource_with_id(tagged(tag), f"a{tag}_r1")
    assert own_row(f"p{tag}_proj")[2] == flatp
    assert own_row(f"a{tag}_r1")[2:4] == [f"p{tag}_proj", CREATED]
    assert assoc_rows(f"c{tag}_cust") == []


def test_flat_terminate_of_the_last_allocation_removes_the_project(tag: str) -> None:
    flatp = flat_parent(tag)
    settings = prefixes(tag, parent_account=flatp)
    for n in (1, 2):
        real_backend(**settings).create_resource_with_id(tagged(tag, n), f"a{tag}_r{n}")
    real_backend(**settings).delete_resource(tagged(tag, 1), project_slug="proj")
    assert own_row(f"p{tag}_proj")[2] == flatp
    real_backend(**settings).delete_resource(tagged(tag, 2), project_slug="proj")
    assert assoc_rows(f"p{tag}_proj") == []
    assert own_row(flatp)[2] == "root"


def test_moved_project_is_reparented_and_checked(tag: str) -> None:
    real_backend(**prefixes(tag)).create_resource_with_id(tagged(tag), f"a{tag}_r1")
    moved = tagged(tag, customer_slug="newcust", customer_name="New Customer")
    backend = real_backend(**prefixes(tag))
    backend.sync_resource_project(moved)
    assert own_row(f"c{tag}_newcust")[2] == "root"
    assert own_row(f"p{tag}_proj")[2] == f"c{tag}_newcust"
    assert own_row(f"a{tag}_r1")[2] == f"p{tag}_proj"
    again = real_backend(**prefixes(tag))
    again.sync_resource_project(moved)
    assert again.runner.calls == 1  # the association read; nothing written


def test_a_create_is_one_read_and_one_add_carrying_the_limits(tag: str) -> None:
    real_backend(**prefixes(tag)).create_resource_with_id(tagged(tag), f"a{tag}_r1")
    backend: SlurmBackend = real_backend(**prefixes(tag))
    backend.create_resource_with_id(tagged(tag, 2), f"a{tag}_r2")
    assert backend.runner.calls == 3  # list tres, show assoc, add account
    backend.create_resource_with_id(tagged(tag, 3), f"a{tag}_r3")
    assert backend.runner.calls == 5  # show assoc, add account
    assert own_row(f"a{tag}_r2")[3] == own_row(f"a{tag}_r3")[3] == CREATED


def test_an_adopted_account_gets_its_limits_corrected(tag: str) -> None:
    real_backend(**prefixes(tag)).create_resource_with_id(tagged(tag), f"a{tag}_r1")
    account = f"a{tag}_r1"
    where = ["where", f"name={account}", f"cluster={stack().cluster}"]
    run("sacctmgr", "-i", "modify", "account", *where, "set", "GrpTRESMins=cpu=1")
    real_backend(**prefixes(tag)).create_resource_with_id(tagged(tag), account)
    assert own_row(account)[3] == CREATED
