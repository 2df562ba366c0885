"""Prepaid months, target_components and limits read back, on slurm-emulator."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.emulator.conftest import assoc_rows, seed_job
from tests.test_backend_commands import resource
from tests.test_limits_prepaid_targets import PREPAID, TARGETS, prepaid_resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.emulator


def backend(components: dict[str, dict[str, object]]) -> SlurmBackend:
    settings = {"emulator_mode": True, "enable_user_homedir_account_creation": False}
    return SlurmBackend(settings, {k: dict(v) for k, v in components.items()})


def grp_tres_mins(account: str) -> str:
    return next(row[3] for row in assoc_rows() if row[0] == account and not row[1])


def test_prepaid_limit_is_months_and_follows_the_end_date(emulator: Path) -> None:
    backend(PREPAID).create_resource_with_id(prepaid_resource("2026-06-15"), "alloc-1")
    assert grp_tres_mins("alloc-1") == "cpu=1800000,gres/gpu=300"
    backend(PREPAID).sync_resource_end_date(prepaid_resource("2026-12-15"), None)
    assert grp_tres_mins("alloc-1") == "cpu=3960000,gres/gpu=300"
    assert backend(PREPAID).get_resource_limits("alloc-1") == {"cpu": 66, "gpu": 5}


def test_target_components_limit_and_report_through_every_target(emulator: Path) -> None:
    res = resource(limits={"compute": 10, "gpu": 2})
    backend(TARGETS).create_resource_with_id(res, "alloc-1")
    assert grp_tres_mins("alloc-1") == "billing=1200,cpu=600,gres/gpu=120"
    assert backend(TARGETS).get_resource_limits("alloc-1") == {"compute": 10, "gpu": 2}
    # One hour of 4 CPUs and 6 billing: 240/60 + 360/120 = 7 units.
    seed_job(
        "alloc-1",
        "alice",
        datetime(2026, 3, 2, 10),
        datetime(2026, 3, 2, 11),
        {"cpu": 4, "billing": 6, "node": 1},
    )
    report = backend(TARGETS).get_usage_report_for_period(["alloc-1"], 2026, 3)
    assert report["alloc-1"]["alice"] == {"compute": 7.0, "gpu": 0.0}
