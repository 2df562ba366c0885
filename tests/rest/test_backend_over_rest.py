"""SlurmBackend in REST mode against the real slurmrestd 24.11, with real jobs.

The order, membership, pause, periodic, usage and diagnostic behaviours of the real
SLURM tier, made over slurmrestd and checked through sacctmgr/sacct.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.diagnosing import diagnose, failed, fix, view_of
from tests.rest.conftest import API_VERSION, OLDER_VERSIONS, USERS, Backends
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.rest

LIMITS = "GrpTRESMins,MaxTRESMins,ParentName,QOS"
# An order cycle and a periodic apply also run with the older data parsers (usage: below).
EVERY_VERSION = pytest.mark.parametrize("api_version", [API_VERSION, *OLDER_VERSIONS])


@EVERY_VERSION
def test_an_order_its_members_and_its_termination_over_rest(
    backends: Backends, names: dict[str, str]
) -> None:
    res = resource(**names)
    backend = backends.rest(default_account_policy="individual")
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, set(USERS))
    rows = backends.assoc_rows(names["slug"], LIMITS)
    # cpu factor 1, mem 10 GB-hours × 61440 MB-min (600G), gpu 5 h × 60: set with the account.
    assert rows[""] == ["cpu=100,gres/gpu=300,mem=600G", "", names["project_slug"], "normal"]
    assert set(rows) == {"", *USERS}
    assert backends.assoc_rows(names["project_slug"], "ParentName")[""] == [names["customer_slug"]]

    backends.rest().set_resource_user_limits(names["slug"], USERS[0], {"cpu": 30, "gpu": 1})
    backends.rest().set_resource_limits(names["slug"], {"cpu": 250, "mem": 10, "gpu": 5})
    rows = backends.assoc_rows(names["slug"], LIMITS)
    assert rows[USERS[0]][1] == "cpu=30,gres/gpu=60"
    assert rows[""][0] == "cpu=250,gres/gpu=300,mem=600G"

    leaving = backends.submit(USERS[1], names["slug"], "-n1", wrap="sleep 300")
    assert backends.rest().remove_users_from_resource(res, {USERS[1]}) == [USERS[1]]
    assert set(backends.assoc_rows(names["slug"], LIMITS)) == {"", USERS[0]}
    assert backends.job_state(leaving) == "CANCELLED"

    running = backends.submit(USERS[0], names["slug"], "-n1", wrap="sleep 300")
    backends.rest().delete_resource(res, project_slug=names["project_slug"])
    assert backends.assoc_rows(names["slug"], LIMITS) == {}
    assert backends.assoc_rows(names["project_slug"], LIMITS) == {}
    assert set(backends.assoc_rows(names["customer_slug"], LIMITS)) == {""}
    assert backends.job_state(running) == "CANCELLED"


def test_usage_over_rest_is_the_report_sacct_gives_with_every_data_parser(
    backends: Backends, names: dict[str, str]
) -> None:
    res = resource(**names, limits={})
    backend = backends.rest()
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, set(USERS))
    jobs = [
        backends.submit(USERS[0], names["slug"], "-n2", wrap="sleep 4"),
        backends.submit(USERS[1], names["slug"], "-n1", "--gres=gpu:1", wrap="sleep 2"),
    ]
    # A requeued job: sacct reports its last run only; slurmrestd adds the earlier ones
    # unless asked for what sacct gives.
    requeued = backends.submit(USERS[1], names["slug"], "-n1", "--requeue", wrap="sleep 300")
    backends.requeue_after_a_run(requeued)
    backends.wait_finished(jobs)
    runs = backends.stack.run("sacct", "-D", "-X", "-n", "-P", "-j", requeued, "--format=State")
    assert runs.stdout.split()[0] == "REQUEUED", runs.stdout
    over_sacct = backends.cli()
    over_sacct.timezone = "UTC"
    report = over_sacct._get_usage_report([names["slug"]])
    for version in (API_VERSION, *OLDER_VERSIONS):
        over_rest = replace(backends, api_version=version).rest()
        over_rest.timezone = "UTC"
        assert over_rest._get_usage_report([names["slug"]]) == report, version
    usage = report[names["slug"]]
    assert usage[USERS[0]]["cpu"] > 0 and usage[USERS[1]]["cpu"] > 0
    # A membership pull reads no jobs in either mode; usage asked of it is the same report.
    over_sacct, over_rest = backends.cli(), backends.rest()
    over_sacct.timezone = over_rest.timezone = "UTC"
    sent = paths(over_rest)
    pulled = {"cli": over_sacct.pull_resources([res]), "rest": over_rest.pull_resources([res])}
    assert over_sacct.runner.calls == 1  # sacctmgr show assoc, no sacct
    assert not [path for path in sent if "jobs" in path], sent
    for mode in ("cli", "rest"):
        assert pulled[mode][names["slug"]][1].usage == usage, mode
    assert over_sacct.runner.calls == 2  # then one sacct
    assert len([path for path in sent if "jobs" in path]) == 1, sent


def paths(backend: SlurmBackend) -> list[str]:
    """The paths of the requests ``backend`` sends to slurmrestd from now on."""
    sent: list[str] = []
    rest = backend.client.api.rest  # type: ignore[attr-defined]
    request = rest.request

    def recording(method: str, path: str, **kwargs: Any) -> Any:
        sent.append(path)
        return request(method, path, **kwargs)

    rest.request = recording
    return sent


def test_pause_refuses_new_jobs_and_restore_allows_them_over_rest(
    backends: Backends, names: dict[str, str]
) -> None:
    res = resource(**names, limits={})
    backends.rest().create_resource_with_id(res, names["slug"])
    backends.rest().add_users_to_resource(res, {USERS[0]})
    assert backends.rest().pause_resource(names["slug"])
    assert backends.rest().get_resource_metadata(names["slug"]) == {"qos": "blocked"}
    assert submitted(backends, names["slug"], accepted=False)
    assert backends.rest().restore_resource(names["slug"])
    assert submitted(backends, names["slug"], accepted=True)


def submitted(backends: Backends, account: str, *, accepted: bool, user: str = USERS[0]) -> bool:
    """sbatch until slurmctld, which hears of the QoS a moment later, answers as expected."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        proc = backends.stack.run(
            "sbatch", "--parsable", "-A", account, "--output=/dev/null", "--wrap", "true",
            user=user,
        )  # fmt: skip
        if (proc.returncode == 0) == accepted:
            return True
        if proc.returncode == 0:
            backends.stack.run("scancel", proc.stdout.strip())
        time.sleep(0.5)
    return False


@EVERY_VERSION
def test_periodic_settings_over_rest_are_read_back_and_repeat_writes_nothing(
    backends: Backends, names: dict[str, str], tmp_path: Path
) -> None:
    backends.rest().create_resource_with_id(resource(**names, limits={}), names["slug"])
    values: dict[str, Any] = {
        "fairshare": 500,
        "limit_type": "GrpTRESMins",
        "grp_tres_mins": {"cpu": 6000, "gpu": 600},
        "reset_raw_usage": True,
    }
    periodic = {"periodic_limits": {"enabled": True, "state_dir": str(tmp_path)}}
    first = backends.rest(**periodic).apply_periodic_settings(names["slug"], values)
    assert first["success"] is True, first["error"]
    rows = backends.assoc_rows(names["slug"], "Fairshare,GrpTRESMins")
    assert rows[""] == ["500", "cpu=100,gres/gpu=600"]
    second = backends.rest(**periodic).apply_periodic_settings(
        names["slug"], {**values, "reset_raw_usage": False}
    )
    assert second == {**second, "success": True, "commands_executed": []}


def test_the_diagnostic_fixes_a_missing_member_over_rest(
    backends: Backends, names: dict[str, str]
) -> None:
    res = resource(**names, limits={})
    backends.rest().create_resource_with_id(res, names["slug"])
    view = view_of(res, users=(USERS[0],))
    diagnosis = diagnose(backends.rest(), view)
    assert failed(diagnosis) == {"users": ("(none)", USERS[0])}
    [step] = diagnosis.steps
    assert step.line.startswith(f"slurmrestd {backends.api_version} ")
    assert USERS[0] in step.line

    fix(backends.rest(), diagnosis)
    assert set(backends.assoc_rows(names["slug"], LIMITS)) == {"", USERS[0]}
    assert failed(diagnose(backends.rest(), view)) == {}


def test_a_default_account_is_moved_before_its_association_goes_over_rest(
    backends: Backends, names: dict[str, str]
) -> None:
    res = resource(**names, limits={})
    backend = backends.rest()
    backend.create_resource_with_id(res, names["slug"])
    client = backend.client
    client.add_users([USERS[1]], [names["slug"], names["project_slug"]])
    client.modify_user(USERS[1], None, {"DefaultAccount": names["slug"]})
    assert client.user_defaults([USERS[1]]) == {USERS[1]: names["slug"]}

    client.modify_user(USERS[1], None, {"DefaultAccount": names["project_slug"]})
    client.remove_user(USERS[1], names["slug"])
    out = backends.stack.run(
        "sacctmgr", "-P", "-n", "list", "user", USERS[1], "format=DefaultAccount"
    ).stdout
    assert out.strip() == names["project_slug"]
    assert set(backends.assoc_rows(names["slug"], LIMITS)) == {""}


def test_pause_under_qos_enforcement_is_grp_submit_jobs_over_rest(
    backends: Backends, names: dict[str, str]
) -> None:
    lever = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
    backends.rest(**lever).create_resource_with_id(resource(**names, limits={}), names["slug"])
    assert backends.rest(**lever).pause_resource(names["slug"])
    assert backends.assoc_rows(names["slug"], "GrpSubmitJobs,QOS")[""] == ["0", "normal"]
    metadata = backends.rest(**lever).get_resource_metadata(names["slug"])
    assert metadata == {"qos": "normal", "grp_submit_jobs": 0}
    assert backends.rest(**lever).restore_resource(names["slug"])
    assert backends.assoc_rows(names["slug"], "GrpSubmitJobs,QOS")[""] == ["", "normal"]


def test_a_fairshare_change_and_a_pause_keep_the_limits_over_rest(
    backends: Backends, names: dict[str, str], tmp_path: Path
) -> None:
    # slurmrestd clears every TRES list an association update leaves out.
    backends.rest().create_resource_with_id(resource(**names), names["slug"])
    before = backends.assoc_rows(names["slug"], "GrpTRESMins")
    assert before == {"": ["cpu=100,gres/gpu=300,mem=600G"]}
    periodic = {"periodic_limits": {"enabled": True, "state_dir": str(tmp_path)}}
    done = backends.rest(**periodic).apply_periodic_settings(names["slug"], {"fairshare": 9})
    assert done["success"] is True, done["error"]
    assert backends.assoc_rows(names["slug"], "Fairshare")[""] == ["9"]
    assert backends.assoc_rows(names["slug"], "GrpTRESMins") == before

    lever = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
    for settings in ({}, lever):
        assert backends.rest(**settings).pause_resource(names["slug"])
        assert backends.assoc_rows(names["slug"], "GrpTRESMins") == before
        assert backends.rest(**settings).restore_resource(names["slug"])
        assert backends.assoc_rows(names["slug"], "GrpTRESMins") == before


@pytest.mark.parametrize("mode", ["cli", "rest"])
def test_a_pause_and_restore_after_user_limits_in_both_modes(
    backends: Backends, names: dict[str, str], mode: str
) -> None:
    # slurmrestd 24.11 pins the QoS list a user's association inherits on the association
    # when it updates it (here its MaxTRESMins); the account's QoS change then takes the
    # users holding the account's list along, so both modes end as sacctmgr's inheritance.
    backend: Callable[[], SlurmBackend] = getattr(backends, mode)
    res = resource(**names, limits={})
    backend().create_resource_with_id(res, names["slug"])
    backend().add_users_to_resource(res, {USERS[0], USERS[1]})
    backend().set_resource_user_limits(names["slug"], USERS[0], {"cpu": 30})
    assert backend().pause_resource(names["slug"])
    rows = backends.assoc_rows(names["slug"], "QOS,DefaultQOS,MaxTRESMins")
    assert rows == {
        "": ["blocked", "blocked", ""],
        USERS[0]: ["blocked", "blocked", "cpu=30"],
        USERS[1]: ["blocked", "blocked", ""],
    }
    assert backend().restore_resource(names["slug"])
    rows = backends.assoc_rows(names["slug"], "QOS,DefaultQOS,MaxTRESMins")
    assert rows == {
        "": ["normal", "normal", ""],
        USERS[0]: ["normal", "normal", "cpu=30"],
        USERS[1]: ["normal", "normal", ""],
    }
