"""Subprocesses and wall time of a report cycle and a steady-state membership cycle.

Runs on slurm-emulator with N allocations (each with one user and a few jobs in the
current and previous month), driving the backend the way the framework does in one
cycle: a new backend instance, then the per-resource calls of that mode.

    python bench/cycles.py            # N = 10, 100, 1000
    python bench/cycles.py 10 50      # chosen sizes
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from waldur_api_client.models.resource import Resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waldur_site_agent_slurm.backend import SlurmBackend

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

COMPONENTS = {
    "cpu": {
        "measured_unit": "CPU-hours",
        "unit_factor": 60,
        "accounting_type": "limit",
        "label": "CPU",
    },
    "mem": {
        "measured_unit": "GB-hours",
        "unit_factor": 61440,
        "accounting_type": "limit",
        "label": "Memory",
    },
}
SETTINGS = {"emulator_mode": True, "enable_user_homedir_account_creation": False}


def seed(n: int) -> None:
    """N allocations below one project, one user each, two jobs per month."""
    from emulator.core.database import SlurmDatabase, UsageRecord

    db = SlurmDatabase()
    db.load_state()
    db.add_account("proj", "project", "proj", None)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0)
    for i in range(n):
        account, user = f"alloc{i:04d}", f"user{i:04d}"
        db.add_account(account, f"allocation {i}", "proj", "proj")
        db.add_user(user)
        db.add_association(user, account)
        for start in (month_start - timedelta(days=3), month_start + timedelta(minutes=i % 50)):
            end = start + timedelta(minutes=30)
            tres = {"cpu": 2, "mem": 4096, "node": 1, "billing": 2}
            db.add_usage_record(
                UsageRecord(
                    account=account,
                    user=user,
                    node_hours=0.5,
                    billing_units=1.0,
                    timestamp=end,
                    period="",
                    cluster=db.current_cluster,
                    state="COMPLETED",
                    submit_time=start,
                    start_time=start,
                    end_time=end,
                    node_count=1,
                    node_list="node001",
                    alloc_cpus=2,
                    req_mem_mb=4096,
                    tres_req=tres,
                    tres_alloc=tres,
                )
            )
    db.save_state()


def resources(n: int) -> list[Resource]:
    return [
        Resource.from_dict(
            {"uuid": f"{i:032x}", "backend_id": f"alloc{i:04d}", "name": f"allocation {i}"}
        )
        for i in range(n)
    ]


def report_cycle(waldur_resources: list[Resource]) -> tuple[int, float]:
    """What report mode does: pull each resource, then its previous month."""
    started = time.perf_counter()
    backend = SlurmBackend(dict(SETTINGS), {k: dict(v) for k, v in COMPONENTS.items()})
    backend.timezone = "UTC"
    now = datetime.now(UTC)
    previous = now.replace(day=1) - timedelta(days=1)
    for resource in waldur_resources:
        info = backend.pull_resource(resource)
        assert info is not None and info.usage["TOTAL_ACCOUNT_USAGE"]["cpu"] > 0
        backend.get_usage_report_for_period([resource.backend_id], previous.year, previous.month)
    return backend.runner.calls, time.perf_counter() - started


def membership_cycle(waldur_resources: list[Resource]) -> tuple[int, float]:
    """What membership mode does when nothing changed in Waldur."""
    started = time.perf_counter()
    backend = SlurmBackend(dict(SETTINGS), {k: dict(v) for k, v in COMPONENTS.items()})
    report = backend.pull_resources(waldur_resources)
    assert len(report) == len(waldur_resources)
    for resource in waldur_resources:
        backend.add_users_to_resource(resource, set(report[resource.backend_id][1].users))
        backend.restore_resource(resource.backend_id)
        backend.get_resource_metadata(resource.backend_id)
        backend.get_resource_user_limits(resource.backend_id)
    return backend.runner.calls, time.perf_counter() - started


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10, 100, 1000]
    print(f"{'N':>6} {'report: procs':>14} {'time s':>8} {'membership: procs':>18} {'time s':>8}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["SLURM_EMULATOR_STATE_FILE"] = str(Path(tmp) / "state.json")
            os.environ["SLURM_EMULATOR_TIME_FILE"] = str(Path(tmp) / "time.json")
            seed(n)
            waldur_resources = resources(n)
            membership_cycle(waldur_resources)  # first cycle may normalise QoS
            report_procs, report_time = report_cycle(waldur_resources)
            member_procs, member_time = membership_cycle(waldur_resources)
        print(
            f"{n:>6} {report_procs:>14} {report_time:>8.2f} {member_procs:>18} {member_time:>8.2f}"
        )


if __name__ == "__main__":
    main()
