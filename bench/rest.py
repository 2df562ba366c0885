"""Report and membership cycle costs in REST mode next to CLI mode.

For N allocations (one user and four jobs each, as bench/cycles.py seeds them), one
report cycle and one steady-state membership cycle are driven the way the framework
drives them (a new backend per cycle), once with ``execution_mode: cli`` (SLURM
commands started) and once with ``execution_mode: rest`` (HTTP requests to slurmrestd,
plus any command REST mode still starts), each with its wall time.

    python bench/rest.py                # slurm-emulator (its sacctmgr/sacct and its
                                        # slurmrestd), N = 10, 100, 1000
    python bench/rest.py 10 50          # chosen sizes
    python bench/rest.py --real 10 100  # the real SLURM 24.11 stack and its slurmrestd
                                        # (root; tagged accounts, removed afterwards)

On the real stack the allocations have no jobs (a report then reads empty months: the
same requests and commands, less data).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from waldur_api_client.models.resource import Resource

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from cycles import COMPONENTS, seed  # noqa: E402 - bench/cycles.py, next to this script

from waldur_site_agent_slurm.backend import SlurmBackend  # noqa: E402
from waldur_site_agent_slurm.devtools.restd import RestdEmulator  # noqa: E402

UTC = timezone.utc  # datetime.UTC from Python 3.11 on
REAL = "24.11"


class Site:
    """Where the cycles run: backend settings per mode and the allocations' names."""

    def __init__(self, cli: dict[str, Any], rest: dict[str, Any], accounts: list[str]) -> None:
        self.settings = {"cli": cli, "rest": {**cli, **rest, "execution_mode": "rest"}}
        self.resources = [
            Resource.from_dict({"uuid": f"{i:032x}", "backend_id": name, "name": name})
            for i, name in enumerate(accounts)
        ]

    def backend(self, mode: str) -> tuple[SlurmBackend, Callable[[], int]]:
        """A new backend of ``mode`` and a function giving the HTTP requests it sent."""
        backend = SlurmBackend(
            dict(self.settings[mode]), {k: dict(v) for k, v in COMPONENTS.items()}
        )
        backend.timezone = "UTC"
        sent = [0]
        if mode == "rest":

            def count(_request: httpx.Request) -> None:
                sent[0] += 1

            # The backend's one HTTP client (slurm/rest.py); a hook only counts its requests.
            backend.client.api.rest._client.event_hooks["request"].append(count)  # type: ignore[attr-defined]
        return backend, lambda: sent[0]


def report_cycle(site: Site, mode: str) -> tuple[int, int, float]:
    """Report mode: pull each resource (this month), then its previous month."""
    started = time.perf_counter()
    backend, requests = site.backend(mode)
    previous = datetime.now(UTC).replace(day=1) - timedelta(days=1)
    for resource in site.resources:
        assert backend.pull_resource(resource) is not None
        backend.get_usage_report_for_period([resource.backend_id], previous.year, previous.month)
    return backend.runner.calls, requests(), time.perf_counter() - started


def membership_cycle(site: Site, mode: str) -> tuple[int, int, float]:
    """Membership mode when nothing changed in Waldur."""
    started = time.perf_counter()
    backend, requests = site.backend(mode)
    report = backend.pull_resources(site.resources)
    assert len(report) == len(site.resources), (len(report), len(site.resources))
    for resource in site.resources:
        backend.add_users_to_resource(resource, set(report[resource.backend_id][1].users))
        backend.restore_resource(resource.backend_id)
        backend.get_resource_metadata(resource.backend_id)
        backend.get_resource_user_limits(resource.backend_id)
    return backend.runner.calls, requests(), time.perf_counter() - started


@contextmanager
def emulated(n: int) -> Iterator[Site]:
    """slurm-emulator with N seeded allocations and its slurmrestd on a port of its own."""
    with tempfile.TemporaryDirectory() as tmp, RestdEmulator("24.11", Path(tmp)) as restd:
        os.environ.update(restd.env)
        seed(n)
        token = Path(tmp) / "token"
        token.write_text("emulated.jwt.token\n")
        cli = {"emulator_mode": True, "enable_user_homedir_account_creation": False}
        rest = {"cluster_name": "default", "rest_api": rest_api(restd.url, "v0.0.42", token)}
        yield Site(cli, rest, [f"alloc{i:04d}" for i in range(n)])


def rest_api(url: str, version: str, token: Path) -> dict[str, Any]:
    return {"url": url, "api_version": version, "username": "root", "token_file": str(token)}


def real_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "real-slurm.sh"), "env", REAL],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = {}
    for line in out.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            found[key] = " ".join(shlex.split(value))
    return found


USER = "slurmtest1"  # a test user of the real stack (scripts/real-slurm.sh)


@contextmanager
def real(n: int) -> Iterator[Site]:
    """N tagged allocations (one test user each) on the real 24.11 stack, removed after."""
    env = real_env()
    sacctmgr = f"{env['REAL_SLURM_BIN']}/sacctmgr"
    tag = f"bench{uuid.uuid4().hex[:6]}"
    accounts = [f"{tag}{i:04d}" for i in range(n)]

    def run(*argv: str, check: bool = True) -> str:
        return subprocess.run(
            [sacctmgr, "-i", "-n", "-P", *argv], capture_output=True, text=True, check=check,
            timeout=600,
        ).stdout  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        token = Path(tmp) / "token"
        command = [*shlex.split(env["REAL_SLURMRESTD_TOKEN_COMMAND"]), "username=root"]
        token.write_text(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        try:
            run("add", "account", tag, "parent=root", "organization=bench", f"description={tag}")
            for chunk in range(0, n, 200):
                names = ",".join(accounts[chunk : chunk + 200])
                run("add", "account", names, f"parent={tag}", "organization=bench")
                run("add", "user", USER, f"account={names}")
            cli = {
                "slurm_bin_path": env["REAL_SLURM_BIN"],
                "cluster_name": env["REAL_SLURM_CLUSTER"],
                "enable_user_homedir_account_creation": False,
            }
            url = env["REAL_SLURMRESTD_URL"]
            yield Site(cli, {"rest_api": rest_api(url, "v0.0.42", token)}, accounts)
        finally:
            remove(run, tag)


def remove(run: Callable[..., str], tag: str) -> None:
    """Remove every account named ``tag…``; the test user as well when it only had those.

    A user new to SLURM got its first tagged account as its default, which SLURM does not
    let go while the user has other associations.
    """
    mine = [a for a in run("show", "assoc", f"user={USER}", "format=account").split() if a]
    if mine and all(a.startswith(tag) for a in mine):
        run("delete", "user", USER, check=False)
    for account in run("show", "account", "format=account").split():
        if account.startswith(tag) and account != tag:
            run("delete", "account", account, check=False)
    run("delete", "account", tag, check=False)
    left = [a for a in run("show", "account", "format=account").split() if a.startswith(tag)]
    if left:
        raise SystemExit(f"could not remove {len(left)} accounts named {tag}…: {left[:5]}")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--real", action="store_true", help="the real SLURM 24.11 stack")
    args.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000])
    options = args.parse_args()
    where = real if options.real else emulated
    print(f"{'N':>5}  {'cycle':<10} {'CLI cmds':>8} {'CLI s':>7}  {'REST reqs':>9} "
          f"{'(+cmds)':>7} {'REST s':>7}")  # fmt: skip
    for n in options.sizes:
        with where(n) as site:
            for mode in ("cli", "rest"):
                membership_cycle(site, mode)  # warm-up: the first cycle may normalise QoS
            for name, cycle in (("report", report_cycle), ("membership", membership_cycle)):
                cli_cmds, _, cli_s = cycle(site, "cli")
                rest_cmds, rest_reqs, rest_s = cycle(site, "rest")
                print(f"{n:>5}  {name:<10} {cli_cmds:>8} {cli_s:>7.2f}  {rest_reqs:>9} "
                      f"{rest_cmds:>7} {rest_s:>7.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
