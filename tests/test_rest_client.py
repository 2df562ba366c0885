"""RestVerbs' requests against real slurmrestd 24.11 answers (tests/data/slurm-24.11/rest)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tests.rest_captures import Replay, capture, request_body
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmCommandError, SlurmError
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.parser import JobRecord
from waldur_site_agent_slurm.slurm.rest_parser import association_tres, job_record
from waldur_site_agent_slurm.slurm.rest_verbs import RestAccount, RestSettings, RestVerbs

CLUSTER = "cluster2411"  # the cluster the answers were recorded on


def client(tmp_path: Path, replay: Replay, version: str = "v0.0.42") -> RestVerbs:
    token = tmp_path / "token"
    token.write_text("a.b.c")
    settings = RestSettings(
        url="http://127.0.0.1:7820", api_version=version, username="root", token_file=token
    )
    return RestVerbs(settings, CLUSTER, transport=replay.transport())


def with_cluster(name: str) -> Replay:
    """Answer the recorded request, asked with this client's cluster filter added."""
    found = capture(name)
    sep = "&" if "?" in found.path else "?"
    return Replay().on(found.method, f"{found.path}{sep}cluster={CLUSTER}", name)


@pytest.mark.parametrize("version", ["v0.0.40", "v0.0.41", "v0.0.42"])
def test_associations_become_the_records_sacctmgr_gives(tmp_path: Path, version: str) -> None:
    suffix = "" if version == "v0.0.42" else f"_{version.replace('.', '')}"
    replay = with_cluster(f"get_associations_account_hpc_alloc1{suffix}")
    records = client(tmp_path, replay, version).associations(account="hpc_alloc1")
    account = next(r for r in records if not r.user)
    assert account.parent == "hpc_proj1"
    assert account.fairshare == "60"
    assert account.grp_tres_mins == {"cpu": 6000, "mem": 12288000, "billing": 6000, "gres/gpu": 600}
    assert account.qos == ("normal", "slowdown", "blocked")
    assert account.default_qos == "normal"
    alice = next(r for r in records if r.user == "alice")
    assert alice.max_tres_mins == {"cpu": 60, "gres/gpu": 30}
    assert alice.grp_tres_mins == {}


def test_an_account_is_read_by_name(tmp_path: Path) -> None:
    replay = Replay().replay("get_account_hpc_alloc1").replay("err_get_account_nonexistent")
    rest = client(tmp_path, replay)
    found = rest.account("hpc_alloc1")
    assert found is not None and found.name == "hpc_alloc1"
    assert rest.account("hpc_nosuch") is None


def test_accounts_are_listed(tmp_path: Path) -> None:
    accounts = client(tmp_path, Replay().replay("get_accounts")).accounts()
    assert RestAccount("root", "default root account", "root") in accounts
    assert len(accounts) == len(json.loads(capture("get_accounts").body)["accounts"])


def test_tres_names_join_type_and_name(tmp_path: Path) -> None:
    names = client(tmp_path, Replay().replay("get_tres")).tres_names()
    assert {"cpu", "mem", "billing", "gres/gpu"} <= names


def test_qos_names(tmp_path: Path) -> None:
    assert {"normal", "slowdown", "blocked"} <= client(
        tmp_path, Replay().replay("get_qos")
    ).qos_names()


def test_ping_says_slurmdbd_responds(tmp_path: Path) -> None:
    assert client(tmp_path, Replay().replay("get_ping")).ping()


def test_add_account_sends_the_one_call_shape_slurmrestd_accepted(tmp_path: Path) -> None:
    replay = Replay().replay("post_accounts_association_create")
    created = client(tmp_path, replay).add_account(
        "hpc_rest2",
        description="created by rest (one call)",
        organization="cust1",
        parent="hpc_proj1",
        fairshare=5,
    )
    assert created
    assert json.loads(replay.sent[0].content) == request_body("post_accounts_association_create")


def test_adding_an_existing_account_is_not_an_error(tmp_path: Path) -> None:
    replay = Replay().replay("post_accounts_association_existing")
    rest = client(tmp_path, replay)
    assert not rest.add_account("hpc_rest2", description="d", organization="o", parent="root")


def test_account_limits_are_sent_as_grp_tres_minutes(tmp_path: Path) -> None:
    replay = with_cluster("get_associations_hpc_rest1_after_assoc")
    replay.replay("post_associations_update_limit")
    client(tmp_path, replay).set_account_limits("hpc_rest1", {"cpu": 2000})
    [sent] = json.loads(replay.sent[-1].content)["associations"]
    [recorded] = request_body("post_associations_update_limit")["associations"]
    assert sent["max"]["tres"]["group"]["minutes"] == recorded["max"]["tres"]["group"]["minutes"]
    assert {k: v for k, v in sent.items() if k != "max"} == {
        k: v for k, v in recorded.items() if k != "max"
    }


def test_a_fairshare_change_sends_the_held_tres_lists_again(tmp_path: Path) -> None:
    # slurmrestd clears every TRES list an update leaves out: GrpTRESMins must go back.
    replay = with_cluster("get_associations_hpc_rest1_after_update")
    replay.replay("post_associations_update_limit")
    client(tmp_path, replay).modify_account("hpc_rest1", fairshare=7)
    [sent] = json.loads(replay.sent[-1].content)["associations"]
    assert sent["shares_raw"] == 7
    tres = sent["max"]["tres"]
    assert tres["group"]["minutes"] == [{"type": "cpu", "name": "", "count": 2000}]
    # No parent is recorded for it: its Max* lists go back as read too (all empty).
    assert tres["total"] == tres["group"]["active"] == tres["minutes"]["total"] == []
    assert tres["minutes"]["per"]["job"] == tres["per"]["job"] == tres["per"]["node"] == []


def test_removing_an_account_with_running_jobs_says_jobs_are_active(tmp_path: Path) -> None:
    replay = Replay().replay("delete_account_with_running_job")
    with pytest.raises(SlurmCommandError) as err:
        client(tmp_path, replay).remove_account("hpc_alloc2")
    assert err.value.answer is Answer.JOBS_ACTIVE


def test_removing_a_missing_account_is_not_an_error(tmp_path: Path) -> None:
    replay = Replay().replay("delete_account_nonexistent")
    assert not client(tmp_path, replay).remove_account("hpc_nosuch")


def test_removing_an_association_reports_what_went(tmp_path: Path) -> None:
    found = capture("delete_association_orphan")

    def removed(request: httpx.Request) -> httpx.Response:
        assert dict(request.url.params) == {
            "account": "hpc_rest1",
            "user": "bob",
            "cluster": CLUSTER,
        }
        return found.response()

    replay = Replay().on(
        "DELETE",
        "/slurmdb/v0.0.42/association/?account=hpc_rest1&user=bob&cluster=cluster2411",
        removed,
    )
    assert client(tmp_path, replay).remove_user("bob", "hpc_rest1")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.account("../accounts"),
        lambda c: c.account("a?b"),
        lambda c: c.associations(account="a&user=root"),
        lambda c: c.remove_account("x/../y"),
        lambda c: c.remove_user("bob", "a b"),
        lambda c: c.add_users(["ro ot"], "acc"),
        lambda c: c.add_account("ok", description="d", organization="o", parent="-p"),
        lambda c: c.set_account_limits("ok", {"cpu": -1}),
        lambda c: c.set_account_limits("ok", {"CPU;x": 1}),
        lambda c: c.cancel_job("12/../34"),
        lambda c: c.modify_account("ok", qos=["normal", "x,y"]),
        lambda c: c.modify_account("ok", default_qos="-x"),
        lambda c: c.modify_account("ok", fairshare=-5),
        lambda c: c.jobs(Window(datetime.now(timezone.utc), datetime.now(timezone.utc)), ["a;b"]),
    ],
)
def test_bad_values_are_refused_before_any_request(tmp_path: Path, call: object) -> None:
    replay = Replay()
    with pytest.raises(SlurmError, match="Invalid"):
        call(client(tmp_path, replay))  # type: ignore[operator]
    assert replay.sent == []


def test_a_bad_cluster_name_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a.b.c")
    settings = RestSettings(
        url="http://127.0.0.1:7820", api_version="v0.0.42", username="root", token_file=token
    )
    with pytest.raises(InvalidValueError, match="cluster name"):
        RestVerbs(settings, "c&x")


def test_a_job_becomes_the_record_sacct_gives(tmp_path: Path) -> None:
    """Job 5 as the 24.11 sacct capture of the same state shows it (sacct_allocations_*.txt).

    Energy, unset (-2) in the JSON, is left out as sacct leaves it out.
    """
    [job] = json.loads(capture("get_job_5").body)["jobs"]
    record = job_record(job)
    assert record == JobRecord(
        "5",
        "hpc_alloc2",
        "bob",
        "FAILED",
        datetime(2026, 12, 2, 17, 47, 50),
        datetime(2026, 12, 2, 17, 47, 52),
        {"cpu": 1, "mem": 256, "node": 1, "billing": 1},
    )


@pytest.mark.parametrize(
    ("array", "het", "expected"),
    [
        ({"job_id": 120, "task_id": {"set": True, "infinite": False, "number": 3}}, {}, "120_3"),
        ({"job_id": 120, "task_id": {"set": False, "number": 0}, "task": "4-9"}, {}, "120_[4-9]"),
        ({}, {"job_id": 130, "job_offset": {"set": True, "infinite": False, "number": 1}}, "130+1"),
    ],
)
def test_array_and_het_job_ids_read_as_sacct_prints_them(
    array: dict[str, object], het: dict[str, object], expected: str
) -> None:
    [job] = json.loads(capture("get_job_5").body)["jobs"]
    assert job_record({**job, "array": array, "het": het}).job_id == expected


@pytest.mark.parametrize(
    ("version", "start", "end"),
    [
        ("v0.0.42", "1796083200", "1798761600"),
        # A bare number is refused by these parsers' query (the REST tier runs them).
        ("v0.0.41", "uts1796083200", "uts1798761600"),
        ("v0.0.40", "uts1796083200", "uts1798761600"),
    ],
)
def test_jobs_of_a_window_are_read_in_one_request_as_sacct_selects_them(
    tmp_path: Path, version: str, start: str, end: str
) -> None:
    body = json.loads(capture("get_job_5").body)
    window = Window(
        datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    )
    # Both flags: allocations only, each job once, times not clipped to the window.
    path = (
        f"/slurmdb/{version}/jobs/?cluster={CLUSTER}&account=hpc_alloc1,hpc_alloc2"
        f"&start_time={start}&end_time={end}&skip_steps=true&disable_truncate_usage_time=true"
    )
    replay = Replay().on("GET", path, lambda _r: httpx.Response(200, json=body))
    jobs = client(tmp_path, replay, version).jobs(
        window, ["hpc_alloc2", "hpc_alloc1", "hpc_alloc2"]
    )
    assert [j.job_id for j in jobs] == ["5"]
    assert len(replay.sent) == 1


def test_an_update_sends_again_only_the_max_tres_lists_not_inherited() -> None:
    account = {"max": {"tres": {"minutes": {"per": {"job": [{"type": "cpu", "count": 60}]}}}}}
    user = {
        "max": {
            "tres": {
                "group": {"minutes": [{"type": "cpu", "count": 5}]},
                "minutes": {"per": {"job": [{"type": "cpu", "count": 60}]}},
                "per": {"node": [{"type": "cpu", "count": 2}]},
            }
        }
    }
    held = association_tres(user, account)["max"]["tres"]
    assert held["group"]["minutes"] == [{"type": "cpu", "count": 5}]
    assert "minutes" not in held  # MaxTRESMins is the account's: sending it would pin it
    assert held["per"] == {"node": [{"type": "cpu", "count": 2}]}
    assert held["total"] == held["group"]["active"] == []
