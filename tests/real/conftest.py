"""Real SLURM tier: the backend against the SLURM started by scripts/real-slurm.sh.

The tier needs root and a running stack. Outside CI a missing stack skips the tier
with the command that starts it; in CI (CI=true) it is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from waldur_site_agent_slurm.backend import SlurmBackend

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-slurm.sh"
CLUSTER = os.environ.get("REAL_SLURM_CLUSTER", "testcluster")
USERS = ("slurmtest1", "slurmtest2", "slurmtest3")
# The demo scenario's users and the real accounts that play them on this cluster.
DEMO_USERS = {"alice": USERS[0], "bob": USERS[1], "carol": USERS[2]}
BIN = "/usr/bin"

pytestmark = pytest.mark.real_slurm


def _stack_is_up() -> bool:
    if os.geteuid() != 0 or not Path(BIN, "sacctmgr").exists():
        return False
    return (
        subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, check=False).returncode
        == 0
    )


def require_real_slurm() -> None:
    """Skip (outside CI) or fail (in CI) when the real SLURM is not running."""
    if _stack_is_up():
        return
    message = f"real SLURM is not running: sudo bash {SCRIPT.relative_to(ROOT)} up"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def real_slurm() -> None:
    require_real_slurm()


def run(
    *argv: str, user: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a SLURM command as root (or as ``user``), from a directory anyone can use."""
    full = [f"{BIN}/{argv[0]}", *argv[1:]]
    if user:
        full = ["runuser", "-u", user, "--", *full]
    return subprocess.run(
        full,
        capture_output=True,
        text=True,
        check=check,
        cwd="/tmp",
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


ASSOC_FIELDS = "Account,User,ParentName,GrpTRESMins,MaxTRESMins,QOS,DefaultQOS"


def assoc_rows(account: str, fields: str = ASSOC_FIELDS) -> list[list[str]]:
    """The associations of ``account`` on this cluster, as rows of ``fields`` (sacctmgr's names)."""
    out = run(
        "sacctmgr",
        "-P",
        "-n",
        "show",
        "assoc",
        "where",
        f"account={account}",
        f"cluster={CLUSTER}",
        f"format={fields}",
    ).stdout
    return [line.split("|") for line in out.splitlines() if line]


def fairshare(account: str) -> str:
    """The Fairshare of ``account``'s own association."""
    return next(share for user, share in assoc_rows(account, "User,Fairshare") if not user)


def submit(user: str, account: str, *options: str, wrap: str = "sleep 3") -> tuple[int, str]:
    """sbatch a job as ``user``; return (exit status, job id or error text)."""
    proc = run(
        "sbatch",
        "--parsable",
        "-A",
        account,
        "--output=/dev/null",
        "--time=5",
        *options,
        "--wrap",
        wrap,
        user=user,
        check=False,
    )
    return proc.returncode, (proc.stdout.strip() or proc.stderr.strip())


def submit_until(user: str, account: str, *, accepted: bool, timeout: float = 20) -> str:
    """sbatch a trivial job until slurmctld accepts it (or refuses it); the job id or refusal.

    A QoS change reaches slurmctld from slurmdbd a moment after sacctmgr returns, so a
    submission right after it may still see the old QoS. While a refusal is awaited,
    accepted jobs are cancelled.
    """
    deadline = time.monotonic() + timeout
    while True:
        code, out = submit(user, account, "-n1", wrap="true")
        if (code == 0) == accepted:
            return out
        if code == 0:
            run("scancel", out, check=False)
        if time.monotonic() >= deadline:
            state = "refused" if accepted else "accepted"
            raise AssertionError(
                f"sbatch as {user} on {account} still {state} after {timeout}s: {out}"
            )
        time.sleep(0.5)


def wait_finished(job_ids: list[str], timeout: float = 120) -> None:
    """Wait until sacct lists every job as finished in the plain -X listing."""
    deadline = time.monotonic() + timeout
    wanted = set(job_ids)
    while time.monotonic() < deadline:
        out = run(
            "sacct", "-X", "-n", "-P", "-a", "--starttime=now-1day", "--format=JobID,State"
        ).stdout
        done = {
            jid
            for jid, state in (row.split("|") for row in out.splitlines() if "|" in row)
            if state.split(" ")[0] not in {"PENDING", "RUNNING", "COMPLETING"}
        }
        if wanted <= done:
            return
        time.sleep(1)
    raise AssertionError(f"jobs {sorted(wanted)} did not finish in {timeout}s")


def real_backend(**settings: Any) -> SlurmBackend:
    settings = {
        "slurm_bin_path": BIN,
        "cluster_name": CLUSTER,
        "enable_user_homedir_account_creation": False,
        **settings,
    }
    components = {k: dict(v) for k, v in COMPONENTS.items()}
    components["cpu"]["unit_factor"] = 1  # report CPU-minutes, easy to check by hand
    return SlurmBackend(settings, components)


def real_settings(tag: str, bin_path: Path | str = BIN) -> dict[str, Any]:
    """``backend_settings`` for the agent on the real SLURM, with ``tag``'s account prefixes."""
    return {
        "emulator_mode": False,
        "slurm_bin_path": str(bin_path),
        "cluster_name": CLUSTER,
        "customer_prefix": f"c{tag}_",
        "project_prefix": f"p{tag}_",
        "allocation_prefix": f"a{tag}_",
    }


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """Unique customer/project/allocation slugs; their accounts are removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    slugs = {
        "customer_slug": f"rc-{tag}",
        "project_slug": f"rp-{tag}",
        "slug": f"ra-{tag}",
        "backend_id": f"ra-{tag}",
    }
    yield slugs
    remove_accounts([slugs["slug"], slugs["project_slug"], slugs["customer_slug"]])


def remove_accounts(accounts: list[str]) -> None:
    """Cancel the jobs of ``accounts``, drop the test users from them, delete them.

    Give children before parents; a deletion refused while cancelled jobs end is retried.
    """
    if not accounts:
        return
    run("scancel", "--account=" + ",".join(accounts), check=False)
    for user in USERS:
        where = [f"name={user}", *(f"account={a}" for a in accounts)]
        run("sacctmgr", "-i", "delete", "user", "where", *where, check=False)
    for name in accounts:
        for _ in range(10):
            proc = run("sacctmgr", "-i", "delete", "account", "where", f"name={name}", check=False)
            if "Job(s) active" not in proc.stderr + proc.stdout:
                break
            time.sleep(2)


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag for account names (``c<tag>_…``, ``p<tag>_…``, ``a<tag>_…``), removed afterwards."""
    require_real_slurm()
    tag = uuid.uuid4().hex[:6]
    yield tag
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    ours = [a for a in out.split() if a[1:].startswith(tag + "_")]
    remove_accounts(sorted(ours, key=lambda a: "apc".index(a[0])))
