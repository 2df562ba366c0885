"""Creates per second and SLURM commands per create, on the emulator and the real SLURM.

Creates N allocations in one project the way one order cycle does: a new backend, then
``create_resource_with_id`` per order. The first create of a cycle also reads the TRES
list and adds the customer and project accounts; the table shows the first create and
the steady-state ones apart. The real SLURM tier runs, as root, on each running stack of
``scripts/real-slurm.sh`` (22.05 and 24.11); its accounts are removed afterwards.

    python bench/creates.py           # N = 10 on the emulator, 10 on each real SLURM
    python bench/creates.py 50        # chosen N
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from waldur_api_client.models.resource import Resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waldur_site_agent_slurm.backend import SlurmBackend

COMPONENTS = {
    "cpu": {"measured_unit": "CPU-hours", "unit_factor": 60, "accounting_type": "limit"},
    "mem": {"measured_unit": "GB-hours", "unit_factor": 61440, "accounting_type": "limit"},
}
REAL_SLURM = Path(__file__).resolve().parents[1] / "scripts" / "real-slurm.sh"
REAL_VERSIONS = ("22.05", "24.11")


def real_stack(version: str) -> tuple[str, str]:
    """(bin path, cluster name) of the stack of ``version``, from ``real-slurm.sh env``."""
    out = subprocess.run(
        ["bash", str(REAL_SLURM), "env", version], capture_output=True, text=True, check=True
    ).stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    return env["REAL_SLURM_BIN"], env["REAL_SLURM_CLUSTER"]


def order(tag: str, i: int) -> Resource:
    return Resource.from_dict(
        {
            "uuid": f"{i:032x}",
            "slug": f"r{i:04d}",
            "name": f"allocation {i}",
            "customer_slug": "cust",
            "customer_name": "Bench customer",
            "project_slug": "proj",
            "project_name": "Bench project",
            "limits": {"cpu": 100 + i, "mem": 10},
            "backend_id": f"a{tag}_r{i:04d}",
        }
    )


def run_creates(settings: dict[str, Any], tag: str, n: int) -> tuple[int, float, int, float]:
    """(commands, seconds) of the first create and of the n-1 that follow."""
    prefixes = {"customer_prefix": f"c{tag}_", "project_prefix": f"p{tag}_"}
    backend = SlurmBackend({**settings, **prefixes}, {k: dict(v) for k, v in COMPONENTS.items()})
    started = time.perf_counter()
    backend.create_resource_with_id(order(tag, 0), f"a{tag}_r0000")
    first_calls, first_time = backend.runner.calls, time.perf_counter() - started
    started = time.perf_counter()
    for i in range(1, n):
        backend.create_resource_with_id(order(tag, i), f"a{tag}_r{i:04d}")
    return (
        first_calls,
        first_time,
        backend.runner.calls - first_calls,
        time.perf_counter() - started,
    )


def emulator(n: int) -> tuple[int, float, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SLURM_EMULATOR_STATE_FILE"] = str(Path(tmp) / "state.json")
        os.environ["SLURM_EMULATOR_TIME_FILE"] = str(Path(tmp) / "time.json")
        settings = {"emulator_mode": True, "enable_user_homedir_account_creation": False}
        return run_creates(settings, "bench", n)


def sacctmgr(bin_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [f"{bin_path}/sacctmgr", *args], capture_output=True, text=True, check=False, timeout=60
    )


def real(version: str, n: int) -> tuple[int, float, int, float] | None:
    bin_path, cluster = real_stack(version)
    if os.geteuid() != 0 or not Path(bin_path, "sacctmgr").exists():
        return None
    if sacctmgr(bin_path, "-n", "-P", "show", "cluster").returncode != 0:
        return None
    tag = "b" + uuid.uuid4().hex[:6]
    settings = {
        "slurm_bin_path": bin_path,
        "cluster_name": cluster,
        "enable_user_homedir_account_creation": False,
    }
    try:
        return run_creates(settings, tag, n)
    finally:
        names = [f"a{tag}_r{i:04d}" for i in range(n)] + [f"p{tag}_proj", f"c{tag}_cust"]
        sacctmgr(bin_path, "-i", "delete", "account", "where", "name=" + ",".join(names[:-2]))
        for name in names[-2:]:
            sacctmgr(bin_path, "-i", "delete", "account", "where", f"name={name}")


def main() -> None:
    n = int(sys.argv[1]) if sys.argv[1:] else 10
    print(
        f"{'tier':>10} {'N':>5} {'first: cmds':>12} {'s':>6} {'then: cmds/create':>18} "
        f"{'creates/s':>10}"
    )
    tiers = [("emulator", lambda: emulator(n))] + [
        (f"SLURM {v}", lambda v=v: real(v, n)) for v in REAL_VERSIONS
    ]
    for tier, measure in tiers:
        result = measure()
        if result is None:
            print(f"{tier:>10} skipped: needs root and scripts/real-slurm.sh up {tier[6:]}")
            continue
        first_calls, first_time, calls, seconds = result
        per_create = calls / (n - 1) if n > 1 else 0.0
        rate = (n - 1) / seconds if n > 1 and seconds else 0.0
        print(
            f"{tier:>10} {n:>5} {first_calls:>12} {first_time:>6.2f} {per_create:>18.1f} "
            f"{rate:>10.2f}"
        )


if __name__ == "__main__":
    main()
