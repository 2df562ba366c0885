"""The account tree with the fake runner: flat hierarchy, project moves and create cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.diagnosing import argvs
from tests.fakes import FakeRunner, assoc_lines
from tests.test_backend_commands import SI, resource
from tests.test_diagnose import diagnose
from tests.test_diagnose import resource as view
from waldur_site_agent_slurm.allocation.usage_reader import UsageReader

LIMITS = "GrpTRESMins=cpu=6000000,gres/gpu=300,mem=614400"
FLAT = assoc_lines("root||||1||||normal|", "flatp|||root|1||||normal|")


def add(name: str, description: str, organization: str, parent: str, *extra: str) -> list[str]:
    return [
        *SI,
        "add",
        "account",
        name,
        f"Description={description}",
        f"Organization={organization}",
        f"Parent={parent}",
        *extra,
    ]


# ---- flat hierarchy --------------------------------------------------------------------


def test_flat_hierarchy_puts_the_project_under_parent_account_and_the_allocation_under_it(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = FLAT
    make_backend(runner, parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == [
        add("proj-1", "Project One", "proj-1", "flatp"),
        add("alloc-1", "My Allocation rm -rf /", "proj-1", "proj-1", LIMITS),
    ]


def test_flat_hierarchy_reuses_an_existing_project_account(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = FLAT + assoc_lines("proj-1|||flatp|1||||normal|")
    make_backend(runner, parent_account="flatp").create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == [add("alloc-1", "My Allocation rm -rf /", "proj-1", "proj-1", LIMITS)]


def test_flat_hierarchy_refuses_a_project_account_under_another_parent(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = FLAT + assoc_lines("proj-1|||root|1||||normal|")
    backend = make_backend(runner, parent_account="flatp")
    with pytest.raises(BackendError, match="proj-1 already exists under root, not under flatp"):
        backend.create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == []


def test_flat_hierarchy_without_parent_account_in_slurm_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("root||||1||||normal|")
    backend = make_backend(runner, parent_account="flatp")
    with pytest.raises(BackendError, match="parent_account 'flatp' does not exist"):
        backend.create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == []


def test_flat_terminate_of_the_last_allocation_removes_the_project_account(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = FLAT + assoc_lines(
        "proj-1|||flatp|1||||normal|", "alloc-1|||proj-1|1||||normal|"
    )
    backend = make_backend(runner, parent_account="flatp")
    original = backend.client.remove_account

    def remove_account(name: str) -> None:
        original(name)  # the next read shows the project without children
        runner.outputs["show assoc"] = FLAT + assoc_lines("proj-1|||flatp|1||||normal|")

    backend.client.remove_account = remove_account  # type: ignore[method-assign]
    backend.delete_resource(resource(), project_slug="proj-1")
    assert [c for c in runner.writes if "delete" in c] == [
        [*SI, "delete", "account", "where", "name=alloc-1"],
        [*SI, "delete", "account", "where", "name=proj-1"],
    ]


def test_flat_terminate_keeps_a_project_with_other_allocations(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = FLAT + assoc_lines(
        "proj-1|||flatp|1||||normal|",
        "alloc-1|||proj-1|1||||normal|",
        "alloc-2|||proj-1|1||||normal|",
    )
    make_backend(runner, parent_account="flatp").delete_resource(resource(), project_slug="proj-1")
    assert [c for c in runner.writes if "delete" in c] == [
        [*SI, "delete", "account", "where", "name=alloc-1"]
    ]


def test_flat_usage_covers_allocations_below_project_accounts(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = FLAT + assoc_lines(
        "proj-1|||flatp|1||||normal|",
        "alloc-1|||proj-1|1||||normal|",
        "alloc-2|||proj-1|1||||normal|",
        "proj-2|||flatp|1||||normal|",
        "elsewhere|||root|1||||normal|",
    )
    backend = make_backend(runner, parent_account="flatp")
    assert UsageReader(backend.client, backend.settings).allocation_accounts() == {
        "alloc-1",
        "alloc-2",
    }


def test_flat_diagnostic_expects_the_project_parent_and_creates_the_missing_tree(
    tmp_path: Path,
) -> None:
    runner = FakeRunner(outputs={"show assoc": FLAT, "list tres": "cpu|\nmem|\ngres|gpu\n"})
    diag = diagnose(runner, tmp_path, view(), parent_account="flatp")
    adds = [a for a in argvs(diag.steps) if "add" in a and "account" in a]
    assert adds == [
        add("proj-1", "Project one", "proj-1", "flatp"),
        add("alloc-1", "Alloc one", "proj-1", "proj-1"),
    ]


def test_flat_diagnostic_moves_an_allocation_left_directly_under_parent_account(
    tmp_path: Path,
) -> None:
    tree = FLAT + assoc_lines("alloc-1|||flatp|1||||normal|")
    runner = FakeRunner(outputs={"show assoc": tree, "list tres": "cpu|\nmem|\ngres|gpu\n"})
    diag = diagnose(runner, tmp_path, view(), parent_account="flatp")
    assert {c.field: (c.actual, c.expected) for c in diag.issues}["parent"] == ("flatp", "proj-1")
    assert argvs(diag.steps)[:2] == [
        add("proj-1", "Project one", "proj-1", "flatp"),
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "Parent=proj-1"],
    ]


# ---- moved projects ----------------------------------------------------------------------

MOVED = assoc_lines(
    "root||||1||||normal|",
    "cust-old|||root|1||||normal|",
    "proj-1|||cust-old|1||||normal|",
    "alloc-1|||proj-1|1||||normal|",
)


def test_moved_project_gets_its_new_customer_account_and_is_reparented_and_checked(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc where account=proj-1"] = "proj-1|||cust-1|1||||normal|\n"
    runner.outputs["show assoc"] = MOVED
    make_backend(runner, cluster_name="hpc").sync_resource_project(resource())
    assert runner.writes == [
        add("cust-1", "Customer One", "cust-1", "root", "Cluster=hpc"),
        [*SI, "modify", "account", "where", "name=proj-1", "cluster=hpc", "set", "parent=cust-1"],
    ]
    assert runner.calls[-1][:7] == [
        "sacctmgr",
        "--parsable2",
        "--noheader",
        "show",
        "assoc",
        "where",
        "account=proj-1",
    ]


def test_moved_project_to_an_existing_customer_is_only_reparented(runner: FakeRunner) -> None:
    runner.outputs["show assoc where account=proj-1"] = "proj-1|||cust-1|1||||normal|\n"
    runner.outputs["show assoc"] = MOVED + assoc_lines("cust-1|||root|1||||normal|")
    make_backend(runner).sync_resource_project(resource())
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=proj-1", "set", "parent=cust-1"]
    ]


def test_a_move_slurm_did_not_take_is_an_error_naming_the_fix(runner: FakeRunner) -> None:
    runner.outputs["show assoc where account=proj-1"] = "proj-1|||root|1||||normal|\n"
    runner.outputs["show assoc"] = MOVED + assoc_lines("cust-1|||root|1||||normal|")
    with pytest.raises(BackendError, match=r"shows it under root; put it back by hand: sacctmgr"):
        make_backend(runner).sync_resource_project(resource())


def test_project_already_under_its_customer_is_not_touched(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|",
        "cust-1|||root|1||||normal|",
        "proj-1|||cust-1|1||||normal|",
    )
    make_backend(runner).sync_resource_project(resource())
    assert runner.writes == []
    assert len(runner.calls) == 1  # the cycle's association read


def test_project_moves_are_skipped_in_the_flat_hierarchy(runner: FakeRunner) -> None:
    make_backend(runner, parent_account="flatp").sync_resource_project(resource())
    assert runner.calls == []


def test_a_move_without_root_account_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "cust-old|||root|1||||normal|", "proj-1|||cust-old|1||||normal|"
    )
    with pytest.raises(BackendError, match="root_account 'root' does not exist"):
        make_backend(runner).sync_resource_project(resource())
    assert runner.writes == []


def test_a_bad_customer_slug_is_refused_before_any_command(runner: FakeRunner) -> None:
    with pytest.raises(BackendError, match="customer account"):
        make_backend(runner).sync_resource_project(resource(customer_slug="c;rm"))
    assert runner.calls == []


# ---- create cost -----------------------------------------------------------------------

TREE = assoc_lines(
    "root||||1||||normal|", "cust-1|||root|1||||normal|", "proj-1|||cust-1|1||||normal|"
)


def test_create_costs_one_read_and_one_add_once_the_tres_are_cached(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = make_backend(runner)
    backend.create_resource_with_id(resource(), "alloc-1")
    assert [c[1:5] for c in runner.calls] == [
        ["--parsable2", "--noheader", "list", "tres"],
        ["--parsable2", "--noheader", "show", "assoc"],
        ["--immediate", "add", "account", "alloc-1"],
    ]
    runner.calls.clear()
    backend.create_resource_with_id(resource(slug="alloc-2", backend_id="alloc-2"), "alloc-2")
    assert runner.calls == [
        runner.calls[0],
        add("alloc-2", "My Allocation rm -rf /", "proj-1", "proj-1", LIMITS),
    ]
    assert runner.calls[0][3:5] == ["show", "assoc"]


def test_create_without_limits_adds_the_account_bare(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    make_backend(runner).create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes == [add("alloc-1", "My Allocation rm -rf /", "proj-1", "proj-1")]


def test_an_adopted_account_still_gets_its_limits_corrected(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE + assoc_lines("alloc-1|||proj-1|1|cpu=1|||normal|")
    make_backend(runner).create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == [[*SI, "modify", "account", "where", "name=alloc-1", "set", LIMITS]]


def test_an_account_created_meanwhile_elsewhere_gets_its_limits_written(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = TREE
    runner.failures["add account alloc-1"] = (1, " Nothing new added.\n", "")
    make_backend(runner).create_resource_with_id(resource(), "alloc-1")
    assert runner.writes[-1] == [*SI, "modify", "account", "where", "name=alloc-1", "set", LIMITS]
