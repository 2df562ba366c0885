"""run_periodic_limits_tests.py and run_historical_tests.py select the service tiers only
when the project's own scripts report their stacks up, never because something answers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from run_periodic_limits_tests import ServiceTier, deselect_args

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the tiers are selected as root only")


def status_script(tmp_path: Path, name: str, exit_code: int) -> Path:
    script = tmp_path / name
    script.write_text(f'[ "$1" = status ] && exit {exit_code}\nexit 2\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


@needs_root
def test_a_tier_whose_script_reports_its_stack_down_is_left_out_even_if_slurm_answers_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answering = tmp_path / "bin"
    answering.mkdir()
    for command in ("sacctmgr", "sacct", "sinfo"):
        status_script(answering, command, 0)  # a host SLURM that answers anything
    monkeypatch.setenv("PATH", f"{answering}:{os.environ['PATH']}")
    tier = ServiceTier("real_slurm", status_script(tmp_path, "real-slurm.sh", 1), (("status",),))

    assert deselect_args((tier,)) == ["-m", "not real_slurm"]
    assert "real_slurm: left out (scripts/real-slurm.sh reports no stack" in capsys.readouterr().out


@needs_root
def test_tiers_whose_scripts_report_their_stacks_up_are_included(tmp_path: Path) -> None:
    slurm = ServiceTier("real_slurm", status_script(tmp_path, "real-slurm.sh", 0), (("status",),))
    broker = ServiceTier("broker", status_script(tmp_path, "rabbitmq.sh", 0), (("status",),))

    assert deselect_args((slurm, broker)) == []


@needs_root
def test_only_the_tiers_that_are_down_are_left_out(tmp_path: Path) -> None:
    slurm = ServiceTier("real_slurm", status_script(tmp_path, "real-slurm.sh", 0), (("status",),))
    broker = ServiceTier("broker", status_script(tmp_path, "rabbitmq.sh", 1), (("status",),))

    assert deselect_args((slurm, broker)) == ["-m", "not broker"]


def test_in_ci_every_tier_is_selected_so_a_missing_stack_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    broker = ServiceTier("broker", status_script(tmp_path, "rabbitmq.sh", 1), (("status",),))

    assert deselect_args((broker,)) == []
