"""The soak's check of periodic messages, replayed on the event consumer's log lines."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
ACCOUNT = "as1_soak-s1-135"


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def log(*events: str) -> str:
    return "\n".join(json.dumps({"event": e, "level": "info"}) for e in events) + "\n"


def received(fairshare: int, stamp: str) -> str:
    return (
        f"Received a message {{'backend_id': '{ACCOUNT}', 'timestamp': '{stamp}', "
        f"'settings': {{'fairshare': {fairshare}, 'reset_raw_usage': True}}}} on queue q"
    )


def executed(setting: str) -> str:
    where = f"where name={ACCOUNT} cluster=c"
    return f"Executed: sacctmgr --immediate modify account {where} set {setting}"


def test_a_message_failing_after_its_fairshare_write_leaves_that_fairshare(
    soak: ModuleType,
) -> None:
    # The hour run's account: 127 applied in full; a message failing before any write
    # (slurmdbd down); then the newest, 72, written, and its read-back failed. SLURM
    # holds 72, the command result said so; the check expected 127.
    text = log(
        received(127, "2026-12-07T04:35:49"),
        f"Periodic settings for {ACCOUNT} (2030-07): set Fairshare=127: Fairshare 1 → 127",
        executed("Fairshare=127"),
        executed("RawUsage=0"),
        f"Successfully applied periodic settings for resource {ACCOUNT}",
        received(475, "2026-12-07T04:44:06"),
        f"Failed to apply periodic settings for resource {ACCOUNT}: Exit status 1 (…)",
        received(72, "2026-12-07T04:48:38"),
        f"Periodic settings for {ACCOUNT} (2033-08): set Fairshare=72: Fairshare 127 → 72",
        executed("Fairshare=72"),
        f"Failed to apply periodic settings for resource {ACCOUNT}: Exit status 1 (…)",
    )
    fairshares, resets, done = soak.replay_periodic_log(text)
    assert fairshares == {ACCOUNT: "72"}
    assert resets == {(ACCOUNT, "2030-07"): 1}
    assert done == {(ACCOUNT, "2030-07")}  # 2033-08 was not applied in full: no reset owed


def test_a_message_with_nothing_to_write_confirms_its_fairshare(soak: ModuleType) -> None:
    text = log(
        received(40, "2026-12-07T04:00:00"),
        executed("Fairshare=40"),
        f"Successfully applied periodic settings for resource {ACCOUNT}",
        received(40, "2026-12-07T04:10:00"),  # re-sent: Fairshare already 40, no write
        f"Successfully applied periodic settings for resource {ACCOUNT}",
        received(9, "2025-01-01T00:00:00"),  # out of order: refused before any write
        f"Failed to apply periodic settings for resource {ACCOUNT}: older than the last",
    )
    assert soak.replay_periodic_log(text)[0] == {ACCOUNT: "40"}


def test_cycle_rss_is_the_agents_own_not_its_starters(soak: ModuleType) -> None:
    # The hour run reported 438.7 MB for every polling mode: wait4's ru_maxrss of a
    # process Python starts is at least its starter's high-water RSS (vfork), and the
    # soak itself had grown to that. The soak polls the process's own VmHWM instead.
    held = bytearray(256 * 2**20)
    held[:: 2**12] = b"\1" * len(held[:: 2**12])  # every page resident
    pid = subprocess.Popen(["sleep", "0.3"]).pid
    own = 0
    while True:
        own = max(own, soak.vm_hwm_kb(pid))
        got, _, usage = os.wait4(pid, os.WNOHANG)
        if got:
            break
        time.sleep(0.05)
    assert 0 < own < 64 * 2**10  # sleep's own: a few MB
    assert usage.ru_maxrss >= 256 * 2**10  # what the soak reported before: its own size
    assert soak.vm_hwm_kb(pid) == 0  # gone
    del held
