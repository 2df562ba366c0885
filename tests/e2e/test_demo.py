"""The README's first command: the demo runs every step, exits 0 and leaves nothing running."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def test_the_demo_runs_every_step_and_leaves_no_process(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "waldur_site_agent_slurm.devtools.demo", "--keep", str(work)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    words = " ".join(out.split())
    assert "order Create 'Flood model 2026': done" in out
    assert "a_flood-model  GrpTRESMins=cpu=6000,gres/gpu=600,mem=12288000" in out
    assert "users: alice, bob" in out
    # alice: 16 CPUs × 6 h last month; bob's month-crossing job split 3 h / 2 h.
    assert re.search(r"a_flood-model \d{4}-\d\d cpu 108.00 alice 96.00, bob 12.00", words)
    assert "a_flood-model: QoS blocked" in out
    assert "SLURM Account Diagnostic: a_flood-model" in out
    assert "OVERALL: OK" in out
    assert out.rstrip().splitlines()[-1].startswith("Done in")
    assert processes_mentioning(str(work)) == []
