"""Periodic state files under concurrent writers from several processes.

The event process and membership sync run as separate processes and share
``<state_dir>/<cluster>/<account>.json``. Writers replace the file atomically and
serialise read-modify-write under the account's lock; a reader must never see a
partial file and no update may be lost.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.periodic.state import AccountState, StateStore, ThresholdState

ACCOUNT = "a_x"
WRITERS = 4
INCREMENTS = 60
# A large file takes long to write: a writer that is not atomic would be caught mid-way.
PADDING = "billing=" + "9" * 200_000


def count_of(state: AccountState) -> int:
    return int(state.threshold.usage_minutes) if state.threshold else 0


def increment(directory: str, writer: int) -> None:
    """Add one to the counter in the state file, INCREMENTS times, under the lock."""
    store = StateStore(Path(directory))
    for n in range(INCREMENTS):
        with store.locked(ACCOUNT) as held:
            threshold = ThresholdState(
                period="total",
                level=QosLevel(n % 3),
                usage_minutes=str(count_of(held.state) + 1),
                qos_threshold=PADDING,
            )
            flags = QosLevel(writer % 3)
            held.save(replace(held.state, threshold=threshold, flags=flags))


def overwrite(directory: str, writer: int) -> None:
    """Replace the file without the lock (the atomic replace alone must hold)."""
    store = StateStore(Path(directory))
    for n in range(INCREMENTS):
        store.write(ACCOUNT, AccountState(resets=(f"{writer}-{n}",) * 12, flags=QosLevel.PAUSED))


def run_with_readers(target: object, directory: Path) -> tuple[int, list[str]]:
    """Run WRITERS processes of ``target`` while this process reads the file in a loop."""
    store = StateStore(directory)
    store.ensure_writable()
    store.write(ACCOUNT, AccountState())
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=target, args=(str(directory), n))  # type: ignore[arg-type]
        for n in range(WRITERS)
    ]
    for process in writers:
        process.start()
    reads, problems = 0, []
    while any(p.is_alive() for p in writers):
        try:
            store.read(ACCOUNT)
            reads += 1
        except Exception as err:
            problems.append(str(err)[:200])
        time.sleep(0.001)
    for process in writers:
        process.join()
        assert process.exitcode == 0
    return reads, problems


def test_locked_updates_from_several_processes_are_never_lost_or_seen_half_written(
    tmp_path: Path,
) -> None:
    reads, problems = run_with_readers(increment, tmp_path)

    assert problems == []
    assert reads > 10
    final = StateStore(tmp_path).read(ACCOUNT)
    assert count_of(final) == WRITERS * INCREMENTS
    assert final.threshold is not None and final.threshold.qos_threshold == PADDING
    leftovers = sorted(p.name for p in (tmp_path / "default").iterdir())
    assert leftovers == [f"{ACCOUNT}.json", f"{ACCOUNT}.lock"]  # no temporary files left


def test_unlocked_replacements_leave_one_whole_file(tmp_path: Path) -> None:
    reads, problems = run_with_readers(overwrite, tmp_path)

    assert problems == []
    assert reads > 10
    final = StateStore(tmp_path).read(ACCOUNT)
    assert len(final.resets) == 12 and len(set(final.resets)) == 1
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [f"{ACCOUNT}.json"]
