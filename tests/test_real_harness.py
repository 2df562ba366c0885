"""The real-SLURM harness: a slurmdbd that died is reported with its log and core file."""

from __future__ import annotations

import os
from pathlib import Path

from tests.real.conftest import Stack


def stack_in(root: Path, pid: int) -> Stack:
    (root / "run").mkdir(parents=True)
    (root / "run/slurmdbd.pid").write_text(f"{pid}\n")
    return Stack(
        version="22.05",
        cluster="c",
        bin=str(root / "bin"),
        node="n",
        partition="debug",
        slurmdbd_pid_file=root / "run/slurmdbd.pid",
        slurmdbd_exe=os.readlink(f"/proc/{os.getpid()}/exe"),
        root=root,
    )


def test_a_live_slurmdbd_is_running(tmp_path: Path) -> None:
    assert stack_in(tmp_path, os.getpid()).slurmdbd_running()


def test_a_dead_slurmdbd_is_reported_with_its_log_tail_and_core_file(tmp_path: Path) -> None:
    logs = tmp_path / "var/log/slurm"
    logs.mkdir(parents=True)
    (logs / "slurmdbd.log").write_text("".join(f"line {i}\n" for i in range(30)))
    (logs / "core").write_bytes(b"\0")
    found = stack_in(tmp_path, 2**22 + 1)  # above pid_max: no such process
    assert not found.slurmdbd_running()
    report = found.slurmdbd_death()
    assert f"core file: {logs / 'core'}" in report
    assert report.endswith("\n".join(f"line {i}" for i in range(10, 30)))


def test_a_dead_slurmdbd_without_core_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "var/log/slurm").mkdir(parents=True)
    report = stack_in(tmp_path, 2**22 + 1).slurmdbd_death()
    assert f"no core file in {tmp_path / 'var/log/slurm'}" in report
    assert report.endswith("(no log)")
