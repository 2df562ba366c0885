"""Emulator tier: the backend against slurm-emulator's real command-line tools.

Every test gets its own emulator state and clock files (fresh paths that do not exist
yet, which is how the emulator wants them) through the environment.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.devtools.demo.emulated import add_job as seed_job
from waldur_site_agent_slurm.devtools.demo.emulated import add_qos

__all__ = ["seed_job"]

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
    add_qos("slowdown", "blocked")
    yield tmp_path


def emulator_backend(**settings: Any) -> SlurmBackend:
    settings = {"emulator_mode": True, "enable_user_homedir_account_creation": False, **settings}
    return SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
