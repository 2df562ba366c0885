"""Wall time of ``waldur_site_diagnose_slurm_account --all`` for N allocations.

Seeds slurm-emulator with N allocations (in 100 projects, two users each, limits set
as order processing sets them) and the Waldur stand-in with the matching resources,
teams and offering users, then runs the real console script with ``--all --json`` and
reports its wall time, its SLURM commands (counted by wrappers in ``slurm_bin_path``)
and its Waldur requests (recorded by the stand-in). Every allocation must come out OK.

    python bench/diagnose.py            # N = 1000
    python bench/diagnose.py 100 1000   # chosen sizes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waldur_site_agent_slurm.devtools.standin import StandIn
from waldur_site_agent_slurm.devtools.standin.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECTS = 100
LIMITS = {"cpu": 100, "mem": 200, "gpu": 10}
TRES = {"cpu": 6000, "mem": 12288000, "gres/gpu": 600}  # LIMITS × the example unit factors


def uid(kind: int, i: int) -> str:
    return f"{kind:08x}{i:024x}"


def scenario(n: int) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "examples" / "standin-scenario.yaml").read_text())
    projects = min(PROJECTS, n)
    data["customers"] = [
        {
            "uuid": uid(1, 0),
            "name": "Bench customer",
            "slug": "bench",
            "projects": [
                {
                    "uuid": uid(2, p),
                    "name": f"Project {p}",
                    "slug": f"proj{p:03d}",
                    "team": [{"username": f"u{p:03d}a"}, {"username": f"u{p:03d}b"}],
                }
                for p in range(projects)
            ],
        }
    ]
    data["offering_users"] = [
        {"username": f"u{p:03d}{x}", "user_uuid": uid(3, 2 * p + (x == "b")), "state": "OK"}
        for p in range(projects)
        for x in "ab"
    ]
    data["resources"] = [
        {
            "uuid": uid(4, i),
            "name": f"Allocation {i}",
            "slug": f"alloc{i:04d}",
            "project": uid(2, i % projects),
            "state": "OK",
            "backend_id": f"a_alloc{i:04d}",
            "limits": LIMITS,
        }
        for i in range(n)
    ]
    data["orders"] = []
    return data


def seed_slurm(n: int) -> None:
    """The accounts, associations and limits order processing would have created."""
    from emulator.core.database import SlurmDatabase

    db = SlurmDatabase()
    db.load_state()
    projects = min(PROJECTS, n)
    db.add_account("c_bench", "Bench customer", "c_bench", "root")
    for p in range(projects):
        db.add_account(f"p_proj{p:03d}", f"Project {p}", "c_bench", "c_bench")
    for i in range(n):
        project = f"p_proj{i % projects:03d}"
        account = f"a_alloc{i:04d}"
        db.add_account(account, f"Allocation {i}", project, project)
        db.accounts[account].limits.update({f"GrpTRESMins:{k}": v for k, v in TRES.items()})
        for x in "ab":
            user = f"u{i % projects:03d}{x}"
            db.add_user(user, account)
            db.add_association(user, account)
    db.save_state()


def counting_bin(directory: Path, log: Path) -> None:
    """``sacctmgr``/``sacct``/``scancel`` that log each call and run the emulator's."""
    directory.mkdir()
    for name in ("sacctmgr", "sacct", "scancel"):
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec "{BIN / name}" "$@"\n')
        wrapper.chmod(0o755)


def measure(n: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["SLURM_EMULATOR_STATE_FILE"] = str(work / "state.json")
        os.environ["SLURM_EMULATOR_TIME_FILE"] = str(work / "time.json")
        seed_slurm(n)
        log = work / "calls.log"
        counting_bin(work / "bin", log)
        with StandIn(parse_scenario(scenario(n))) as standin:
            config = yaml.safe_load((ROOT / "examples" / "emulator-config.yaml").read_text())
            offering = config["offerings"][0]
            offering["waldur_api_url"] = standin.api_url
            offering["backend_settings"].update(
                emulator_mode=False, slurm_bin_path=str(work / "bin")
            )
            path = work / "config.yaml"
            path.write_text(yaml.safe_dump(config))
            standin.state.clear_requests()
            started = time.perf_counter()
            proc = subprocess.run(
                [str(BIN / "waldur_site_diagnose_slurm_account"), "--all", "--json", "-c", path],
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - started
            requests = len(standin.state.requests())
        document = json.loads(proc.stdout)
        summary = document.get("summary", document)
        assert proc.returncode == 0 and summary == {
            "checked": n,
            "ok": n,
            "mismatch": 0,
            "issues": 0,
        }, (proc.returncode, summary, proc.stderr[-2000:])
        calls = len(log.read_text().splitlines())
    return elapsed, calls, requests


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1000]
    print(f"{'allocations':>11} {'wall time s':>12} {'SLURM commands':>15} {'Waldur requests':>16}")
    for n in sizes:
        elapsed, calls, requests = measure(n)
        print(f"{n:>11} {elapsed:>12.1f} {calls:>15} {requests:>16}")


if __name__ == "__main__":
    main()
