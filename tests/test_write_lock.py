"""One SLURM write at a time across processes: a real ``flock`` held by another process."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.errors import SlurmUnavailableError
from waldur_site_agent_slurm.slurm.rest import RestSettings, RestTransport
from waldur_site_agent_slurm.slurm.runner import CommandRunner
from waldur_site_agent_slurm.slurm.write_lock import LOCK_NAME, WriteLock

# Another agent process: takes the lock, says so, waits for its cue, notes its release.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
with open(sys.argv[2], "a") as log:
    log.write("holder released\\n")
os.close(fd)
"""


@contextmanager
def held_by_another_process(lock: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield holder
    finally:
        if holder.poll() is None:
            holder.communicate("\n", timeout=10)


def recording_runner(tmp_path: Path, log: Path, lock: WriteLock) -> CommandRunner:
    """A runner whose ``sacctmgr`` notes its first argument in ``log``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sacctmgr"
    script.write_text(f'#!/bin/sh\necho "$1 ran" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return CommandRunner(bin_path=str(bin_dir), timeout=10, write_lock=lock)


def test_a_write_waits_for_the_other_process_and_a_read_does_not(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    runner = recording_runner(tmp_path, log, WriteLock(tmp_path / LOCK_NAME, 30))
    with held_by_another_process(tmp_path / LOCK_NAME, log) as holder:
        runner.run(["sacctmgr", "read"], mutating=False)
        # Release the holder shortly after the write has started waiting on the lock.
        releaser = subprocess.Popen(
            ["sh", "-c", "sleep 0.3; echo"], stdout=holder.stdin, stdin=subprocess.DEVNULL
        )
        runner.run(["sacctmgr", "write"], mutating=True)
        releaser.wait(timeout=10)
    assert log.read_text().splitlines() == ["read ran", "holder released", "write ran"]


def test_a_lock_held_past_the_timeout_is_slurm_unavailable_and_nothing_runs(
    tmp_path: Path,
) -> None:
    log = tmp_path / "order.log"
    runner = recording_runner(tmp_path, log, WriteLock(tmp_path / LOCK_NAME, 0.2))
    with (
        held_by_another_process(tmp_path / LOCK_NAME, log),
        pytest.raises(SlurmUnavailableError, match="held the SLURM write lock"),
    ):
        runner.run(["sacctmgr", "write"], mutating=True)
    assert log.read_text().splitlines() == ["holder released"]


def test_without_its_directory_writes_run_unlocked_and_nothing_is_created(
    tmp_path: Path,
) -> None:
    log = tmp_path / "order.log"
    missing = tmp_path / "no-state-dir"
    runner = recording_runner(tmp_path, log, WriteLock(missing / LOCK_NAME, 0.2))
    runner.run(["sacctmgr", "write"], mutating=True)
    assert log.read_text().splitlines() == ["write ran"]
    assert not missing.exists()


def test_a_rest_write_waits_for_the_lock_and_a_rest_read_does_not(tmp_path: Path) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(200, json={"errors": [], "warnings": []})

    token = tmp_path / "token"
    token.write_text("secret")
    settings = RestSettings(
        url="http://127.0.0.1:1",
        api_version="v0.0.42",
        username="slurm",
        token_file=token,
        token_env=None,
        verify_ssl=True,
        timeout=5.0,
    )
    rest = RestTransport(
        settings,
        transport=httpx.MockTransport(answer),
        write_lock=WriteLock(tmp_path / LOCK_NAME, 0.2),
    )
    with held_by_another_process(tmp_path / LOCK_NAME, tmp_path / "order.log"):
        rest.request("GET", "/slurmdb/v0.0.42/accounts/")
        with pytest.raises(SlurmUnavailableError, match="held the SLURM write lock"):
            rest.request("POST", "/slurmdb/v0.0.42/accounts/", body={"accounts": []})
    rest.request("DELETE", "/slurmdb/v0.0.42/account/a1")
    assert seen == ["GET", "DELETE"]


def test_the_backend_locks_its_writes_in_the_periodic_state_dir(tmp_path: Path) -> None:
    backend = SlurmBackend(
        {
            "default_account": "root",
            "customer_prefix": "c_",
            "project_prefix": "p_",
            "allocation_prefix": "a_",
            "periodic_limits": {"state_dir": str(tmp_path)},
        },
        {"cpu": {"limit": 10, "measured_unit": "k-Hours", "unit_factor": 60000}},
    )
    assert backend.runner.write_lock is not None
    assert backend.runner.write_lock.path == tmp_path / LOCK_NAME
