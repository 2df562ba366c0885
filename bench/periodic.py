"""Subprocesses and wall time of applying periodic settings to N allocations.

Runs on slurm-emulator. Each message gets a new backend, as the agent's event process
builds one per message. "first" applies Mastermind-shaped settings (fairshare, limits
with billing, thresholds; no RawUsage reset, as in the 10-minute sync) to accounts that
do not have them yet; "repeat" applies the same settings again. The second row per N
has ``threshold_qos: true``, which adds one sacct read of the period per message.

    python bench/periodic.py            # N = 1, 100, 1000
    python bench/periodic.py 10 50      # chosen sizes
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.slurm.runner import CommandResult

COMPONENTS = {
    "cpu": {"unit_factor": 60, "accounting_type": "limit", "label": "CPU"},
    "mem": {"unit_factor": 61440, "accounting_type": "limit", "label": "Memory"},
    "gpu": {"unit_factor": 60, "accounting_type": "limit", "label": "GPU"},
}
SETTINGS = {
    "fairshare": 19233,
    "limit_type": "GrpTRESMins",
    "grp_tres_mins": {"cpu": 460800, "mem": 3686400, "gpu": 7200, "billing": 14400},
    "qos_threshold": {"billing": 12000},
    "grace_limit": {"billing": 14400},
    "reset_raw_usage": False,
    "carryover_details": {"carryover_applied": True, "previous_period": "2023-Q4"},
}


class Tally:
    """Reads and writes of one pass."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0


def seed(n: int) -> None:
    """N allocation accounts below one project, each with one user."""
    from emulator.core.database import SlurmDatabase

    db = SlurmDatabase()
    db.load_state()
    db.add_account("proj", "project", "proj", None)
    for i in range(n):
        account, user = f"alloc{i:04d}", f"user{i:04d}"
        db.add_account(account, f"allocation {i}", "proj", "proj")
        db.add_user(user)
        db.add_association(user, account)
    db.save_state()


def counted_backend(state_dir: str, tally: Tally, threshold_qos: bool) -> SlurmBackend:
    backend = SlurmBackend(
        {
            "emulator_mode": True,
            "enable_user_homedir_account_creation": False,
            "periodic_limits": {
                "enabled": True,
                "state_dir": state_dir,
                "threshold_qos": threshold_qos,
            },
        },
        {k: dict(v) for k, v in COMPONENTS.items()},
    )
    runner = backend.runner
    run, stream = runner.run, runner.stream

    def counted_run(
        argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        if mutating:
            tally.writes += 1
        else:
            tally.reads += 1
        return run(argv, mutating=mutating, accept_nothing=accept_nothing)

    def counted_stream(argv: Sequence[str], env: Any = None) -> Any:
        tally.reads += 1
        return stream(argv, env)

    runner.run = counted_run  # type: ignore[method-assign]
    runner.stream = counted_stream  # type: ignore[method-assign]
    return backend


def apply_all(n: int, state_dir: str, threshold_qos: bool) -> tuple[Tally, float]:
    tally = Tally()
    started = time.perf_counter()
    for i in range(n):
        backend = counted_backend(state_dir, tally, threshold_qos)
        result = backend.apply_periodic_settings(f"alloc{i:04d}", SETTINGS)
        assert result["success"], result["error"]
    return tally, time.perf_counter() - started


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1, 100, 1000]
    print(
        f"{'N':>5} {'threshold_qos':>13} | {'first: procs':>12} {'per alloc':>9} {'s':>8} | "
        f"{'repeat: reads':>13} {'writes':>6} {'s':>8}"
    )
    for n in sizes:
        for threshold_qos in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["SLURM_EMULATOR_STATE_FILE"] = str(Path(tmp) / "state.json")
                os.environ["SLURM_EMULATOR_TIME_FILE"] = str(Path(tmp) / "time.json")
                seed(n)
                state_dir = str(Path(tmp) / "periodic")
                first, first_s = apply_all(n, state_dir, threshold_qos)
                repeat, repeat_s = apply_all(n, state_dir, threshold_qos)
            procs = first.reads + first.writes
            print(
                f"{n:>5} {threshold_qos!s:>13} | {procs:>12} {procs / n:>9.2f} {first_s:>8.2f} | "
                f"{repeat.reads:>13} {repeat.writes:>6} {repeat_s:>8.2f}"
            )


if __name__ == "__main__":
    main()
