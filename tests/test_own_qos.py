"""A QoS per allocation (``qos_management``): the exact sacctmgr commands, and bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.diagnosing import argvs
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from tests.test_backend_commands import SI, resource
from tests.test_diagnose import CREATED, diagnose, failed
from tests.test_diagnose import cluster as diag_cluster
from tests.test_diagnose import resource as diag_resource
from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import SlurmConfigError

TREE = assoc_lines(
    "root||||1||||normal|",
    "cust-1|||root|1||||normal|",
    "proj-1|||cust-1|1||||normal|",
)
QOS_READ = "show qos where name=alloc-1"
OPTIONS = {
    "max_jobs": 1,
    "max_submit": 4,
    "max_wall": "1-00:00:00",
    "grp_tres": {"cpu": 8, "gres/gpu": 2},
    "min_tres_per_job": "cpu=1",
    "additional_qos": ["Debug"],
}


def managed(**options: Any) -> dict[str, Any]:
    return {"qos_management": {"enabled": True, "skip_qos_swap": True, **options}}


def backend_for(runner: FakeRunner, **settings: Any) -> Any:
    runner.outputs.setdefault("show assoc", TREE)
    return make_backend(runner, enable_user_homedir_account_creation=False, **settings)


ADD_QOS = [
    *SI,
    "add",
    "qos",
    "alloc-1",
    "Flags=DenyOnLimit,NoDecay",
    "GrpTRES=cpu=8,gres/gpu=2",
    "MaxJobs=1",
    "MaxSubmit=4",
    "MaxWall=1440",
    "MinTRESPerJob=cpu=1",
]


def test_create_adds_the_qos_with_its_options_then_the_account_carrying_it(
    runner: FakeRunner,
) -> None:
    backend = backend_for(runner, **managed(**OPTIONS))
    backend.create_resource_with_id(resource(limits={"cpu": 1}), "alloc-1")
    assert runner.writes == [
        ADD_QOS,
        [
            *SI,
            "add",
            "account",
            "alloc-1",
            "Description=My Allocation rm -rf /",
            "Organization=proj-1",
            "Parent=proj-1",
            "GrpTRESMins=cpu=60000",
            "QOS+=alloc-1,debug",
            "DefaultQOS=alloc-1",
        ],
    ]


def test_an_existing_qos_with_the_same_options_is_adopted(runner: FakeRunner) -> None:
    row = "alloc-1|NoDecay,DenyOnLimit|cpu=8,gres/gpu=2|1|4|1-00:00:00|cpu=1|"
    runner.outputs[QOS_READ] = row + "\n"
    backend = backend_for(runner, **managed(**OPTIONS))
    backend.create_resource_with_id(resource(limits={}), "alloc-1")
    assert [w[2:4] for w in runner.writes] == [["add", "account"]]


def test_an_existing_qos_with_other_options_is_corrected_in_one_modify(
    runner: FakeRunner,
) -> None:
    runner.outputs[QOS_READ] = "alloc-1|DenyOnLimit|cpu=8,gres/gpu=2|2|4|12:00:00||\n"
    backend = backend_for(runner, **managed(**OPTIONS))
    backend.create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes[0] == [
        *SI,
        "modify",
        "qos",
        "alloc-1",
        "set",
        "Flags=DenyOnLimit,NoDecay",
        "MaxJobs=1",
        "MaxWall=1440",
        "MinTRESPerJob=cpu=1",
    ]
    assert [w[2:4] for w in runner.writes[1:]] == [["add", "account"]]


def test_an_adopted_account_gets_its_qos_attached_in_one_modify(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE + assoc_lines("alloc-1|||proj-1|1||||normal|normal")
    backend = backend_for(runner, **managed())
    backend.create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes == [
        [*SI, "add", "qos", "alloc-1", "Flags=DenyOnLimit,NoDecay"],
        [
            *SI,
            "modify",
            "account",
            "where",
            "name=alloc-1",
            "set",
            "QOS+=alloc-1",
            "DefaultQOS=alloc-1",
        ],
    ]


def test_an_adopted_account_already_on_its_qos_needs_no_command(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE + assoc_lines(
        "alloc-1|||proj-1|1||||normal,alloc-1|alloc-1"
    )
    runner.outputs[QOS_READ] = "alloc-1|DenyOnLimit,NoDecay||||||\n"
    backend = backend_for(runner, **managed())
    backend.create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes == []


def test_a_failed_account_add_removes_the_qos_it_added(runner: FakeRunner) -> None:
    runner.failures["add account alloc-1"] = (1, "", " Problem adding account\n")
    backend = backend_for(runner, **managed())
    with pytest.raises(BackendError):
        backend.create_resource_with_id(resource(limits={}), "alloc-1")
    assert runner.writes[-1] == [*SI, "delete", "qos", "where", "name=alloc-1"]


def test_terminate_removes_the_account_then_its_qos(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE + assoc_lines("alloc-1|||proj-1|1||||alloc-1|alloc-1")
    backend = backend_for(runner, **managed())
    backend.delete_resource(resource())
    deletes = [w for w in runner.writes if w[0] == "sacctmgr" and w[2] == "delete"]
    assert deletes == [
        [*SI, "delete", "account", "where", "name=alloc-1"],
        [*SI, "delete", "qos", "where", "name=alloc-1"],
    ]


@pytest.mark.parametrize(
    ("action", "submit", "value"),
    [("pause_resource", "", "0"), ("downscale_resource", "", "0"), ("restore_resource", "0", "-1")],
)
def test_skip_qos_swap_moves_grp_submit_jobs_and_keeps_the_qos(
    runner: FakeRunner, action: str, submit: str, value: str
) -> None:
    runner.outputs = {
        "format=Account,User,GrpSubmitJobs": f"alloc-1||{submit}\n",
        "show assoc": TREE + assoc_lines("alloc-1|||proj-1|1||||alloc-1|alloc-1"),
        "list tres": TRES_OUTPUT,
    }
    backend = backend_for(runner, qos_management={"skip_qos_swap": True})
    assert getattr(backend, action)("alloc-1") is True
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", f"GrpSubmitJobs={value}"]
    ]
    assert backend.get_resource_metadata("alloc-1")["qos"] == "alloc-1"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"flags": ["DenyOnLimit", "Bogus"]}, "flags"),
        ({"flags": "NoDecay;rm"}, "flags"),
        ({"max_wall": "1 hour"}, "max_wall"),
        ({"max_wall": "01:00:00 x"}, "max_wall"),
        ({"grp_tres": {"CPU;x": 1}}, "grp_tres"),
        ({"grp_tres": "cpu=-1"}, "grp_tres"),
        ({"min_tres_per_job": {"cpu": 1.5}}, "min_tres_per_job"),
        ({"max_jobs": -1}, "max_jobs"),
        ({"additional_qos": ["ok", "bad name"]}, "additional_qos"),
    ],
)
def test_bad_values_are_refused_at_start_up(options: dict[str, Any], named: str) -> None:
    with pytest.raises(SlurmConfigError, match=named):
        load_settings(managed(**options), {})


def test_swapping_and_limits_on_the_qos_load(runner: FakeRunner) -> None:
    swapping = load_settings({"qos_management": {"enabled": True}}, {}).managed_qos
    assert swapping is not None and not swapping.skip_qos_swap
    on_qos = load_settings(managed(apply_limits_to_qos=True), {}).managed_qos
    assert on_qos is not None and on_qos.limits_on_qos


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("90:30", 90),
        ("01:00:00", 60),
        ("2-00:00:00", 2880),
        ("1-12", 2160),
        ("1-00:30", 1470),
        ("x", None),
        ("1:2:3:4", None),
    ],
)
def test_wall_times_in_every_slurm_form(text: str, minutes: int | None) -> None:
    assert own_qos.wall_minutes(text) == minutes


# ---- the diagnostic ---------------------------------------------------------------------


def own_cluster(qos_list: str, default: str, qos_rows: str) -> FakeRunner:
    runner = diag_cluster(
        f"alloc-1|||proj-1|1|{CREATED}|||{qos_list}|{default}",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    runner.outputs = {
        "format=Account,User,GrpSubmitJobs": "alloc-1||\n",
        "show qos": qos_rows,
        **runner.outputs,
    }
    return runner


def test_diagnostic_in_sync_with_its_own_qos_needs_no_step(tmp_path: Path) -> None:
    runner = own_cluster(
        "alloc-1,normal", "alloc-1", "normal|||||||\nalloc-1|NoDecay,DenyOnLimit|||3|||\n"
    )
    diag = diagnose(runner, tmp_path, **managed(max_submit=3))
    assert diag.status == "OK", failed(diag)
    assert diag.steps == ()


def test_diagnostic_adds_a_missing_qos_and_attaches_it_in_the_one_modify(tmp_path: Path) -> None:
    runner = own_cluster("normal", "", "normal|||||||\n")
    diag = diagnose(runner, tmp_path, **managed(max_jobs=2))
    assert set(failed(diag)) == {"own QoS", "QoS attached"}
    assert argvs(diag.steps) == [
        [*SI, "add", "qos", "alloc-1", "Flags=DenyOnLimit,NoDecay", "MaxJobs=2"],
        [
            *SI,
            "modify",
            "account",
            "where",
            "name=alloc-1",
            "set",
            "QOS+=alloc-1",
            "DefaultQOS=alloc-1",
        ],
    ]


def test_diagnostic_corrects_only_the_options_that_differ(tmp_path: Path) -> None:
    runner = own_cluster("alloc-1", "alloc-1", "alloc-1|DenyOnLimit,NoDecay||5||||\n")
    diag = diagnose(runner, tmp_path, **managed(max_jobs=2, max_wall=60))
    assert failed(diag) == {
        "own QoS": (
            "Flags=DenyOnLimit,NoDecay MaxJobs=5",
            "Flags=DenyOnLimit,NoDecay MaxJobs=2 MaxWall=60",
        ),
    }
    assert argvs(diag.steps) == [
        [*SI, "modify", "qos", "alloc-1", "set", "MaxJobs=2", "MaxWall=60"]
    ]


def test_diagnostic_under_skip_qos_swap_expects_paused_on_grp_submit_jobs(tmp_path: Path) -> None:
    runner = own_cluster("alloc-1", "alloc-1", "alloc-1|DenyOnLimit,NoDecay||||||\n")
    diag = diagnose(runner, tmp_path, diag_resource(paused=True), **managed())
    assert failed(diag) == {"GrpSubmitJobs": ("unlimited", "0")}
    assert argvs(diag.steps) == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpSubmitJobs=0"]
    ]


def test_diagnostics_name_a_missing_additional_qos_and_not_the_unused_level_qos(
    runner: FakeRunner,
) -> None:
    runner.outputs["show qos"] = "normal\n"
    backend = backend_for(runner, **managed(additional_qos=["debug"]))
    problems = backend._configuration_problems()
    assert problems == [
        "qos_management.additional_qos 'debug' does not exist: sacctmgr add qos debug"
    ]


def test_terminate_of_a_missing_account_still_removes_a_left_over_qos(runner: FakeRunner) -> None:
    runner.failures["delete qos"] = (1, " Nothing deleted\n", "")
    backend = backend_for(runner, **managed())
    backend.delete_resource(resource())
    assert runner.writes == [[*SI, "delete", "qos", "where", "name=alloc-1"]]
