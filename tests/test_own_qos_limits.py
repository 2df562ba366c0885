"""apply_limits_to_qos: the allocation's GrpTRESMins live on its own QoS.

Create puts them in the ``add qos``, limit updates and periodic settings write (and read
back) the QoS, and a RawUsage reset also resets the QoS's usage, alone in its command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.captures import VERSIONS, load
from tests.conftest import COMPONENTS
from tests.diagnosing import argvs
from tests.fakes import TRES_OUTPUT, FakeRunner, QosFake
from tests.test_backend_commands import SI, resource
from tests.test_diagnose import CREATED, diagnose, failed
from tests.test_diagnose import cluster as diag_cluster
from tests.test_own_qos import TREE, backend_for, managed
from tests.test_periodic import NOW, message
from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.periodic.message import apply_settings
from waldur_site_agent_slurm.slurm.client import SlurmClient

ON_QOS = managed(apply_limits_to_qos=True)
MODIFY_QOS = [*SI, "modify", "qos", "alloc-1", "set"]


def cluster(qos_limits: str = "", account_limits: str = "") -> QosFake:
    """alloc-1 under proj-1 with its QoS alloc-1 attached; GrpTRESMins as given."""
    runner = QosFake.of(
        TREE + f"alloc-1|||proj-1|1|{account_limits}|||alloc-1|alloc-1\n",
        **{"list tres": TRES_OUTPUT},
    )
    runner.qos["alloc-1"] = {
        "Name": "alloc-1",
        "Flags": "DenyOnLimit,NoDecay",
        "GrpTRESMins": qos_limits,
    }
    return runner


def test_create_puts_the_limits_in_the_add_qos_and_none_on_the_account() -> None:
    runner = QosFake.of(TREE, **{"list tres": TRES_OUTPUT})
    backend = backend_for(runner, **ON_QOS)
    backend.create_resource_with_id(resource(limits={"cpu": 1}), "alloc-1")
    assert runner.writes == [
        [*SI, "add", "qos", "alloc-1", "Flags=DenyOnLimit,NoDecay", "GrpTRESMins=cpu=60000"],
        [
            *SI,
            "add",
            "account",
            "alloc-1",
            "Description=My Allocation rm -rf /",
            "Organization=proj-1",
            "Parent=proj-1",
            "QOS+=alloc-1",
            "DefaultQOS=alloc-1",
        ],
    ]


def test_a_create_adopting_its_qos_corrects_the_limits_there_after_the_account() -> None:
    runner = QosFake.of(TREE, **{"list tres": TRES_OUTPUT})
    runner.qos["alloc-1"] = {
        "Name": "alloc-1",
        "Flags": "DenyOnLimit,NoDecay",
        "GrpTRESMins": "cpu=5",
    }
    backend_for(runner, **ON_QOS).create_resource_with_id(resource(limits={"cpu": 1}), "alloc-1")
    assert [w[2:4] for w in runner.writes] == [["add", "account"], ["modify", "qos"]]
    assert "GrpTRESMins=cpu=60000" not in runner.writes[0]
    assert runner.qos["alloc-1"]["GrpTRESMins"] == "cpu=60000"


def test_a_limit_update_writes_only_the_differing_tres_on_the_qos() -> None:
    runner = cluster(qos_limits="cpu=60000,mem=100")
    backend = backend_for(runner, **ON_QOS)
    backend.set_resource_limits("alloc-1", {"cpu": 2, "mem": 0})
    assert runner.writes == [[*MODIFY_QOS, "GrpTRESMins=cpu=120000,mem=0"]]
    assert runner.qos["alloc-1"]["GrpTRESMins"] == "cpu=120000,mem=0"
    assert backend_for(runner, **ON_QOS).get_resource_limits("alloc-1") == {"cpu": 2, "mem": 0}


def test_limits_read_from_the_qos_ignore_the_account() -> None:
    runner = cluster(qos_limits="cpu=120000", account_limits="cpu=60000")
    assert backend_for(runner, **ON_QOS).get_resource_limits("alloc-1") == {"cpu": 2}


# ---- periodic settings ------------------------------------------------------------------


def periodic(runner: QosFake, state: Path, raw: dict[str, Any]) -> dict[str, Any]:
    settings = {**ON_QOS, "periodic_limits": {"enabled": True, "state_dir": str(state)}}
    built = SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
    client = SlurmClient(runner, built.settings.cluster_name)
    return apply_settings(client, built.settings, "alloc-1", raw, clock=lambda: NOW)


APPLIED = "billing=14400,cpu=60000000,gres/gpu=300,mem=614400"


def test_periodic_limits_are_planned_written_and_read_back_on_the_qos(tmp_path: Path) -> None:
    runner = cluster(qos_limits="cpu=60000000,billing=100", account_limits=APPLIED)
    result = periodic(runner, tmp_path, message())
    assert result["success"] is True, result["error"]
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "Fairshare=500"],
        [*MODIFY_QOS, "GrpTRESMins=billing=14400,gres/gpu=300,mem=614400"],
    ]
    assert runner.qos["alloc-1"]["GrpTRESMins"] == APPLIED
    reads = [c for c in runner.calls if "show" in c and "qos" in c]
    assert len(reads) == 2  # planned from the QoS, read back once


def test_a_qos_that_did_not_keep_the_limit_fails_the_apply(tmp_path: Path) -> None:
    runner = cluster(qos_limits=APPLIED.replace("cpu=60000000", "cpu=1"))
    runner.stored["GrpTRESMins=cpu=60000000"] = "GrpTRESMins=cpu=0"
    result = periodic(runner, tmp_path, message(fairshare=None))
    assert result["success"] is False
    assert result["error"].endswith("GrpTRESMins cpu: expected 60000000, SLURM has 0")


def test_a_reset_also_resets_the_qos_usage_in_a_command_of_its_own(tmp_path: Path) -> None:
    runner = cluster(qos_limits=APPLIED)
    result = periodic(runner, tmp_path, message(fairshare=None, reset_raw_usage=True))
    assert result["raw_usage_reset"]["performed"] is True, result
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "RawUsage=0"],
        [*MODIFY_QOS, "RawUsage=0"],
    ]
    again = periodic(runner, tmp_path, message(fairshare=None, reset_raw_usage=True))
    assert again["success"] is True
    assert len(runner.writes) == 2  # once per period


def test_a_missing_qos_fails_the_apply_saying_how_to_make_it(tmp_path: Path) -> None:
    runner = cluster()
    del runner.qos["alloc-1"]
    result = periodic(runner, tmp_path, message())
    assert result["success"] is False
    assert "QoS alloc-1 does not exist" in result["error"]
    assert runner.writes == []


# ---- the diagnostic ---------------------------------------------------------------------


def qos_cluster(account_limits: str, qos_limits: str) -> Any:
    """The diagnostic's cluster: alloc-1 on its QoS, GrpTRESMins on account and QoS as given."""
    runner = diag_cluster(
        f"alloc-1|||proj-1|1|{account_limits}|||alloc-1|alloc-1",
        "alloc-1|alice||||||||",
        "alloc-1|bob||||||||",
    )
    runner.outputs = {
        "format=Account,User,GrpSubmitJobs": "alloc-1||\n",
        "show qos": f"alloc-1|DenyOnLimit,NoDecay||||||{qos_limits}\n",
        **runner.outputs,
    }
    return runner


def test_diagnostic_compares_grp_tres_mins_on_the_qos_and_sets_it_there(tmp_path: Path) -> None:
    found = diagnose(qos_cluster("", CREATED.replace("cpu=120000", "cpu=5")), tmp_path, **ON_QOS)
    assert failed(found) == {"GrpTRESMins[cpu]": ("5", "120000")}
    assert argvs(found.steps) == [[*MODIFY_QOS, "GrpTRESMins=cpu=120000"]]


def test_diagnostic_clears_grp_tres_mins_left_on_the_account(tmp_path: Path) -> None:
    found = diagnose(qos_cluster("cpu=7,mem=8", CREATED), tmp_path, **ON_QOS)
    assert failed(found) == {"account GrpTRESMins": ("cpu=7,mem=8", "unset (on the QoS)")}
    assert argvs(found.steps) == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpTRESMins=cpu=-1,mem=-1"]
    ]


def test_diagnostic_with_the_limits_on_the_qos_is_ok(tmp_path: Path) -> None:
    found = diagnose(qos_cluster("", CREATED), tmp_path, **ON_QOS)
    assert found.status == "OK", failed(found)


# ---- captured real output (22.05 and 24.11) ----------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_show_qos_with_its_limits_parses_on_both_versions(version: str) -> None:
    run = load(version, "own_qos/sacctmgr_show_qos_own_fields")
    assert run.command.endswith("format=" + ",".join(own_qos.QOS_FIELDS))
    (record,) = own_qos.parse(run.lines)
    assert (record.grp_tres_mins, record.grp_tres, record.max_jobs, record.max_wall) == (
        {"cpu": 600, "mem": 100},
        {"cpu": 8},
        1,
        1440,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_raw_usage_in_a_modify_qos_drops_the_other_options_so_it_goes_alone(version: str) -> None:
    mixed = load(version, "own_qos/sacctmgr_modify_qos_limit_with_raw_usage")
    assert mixed.exit == 0 and "GrpTRESMins=cpu=700" in mixed.command
    after = load(version, "own_qos/sacctmgr_show_qos_after_limit_with_raw_usage")
    assert own_qos.parser.parse_tres(after.lines[0].split("|")[1]) == {"cpu": 600, "mem": 100}
    alone = load(version, "own_qos/sacctmgr_modify_qos_raw_usage_alone")
    runner = FakeRunner()
    SlurmClient(runner, f"test{version.replace('.', '')}").reset_qos_usage("own_qos_capture")
    assert runner.writes == [alone.argv]
    assert (alone.exit, alone.stdout, alone.stderr) == (0, "", "")
