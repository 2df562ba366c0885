"""The allocation's QoS (``qos_management``) over slurmrestd, against real 24.11 answers.

The ``*qos*`` captures in tests/data/slurm-24.11/rest/ were recorded on the real 24.11
stack (cluster ``test2411``): a QoS ``hpc_own1`` added by sacctmgr with every option the
plugin sets (and PreemptMode=requeue), a QoS ``hpc_own2`` created by the body this client
sends, an update of ``hpc_own1`` and the reads after each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import FakeRunner
from tests.rest_captures import Replay, capture, request_body
from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.errors import SlurmCommandError, SlurmError
from waldur_site_agent_slurm.rest_client import RestSettings, SlurmRestClient
from waldur_site_agent_slurm.slurm.rest_parser import qos_record

DB = "/slurmdb/v0.0.42/"
# The options hpc_own2 was created with (post_qos_create.request.json).
OPTIONS = own_qos.QosOptions(
    flags=("DenyOnLimit", "NoDecay"),
    grp_tres={"cpu": 2},
    max_jobs=1,
    max_wall=120,
    min_tres_per_job={"cpu": 1},
)


def body(name: str) -> Any:
    return json.loads(capture(name).body)


def served(replay: Replay, version: str = "v0.0.42") -> Replay:
    """``replay`` with the server's version list (read before the first request)."""
    paths = {"paths": {f"/slurmdb/{version}/ping/": {}, f"/slurm/{version}/ping/": {}}}
    return replay.on("GET", "/openapi/v3", lambda _r: httpx.Response(200, json=paths))


def rest_client(
    tmp_path: Path, replay: Replay, runner: FakeRunner | None = None, version: str = "v0.0.42"
) -> SlurmRestClient:
    token = tmp_path / "token"
    token.write_text("a.b.c")
    settings = RestSettings(
        url="http://127.0.0.1:7820", api_version=version, username="root", token_file=token
    )
    transport = served(replay, version).transport()
    return SlurmRestClient(settings, "test2411", transport=transport, command_runner=runner)


def posted(replay: Replay) -> list[Any]:
    return [json.loads(r.content) for r in replay.sent if r.method == "POST"]


def methods(replay: Replay) -> list[str]:
    """The requests sent, but the version list (read once per process)."""
    return [r.method for r in replay.sent if r.url.path != "/openapi/v3"]


@pytest.mark.parametrize(
    ("suffix", "grp_tres_mins"),
    # Data parsers v0.0.40 and v0.0.41 have no GrpTRESMins on a QoS.
    [("", {"cpu": 600}), ("_v0040", {}), ("_v0041", {})],
)
def test_a_qos_reads_as_the_record_sacctmgr_gives(
    suffix: str, grp_tres_mins: dict[str, int]
) -> None:
    [qos] = body(f"get_qos_hpc_own1{suffix}")["qos"]
    assert qos_record(qos) == own_qos.QosRecord(
        name="hpc_own1",
        flags=frozenset({"DenyOnLimit", "NoDecay"}),
        grp_tres={"cpu": 4, "gres/gpu": 1},
        max_jobs=2,  # MaxJobsPerUser, as sacctmgr's MaxJobs on a QoS
        max_submit=6,
        max_wall=90,
        min_tres_per_job={"cpu": 1},
        grp_tres_mins=grp_tres_mins,
    )


def test_a_qos_without_limits_reads_as_unset() -> None:
    normal = next(q for q in body("get_qos")["qos"] if q["name"] == "normal")
    record = qos_record(normal)
    assert (record.max_jobs, record.max_submit, record.max_wall) == (None, None, None)
    assert (record.flags, record.grp_tres, record.min_tres_per_job) == (frozenset(), {}, {})


def test_a_missing_qos_is_created_with_the_body_slurmrestd_accepted(tmp_path: Path) -> None:
    replay = (
        Replay().on("GET", f"{DB}qos/hpc_own2", "get_qos_nonexistent").replay("post_qos_create")
    )
    client = rest_client(tmp_path, replay)
    assert client.qos_record("hpc_own2") is None
    assert client.add_qos("hpc_own2", OPTIONS.settings()) is True
    assert posted(replay) == [request_body("post_qos_create")]
    # Read back, the QoS has the configured options: a re-run adopts it.
    [made] = body("get_qos_hpc_own2_after_create")["qos"]
    assert own_qos.differences(OPTIONS, qos_record(made)) == {}
    assert made["description"] == "hpc_own2"  # as sacctmgr add qos describes it


def test_an_existing_qos_is_left_as_it_is_by_add(tmp_path: Path) -> None:
    replay = Replay().replay("get_qos_hpc_own1")
    assert rest_client(tmp_path, replay).add_qos("hpc_own1", OPTIONS.settings()) is False
    assert posted(replay) == []


def test_an_update_sends_the_flags_and_preemption_mode_again(tmp_path: Path) -> None:
    # slurmrestd 24.11 clears the flags and the preemption mode an update leaves out.
    replay = Replay().replay("get_qos_hpc_own1").replay("post_qos_update")
    client = rest_client(tmp_path, replay)
    assert client.qos_record("hpc_own1") is not None
    client.modify_qos("hpc_own1", {"MaxJobs": "3", "GrpTRESMins": "cpu=900"})
    assert posted(replay) == [request_body("post_qos_update")]
    assert methods(replay) == ["GET", "POST"]  # the read, the update: no second read
    [after] = body("get_qos_hpc_own1_after_update")["qos"]
    assert (after["flags"], after["preempt"]["mode"]) == (["DENY_LIMIT", "NO_DECAY"], ["REQUEUE"])
    assert (qos_record(after).max_jobs, qos_record(after).grp_tres_mins) == (3, {"cpu": 900})


def test_an_option_the_data_parser_ignores_fails_the_update(tmp_path: Path) -> None:
    # v0.0.41 answers GrpTRESMins on a QoS with 200 and "Ignoring unknown field".
    qos = {"qos": [{"name": "hpc_own3", "flags": []}], "errors": []}
    replay = Replay().on(
        "GET", "/slurmdb/v0.0.41/qos/hpc_own3", lambda _r: httpx.Response(200, json=qos)
    )
    replay.replay("post_qos_v0041_grp_tres_mins_ignored")
    client = rest_client(tmp_path, replay, version="v0.0.41")
    with pytest.raises(SlurmCommandError, match='Ignoring unknown field "total"'):
        client.modify_qos("hpc_own3", {"GrpTRESMins": "cpu=600"})
    assert posted(replay) == [request_body("post_qos_v0041_grp_tres_mins_ignored")]


def test_an_update_of_a_missing_qos_fails_and_creates_nothing(tmp_path: Path) -> None:
    replay = Replay().on("GET", f"{DB}qos/hpc_own2", "get_qos_nonexistent")
    with pytest.raises(SlurmCommandError, match="QoS hpc_own2 does not exist"):
        rest_client(tmp_path, replay).modify_qos("hpc_own2", {"MaxJobs": "3"})
    assert posted(replay) == []


def test_a_qos_reset_runs_sacctmgr_after_the_update(tmp_path: Path) -> None:
    runner = FakeRunner()
    replay = Replay().replay("get_qos_hpc_own1").replay("post_qos_update")
    client = rest_client(tmp_path, replay, runner)
    client.modify_qos("hpc_own1", {"GrpTRESMins": "cpu=900", "RawUsage": "0"})
    assert runner.calls == [
        ["sacctmgr", "--immediate", "modify", "qos", "hpc_own1", "cluster=test2411", "set",
         "RawUsage=0"],
    ]  # fmt: skip
    assert posted(replay)[0]["qos"][0]["limits"]["max"]["tres"]["minutes"]["total"] == [
        {"type": "cpu", "count": 900}
    ]


def test_a_qos_some_association_defaults_to_is_not_deleted(tmp_path: Path) -> None:
    replay = Replay().replay("get_associations_qos_default")
    with pytest.raises(SlurmCommandError, match="default QoS of test2411/hpc_qacct"):
        rest_client(tmp_path, replay).remove_qos("hpc_own1")
    assert methods(replay) == ["GET"]


@pytest.mark.parametrize("capture_name", ["delete_qos_hpc_own2", "delete_qos_nonexistent"])
def test_a_qos_no_association_defaults_to_is_deleted_and_a_missing_one_is_fine(
    tmp_path: Path, capture_name: str
) -> None:
    replay = Replay().replay("get_associations_qos_default").replay(capture_name)
    rest_client(tmp_path, replay).remove_qos("hpc_own2")
    assert replay.sent[-1].method == "DELETE"


def test_a_new_account_gets_the_parent_qos_list_and_its_own_in_one_request(
    tmp_path: Path,
) -> None:
    # sacctmgr's add account QOS+=a,b keeps the parent's list; slurmrestd takes no '+name'.
    parent = {"account": "proj", "user": "", "parent_account": "root", "shares_raw": 1}
    rows = {"associations": [{**parent, "qos": ["normal"], "default": {"qos": ""}}]}
    replay = Replay().on(
        "GET",
        f"{DB}associations/?cluster=test2411&account=proj",
        lambda _r: httpx.Response(200, json={**rows, "errors": []}),
    )
    replay.on("POST", f"{DB}accounts_association/", lambda _r: httpx.Response(200, json={}))
    client = rest_client(tmp_path, replay)
    qos = {"QOS+": "alloc,boost", "DefaultQOS": "alloc"}
    assert client.add_account("alloc", "Alloc", "proj", "proj", qos=qos) is True
    [sent] = posted(replay)
    association = sent["association_condition"]["association"]
    assert association == {
        "parent": "proj",
        "qoslevel": ["normal", "alloc", "boost"],
        "defaultqos": "alloc",
    }


@pytest.mark.parametrize(
    "settings",
    [
        {"Flags": "DenyOnLimit,Bogus"},
        {"MaxJobs": "1;2"},
        {"MaxWall": "tomorrow"},
        {"GrpTRES": "cpu=x"},
        {"GrpTRES": "cpu/../x=1"},
        {"Priority": "10"},
    ],
)
def test_bad_qos_values_are_refused_before_any_request(
    tmp_path: Path, settings: Mapping[str, str]
) -> None:
    replay = Replay()
    client = rest_client(tmp_path, replay)
    with pytest.raises(SlurmError):
        client.add_qos("hpc_own2", {**OPTIONS.settings(), **settings})
    with pytest.raises(SlurmError):
        client.modify_qos("hpc_own2", dict(settings))
    with pytest.raises(SlurmError, match="Invalid"):
        client.qos_record("own/../x")
    assert methods(replay) == []
