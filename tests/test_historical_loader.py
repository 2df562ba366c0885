"""The framework's own historical loader (``waldur_site_load_historical_usage``) driving
the plugin, with SLURM replaced by stand-in executables and Waldur's API functions
replaced inside the loader process (no HTTP).

Each test runs the loader's real ``main()`` in a child process, so the exit status and
the stderr line are what a site admin sees. The child records every ``set_usage`` POST
the loader makes, so "nothing posted" is checked on what the loader actually sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import COMPONENTS
from tests.fakebin import FakeSlurmBin, allocation_rows

OFFERING_UUID = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5"

# Runs inside the child: replace the loader's Waldur calls, then run its main().
DRIVER = """
import json, os, sys
from types import SimpleNamespace
from waldur_api_client.api.marketplace_component_usages import (
    marketplace_component_usages_set_usage as set_usage,
)
from waldur_api_client.api.marketplace_offering_users import (
    marketplace_offering_users_list as offering_users,
)
from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_list as provider_resources,
)
from waldur_api_client.models.resource import Resource
from waldur_site_agent.common import historical_usage_loader, utils

spec = json.loads(os.environ["LOADER_SPEC"])
provider_resources.sync_all = lambda **kw: [Resource.from_dict(r) for r in spec["resources"]]
offering_users.sync_all = lambda **kw: []
user = SimpleNamespace(username="someone", is_staff=spec["staff"])
utils.get_current_user_from_client = lambda client: user
utils.print_current_user = lambda current_user: None

def record(*, client, body):
    with open(spec["posted"], "a") as out:
        out.write(json.dumps(body.to_dict()) + "\\n")

set_usage.sync_detailed = record
sys.argv = ["waldur_site_load_historical_usage", *spec["argv"]]
historical_usage_loader.main()
"""


@dataclass
class LoaderRun:
    returncode: int
    stdout: str
    stderr: str
    posted: list[dict[str, Any]]

    def amounts(self) -> dict[tuple[str, str], dict[str, str]]:
        """{(resource uuid, month): {component: amount as sent}} of every POST."""
        return {
            (body["resource"], body["date"][:7]): {
                usage["type"]: usage["amount"] for usage in body["usages"]
            }
            for body in self.posted
        }


@pytest.fixture
def slurm(tmp_path: Path) -> FakeSlurmBin:
    fake = FakeSlurmBin(tmp_path / "bin")
    fake.set_accounts(allocation_rows(["alloc-1", "alloc-2"]))
    # Tallinn months (UTC+2 in winter): January 2026 starts 2025-12-31T22:00:00 UTC.
    fake.month_file("2025-12-31T22:00:00").write_text(
        # 120 CPUs for 1 hour; half of it (22:00-23:00 UTC on Jan 31) is already February.
        "1|alloc-1|alice|COMPLETED|2026-01-31T21:30:00|2026-01-31T22:30:00|cpu=120,mem=6144M\n"
        "2|alloc-2|bob|COMPLETED|2026-01-05T10:00:00|2026-01-05T12:00:00|cpu=30\n"
    )
    fake.month_file("2026-01-31T22:00:00").write_text(
        "1|alloc-1|alice|COMPLETED|2026-01-31T21:30:00|2026-01-31T22:30:00|cpu=120,mem=6144M\n"
    )
    return fake


def run_loader(
    tmp_path: Path,
    slurm: FakeSlurmBin,
    *args: str,
    backend_ids: tuple[str, ...] = ("alloc-1", "alloc-2"),
    staff: bool = True,
    **settings: Any,
) -> LoaderRun:
    config = {
        "timezone": "Europe/Tallinn",
        "offerings": [
            {
                "name": "cluster",
                "waldur_api_url": "http://127.0.0.1:9/api/",
                "waldur_api_token": "offering-token",
                "waldur_offering_uuid": OFFERING_UUID,
                "backend_type": "slurm",
                "reporting_backend": "slurm",
                "backend_settings": {
                    "slurm_bin_path": str(slurm.dir),
                    "enable_user_homedir_account_creation": False,
                    **settings,
                },
                "backend_components": {k: dict(v) for k, v in COMPONENTS.items()},
            }
        ],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    posted = tmp_path / "posted.jsonl"
    posted.unlink(missing_ok=True)
    spec = {
        "posted": str(posted),
        "staff": staff,
        "resources": [
            {"uuid": str(uuid.UUID(int=n)), "backend_id": name, "name": name}
            for n, name in enumerate(backend_ids, 1)
        ],
        "argv": ["--config", str(config_path), "--user-token", "staff-token", *args],
    }
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        env={"LOADER_SPEC": json.dumps(spec), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = posted.read_text().splitlines() if posted.exists() else []
    return LoaderRun(proc.returncode, proc.stdout, proc.stderr, [json.loads(x) for x in lines])


def dates(*extra: str) -> tuple[str, ...]:
    return ("--offering-uuid", OFFERING_UUID, "--no-staff-check", "--skip-user-usage", *extra)


def test_loader_posts_each_month_in_the_zone_of_backend_settings(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    run = run_loader(
        tmp_path,
        slurm,
        *dates("--start-date", "2026-01-01", "--end-date", "2026-03-31"),
        timezone="Europe/Tallinn",
    )
    assert run.returncode == 0, run.stderr
    alloc_1, alloc_2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    # cpu k-hours: 120 CPUs × 30 min = 3600 CPU-min → 0.06 in each month; mem GB-hours:
    # 6144 MB × 30 min / 61440 = 3. bob: 30 CPUs × 120 min = 3600 CPU-min → 0.06.
    # March has no jobs: all zeros, which the loader does not post.
    assert run.amounts() == {
        (alloc_1, "2026-01"): {"cpu": "0.06", "mem": "3.0"},
        (alloc_2, "2026-01"): {"cpu": "0.06"},
        (alloc_1, "2026-02"): {"cpu": "0.06", "mem": "3.0"},
    }
    assert len(slurm.calls("sacct")) == 3  # one per month, for both allocations


def test_unknown_allocation_exits_1_with_one_line_and_posts_nothing(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    run = run_loader(
        tmp_path,
        slurm,
        *dates("--start-date", "2026-01-01", "--end-date", "2026-02-28"),
        backend_ids=("alloc-1", "alloc-9"),
        timezone="Europe/Tallinn",
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "Usage of 2026-01 not loaded, nothing posted for it or any later month: Allocation "
        "accounts not in SLURM: alloc-9; create them, or leave those resources out (the "
        "loader's --resource-backend-id)"
    ]
    assert run.posted == []
    assert slurm.calls("sacct") == []


def test_range_reaching_into_the_future_stops_at_the_first_month_not_begun(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    run = run_loader(
        tmp_path,
        slurm,
        *dates("--start-date", "2099-01-01", "--end-date", "2099-02-28"),
        timezone="Europe/Tallinn",
    )
    assert run.returncode == 1
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("Usage of 2099-01 not loaded, nothing posted for it or any later")
    assert "end the date range at the current month or earlier" in line
    assert run.posted == []


def test_reversed_range_and_unknown_offering_are_refused_by_the_framework(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    reversed_run = run_loader(
        tmp_path, slurm, *dates("--start-date", "2026-03-01", "--end-date", "2026-01-01")
    )
    assert reversed_run.returncode == 1
    assert "cannot be before start date" in reversed_run.stdout
    unknown = run_loader(
        tmp_path,
        slurm,
        "--offering-uuid",
        "ffffffffffffffffffffffffffffffff",
        "--no-staff-check",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-31",
    )
    assert unknown.returncode == 1
    assert "not found in configuration" in unknown.stdout
    assert reversed_run.posted == unknown.posted == []
    assert slurm.calls("sacctmgr") == slurm.calls("sacct") == []


def test_invalid_timezone_setting_stops_the_loader_before_slurm_is_asked(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    run = run_loader(
        tmp_path,
        slurm,
        *dates("--start-date", "2026-01-01", "--end-date", "2026-01-31"),
        timezone="Europe/Tallin",
    )
    assert run.returncode == 1
    assert "Invalid backend_settings.timezone 'Europe/Tallin'" in run.stdout
    assert run.posted == []
    assert slurm.calls("sacctmgr") == slurm.calls("sacct") == []


def test_non_staff_token_is_refused_by_the_framework_before_any_month(
    tmp_path: Path, slurm: FakeSlurmBin
) -> None:
    run = run_loader(
        tmp_path,
        slurm,
        "--offering-uuid",
        OFFERING_UUID,
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-31",
        staff=False,
        timezone="Europe/Tallinn",
    )
    assert run.returncode == 1
    assert "requires staff user privileges" in run.stdout
    assert run.posted == []
    assert slurm.calls("sacctmgr") == slurm.calls("sacct") == []
