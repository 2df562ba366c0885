"""The account tree on slurm-emulator: flat hierarchy, project moves and the cost of a create."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.emulator.conftest import assoc_rows, emulator_backend, sacctmgr, seed_job
from tests.test_backend_commands import resource

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = pytest.mark.emulator


def parents() -> dict[str, str]:
    return {row[0]: row[2] for row in assoc_rows() if not row[1]}


def limits_of(account: str) -> str:
    return next(row[3] for row in assoc_rows() if row[0] == account and not row[1])


def test_flat_hierarchy_builds_parent_project_allocation(emulator: Path) -> None:
    sacctmgr("-i", "add", "account", "flatp", "Parent=root")
    emulator_backend(parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    tree = parents()
    assert (tree["proj-1"], tree["alloc-1"]) == ("flatp", "proj-1")
    assert "cust-1" not in tree
    assert limits_of("alloc-1") == "cpu=6000000,gres/gpu=300,mem=600G"


def test_flat_terminate_of_the_last_allocation_removes_the_project(emulator: Path) -> None:
    sacctmgr("-i", "add", "account", "flatp", "Parent=root")
    second = resource(slug="alloc-2", backend_id="alloc-2")
    emulator_backend(parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    emulator_backend(parent_account="flatp").create_resource_with_id(second, "alloc-2")
    emulator_backend(parent_account="flatp").delete_resource(resource(), project_slug="proj-1")
    assert {"proj-1", "alloc-2"} <= set(parents())
    emulator_backend(parent_account="flatp").delete_resource(second, project_slug="proj-1")
    assert set(parents()) == {"root", "flatp"}


def test_flat_usage_is_read_for_allocations_below_project_accounts(emulator: Path) -> None:
    sacctmgr("-i", "add", "account", "flatp", "Parent=root")
    emulator_backend(parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    start = datetime.now(UTC).replace(tzinfo=None, day=1, hour=0, minute=0, second=0)
    seed_job("alloc-1", "alice", start, start + timedelta(hours=1), {"cpu": 60, "node": 1})
    backend = emulator_backend(parent_account="flatp")
    backend.timezone = "UTC"
    reader = backend._usage()
    assert reader.allocation_accounts() == {"alloc-1"}
    usage = backend._get_usage_report(["alloc-1"])["alloc-1"]
    assert usage["TOTAL_ACCOUNT_USAGE"]["cpu"] == 0.06  # 3600 CPU-minutes / 60000
    assert backend.runner.calls == 2  # one show assoc, one sacct


def test_moved_project_is_reparented_under_its_new_customer(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    moved = resource(customer_slug="cust-2", customer_name="Customer Two")
    backend = emulator_backend()
    backend.sync_resource_project(moved)
    tree = parents()
    assert (tree["cust-2"], tree["proj-1"], tree["alloc-1"]) == ("root", "cust-2", "proj-1")
    again = emulator_backend()
    again.sync_resource_project(moved)
    assert again.runner.calls == 1  # the association read; nothing written
    assert parents() == tree


def test_project_moves_are_skipped_in_the_flat_hierarchy(emulator: Path) -> None:
    sacctmgr("-i", "add", "account", "flatp", "Parent=root")
    emulator_backend(parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    before = assoc_rows()
    backend = emulator_backend(parent_account="flatp")
    backend.sync_resource_project(resource(customer_slug="cust-2"))
    assert (assoc_rows(), backend.runner.calls) == (before, 0)


def test_a_create_is_one_read_and_one_add_carrying_the_limits(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    backend = emulator_backend()
    backend.create_resource_with_id(resource(slug="alloc-2", backend_id="alloc-2"), "alloc-2")
    assert backend.runner.calls == 3  # list tres, show assoc, add account
    backend.create_resource_with_id(resource(slug="alloc-3", backend_id="alloc-3"), "alloc-3")
    assert backend.runner.calls == 5  # show assoc, add account
    assert limits_of("alloc-2") == limits_of("alloc-3") == "cpu=6000000,gres/gpu=300,mem=600G"


def test_an_adopted_account_gets_its_limits_corrected(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    sacctmgr("-i", "modify", "account", "where", "name=alloc-1", "set", "GrpTRESMins=cpu=1")
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    assert limits_of("alloc-1") == "cpu=6000000,gres/gpu=300,mem=600G"
