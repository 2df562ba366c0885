"""REST tier: RestVerbs and SlurmBackend in REST mode against the real slurmrestd of SLURM 24.11.

scripts/real-slurm.sh starts slurmrestd (JWT auth) with the 24.11 stack; ``env 24.11``
gives its URL and the command that makes a token. The tier needs root and that stack.
Outside CI a missing stack or slurmrestd skips its tests with the command that starts
it; in CI (CI=true) it is a failure, never a skip.
"""

from __future__ import annotations

import os
import shlex
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
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.slurm.rest_verbs import RestSettings, RestVerbs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-slurm.sh"
VERSION = "24.11"
API_VERSION = "v0.0.42"
# 24.11's slurmrestd also serves the parsers of 23.11/24.05: a few tests run them too.
OLDER_VERSIONS = ("v0.0.40", "v0.0.41")
ADMIN = "root"
USERS = ("slurmtest1", "slurmtest2")


@dataclass(frozen=True)
class RestStack:
    """The 24.11 stack's slurmrestd, as ``real-slurm.sh env 24.11`` describes it."""

    url: str
    token_command: list[str]
    cluster: str
    bin: str

    def token(self, user: str = ADMIN, lifespan: int = 900) -> str:
        """A fresh JWT for ``user`` (``scontrol token``; root may make one for anyone)."""
        out = subprocess.run(
            [*self.token_command, f"username={user}", f"lifespan={lifespan}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return out.strip().removeprefix("SLURM_JWT=")

    def run(self, *argv: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one of the stack's SLURM commands (as root, or as ``user``)."""
        full = [f"{self.bin}/{argv[0]}", *argv[1:]]
        if user:
            full = ["runuser", "-u", user, "--", *full]
        return subprocess.run(
            full, capture_output=True, text=True, check=False, cwd="/tmp", timeout=120
        )


def describe() -> RestStack | None:
    out = subprocess.run(
        ["bash", str(SCRIPT), "env", VERSION], capture_output=True, text=True, check=True
    ).stdout
    env = exports(out)
    if "REAL_SLURMRESTD_URL" not in env:
        return None
    return RestStack(
        url=env["REAL_SLURMRESTD_URL"],
        token_command=shlex.split(env["REAL_SLURMRESTD_TOKEN_COMMAND"]),
        cluster=env["REAL_SLURM_CLUSTER"],
        bin=env["REAL_SLURM_BIN"],
    )


def is_up() -> bool:
    status = ["bash", str(SCRIPT), "status", VERSION]
    return (
        os.geteuid() == 0
        and subprocess.run(status, capture_output=True, check=False).returncode == 0
    )


@pytest.fixture(scope="session")
def rest_stack() -> RestStack:
    """The running slurmrestd; skip (outside CI) or fail (in CI) when there is none."""
    found = describe()
    if found is not None and is_up():
        return found
    message = (
        f"slurmrestd of SLURM {VERSION} is not running: "
        f"sudo bash {SCRIPT.relative_to(ROOT)} up {VERSION}"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def token_file(rest_stack: RestStack, tmp_path: Path) -> Path:
    """A file holding a fresh token of the admin user, readable by root only."""
    path = tmp_path / "slurmrestd.token"
    path.touch(mode=0o600)
    path.write_text(rest_stack.token() + "\n")
    return path


@pytest.fixture
def client(rest_stack: RestStack, token_file: Path) -> Iterator[RestVerbs]:
    """A RestVerbs of the stack's cluster, over its slurmrestd."""
    settings = RestSettings(
        url=rest_stack.url,
        api_version=API_VERSION,
        username=ADMIN,
        token_file=token_file,
        timeout=30,
    )
    rest = RestVerbs(settings, rest_stack.cluster)
    yield rest
    rest.close()


@pytest.fixture
def account(rest_stack: RestStack) -> Iterator[str]:
    """A unique account name; the account is removed afterwards if a test left it."""
    name = f"rest{uuid.uuid4().hex[:8]}"
    yield name
    rest_stack.run("scancel", f"--account={name}")
    rest_stack.run("sacctmgr", "-i", "delete", "account", name)


# ---- the backend in REST mode (tests/rest/test_backend_over_rest.py) ----------------------


@dataclass(frozen=True)
class Backends:
    """Makes SlurmBackends of the stack's cluster: over slurmrestd, or over its commands."""

    stack: RestStack
    token_file: Path
    api_version: str = API_VERSION

    def rest(self, **settings: Any) -> SlurmBackend:
        """A backend with ``execution_mode: rest`` (sacctmgr at hand for RawUsage only)."""
        rest_api = {
            "url": self.stack.url,
            "api_version": self.api_version,
            "username": ADMIN,
            "token_file": str(self.token_file),
            "timeout": 30,
        }
        return self._make(execution_mode="rest", rest_api=rest_api, **settings)

    def cli(self, **settings: Any) -> SlurmBackend:
        """The same backend with the command-line tools, for comparison."""
        return self._make(**settings)

    def _make(self, **settings: Any) -> SlurmBackend:
        components = {k: dict(v) for k, v in COMPONENTS.items()}
        components["cpu"]["unit_factor"] = 1  # CPU-minutes, easy to check by hand
        backend_settings = {
            "slurm_bin_path": self.stack.bin,
            "cluster_name": self.stack.cluster,
            "enable_user_homedir_account_creation": False,
            **settings,
        }
        return SlurmBackend(backend_settings, components)

    def assoc_rows(self, account: str, fields: str) -> dict[str, list[str]]:
        """``account``'s associations read by sacctmgr, by user ('' for the account's own)."""
        out = self.stack.run(
            "sacctmgr", "-P", "-n", "show", "assoc", "where", f"account={account}",
            f"cluster={self.stack.cluster}", f"format=User,{fields}",
        ).stdout  # fmt: skip
        rows = [line.split("|") for line in out.splitlines() if line]
        return {row[0]: row[1:] for row in rows}

    def submit(self, user: str, account: str, *options: str, wrap: str = "sleep 3") -> str:
        """sbatch a job as ``user`` through the stack's commands; its job ID."""
        proc = self.stack.run(
            "sbatch", "--parsable", "-A", account, "--output=/dev/null", "--time=5",
            *options, "--wrap", wrap, user=user,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def job_state(self, job_id: str) -> str:
        """The job's state as sacct has it."""
        out = self.stack.run("sacct", "-X", "-n", "-P", "-j", job_id, "--format=State").stdout
        return out.strip().split(" ")[0]

    def requeue_after_a_run(self, job_id: str, timeout: float = 60) -> None:
        """Requeue the job once it has run for two seconds: sacct keeps that run (``-D``).

        Returns once slurmdbd has the job's next, pending run: until then sacct reports
        the requeued run as the job's last.
        """
        deadline = time.monotonic() + timeout
        while self.job_state(job_id) != "RUNNING":
            assert time.monotonic() < deadline, f"job {job_id} did not start in {timeout}s"
            time.sleep(0.5)
        time.sleep(2)
        proc = self.stack.run("scontrol", "requeue", job_id)
        assert proc.returncode == 0, proc.stderr
        while self.job_state(job_id) != "PENDING":
            assert time.monotonic() < deadline, f"job {job_id} was not requeued in {timeout}s"
            time.sleep(0.5)

    def wait_finished(self, job_ids: list[str], timeout: float = 120) -> None:
        """Wait until sacct lists every job as ended."""
        deadline = time.monotonic() + timeout
        while any(self.job_state(j) in {"PENDING", "RUNNING", "COMPLETING", ""} for j in job_ids):
            assert time.monotonic() < deadline, f"jobs {job_ids} did not end in {timeout}s"
            time.sleep(1)


@pytest.fixture
def api_version() -> str:
    """The data parser REST mode uses; a test parametrised on it runs older ones too."""
    return API_VERSION


@pytest.fixture
def backends(rest_stack: RestStack, token_file: Path, api_version: str) -> Backends:
    """Backends of the stack's cluster in either mode."""
    return Backends(rest_stack, token_file, api_version)


@pytest.fixture
def names(rest_stack: RestStack) -> Iterator[dict[str, str]]:
    """Unique customer/project/allocation slugs; their accounts are removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    slugs = {
        "customer_slug": f"rc-{tag}",
        "project_slug": f"rp-{tag}",
        "slug": f"ra-{tag}",
        "backend_id": f"ra-{tag}",
    }
    yield slugs
    for name in (slugs["slug"], slugs["project_slug"], slugs["customer_slug"]):
        rest_stack.run("scancel", f"--account={name}")
        for _ in range(10):
            proc = rest_stack.run("sacctmgr", "-i", "delete", "account", "where", f"name={name}")
            if "Job(s) active" not in proc.stdout + proc.stderr:
                break
            time.sleep(2)
