"""Periodic settings against slurm-emulator, and one allocation played through a quarter.

The quarter uses the emulator's clock and Waldur Mastermind's current formulas
(``mastermind-periodic-policy.md`` §2-3), re-implemented in ``tests/mastermind.py``
independently of the plugin: settings are what Mastermind would send, and the expected
QoS follows from Mastermind's usage percentage of the jobs the test records.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import sacctmgr, seed_job
from tests.mastermind import Policy, expected_grp_tres_mins
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.slurm import parser

pytestmark = pytest.mark.emulator

# Waldur components in hours; memory in GB-hours (SLURM counts MB).
COMPONENTS = {
    "cpu": {"unit_factor": 60, "accounting_type": "limit", "label": "CPU"},
    "mem": {"unit_factor": 61440, "accounting_type": "limit", "label": "Memory"},
    "gpu": {"unit_factor": 60, "accounting_type": "limit", "label": "GPU"},
}
# A node of 64 CPUs and 512 GB: one node-hour is 2 billing units with Mastermind's weights.
NODE = {"cpu": 64, "mem": 512 * 1024, "node": 1}
BASE = {"cpu": 6400.0, "mem": 51200.0, "gpu": 100.0}  # 100 node-hours, 100 GPU-hours
MASTERMIND = Policy(BASE, grace=0.2, carryover_factor=50)


def mastermind_settings(
    previous_period: str, previous_usage: dict[str, float], reset: bool
) -> dict[str, Any]:
    """``calculate_slurm_settings`` of the current Mastermind, billing on, grace 0.2."""
    return MASTERMIND.settings(previous_usage, previous_period=previous_period, reset=reset)


def threshold_percent(usage: dict[str, float], settings: dict[str, Any]) -> float:
    """Usage in % of ``qos_threshold``: billing-minutes with Mastermind's billing weights.

    (Mastermind's own usage percentage counts components without a weight at their raw
    value, here the unused GPU-hours, so its flags would trip later than these thresholds.)
    """
    minutes = MASTERMIND.billing_minutes(usage)
    return 100 * minutes / settings["qos_threshold"]["billing"]


def expected_qos(usage: dict[str, float], settings: dict[str, Any]) -> str:
    """The QoS the thresholds of ``settings`` select for ``usage`` in their period."""
    minutes = MASTERMIND.billing_minutes(usage)
    if minutes >= settings["grace_limit"]["billing"]:
        return "blocked"
    if minutes >= settings["qos_threshold"]["billing"]:
        return "slowdown"
    return "normal"


# ---- the emulator ---------------------------------------------------------------------


def set_clock(moment: datetime) -> None:
    from emulator.core.time_engine import TimeEngine

    TimeEngine().set_time(moment)


def account_row(account: str = "alloc-1") -> parser.AssociationRecord:
    out = sacctmgr("-P", "-n", "show", "assoc", "format=" + ",".join(parser.ASSOC_FIELDS))
    rows = parser.parse_associations(out.splitlines())
    return next(r for r in rows if r.account == account and not r.user)


def periodic_backend(state_dir: Path, **periodic: Any) -> SlurmBackend:
    settings = {
        "emulator_mode": True,
        "enable_user_homedir_account_creation": False,
        "periodic_limits": {"enabled": True, "state_dir": str(state_dir), **periodic},
    }
    return SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})


@pytest.fixture
def allocation(emulator: Path) -> Path:
    sacctmgr("-i", "add", "account", "proj-1")
    sacctmgr("-i", "add", "account", "alloc-1", "parent=proj-1")
    sacctmgr("-i", "add", "user", "alice", "account=alloc-1")
    return emulator / "periodic-state"


def run_jobs(start: datetime, hours: int) -> dict[str, float]:
    """Record node-shaped jobs of ``hours`` in total; return their usage in Waldur units."""
    seed_job("alloc-1", "alice", start, start + timedelta(hours=hours), NODE)
    return {"cpu": 64.0 * hours, "mem": 512.0 * hours, "gpu": 0.0}


def add(usage: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    return {c: usage.get(c, 0.0) + more.get(c, 0.0) for c in BASE}


# ---- a quarter, simulated -------------------------------------------------------------


def test_a_quarter_normal_slowdown_blocked_then_carryover_reset_and_normal(
    allocation: Path,
) -> None:
    def apply(settings: dict[str, Any]) -> dict[str, Any]:
        result = periodic_backend(allocation, threshold_qos=True).apply_periodic_settings(
            "alloc-1", settings
        )
        assert result["success"] is True, result["error"]
        return result

    def membership_restore() -> None:
        periodic_backend(allocation, threshold_qos=True).restore_resource("alloc-1")

    # 2023-Q4 was fully used: no carry-over into 2024-Q1.
    q4_usage = dict(BASE)
    q1 = mastermind_settings("2023-Q4", q4_usage, reset=True)
    assert q1["grp_tres_mins"] == {"cpu": 460800, "mem": 3686400, "gpu": 7200, "billing": 14400}
    set_clock(datetime(2024, 1, 1, 0, 10))
    first = apply(q1)
    assert sum("RawUsage=0" in c for c in first["commands_executed"]) == 1
    record = account_row()
    assert record.fairshare == str(q1["fairshare"])
    assert record.grp_tres_mins == expected_grp_tres_mins(q1)
    assert record.default_qos in ("", "normal")
    membership_restore()

    usage: dict[str, float] = {}
    steps = [
        (datetime(2024, 1, 2), 85, datetime(2024, 2, 1)),  # 85 %: past 80 %, notify only
        (datetime(2024, 2, 2), 20, datetime(2024, 2, 15)),  # 105 %: past 100 %
        (datetime(2024, 3, 1), 20, datetime(2024, 3, 10)),  # 125 %: past 100 % + grace
    ]
    seen = []
    for start, hours, now in steps:
        usage = add(usage, run_jobs(start, hours))
        set_clock(now)
        result = apply(q1)  # Mastermind re-sends after each evaluation
        assert not any("RawUsage" in c for c in result["commands_executed"])
        expected = expected_qos(usage, q1)
        assert account_row().qos == (expected,)
        seen.append((round(threshold_percent(usage, q1)), expected))
        membership_restore()  # Waldur's flags lag behind: restore must not undo it
        assert account_row().qos == (expected,)
    assert seen == [(85, "normal"), (105, "slowdown"), (125, "blocked")]

    # The quarter ends; Mastermind's first sync of 2024-Q2 carries unused GPU-hours over.
    set_clock(datetime(2024, 4, 1, 0, 10))
    q2 = mastermind_settings("2024-Q1", usage, reset=True)
    assert q2["grp_tres_mins"]["gpu"] > q1["grp_tres_mins"]["gpu"]
    assert q2["fairshare"] > q1["fairshare"]
    results = [apply(q2) for _ in range(3)]  # delivered again and again
    resets = [c for r in results for c in r["commands_executed"] if "RawUsage=0" in c]
    assert resets == ["sacctmgr --immediate modify account where name=alloc-1 set RawUsage=0"]
    assert results[1]["commands_executed"] == [] == results[2]["commands_executed"]
    record = account_row()
    assert record.qos == ("normal",)
    assert record.grp_tres_mins == expected_grp_tres_mins(q2)
    assert record.fairshare == str(q2["fairshare"])


# ---- plan → apply on the emulator -----------------------------------------------------


def test_same_settings_twice_change_nothing_the_second_time(allocation: Path) -> None:
    settings = mastermind_settings("2023-Q4", dict(BASE), reset=False)
    first = periodic_backend(allocation).apply_periodic_settings("alloc-1", settings)
    assert len(first["commands_executed"]) == 1
    before = account_row()
    second = periodic_backend(allocation).apply_periodic_settings("alloc-1", settings)
    assert second["commands_executed"] == []
    assert second["success"] is True
    assert account_row() == before


def test_billing_zero_leaves_the_accounts_billing_limit(allocation: Path) -> None:
    periodic_backend(allocation).apply_periodic_settings(
        "alloc-1", {"grp_tres_mins": {"billing": 14400}}
    )
    result = periodic_backend(allocation).apply_periodic_settings(
        "alloc-1", {"grp_tres_mins": {"cpu": 460800, "billing": 0}}
    )
    assert result["success"] is False
    assert account_row().grp_tres_mins == {"billing": 14400, "cpu": 460800}


def test_pause_from_waldur_and_threshold_slowdown_do_not_flap(allocation: Path) -> None:
    set_clock(datetime(2024, 1, 20))
    run_jobs(datetime(2024, 1, 2), 105)  # 105 % of Q1: thresholds ask for slowdown
    q1 = mastermind_settings("2023-Q4", dict(BASE), reset=False)
    backend = periodic_backend(allocation, threshold_qos=True)
    assert backend.apply_periodic_settings("alloc-1", q1)["success"] is True
    assert account_row().qos == ("slowdown",)
    backend = periodic_backend(allocation, threshold_qos=True)
    backend.pause_resource("alloc-1")
    assert account_row().qos == ("blocked",)
    for _ in range(2):  # the next message and the next membership cycle change nothing
        backend = periodic_backend(allocation, threshold_qos=True)
        assert backend.apply_periodic_settings("alloc-1", q1)["commands_executed"] == []
        periodic_backend(allocation, threshold_qos=True).pause_resource("alloc-1")
        assert account_row().qos == ("blocked",)
    periodic_backend(allocation, threshold_qos=True).restore_resource("alloc-1")
    assert account_row().qos == ("slowdown",)


# ---- slurm-emulator's API server ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def emulator_api(allocation: Path) -> Iterator[str]:
    """slurm-emulator's own API server, started as a site would, on a free loopback port.

    A separate process on the test's state and clock files (from the environment), so
    the emulator's command-line tools see what the server saved.
    """
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "emulator.api.emulator_server:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "slurm-emulator's API did not start"
            try:
                httpx.get(url + "/api/status", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def emulator_status(url: str) -> dict[str, Any]:
    reply = httpx.get(url + "/api/status", timeout=5)
    reply.raise_for_status()
    return dict(reply.json())


def test_emulator_base_url_supplies_the_clock(emulator_api: str, allocation: Path) -> None:
    reply = httpx.post(emulator_api + "/api/time/set", json={"date": "2024-08-20T10:00:00"})
    assert reply.status_code == 200
    backend = periodic_backend(allocation, emulator_base_url=emulator_api, period="month")
    result = backend.apply_periodic_settings("alloc-1", {"fairshare": 10, "reset_raw_usage": True})
    assert result["success"] is True
    assert result["period"] == "2024-08"
    assert result["commands_executed"][-1].endswith("set RawUsage=0")


def test_unreachable_emulator_api_fails_before_any_command(allocation: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    backend = periodic_backend(allocation, emulator_base_url=f"http://127.0.0.1:{closed}")
    before = account_row()
    result = backend.apply_periodic_settings("alloc-1", {"fairshare": 10})
    assert result["success"] is False
    assert "emulator_base_url" in result["error"]
    assert result["commands_executed"] == []
    assert account_row() == before


# ---- periodic_limits.emulator_mode: the settings go to the emulator's API --------------


def api_backend(state_dir: Path, url: str) -> SlurmBackend:
    return periodic_backend(state_dir, emulator_mode=True, emulator_base_url=url)


def test_emulator_mode_posts_the_settings_and_the_emulator_holds_them(
    emulator_api: str, allocation: Path
) -> None:
    httpx.post(emulator_api + "/api/time/set", json={"date": "2024-01-01T00:10:00"}, timeout=5)
    q1 = mastermind_settings("2023-Q4", dict(BASE), reset=True)
    before = emulator_status(emulator_api)["accounts"]["alloc-1"]["limits"]
    assert "raw_usage_reset" not in before

    result = api_backend(allocation, emulator_api).apply_periodic_settings("alloc-1", q1)

    assert result["success"] is True, result["error"]
    assert result["mode"] == "emulator"
    assert result["period"] == "2024-Q1"
    body = {
        "resource_id": "alloc-1",
        "fairshare": q1["fairshare"],
        "grp_tres_mins": expected_grp_tres_mins(q1),  # TRES-minutes, converted once
        "qos_threshold": q1["qos_threshold"],
        "qos_default": "normal",
        "qos_slowdown": "slowdown",
        "billing_weights": {"CPU": 0.015625, "Mem": 0.001953125, "GRES/gpu": 0.25},
        "reset_raw_usage": True,
        "cluster": "default",
    }
    sent = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert result["commands_executed"] == [
        f"POST {emulator_api}/api/apply-periodic-settings {sent}"
    ]
    assert result["raw_usage_reset"] == {
        "requested": True,
        "performed": True,
        "reason": "first reset request of period 2024-Q1",
    }
    # The emulator's own view, through its API and through its sacctmgr.
    limits = emulator_status(emulator_api)["accounts"]["alloc-1"]["limits"]
    assert limits["raw_usage_reset"] == 1
    assert emulator_status(emulator_api)["accounts"]["alloc-1"]["fairshare"] == q1["fairshare"]
    record = account_row()
    assert record.fairshare == str(q1["fairshare"])
    assert record.grp_tres_mins == expected_grp_tres_mins(q1)

    again = api_backend(allocation, emulator_api).apply_periodic_settings("alloc-1", q1)
    assert again["success"] is True, again["error"]
    assert again["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "already reset for period 2024-Q1",
    }
    assert again["commands_executed"] == [
        f"POST {emulator_api}/api/apply-periodic-settings "
        + json.dumps({**body, "reset_raw_usage": False}, sort_keys=True, separators=(",", ":"))
    ]


def test_emulator_mode_leaves_zero_limits_out_and_says_so(
    emulator_api: str, allocation: Path
) -> None:
    result = api_backend(allocation, emulator_api).apply_periodic_settings(
        "alloc-1", {"grp_tres_mins": {"cpu": 460800, "billing": 0}}
    )
    assert result["success"] is False
    assert "billing=0" in result["error"]
    assert "allow_blocking_limits" in result["error"]
    assert account_row().grp_tres_mins == {"cpu": 460800}


def test_emulator_mode_with_the_server_down_fails_clearly_and_changes_nothing(
    allocation: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    before = account_row()
    started = time.monotonic()
    result = api_backend(allocation, url).apply_periodic_settings(
        "alloc-1", mastermind_settings("2023-Q4", dict(BASE), reset=True)
    )
    assert time.monotonic() - started < 15
    assert result["success"] is False
    assert result["mode"] == "emulator"
    assert url in result["error"]
    assert "uvicorn emulator.api.emulator_server:app" in result["error"]
    assert result["commands_executed"] == []
    assert result["raw_usage_reset"]["performed"] is False
    assert account_row() == before


# ---- through the emulator's sacctmgr: components without TRES, the reset outcome ------


def test_a_storage_component_is_skipped_and_the_rest_applied(allocation: Path) -> None:
    components = {**COMPONENTS, "storage": {"unit_factor": 1, "accounting_type": "limit"}}
    backend = SlurmBackend(
        {
            "emulator_mode": True,
            "enable_user_homedir_account_creation": False,
            "periodic_limits": {"enabled": True, "state_dir": str(allocation)},
        },
        {k: dict(v) for k, v in components.items()},
    )
    q1 = mastermind_settings("2023-Q4", dict(BASE), reset=False)
    sent = {**q1, "grp_tres_mins": {**q1["grp_tres_mins"], "storage": 3000}}
    result = backend.apply_periodic_settings("alloc-1", sent)
    assert result["success"] is True, result["error"]
    assert result["mode"] == "production"
    assert account_row().grp_tres_mins == expected_grp_tres_mins(q1)
    assert any("storage has no SLURM TRES" in line for line in result["actions"])


def test_a_second_reset_request_of_the_period_is_reported_as_skipped(allocation: Path) -> None:
    set_clock(datetime(2024, 1, 1, 0, 10))
    q1 = mastermind_settings("2023-Q4", dict(BASE), reset=True)
    first = periodic_backend(allocation).apply_periodic_settings("alloc-1", q1)
    assert first["commands_executed"][-1].endswith("set RawUsage=0")
    assert first["raw_usage_reset"]["performed"] is True
    again = periodic_backend(allocation).apply_periodic_settings("alloc-1", q1)
    assert (again["success"], again["commands_executed"]) == (True, [])
    assert again["raw_usage_reset"] == {
        "requested": True,
        "performed": False,
        "reason": "already reset for period 2024-Q1",
    }
