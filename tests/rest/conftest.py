"""REST tier: RestVerbs against the real slurmrestd of the SLURM 24.11 stack.

scripts/real-slurm.sh starts slurmrestd (JWT auth) with the 24.11 stack; ``env 24.11``
gives its URL and the command that makes a token. The tier needs root and that stack.
Outside CI a missing stack or slurmrestd skips its tests with the command that starts
it; in CI (CI=true) it is a failure, never a skip.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.exports import exports
from waldur_site_agent_slurm.slurm.rest_verbs import RestSettings, RestVerbs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-slurm.sh"
VERSION = "24.11"
API_VERSION = "v0.0.42"
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
