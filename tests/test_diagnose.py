"""The diagnostic's domain with the fake runner: expectations, ranges and exact argv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_backend
from tests.diagnosing import argvs
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from waldur_site_agent_slurm.diagnose.expected import Diagnoser
from waldur_site_agent_slurm.diagnose.model import (
    AccountDiagnosis,
    Check,
    OfferingView,
    PolicyView,
    Report,
    ResourceView,
)
from waldur_site_agent_slurm.diagnose.model import TeamMember as Member
from waldur_site_agent_slurm.diagnose.policy import mastermind_settings
from waldur_site_agent_slurm.diagnose.render import Style, table_report
from waldur_site_agent_slurm.periodic.service import PeriodicService

# cpu k-Hours (×60000), mem GB-Hours (×61440), gpu GPU-Hours (×60): tests/conftest.py
LIMITS = {"cpu": 2.0, "mem": 10.0, "gpu": 5.0}
CREATED = "cpu=120000,gres/gpu=300,mem=614400"


def resource(**overrides: Any) -> ResourceView:
    values: dict[str, Any] = {
        "uuid": "ab" * 16,
        "name": "Alloc one",
        "backend_id": "alloc-1",
        "state": "OK",
        "limits": LIMITS,
        "paused": False,
        "downscaled": False,
        "restrict_member_access": False,
        "project_uuid": "cd" * 16,
        "project_slug": "proj-1",
        "project_name": "Project one",
        "customer_slug": "cust-1",
        "customer_name": "Customer one",
        "team": (Member("alice", "OK"), Member("bob", "OK")),
    }
    return ResourceView(**{**values, **overrides})


def policy(**overrides: Any) -> PolicyView:
    values: dict[str, Any] = {
        "uuid": "11" * 16,
        "period": "monthly",
        "limit_type": "GrpTRESMins",
        "tres_billing_enabled": False,
        "weights": {},
        "grace_ratio": 0.2,
        "carryover_enabled": True,
        "carryover_factor": 50,
        "one_off": False,
    }
    return PolicyView(**{**values, **overrides})


def cluster(*rows: str) -> FakeRunner:
    base = (
        "root|||||||||",
        "cust-1|||root|1|||||",
        "proj-1|||cust-1|1|||||",
        "other|||proj-1|1|||||",
        "other|carol||||||||",
    )
    return FakeRunner(outputs={"show assoc": assoc_lines(*base, *rows), "list tres": TRES_OUTPUT})


def diagnoser(
    runner: FakeRunner,
    tmp_path: Path,
    policy_view: PolicyView | None = None,
    **settings: Any,
) -> Diagnoser:
    settings.setdefault("periodic_limits", {"enabled": True, "state_dir": str(tmp_path)})
    backend = make_backend(runner, **settings)
    periodic = PeriodicService(backend.client, backend.settings)
    return Diagnoser(
        backend.settings,
        backend.client,
        periodic,
        policy_view,
        {},
        lever=backend.submit_lever(),
    )


def diagnose(
    runner: FakeRunner,
    tmp_path: Path,
    view: ResourceView | None = None,
    policy_view: PolicyView | None = None,
    **settings: Any,
) -> AccountDiagnosis:
    built = diagnoser(runner, tmp_path, policy_view, **settings)
    return built.diagnose("alloc-1", built.client.snapshot(), view or resource())


def failed(diag: AccountDiagnosis) -> dict[str, tuple[str, str]]:
    return {c.field: (c.actual, c.expected) for c in diag.issues}


def test_mastermind_settings_match_the_policy_sheet_example() -> None:
    # mastermind-periodic-policy.md §6 example 2: totals cpu 64000, mem 768000, gpu 600,
    # billing on with the default weights, grace 0.2.
    sent = mastermind_settings(
        policy(tres_billing_enabled=True),
        {"cpu": 64000, "mem": 768000, "gpu": 600},
        with_carryover=False,
    )
    assert sent["fairshare"] == 277533
    assert sent["grp_tres_mins"] == {
        "cpu": 4608000,
        "mem": 55296000,
        "gpu": 43200,
        "billing": 180000,
    }
    assert sent["qos_threshold"] == {"billing": 150000}
    assert sent["grace_limit"] == {"billing": 180000}


def test_an_allocation_in_sync_needs_no_step(tmp_path: Path) -> None:
    runner = cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    diag = diagnose(runner, tmp_path)

    assert diag.status == "OK", failed(diag)
    assert diag.steps == ()
    assert runner.writes == []


def test_steps_are_scoped_to_the_cluster(tmp_path: Path) -> None:
    runner = cluster("alloc-1|||proj-1|1|cpu=1|||normal|", "alloc-1|alice||||||||")
    diag = diagnose(runner, tmp_path, cluster_name="hpc")

    assert failed(diag) == {
        "GrpTRESMins[cpu]": ("1", "120000"),
        "GrpTRESMins[mem]": ("unset", "614400"),
        "GrpTRESMins[gres/gpu]": ("unset", "300"),
        "users": ("alice", "alice,bob"),
    }
    assert argvs(diag.steps, "hpc") == [
        [
            "sacctmgr",
            "--immediate",
            "modify",
            "account",
            "where",
            "name=alloc-1",
            "cluster=hpc",
            "set",
            f"GrpTRESMins={CREATED}",
        ],
        ["sacctmgr", "--immediate", "add", "user", "bob", "Account=alloc-1", "Cluster=hpc"],
    ]
    assert runner.calls[0][-3:-1] == ["where", "cluster=hpc"]  # the one association read


def test_common_policy_adds_missing_users_with_the_common_default(tmp_path: Path) -> None:
    runner = cluster(f"alloc-1|||proj-1|1|{CREATED}|||normal|", "alloc-1|alice||||||||")
    diag = diagnose(runner, tmp_path, default_account="common")

    assert [s.line for s in diag.steps] == [
        "sacctmgr --immediate add user bob Account=alloc-1,common DefaultAccount=common"
    ]


def test_offering_users_not_ok_are_not_expected(tmp_path: Path) -> None:
    runner = cluster(f"alloc-1|||proj-1|1|{CREATED}|||normal|", "alloc-1|alice||||||||")
    view = resource(team=(Member("alice", "OK"), Member("bob", "Requested")))

    assert diagnose(runner, tmp_path, view).status == "OK"


def test_removing_an_extra_user_moves_its_default_account_first(tmp_path: Path) -> None:
    runner = cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
        "alloc-1|carol||||||||",
    )
    runner.outputs = {"list user": "carol|alloc-1\n", **runner.outputs}
    diag = diagnose(runner, tmp_path)

    assert [s.line for s in diag.steps] == [
        "scancel --account=alloc-1 --user=carol",
        "sacctmgr --immediate modify user where name=carol set DefaultAccount=other",
        "sacctmgr --immediate delete user where name=carol account=alloc-1",
    ]


def test_policy_values_within_the_carry_over_range_are_accepted(tmp_path: Path) -> None:
    # cpu 2 k-hours: 2 × 60 × 1.2 = 144 minutes sent → 144 / 60 × 60000 = 144000 at the
    # base, up to 216000 with 50 % carried over; fairshare 17 // 3 = 5 up to 25.5 // 3 = 8.
    runner = cluster(
        "alloc-1|||proj-1|7|cpu=200000,gres/gpu=360,mem=737280|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    diag = diagnose(runner, tmp_path, policy_view=policy())

    assert diag.status == "OK", failed(diag)
    expected = {c.field: c.expected for c in diag.checks}
    assert expected["GrpTRESMins[cpu]"] == "144000..216000"
    assert expected["Fairshare"] == "5..8"


def test_policy_values_outside_the_range_are_set_to_the_base(tmp_path: Path) -> None:
    runner = cluster(
        "alloc-1|||proj-1|40|cpu=999999,gres/gpu=360,mem=737280|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    diag = diagnose(runner, tmp_path, policy_view=policy())

    assert failed(diag) == {
        "Fairshare": ("40", "5..8"),
        "GrpTRESMins[cpu]": ("999999", "144000..216000"),
    }
    assert [s.line for s in diag.steps] == [
        "sacctmgr --immediate modify account where name=alloc-1 set Fairshare=5 "
        "GrpTRESMins=cpu=144000"
    ]


def test_a_policy_the_agent_does_not_apply_leaves_the_created_limits_expected(
    tmp_path: Path,
) -> None:
    runner = cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    diag = diagnose(runner, tmp_path, policy_view=policy(), periodic_limits={"enabled": False})

    assert diag.status == "OK", failed(diag)
    assert any("periodic_limits.enabled is false" in note for note in diag.notes)


def test_a_policy_limit_type_the_agent_refuses_is_a_mismatch(tmp_path: Path) -> None:
    runner = cluster(f"alloc-1|||proj-1|1|{CREATED}|||normal|", "alloc-1|alice||||||||")
    diag = diagnose(runner, tmp_path, policy_view=policy(limit_type="MaxTRESMins"))

    assert "periodic settings" in failed(diag)


def test_paused_in_waldur_expects_the_paused_qos(tmp_path: Path) -> None:
    runner = cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||normal|",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    diag = diagnose(runner, tmp_path, resource(paused=True, downscaled=True))

    assert failed(diag) == {"qos": ("normal", "blocked")}
    assert argvs(diag.steps)[0][-2:] == ["QOS=blocked", "DefaultQOS=blocked"]


# ---- QoS enforcement: the GrpSubmitJobs lever ---------------------------------------------

ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
SUBMIT_READ = "format=Account,User,GrpSubmitJobs"


def enforced_cluster(qos: str, submit: str) -> FakeRunner:
    """alloc-1 in sync but for its QoS (``qos``) and its GrpSubmitJobs (``submit``)."""
    runner = cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||{qos}|{qos}",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    runner.outputs = {SUBMIT_READ: f"alloc-1||{submit}\n", **runner.outputs}
    return runner


@pytest.mark.parametrize(
    ("flags", "submit", "expected_value"),
    [
        ({"paused": True}, "", "0"),
        ({"downscaled": True}, "", "0"),
        ({}, "0", "-1"),
    ],
)
def test_under_qos_enforcement_the_waldur_state_is_expected_on_grp_submit_jobs(
    tmp_path: Path, flags: dict[str, bool], submit: str, expected_value: str
) -> None:
    runner = enforced_cluster("boost", submit)
    diag = diagnose(runner, tmp_path, resource(**flags), **ENFORCED)

    actual = "unlimited" if submit == "" else submit
    wanted = "unlimited" if expected_value == "-1" else expected_value
    assert failed(diag) == {"GrpSubmitJobs": (actual, wanted)}
    assert argvs(diag.steps) == [[*SET_ALLOC, f"GrpSubmitJobs={expected_value}"]]


def test_under_qos_enforcement_the_account_qos_is_never_drift(tmp_path: Path) -> None:
    runner = enforced_cluster("boost", "0")
    diag = diagnose(runner, tmp_path, resource(paused=True), **ENFORCED)

    assert diag.status == "OK", failed(diag)
    assert diag.steps == ()
    assert "qos" not in {c.field for c in diag.checks}
    assert {c.field: c.expected for c in diag.checks}["GrpSubmitJobs"] == "0"


def test_without_enforcement_the_lever_is_not_read(tmp_path: Path) -> None:
    runner = enforced_cluster("normal", "0")
    diag = diagnose(runner, tmp_path)

    assert diag.status == "OK", failed(diag)
    assert not any(SUBMIT_READ in " ".join(c) for c in runner.calls)


def test_the_lever_and_policy_settings_share_one_modify(tmp_path: Path) -> None:
    runner = cluster(
        "alloc-1|||proj-1|40|cpu=999999,gres/gpu=360,mem=737280|||boost|boost",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    runner.outputs = {SUBMIT_READ: "alloc-1||\n", **runner.outputs}
    diag = diagnose(runner, tmp_path, resource(paused=True), policy(), **ENFORCED)

    assert [s.line for s in diag.steps] == [
        "sacctmgr --immediate modify account where name=alloc-1 set Fairshare=5 "
        "GrpTRESMins=cpu=144000 GrpSubmitJobs=0"
    ]


# ---- the account tree: the project account's own parent -------------------------------------

SET_ALLOC = ["sacctmgr", "--immediate", "modify", "account", "where", "name=alloc-1", "set"]
IN_SYNC = (
    f"alloc-1|||proj-1|1|{CREATED}|||normal|",
    "alloc-1|alice||||||||",
    "alloc-1|bob||||||||",
)


def flat_cluster(project_parent: str, *extra: str) -> FakeRunner:
    rows = ("root|||||||||", "flatp|||root|1|||||", f"proj-1|||{project_parent}|1|||||")
    return FakeRunner(
        outputs={"show assoc": assoc_lines(*rows, *extra, *IN_SYNC), "list tres": TRES_OUTPUT}
    )


def test_flat_hierarchy_expects_the_project_below_parent_account(tmp_path: Path) -> None:
    runner = flat_cluster("root")
    diag = diagnose(runner, tmp_path, parent_account="flatp")

    assert failed(diag) == {"project parent": ("root", "flatp")}
    assert argvs(diag.steps) == [
        ["sacctmgr", "--immediate", "modify", "account", "where", "name=proj-1", "set",
         "Parent=flatp"]
    ]  # fmt: skip


def test_flat_hierarchy_in_sync_checks_both_parents(tmp_path: Path) -> None:
    diag = diagnose(flat_cluster("flatp"), tmp_path, parent_account="flatp")

    assert diag.status == "OK", failed(diag)
    checks = {c.field: (c.actual, c.expected) for c in diag.checks}
    assert checks["project parent"] == ("flatp", "flatp")
    assert checks["parent"] == ("proj-1", "proj-1")


def test_a_project_is_never_moved_below_a_missing_parent_account(tmp_path: Path) -> None:
    runner = flat_cluster("root")
    diag = diagnose(runner, tmp_path, parent_account="gone")

    assert failed(diag) == {"project parent": ("root", "gone")}
    assert diag.steps == ()
    assert any("sacctmgr add account gone" in note for note in diag.notes)


def test_a_project_below_another_customer_moves_to_its_own_created_first(tmp_path: Path) -> None:
    runner = FakeRunner(
        outputs={
            "show assoc": assoc_lines(
                "root|||||||||", "cust-9|||root|1|||||", "proj-1|||cust-9|1|||||", *IN_SYNC
            ),
            "list tres": TRES_OUTPUT,
        }
    )
    diag = diagnose(runner, tmp_path)

    assert failed(diag) == {"project parent": ("cust-9", "cust-1")}
    assert [s.line for s in diag.steps] == [
        "sacctmgr --immediate add account cust-1 Description=Customer one Organization=cust-1 "
        "Parent=root",
        "sacctmgr --immediate modify account where name=proj-1 set Parent=cust-1",
    ]


def test_allocations_of_one_misplaced_project_move_it_once(tmp_path: Path) -> None:
    runner = flat_cluster("root", f"alloc-2|||proj-1|1|{CREATED}|||normal|")
    built = diagnoser(runner, tmp_path, parent_account="flatp")
    snapshot = built.client.snapshot()
    first = built.diagnose("alloc-1", snapshot, resource())
    second = built.diagnose("alloc-2", snapshot, resource(backend_id="alloc-2", team=()))

    assert "project parent" in failed(first)
    assert "project parent" in failed(second)
    moves = [s.line for d in (first, second) for s in d.steps if "Parent=" in s.line]
    assert moves == ["sacctmgr --immediate modify account where name=proj-1 set Parent=flatp"]


def test_the_all_table_counts_one_allocation_and_one_issue_in_the_singular() -> None:
    check = Check("qos", expected="normal", actual="blocked", ok=False)
    diag = AccountDiagnosis("alloc-1", None, None, None, False, checks=(check,))
    report = Report(OfferingView("u", "HPC", {}), None, "all", accounts=[diag])

    lines = table_report(report, Style(False), verbose=False)

    assert "  1 allocation checked: 0 OK, 1 mismatching (1 issue)" in lines
