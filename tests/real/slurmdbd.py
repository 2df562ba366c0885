"""Stopping and starting the slurmdbd of the selected real SLURM, for the fault tests.

slurmdbd is stopped the way ``scripts/real-slurm.sh down VERSION`` stops it (by the
stack's own PID file, only if that PID runs the stack's own slurmdbd binary: a host
slurmdbd is never touched), and brought back with ``scripts/real-slurm.sh up VERSION``,
which starts whatever is not running and leaves the rest alone. ``tripwire_bin`` makes
a ``slurm_bin_path`` whose commands run the real ones, except that the first command
matching a pattern stops slurmdbd just before it runs: the fault lands in the middle of
a cycle, at a chosen step, every time.

Stopping slurmdbd affects everything else using this SLURM, so ``exclusive`` refuses to
go on (outside CI) while another test run is going on.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.real.conftest import SCRIPT, stack


def stop_sh() -> str:
    """Shell lines that stop the selected stack's slurmdbd and wait until it is gone."""
    pid_file = shlex.quote(str(stack().slurmdbd_pid_file))
    exe = shlex.quote(stack().slurmdbd_exe)
    return f"""
pid=$(cat {pid_file} 2>/dev/null | tr -dc 0-9)
if [ -n "$pid" ] && [ "$(readlink /proc/$pid/exe 2>/dev/null)" = {exe} ]; then
    kill -TERM "$pid"
    while [ -e /proc/$pid ]; do sleep 0.1; done
fi
"""


def running() -> bool:
    """True when the stack's PID file names a live process of the stack's slurmdbd."""
    try:
        pid = int(stack().slurmdbd_pid_file.read_text().strip())
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except (OSError, ValueError):
        return False
    return exe == stack().slurmdbd_exe


def stop() -> None:
    """Stop slurmdbd and wait until it is gone."""
    subprocess.run(["sh", "-c", stop_sh()], check=True, timeout=60)
    assert not running()


def start() -> None:
    """Bring slurmdbd back (``scripts/real-slurm.sh up VERSION``) and wait until it answers."""
    proc = subprocess.run(
        ["bash", str(SCRIPT), "up", stack().version],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert running()


# Test runs and the scripts that start or stop the shared services before pytest runs.
TEST_RUNS = ("pytest", "scripts/test.sh", ".ci/run", "real-slurm.sh", "rabbitmq.sh")


def other_test_runs() -> list[str]:
    """Command lines of other test runs: pytest, and the scripts that manage services.

    This process and its ancestors (``.ci/run`` → ``scripts/test.sh`` → pytest in CI)
    do not count.
    """
    mine = set()
    pid = os.getpid()
    while pid > 1:
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(run in arg for arg in argv[:3] for run in TEST_RUNS):
            found.append(" ".join(a for a in argv if a))
    return found


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the stage for a test that stops slurmdbd; slurmdbd runs again afterwards."""
    others = other_test_runs()
    if others and os.environ.get("CI") != "true":
        pytest.skip(f"stops slurmdbd, which other pytest runs use now: {others[0][:120]}")
    if not running():
        start()
    try:
        yield
    finally:
        if not running():
            start()


def tripwire_bin(directory: Path, pattern: str) -> Path:
    """A slurm_bin_path running the real commands; the first one matching stops slurmdbd.

    ``pattern`` is a shell ``case`` pattern matched against ``COMMAND ARGS...`` (quote
    spaces), e.g. ``"'sacct '*"`` or ``"sacctmgr*RawUsage=0*"``. A file ``tripped`` appears in
    ``directory`` when it fired.
    """
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / "tripped"
    for name in ("sacctmgr", "sacct", "scancel", "squeue"):
        script = directory / name
        script.write_text(
            "#!/bin/sh\n"
            f'case "{name} $*" in\n'
            f"  {pattern})\n"
            f"    if [ ! -e {marker} ]; then\n"
            f"      : >{marker}\n"
            f"{stop_sh()}"
            "    fi;;\n"
            "esac\n"
            f'exec {stack().bin}/{name} "$@"\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory
