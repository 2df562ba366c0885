"""``python -m waldur_site_agent_slurm.devtools.emulator``: the emulator set up by hand."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.emulator.conftest import BIN
from waldur_site_agent_slurm.periodic.clock import emulator_file_clock

UTC = timezone.utc


def emulator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waldur_site_agent_slurm.devtools.emulator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_job_added_by_hand_is_what_the_emulators_sacct_reports(emulator: Path) -> None:
    added = emulator_cli(
        "job", "a_x", "alice", "--start", "2026-03-01T08:00", "--end", "2026-03-01T10:00",
        "--tres", "cpu=4,mem=8192,gres/gpu=1",
    )  # fmt: skip

    assert added.returncode == 0, added.stderr
    sacct = subprocess.run(
        [str(BIN / "sacct"), "-X", "-a", "-P", "-n", "-S", "2026-03-01",
         "--format=Account,User,Start,End,AllocTRES"],
        capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"},
    ).stdout  # fmt: skip
    account, user, start, end, tres = sacct.splitlines()[0].split("|")
    assert (account, user) == ("a_x", "alice")
    assert (start, end) == ("2026-03-01T08:00:00", "2026-03-01T10:00:00")
    assert "cpu=4" in tres and "gres/gpu=1" in tres


def test_without_a_clock_file_the_clock_stands_at_2024_and_now_sets_the_wall_clock(
    emulator: Path,
) -> None:
    before = emulator_cli("clock")
    assert "2024-01-01T00:00:00 UTC, quarter 2024-Q1 (its default: no clock file)" in before.stdout

    after = emulator_cli("clock", "--now")

    year = datetime.now(UTC).year
    assert f"emulator time {year}-" in after.stdout
    assert str(emulator / "emulator-time.json") in after.stdout


def test_a_bad_tres_list_is_refused_before_anything_is_written(emulator: Path) -> None:
    result = emulator_cli("job", "a_x", "alice", "--start", "2026-03-01", "--tres", "cpu")

    assert result.returncode == 2
    assert "expected NAME=COUNT" in result.stderr
    assert not (emulator / "emulator-state.json").read_text().count("a_x")


def test_the_plugin_warns_when_the_emulators_clock_is_its_2024_default(
    emulator: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        now = emulator_file_clock()

    assert now == datetime(2024, 1, 1, tzinfo=UTC)
    assert any("slurm-emulator has no clock file" in str(r.msg) for r in caplog.records)
    assert "clock --now" in caplog.text
