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
    python bench/rest.py --real --repeat 3 --api-version v0.0.41 10

Each cycle runs ``--repeat`` times per mode (alternating) and the median is printed; the
REST column "reads" gives the median seconds of each request of the cycle, in order.
On the real stack one short job runs in the first allocation first, so the cycles'
``/jobs/`` answers are not empty (slurmrestd's cost of a non-empty one differs), and
the table is preceded by what slurmdbd holds: the cluster's associations and the jobs of
this month's read (a real stack is shared: other suites' accounts are in both).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
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

    def __init__(
        self,
        cli: dict[str, Any],
        rest: dict[str, Any],
        accounts: list[str],
        context: Callable[[], str],
    ) -> None:
        self.settings = {"cli": cli, "rest": {**cli, **rest, "execution_mode": "rest"}}
        self.context = context  # what the database holds, said before the figures
        self.resources = [
            Resource.from_dict({"uuid": f"{i:032x}", "backend_id": name, "name": name})
            for i, name in enumerate(accounts)
        ]

    def backend(self, mode: str) -> tuple[SlurmBackend, list[float]]:
        """A new backend of ``mode`` and the seconds of each HTTP request it sends."""
        backend = SlurmBackend(
            dict(self.settings[mode]), {k: dict(v) for k, v in COMPONENTS.items()}
        )
        backend.timezone = "UTC"
        seconds: list[float] = []
        if mode == "rest":
            sent: list[float] = []

            def start(_request: httpx.Request) -> None:
                sent.append(time.perf_counter())

            def answered(_response: httpx.Response) -> None:
                seconds.append(time.perf_counter() - sent[len(seconds)])

            # The backend's one HTTP client (slurm/rest.py); the hooks only time its requests.
            hooks = backend.client.api.rest._client.event_hooks  # type: ignore[attr-defined]
            hooks["request"].append(start)
            hooks["response"].append(answered)
        return backend, seconds


# One cycle: (commands started, seconds of each HTTP request, wall seconds).
Cost = tuple[int, list[float], float]


def report_cycle(site: Site, mode: str) -> Cost:
    """Report mode: pull each resource (this month), then its previous month."""
    started = time.perf_counter()
    backend, requests = site.backend(mode)
    previous = datetime.now(UTC).replace(day=1) - timedelta(days=1)
    for resource in site.resources:
        assert backend.pull_resource(resource) is not None
        backend.get_usage_report_for_period([resource.backend_id], previous.year, previous.month)
    return backend.runner.calls, requests, time.perf_counter() - started


def membership_cycle(site: Site, mode: str) -> Cost:
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
    return backend.runner.calls, requests, time.perf_counter() - started


@contextmanager
def emulated(n: int, version: str) -> Iterator[Site]:
    """slurm-emulator with N seeded allocations and its slurmrestd on a port of its own."""
    with tempfile.TemporaryDirectory() as tmp, RestdEmulator("24.11", Path(tmp)) as restd:
        os.environ.update(restd.env)
        seed(n)
        token = Path(tmp) / "token"
        token.write_text("emulated.jwt.token\n")
        cli = {"emulator_mode": True, "enable_user_homedir_account_creation": False}
        rest = {"cluster_name": "default", "rest_api": rest_api(restd.url, version, token)}
        accounts = [f"alloc{i:04d}" for i in range(n)]
        yield Site(cli, rest, accounts, lambda: "slurm-emulator, two jobs a month per allocation")


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


def run_job(env: dict[str, str], account: str) -> None:
    """Run one short job of the test user in ``account`` and wait until sacct has it ended."""
    bin_path = env["REAL_SLURM_BIN"]
    sbatch = [f"{bin_path}/sbatch", "--parsable", "-A", account, "--output=/dev/null",
              "--time=5", "--wrap", "sleep 1"]  # fmt: skip
    deadline = time.monotonic() + 120
    while True:  # the new association reaches slurmctld a moment after sacctmgr returns
        proc = subprocess.run(
            ["runuser", "-u", USER, "--", *sbatch],
            check=False, capture_output=True, text=True, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        if proc.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"sbatch failed: {proc.stderr}")
        time.sleep(0.5)
    job = proc.stdout.strip().split(";")[0]
    sacct = [f"{bin_path}/sacct", "-X", "-n", "-P", "-j", job, "--format=End"]

    def end() -> str:
        return subprocess.run(sacct, check=True, capture_output=True, text=True).stdout.strip()

    while end() in ("", "Unknown"):
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job} did not end")
        time.sleep(0.5)


def real_context(env: dict[str, str]) -> str:
    """The cluster's associations and this month's jobs, as slurmdbd holds them now."""
    bin_path, cluster = env["REAL_SLURM_BIN"], env["REAL_SLURM_CLUSTER"]
    assoc = [f"{bin_path}/sacctmgr", "-n", "-P", "show", "assoc", "where", f"cluster={cluster}",
             "format=Account"]  # fmt: skip
    month = datetime.now(UTC).strftime("%Y-%m-01T00:00:00")
    jobs = [f"{bin_path}/sacct", "-X", "-a", "-n", "-P", "-M", cluster, "-S", month,
            "--format=JobID"]  # fmt: skip
    count = [
        len(subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split())
        for argv in (assoc, jobs)
    ]
    return f"slurmdbd holds {count[0]} associations of {cluster}, {count[1]} jobs this month"


@contextmanager
def real(n: int, version: str) -> Iterator[Site]:
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
            run_job(env, accounts[0])
            url = env["REAL_SLURMRESTD_URL"]
            rest = {"rest_api": rest_api(url, version, token)}
            yield Site(cli, rest, accounts, lambda: real_context(env))
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
    args.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    args.add_argument("--api-version", default="v0.0.42", help="REST mode's data parser")
    args.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000])
    options = args.parse_args()
    where = real if options.real else emulated
    for n in options.sizes:
        with where(n, options.api_version) as site:
            for mode in ("cli", "rest"):
                membership_cycle(site, mode)  # warm-up: the first cycle may normalise QoS
            print(f"N = {n}: {site.context()}; REST {options.api_version}, "
                  f"median of {options.repeat}")  # fmt: skip
            print(f"{'N':>5}  {'cycle':<10} {'CLI cmds':>8} {'CLI s':>7}  {'REST reqs':>9} "
                  f"{'(+cmds)':>7} {'REST s':>7}  reads (s)")  # fmt: skip
            for name, cycle in (("report", report_cycle), ("membership", membership_cycle)):
                cli, rest = [], []
                for _ in range(options.repeat):  # alternating, so both see the same load
                    cli.append(cycle(site, "cli"))
                    rest.append(cycle(site, "rest"))
                cli_cmds, _, cli_s = median_of(cli)
                rest_cmds, reads, rest_s = median_of(rest)
                shown = " + ".join(f"{r:.2f}" for r in reads)
                print(f"{n:>5}  {name:<10} {cli_cmds:>8} {cli_s:>7.2f}  {len(reads):>9} "
                      f"{rest_cmds:>7} {rest_s:>7.2f}  {shown}", flush=True)  # fmt: skip


def median_of(costs: list[Cost]) -> Cost:
    """The runs of one cycle: its commands, the median seconds of each request, of all."""
    reads = [statistics.median(c[1][i] for c in costs) for i in range(len(costs[0][1]))]
    return costs[0][0], reads, statistics.median(c[2] for c in costs)


if __name__ == "__main__":
    main()
