"""The ``waldur_slurm_standin`` console script."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.standin.conftest import SCENARIO, STAFF_TOKEN

SCRIPT = Path(sys.executable).parent / "waldur_slurm_standin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_script_serves_the_scenario_and_exits_0_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(SCRIPT), "--scenario", str(SCENARIO), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.fullmatch(rf"Waldur stand-in serving http://127\.0\.0\.1:{port}/api/\n", line)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Token {STAFF_TOKEN}"}
        assert httpx.get(f"{base}/api/version/", headers=headers).status_code == 200
        state = httpx.get(f"{base}/_standin/state").json()
        assert state["api_url"] == f"{base}/api/"
        assert len(state["orders"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=10)
    assert returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_help_explains_the_stand_in_and_its_control_endpoints() -> None:
    out = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "Waldur Mastermind" in out
    assert "/_standin/faults" in out
    assert "--scenario" in out


def test_a_bad_scenario_exits_2_with_the_key_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: []\n")
    proc = subprocess.run(
        [str(SCRIPT), "--scenario", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "offering" in proc.stderr
    assert proc.stdout == ""
