"""Emulator tier: the backend against slurm-emulator's real command-line tools.

Every test gets its own emulator state and clock files (fresh paths that do not exist
yet, which is how the emulator wants them) through the environment.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from waldur_site_agent_slurm.backend import SlurmBackend

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.emulator


def sacctmgr(*args: str) -> str:
    """Run the emulator's sacctmgr directly, as a site admin would, and return stdout."""
    proc = subprocess.run(
        [str(BIN / "sacctmgr"), *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout


def assoc_rows() -> list[list[str]]:
    """(account, user, parent, GrpTRESMins, MaxTRESMins, QOS, DefaultQOS) of every association."""
    out = sacctmgr(
        "-P",
        "-n",
        "show",
        "assoc",
        "format=Account,User,ParentName,GrpTRESMins,MaxTRESMins,QOS,DefaultQOS",
    )
    return [line.split("|") for line in out.splitlines() if line]


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated emulator state with the site's QoS created."""
    monkeypatch.setenv("SLURM_EMULATOR_STATE_FILE", str(tmp_path / "emulator-state.json"))
    monkeypatch.setenv("SLURM_EMULATOR_TIME_FILE", str(tmp_path / "emulator-time.json"))
    for name in ("slowdown", "blocked"):
        sacctmgr("-i", "add", "qos", name)
    yield tmp_path


def emulator_backend(**settings: Any) -> SlurmBackend:
    settings = {"emulator_mode": True, "enable_user_homedir_account_creation": False, **settings}
    return SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})


def seed_job(
    account: str,
    user: str,
    start: datetime,
    end: datetime | None,
    tres: dict[str, int],
    state: str = "COMPLETED",
) -> None:
    """Put one finished job into the emulator's accounting database."""
    from emulator.core.database import SlurmDatabase, UsageRecord

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
