"""The backend against slurm-emulator's sacctmgr, sacct and scancel."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.emulator.conftest import assoc_rows, emulator_backend, sacctmgr, seed_job
from tests.test_backend_commands import resource

pytestmark = pytest.mark.emulator


def accounts() -> dict[str, list[str]]:
    return {row[0]: row for row in assoc_rows() if not row[1]}


def users_of(account: str) -> set[str]:
    return {row[1] for row in assoc_rows() if row[0] == account and row[1]}


def test_order_creates_tree_limits_and_users(emulator: Path) -> None:
    backend = emulator_backend(default_account_policy="individual")
    res = resource()
    backend.create_resource_with_id(res, "alloc-1")
    backend.add_users_to_resource(res, {"alice", "bob"})
    tree = accounts()
    assert tree["cust-1"][2] == "root"
    assert tree["proj-1"][2] == "cust-1"
    assert tree["alloc-1"][2] == "proj-1"
    assert tree["alloc-1"][3] == "cpu=6000000,gres/gpu=300,mem=600G"
    assert users_of("alloc-1") == {"alice", "bob"}


def test_rerunning_create_converges_without_duplicates(emulator: Path) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    before = assoc_rows()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    assert assoc_rows() == before


def test_update_order_changes_limits(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    emulator_backend().set_resource_limits("alloc-1", {"cpu": 200, "mem": 10, "gpu": 5})
    assert accounts()["alloc-1"][3] == "cpu=12000000,gres/gpu=300,mem=600G"


def test_pause_downscale_restore_switch_qos(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    emulator_backend().pause_resource("alloc-1")
    assert accounts()["alloc-1"][5:] == ["blocked", "blocked"]
    assert emulator_backend().get_resource_metadata("alloc-1") == {"qos": "blocked"}
    emulator_backend().downscale_resource("alloc-1")
    assert accounts()["alloc-1"][5:] == ["slowdown", "slowdown"]
    emulator_backend().restore_resource("alloc-1")
    assert accounts()["alloc-1"][5:] == ["normal", "normal"]


def test_membership_removes_users_and_sets_user_limits(emulator: Path) -> None:
    backend = emulator_backend()
    res = resource()
    backend.create_resource_with_id(res, "alloc-1")
    backend.add_users_to_resource(res, {"alice", "bob"})
    emulator_backend().set_resource_user_limits("alloc-1", "alice", {"cpu": 1, "gpu": 2})
    assert emulator_backend().get_resource_user_limits("alloc-1") == {
        "alice": {"cpu": 1.0, "gpu": 2.0}
    }
    emulator_backend().remove_users_from_resource(res, {"bob"})
    assert users_of("alloc-1") == {"alice"}


def test_terminate_removes_account_and_empty_project(emulator: Path) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    emulator_backend().add_users_to_resource(res, {"alice"})
    emulator_backend().delete_resource(res, project_slug="proj-1")
    tree = accounts()
    assert "alloc-1" not in tree
    assert "proj-1" not in tree
    assert "cust-1" in tree


def test_terminate_keeps_project_with_other_allocations(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    emulator_backend().create_resource_with_id(
        resource(slug="alloc-2", backend_id="alloc-2"), "alloc-2"
    )
    emulator_backend().delete_resource(resource(), project_slug="proj-1")
    assert {"proj-1", "alloc-2"} <= set(accounts())
    assert "alloc-1" not in accounts()


def test_invalid_name_from_waldur_changes_nothing(emulator: Path) -> None:
    before = assoc_rows()
    with pytest.raises(BackendError, match="project account"):
        emulator_backend().create_resource_with_id(resource(project_slug="p x"), "alloc-1")
    with pytest.raises(BackendError, match="username"):
        emulator_backend().add_users_to_resource(resource(), {"bad=user"})
    assert assoc_rows() == before


def test_usage_is_clipped_to_each_month_and_converted(emulator: Path) -> None:
    backend = emulator_backend()
    res = resource()
    backend.create_resource_with_id(res, "alloc-1")
    # 4 CPUs, 8 GB, 1 GPU from Jan 31 22:00 to Feb 1 02:00 UTC: 2 hours in each month.
    seed_job(
        "alloc-1",
        "alice",
        datetime(2026, 1, 31, 22),
        datetime(2026, 2, 1, 2),
        {"cpu": 4, "mem": 8192, "gres/gpu": 1, "billing": 4, "node": 1},
    )
    # 2 CPUs for 30 minutes in February, by bob.
    seed_job(
        "alloc-1",
        "bob",
        datetime(2026, 2, 10, 12),
        datetime(2026, 2, 10, 12, 30),
        {"cpu": 2, "mem": 1024, "billing": 2, "node": 1},
    )
    january = emulator_backend().get_usage_report_for_period(["alloc-1"], 2026, 1)["alloc-1"]
    february = emulator_backend().get_usage_report_for_period(["alloc-1"], 2026, 2)["alloc-1"]
    # cpu (k-hours, factor 60000): 4 CPUs × 120 min = 480 CPU-min → 0.008 → 0.01.
    # mem (GB-hours, factor 61440): 8192 MB × 120 min = 983040 MB-min → 16.
    # gpu (hours, factor 60): 1 GPU × 120 min → 2.
    assert january == {
        "TOTAL_ACCOUNT_USAGE": {"cpu": 0.01, "mem": 16.0, "gpu": 2.0},
        "alice": {"cpu": 0.01, "mem": 16.0, "gpu": 2.0},
    }
    # bob: 2 CPUs × 30 min = 60 CPU-min → 0.001 → 0.0; 1024 MB × 30 min / 61440 = 0.5.
    assert february == {
        "TOTAL_ACCOUNT_USAGE": {"cpu": 0.01, "mem": 16.5, "gpu": 2.0},
        "alice": {"cpu": 0.01, "mem": 16.0, "gpu": 2.0},
        "bob": {"cpu": 0.0, "mem": 0.5, "gpu": 0.0},
    }
    march = emulator_backend().get_usage_report_for_period(["alloc-1"], 2026, 3)["alloc-1"]
    assert march == {"TOTAL_ACCOUNT_USAGE": {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}}


def test_usage_months_follow_the_configured_timezone(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    # 23:30 UTC on Jan 31 is already February in Tallinn (UTC+2).
    seed_job(
        "alloc-1",
        "alice",
        datetime(2026, 1, 31, 23, 30),
        datetime(2026, 2, 1, 0, 30),
        {"cpu": 60, "billing": 60, "node": 1},
    )
    backend = emulator_backend()
    backend.timezone = "Europe/Tallinn"
    jan = backend.get_usage_report_for_period(["alloc-1"], 2026, 1)["alloc-1"]
    feb = backend.get_usage_report_for_period(["alloc-1"], 2026, 2)["alloc-1"]
    assert jan["TOTAL_ACCOUNT_USAGE"]["cpu"] == 0.0
    assert feb["TOTAL_ACCOUNT_USAGE"]["cpu"] == 0.06  # 60 CPUs × 60 min / 60000


def test_one_sacct_serves_every_allocation_of_a_cycle(emulator: Path) -> None:
    for n in range(3):
        emulator_backend().create_resource_with_id(
            resource(slug=f"alloc-{n}", backend_id=f"alloc-{n}"), f"alloc-{n}"
        )
    backend = emulator_backend()
    for n in range(3):
        assert backend.pull_resource(resource(backend_id=f"alloc-{n}")) is not None
    assert backend.runner.calls == 2  # one show assoc, one sacct


def test_diagnostics_reports_missing_qos(emulator: Path) -> None:
    assert emulator_backend().diagnostics()
    assert not emulator_backend(qos_paused="hold").diagnostics()
    assert sacctmgr("-P", "-n", "show", "qos", "format=Name").split() == [
        "normal",
        "slowdown",
        "blocked",
    ]


def test_steady_membership_cycle_only_reads(emulator: Path) -> None:
    resources = [resource(slug=f"alloc-{n}", backend_id=f"alloc-{n}") for n in range(3)]
    for res in resources:
        emulator_backend().create_resource_with_id(res, res.backend_id)
        emulator_backend().add_users_to_resource(res, {"alice", "bob"})
    before = assoc_rows()
    backend = emulator_backend()
    pulled = backend.pull_resources(resources)
    for res in resources:
        assert set(pulled[res.backend_id][1].users) == {"alice", "bob"}
        backend.add_users_to_resource(res, {"alice", "bob"})
        backend.remove_users_from_resource(res, set())
        backend.restore_resource(res.backend_id)
        backend.get_resource_metadata(res.backend_id)
        backend.get_resource_user_limits(res.backend_id)
    assert backend.runner.calls == 1  # one show assoc; no usage read, no writes
    assert assoc_rows() == before
