"""The backend against a real SLURM: real sacctmgr, real jobs, real accounting."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.real.conftest import (
    USERS,
    assoc_rows,
    real_backend,
    run,
    stack,
    submit,
    submit_until,
    wait_finished,
)
from tests.test_backend_commands import resource

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = pytest.mark.real_slurm


def test_order_creates_tree_limits_and_users_visible_to_sacctmgr(names: dict[str, str]) -> None:
    res = resource(**names)
    backend = real_backend(default_account_policy="individual")
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[0], USERS[1]})
    rows = {row[1]: row for row in assoc_rows(names["slug"])}
    assert rows[""][2] == names["project_slug"]
    # cpu factor 1, mem 10 GB-hours × 61440 = 614400 MB-min (shown as 600G), gpu 5 h × 60.
    assert rows[""][3] == "cpu=100,gres/gpu=300,mem=600G"
    assert {USERS[0], USERS[1]} <= set(rows)
    parents = {
        row[0]: row[2]
        for row in (assoc_rows(names["project_slug"]) + assoc_rows(names["customer_slug"]))
        if not row[1]
    }
    assert parents == {
        names["project_slug"]: names["customer_slug"],
        names["customer_slug"]: "root",
    }
    description = run(
        "sacctmgr", "-P", "-n", "list", "account", f"name={names['slug']}", "format=Descr"
    ).stdout.strip()
    assert description == "my allocation rm -rf /"


def test_create_twice_converges_and_update_changes_only_limits(names: dict[str, str]) -> None:
    res = resource(**names)
    real_backend().create_resource_with_id(res, names["slug"])
    before = assoc_rows(names["slug"])
    backend = real_backend()
    backend.create_resource_with_id(res, names["slug"])
    assert assoc_rows(names["slug"]) == before
    real_backend().set_resource_limits(names["slug"], {"cpu": 250, "mem": 10, "gpu": 5})
    assert assoc_rows(names["slug"])[0][3] == "cpu=250,gres/gpu=300,mem=600G"


def test_reported_usage_equals_what_real_jobs_consumed(names: dict[str, str]) -> None:
    res = resource(**names, limits={})
    backend = real_backend()
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[0], USERS[1]})
    jobs = {
        USERS[0]: submit(USERS[0], names["slug"], "-n2", wrap="sleep 4"),
        USERS[1]: submit(USERS[1], names["slug"], "-n1", "--gres=gpu:1", wrap="sleep 2"),
    }
    assert all(code == 0 for code, _ in jobs.values()), jobs
    wait_finished([jid for _, jid in jobs.values()])
    expected = {}
    for user, (_, jid) in jobs.items():
        out = run(
            "sacct", "-X", "-n", "-P", "-j", jid, "--noconvert", "--format=ElapsedRaw,AllocTRES"
        ).stdout.strip()
        elapsed, tres = out.split("|")
        alloc = dict(item.split("=") for item in tres.split(","))
        seconds = int(elapsed)
        expected[user] = {
            "cpu": round(int(alloc["cpu"]) * seconds / 60, 2),
            "mem": round(int(alloc["mem"].rstrip("M")) * seconds / 60 / 61440, 2),
            "gpu": round(int(alloc.get("gres/gpu", 0)) * seconds / 60 / 60, 2),
        }
    report = real_backend()
    report.timezone = "UTC"
    usage = report._get_usage_report([names["slug"]])[names["slug"]]
    assert {u: usage[u] for u in expected} == expected
    total = usage["TOTAL_ACCOUNT_USAGE"]
    for key in ("cpu", "mem", "gpu"):
        assert total[key] == round(sum(v[key] for v in expected.values()), 2)
    now = datetime.now(UTC)
    past = report.get_usage_report_for_period([names["slug"]], now.year - 1, now.month)
    assert past[names["slug"]] == {"TOTAL_ACCOUNT_USAGE": {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}}


def test_pause_blocks_new_jobs_and_restore_allows_them(names: dict[str, str]) -> None:
    res = resource(**names, limits={})
    backend = real_backend()
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[2]})
    real_backend().pause_resource(names["slug"])
    assert real_backend().get_resource_metadata(names["slug"]) == {"qos": "blocked"}
    submit_until(USERS[2], names["slug"], accepted=False)
    real_backend().restore_resource(names["slug"])
    message = submit_until(USERS[2], names["slug"], accepted=True)
    wait_finished([message])


def test_user_limits_are_max_tres_mins_on_the_association(names: dict[str, str]) -> None:
    res = resource(**names, limits={})
    backend = real_backend()
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[0]})
    real_backend().set_resource_user_limits(names["slug"], USERS[0], {"cpu": 30, "gpu": 1})
    rows = {row[1]: row for row in assoc_rows(names["slug"])}
    assert rows[USERS[0]][4] == "cpu=30,gres/gpu=60"
    real_backend().set_resource_user_limits(names["slug"], USERS[0], {})
    rows = {row[1]: row for row in assoc_rows(names["slug"])}
    assert rows[USERS[0]][4] == ""


def test_removing_users_default_account_and_terminating_with_running_job(
    names: dict[str, str],
) -> None:
    res = resource(**names, limits={})
    backend = real_backend(default_account_policy="individual")
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[0], USERS[1]})
    code, job = submit(USERS[0], names["slug"], "-n1", wrap="sleep 300")
    assert code == 0, job
    real_backend().remove_users_from_resource(res, {USERS[1]})
    assert USERS[1] not in {row[1] for row in assoc_rows(names["slug"])}
    real_backend().delete_resource(res, project_slug=names["project_slug"])
    assert assoc_rows(names["slug"]) == []
    assert assoc_rows(names["project_slug"]) == []
    assert [row[0] for row in assoc_rows(names["customer_slug"])] == [names["customer_slug"]]


@pytest.mark.parametrize("bad", ["a b", "a=b", "a,b", "a;b", "a$b", "-rf", "A'b"])
def test_bad_names_never_reach_real_sacctmgr(names: dict[str, str], bad: str) -> None:
    def ours() -> list[str]:
        # Only this test's rows: other tests may use the cluster at the same time.
        out = run(
            "sacctmgr", "-P", "-n", "show", "assoc", "where", f"cluster={stack().cluster}"
        ).stdout
        fields = {*names.values(), bad}
        return [line for line in out.splitlines() if fields & set(line.split("|"))]

    assert ours() == []
    with pytest.raises(BackendError):
        real_backend().create_resource_with_id(resource(**names), bad)
    with pytest.raises(BackendError):
        real_backend().add_users_to_resource(resource(**names), {bad})
    assert ours() == []


def test_ping_and_diagnostics_check_the_real_cluster() -> None:
    assert real_backend().ping()
    assert real_backend().diagnostics()
    assert not real_backend(cluster_name="nosuchcluster").ping()
    assert real_backend().list_components() == sorted(real_backend().list_components())
    assert "gres/gpu" in real_backend().list_components()
