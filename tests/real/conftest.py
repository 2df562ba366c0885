"""Real SLURM tier: the backend against the SLURMs started by scripts/real-slurm.sh.

Every test of the tier runs once per SLURM version (ids ``[slurm-22.05]``,
``[slurm-24.11]``): the session fixture ``real_slurm`` is parametrised by version and
makes that version's stack the one ``stack()`` and the helpers below use. Each stack
runs in its own chroot with its own cluster name and host-side commands (``stack().bin``
is a ``slurm_bin_path``). ``REAL_SLURM_VERSIONS="24.11"`` narrows a local run; CI always
runs every version.

The tier needs root and the running stacks. Outside CI a missing stack skips its tests
with the command that starts it; in CI (CI=true) it is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMPONENTS
from tests.exports import exports
from tests.services import unavailable
from waldur_site_agent_slurm.backend import SlurmBackend

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-slurm.sh"
ALL_VERSIONS = ("22.05", "24.11")
USERS = ("slurmtest1", "slurmtest2", "slurmtest3")
# The demo scenario's users and the real accounts that play them on this cluster.
DEMO_USERS = {"alice": USERS[0], "bob": USERS[1], "carol": USERS[2]}

pytestmark = pytest.mark.real_slurm


def versions() -> tuple[str, ...]:
    """The SLURM versions to test: all of them in CI, else ``REAL_SLURM_VERSIONS`` if set."""
    wanted = os.environ.get("REAL_SLURM_VERSIONS", "").split()
    if os.environ.get("CI") == "true" or not wanted:
        return ALL_VERSIONS
    unknown = set(wanted) - set(ALL_VERSIONS)
    if unknown:
        raise ValueError(f"REAL_SLURM_VERSIONS: unknown {sorted(unknown)}; known {ALL_VERSIONS}")
    return tuple(v for v in ALL_VERSIONS if v in wanted)


@dataclass(frozen=True)
class Stack:
    """One running SLURM of scripts/real-slurm.sh, as its ``env VERSION`` describes it."""

    version: str
    cluster: str
    bin: str  # host-side wrappers of the SLURM commands: a slurm_bin_path
    node: str
    partition: str
    slurmdbd_pid_file: Path
    slurmdbd_exe: str
    root: Path  # the chroot

    @classmethod
    def describe(cls, version: str) -> Stack:
        out = subprocess.run(
            ["bash", str(SCRIPT), "env", version], capture_output=True, text=True, check=True
        ).stdout
        env = exports(out)
        return cls(
            version=version,
            cluster=env["REAL_SLURM_CLUSTER"],
            bin=env["REAL_SLURM_BIN"],
            node=env["REAL_SLURM_NODE"],
            partition=env["REAL_SLURM_PARTITION"],
            slurmdbd_pid_file=Path(env["REAL_SLURMDBD_PID_FILE"]),
            slurmdbd_exe=env["REAL_SLURMDBD_EXE"],
            root=Path(env["REAL_SLURM_ROOT"]),
        )

    def is_up(self) -> bool:
        if os.geteuid() != 0 or not Path(self.bin, "sacctmgr").exists():
            return False
        status = ["bash", str(SCRIPT), "status", self.version]
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def slurmdbd_running(self) -> bool:
        """True when the PID file names a live process of this stack's slurmdbd."""
        try:
            pid = int(self.slurmdbd_pid_file.read_text().strip())
            exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        except (OSError, ValueError):
            return False
        return exe == self.slurmdbd_exe

    def slurmdbd_death(self) -> str:
        """What is known of a dead slurmdbd: the end of its log and its core file, if any."""
        logs = self.root / "var/log/slurm"  # also slurmdbd's working directory
        log = logs / "slurmdbd.log"
        tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
        cores = sorted(str(p) for p in logs.glob("core*"))
        core = (
            f"core file: {', '.join(cores)} (gdb -batch -ex 'set sysroot {self.root}' -ex bt "
            f"{self.root}/usr/sbin/slurmdbd CORE)"
            if cores
            else f"no core file in {logs}"
        )
        return (
            f"slurmdbd of the real SLURM {self.version} died during this test run; the "
            f"tests after it cannot use this stack. {core}. Last lines of {log}:\n"
            + "\n".join(tail or ["(no log)"])
        )


_current: list[Stack] = []
# The stacks found running in this session, by version: a slurmdbd that dies later is reported.
_found_up: dict[str, Stack] = {}


def stack() -> Stack:
    """The SLURM stack of the running test (set by the ``real_slurm`` fixture)."""
    if not _current:
        raise RuntimeError("no real SLURM selected: the test must use the real_slurm fixture")
    return _current[-1]


def require_real_slurm(version: str) -> Stack:
    """The stack of ``version``; skip (outside CI) or fail (in CI) when it is not running."""
    found = Stack.describe(version)
    if found.is_up():
        _found_up[version] = found
        return found
    message = (
        f"real SLURM {version} is not running: sudo bash {SCRIPT.relative_to(ROOT)} up {version}"
    )
    unavailable(message)


def check_slurmdbd(version: str) -> None:
    """Fail, saying why, when the slurmdbd of a stack found running earlier has died.

    Called before each test of that version (``tests/conftest.py``), so that the tests
    after a crash fail with slurmdbd's log and core file, not with "Connection refused".
    """
    found = _found_up.get(version)
    if found is not None and not found.slurmdbd_running():
        pytest.fail(found.slurmdbd_death(), pytrace=False)


@pytest.fixture(scope="session", params=versions(), ids=lambda v: f"slurm-{v}")
def real_slurm(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The SLURM of one version, made current for the helpers while its tests run.

    Tests elsewhere (end to end) that use it, ``tag`` or ``names`` run once per version.
    """
    found = require_real_slurm(request.param)
    _current.append(found)
    yield found
    _current.remove(found)


@pytest.fixture(autouse=True)
def on_each_version(real_slurm: Stack) -> Stack:
    """Every test of this tier runs on each SLURM version."""
    return real_slurm


def run(
    *argv: str, user: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a SLURM command as root (or as ``user``), from a directory anyone can use."""
    full = [f"{stack().bin}/{argv[0]}", *argv[1:]]
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


@pytest.fixture
def boost() -> str:
    """A QoS tests grant beside an allocation's own (created once, shared, never removed)."""
    run("sacctmgr", "-i", "add", "qos", "boost", check=False)
    return "boost"


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
        f"cluster={stack().cluster}",
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
        "slurm_bin_path": stack().bin,
        "cluster_name": stack().cluster,
        "enable_user_homedir_account_creation": False,
        **settings,
    }
    components = {k: dict(v) for k, v in COMPONENTS.items()}
    components["cpu"]["unit_factor"] = 1  # report CPU-minutes, easy to check by hand
    return SlurmBackend(settings, components)


def real_settings(tag: str, bin_path: Path | str | None = None) -> dict[str, Any]:
    """``backend_settings`` for the agent on the real SLURM, with ``tag``'s account prefixes."""
    return {
        "emulator_mode": False,
        "slurm_bin_path": str(bin_path or stack().bin),
        "cluster_name": stack().cluster,
        "customer_prefix": f"c{tag}_",
        "project_prefix": f"p{tag}_",
        "allocation_prefix": f"a{tag}_",
    }


@pytest.fixture
def names(real_slurm: Stack) -> Iterator[dict[str, str]]:
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
def tag(real_slurm: Stack) -> Iterator[str]:
    """A tag for account names (``c<tag>_…``, ``p<tag>_…``, ``a<tag>_…``), removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    yield tag
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    ours = [a for a in out.split() if a[1:].startswith(tag + "_")]
    remove_accounts(sorted(ours, key=lambda a: "apc".index(a[0])))
