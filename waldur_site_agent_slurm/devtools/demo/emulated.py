"""Seed slurm-emulator with what a real cluster would have: QoS and finished jobs.

The emulator has no ``sbatch``; finished jobs go straight into its accounting
database, which its ``sacct`` then reports like real SLURM does.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent


def add_qos(*names: str) -> None:
    """Create QoS entries with the emulator's own sacctmgr."""
    for name in names:
        subprocess.run(  # noqa: S603 - fixed argv of the emulator's sacctmgr
            [str(BIN / "sacctmgr"), "-i", "add", "qos", name],
            capture_output=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )


def add_job(
    account: str,
    user: str,
    start: datetime,
    end: datetime | None,
    tres: dict[str, int],
    *,
    state: str = "COMPLETED",
) -> None:
    """Record a job of ``user`` on ``account``; ``tres`` by TRES name (mem in MB, gres/gpu)."""
    # slurm-emulator is a development dependency: imported only when a demo or test seeds it.
    from emulator.core.database import SlurmDatabase, UsageRecord  # noqa: PLC0415

    db = SlurmDatabase()
    db.load_state()
    hours = ((end or start) - start).total_seconds() / 3600
    db.add_usage_record(
        UsageRecord(
            account=account,
            user=user,
            node_hours=hours,
            billing_units=hours,
            timestamp=end or start,
            period="",
            cluster=db.current_cluster,
            state=state,
            submit_time=start,
            start_time=start,
            end_time=end,
            node_count=1,
            node_list="node001",
            alloc_cpus=tres.get("cpu", 1),
            req_mem_mb=tres.get("mem", 0),
            tres_req=tres,
            tres_alloc=tres,
        )
    )
    db.save_state()
