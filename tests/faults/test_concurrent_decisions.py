"""Waldur's flags and periodic thresholds deciding one account's QoS at the same time.

Membership sync (pause/downscale/restore) and the event process (periodic settings with
``threshold_qos``) run concurrently against one SLURM. Each decision is the stricter of
the last flags and the last thresholds; whatever the interleaving, SLURM must end on
the decision of the last flags and the last thresholds, as recorded in the state file.
The SLURM here is in memory and slow on purpose (``memory_slurm.py``), so the threads
interleave between reading SLURM, deciding and writing.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.faults.memory_slurm import Account, MemorySlurm
from waldur_site_agent_slurm.allocation import qos
from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.periodic.state import StateStore
from waldur_site_agent_slurm.slurm.client import SlurmClient

ACCOUNT = "a_x"
# One GPU-hour in the (total) period: 60 node-minutes against the thresholds below.
JOB = "1|a_x|alice|COMPLETED|2025-01-01T00:00:00|2025-01-01T01:00:00|gres/gpu=1"
MESSAGES: dict[QosLevel, dict[str, Any]] = {
    QosLevel.DEFAULT: {"qos_threshold": {"node": 100}, "grace_limit": {"node": 200}},
    QosLevel.DOWNSCALED: {"qos_threshold": {"node": 50}, "grace_limit": {"node": 200}},
    QosLevel.PAUSED: {"qos_threshold": {"node": 10}, "grace_limit": {"node": 50}},
}
ROUNDS = 25


def backend(slurm: MemorySlurm, state_dir: Path) -> SlurmBackend:
    """A new backend per call, as the framework builds one per cycle and per message."""
    settings = {
        "enable_user_homedir_account_creation": False,
        "periodic_limits": {
            "enabled": True,
            "threshold_qos": True,
            "period": "total",
            "state_dir": str(state_dir),
        },
    }
    built = SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
    built.client = SlurmClient(slurm)
    return built


def apply_flags(slurm: MemorySlurm, state_dir: Path, level: QosLevel) -> None:
    verb = {
        QosLevel.DEFAULT: SlurmBackend.restore_resource,
        QosLevel.DOWNSCALED: SlurmBackend.downscale_resource,
        QosLevel.PAUSED: SlurmBackend.pause_resource,
    }[level]
    built = backend(slurm, state_dir)
    built.client.snapshot()  # membership sync has read every association before it decides
    verb(built, ACCOUNT)


def apply_message(slurm: MemorySlurm, state_dir: Path, level: QosLevel) -> None:
    result = backend(slurm, state_dir).apply_periodic_settings(ACCOUNT, MESSAGES[level])
    assert result["success"], result


NAMES = {QosLevel.DEFAULT: "normal", QosLevel.DOWNSCALED: "slowdown", QosLevel.PAUSED: "blocked"}


@pytest.mark.parametrize("seed", range(8))
def test_slurm_ends_on_the_decision_of_the_last_flags_and_the_last_thresholds(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - a reproducible order, not a secret
    flags = [rng.choice(list(QosLevel)) for _ in range(ROUNDS)]
    thresholds = [rng.choice(list(QosLevel)) for _ in range(ROUNDS)]
    slurm = MemorySlurm(accounts={ACCOUNT: Account()}, jobs=[JOB])
    seen: list[tuple[int, str, str]] = []  # (round, QoS in SLURM, QoS decided)

    def check(round_: list[int] = [0]) -> None:  # noqa: B006 - the round counter
        n = round_[0]
        state = StateStore(tmp_path).read(ACCOUNT)
        assert state.flags == flags[n]
        assert state.threshold is not None and state.threshold.level == thresholds[n]
        seen.append((n, slurm.current_qos(ACCOUNT), NAMES[qos.decide(flags[n], thresholds[n])]))
        round_[0] += 1

    # Each round, one pause/downscale/restore and one message start together; when both
    # are done, SLURM must hold the decision for this round's flags and thresholds.
    start, done = threading.Barrier(2), threading.Barrier(2, action=check)
    failures: list[BaseException] = []

    def worker(apply: Any, levels: list[QosLevel]) -> None:
        try:
            for level in levels:
                start.wait(timeout=60)
                apply(slurm, tmp_path, level)
                done.wait(timeout=60)
        except BaseException as err:
            start.abort()
            done.abort()
            failures.append(err)

    threads = [
        threading.Thread(target=worker, args=(apply_flags, flags)),
        threading.Thread(target=worker, args=(apply_message, thresholds)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not [f for f in failures if not isinstance(f, threading.BrokenBarrierError)], failures
    assert len(seen) == ROUNDS
    wrong = [(n, actual, decided) for n, actual, decided in seen if actual != decided]
    assert wrong == [], f"(round, SLURM, decided): {wrong}"
