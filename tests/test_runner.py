"""The command runner against small stand-in executables in a temporary slurm_bin_path."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from waldur_site_agent.backend.exceptions import BackendNotReadyError

from waldur_site_agent_slurm.errors import (
    SlurmCommandError,
    SlurmTimeoutError,
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.slurm.runner import CommandRunner

# What sacctmgr 22.05 prints when slurmdbd is not running.
DBD_DOWN = (
    "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open persistent "
    "connection to host:127.0.0.1:6819: Connection refused\n"
    "sacctmgr: error: Sending PersistInit msg: Connection refused\n"
    "sacctmgr: error: Problem talking to the database: Connection refused\n"
)


def command(tmp_path: Path, name: str, body: str) -> CommandRunner:
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return CommandRunner(bin_path=str(tmp_path), timeout=2)


def test_database_down_is_reported_as_slurm_unavailable(tmp_path: Path) -> None:
    runner = command(tmp_path, "sacctmgr", f"printf '{DBD_DOWN}' >&2; exit 1")
    with pytest.raises(SlurmUnavailableError) as caught:
        runner.run(["sacctmgr", "list", "cluster"], mutating=False)
    assert isinstance(caught.value, BackendNotReadyError)
    assert "Problem talking to the database" in str(caught.value)
    assert "sacctmgr list cluster" in str(caught.value)


def test_a_refused_request_is_a_plain_command_error(tmp_path: Path) -> None:
    runner = command(
        tmp_path,
        "sacctmgr",
        "echo ' Error with request: Job(s) active, cancel job(s) before remove' >&2; exit 1",
    )
    with pytest.raises(SlurmCommandError) as caught:
        runner.run(["sacctmgr", "-i", "delete", "account", "a"], mutating=True)
    assert not isinstance(caught.value, BackendNotReadyError)
    assert "Job(s) active" in str(caught.value)


def test_a_hanging_command_is_killed_and_named(tmp_path: Path) -> None:
    runner = command(tmp_path, "sacctmgr", "exec sleep 30")
    with pytest.raises(SlurmTimeoutError) as caught:
        runner.run(["sacctmgr", "list", "cluster"], mutating=False)
    assert isinstance(caught.value, BackendNotReadyError)
    assert "Timed out after 2s: sacctmgr list cluster" in str(caught.value)


def test_a_hanging_stream_is_killed(tmp_path: Path) -> None:
    runner = command(tmp_path, "sacct", "echo 1; exec sleep 30")
    with pytest.raises(SlurmTimeoutError):
        list(runner.stream(["sacct", "-a"]))


def test_dry_run_skips_writes_but_runs_reads(tmp_path: Path) -> None:
    runner = command(tmp_path, "sacctmgr", "echo read-output")
    runner.dry_run = True
    assert runner.run(["sacctmgr", "-i", "add", "account", "a"], mutating=True).stdout == ""
    assert runner.run(["sacctmgr", "list", "account"], mutating=False).stdout == "read-output\n"
    assert runner.calls == 1


def test_a_change_that_reports_an_error_but_exits_0_fails(tmp_path: Path) -> None:
    # SLURM 24.11 answers "set GrpTRESMins=cpu=abc" like this, and stores cpu=0.
    runner = command(
        tmp_path,
        "sacctmgr",
        "echo \"sacctmgr: error: Invalid unit type 'a'. Possible options are 'KMGTP'\" >&2; "
        "echo ' Modified account associations...'; exit 0",
    )
    argv = ["sacctmgr", "--immediate", "modify", "account", "where", "name=a", "set", "X=1"]
    with pytest.raises(SlurmCommandError) as caught:
        runner.run(argv, mutating=True)
    assert caught.value.returncode == 0
    assert "Invalid unit type" in str(caught.value)
    assert runner.run(["sacctmgr", "show", "assoc"], mutating=False).returncode == 0


def test_24_11_nothing_changed_answers_pass_only_where_the_call_site_accepts_them(
    tmp_path: Path,
) -> None:
    runner = command(
        tmp_path,
        "sacctmgr",
        'echo "sacctmgr: error: Request didn\'t affect anything" >&2; exit 1',
    )
    argv = ["sacctmgr", "--immediate", "modify", "user", "where", "name=u", "set", "X=1"]
    assert runner.run(argv, mutating=True, accept_nothing=True).returncode == 1
    with pytest.raises(SlurmCommandError):
        runner.run(argv, mutating=True)
