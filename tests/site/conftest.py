"""Host-side features on the real file system: a temporary base path, real setfacl.

Lustre is not available here: ``lfs`` is a stand-in executable that records its argv
(one line per call) and fails when told to.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest

from tests.services import unavailable

_LFS = """#!/bin/sh
printf '%s\\n' "$*" >> {dir}/lfs.calls
if [ -f {dir}/lfs.fail ]; then cat {dir}/lfs.fail >&2; exit 1; fi
"""


class LfsStandIn:
    """A directory holding the stand-in ``lfs`` and the calls it recorded."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "lfs"
        path.write_text(_LFS.format(dir=shlex.quote(str(directory))))
        path.chmod(0o755)

    def calls(self) -> list[list[str]]:
        log = self.dir / "lfs.calls"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    def fail_with(self, stderr: str) -> None:
        (self.dir / "lfs.fail").write_text(stderr)


@pytest.fixture
def lfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LfsStandIn:
    """The stand-in ``lfs``, first on PATH."""
    standin = LfsStandIn(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{standin.dir}:{os.environ['PATH']}")
    return standin


@pytest.fixture(autouse=True)
def host_tools() -> None:
    """Root (for chown) and the acl tools: skip without them, fail in CI."""
    problems = [] if os.geteuid() == 0 else ["not root (chown needs it)"]
    if shutil.which("setfacl") is None or shutil.which("getfacl") is None:
        problems.append("setfacl/getfacl missing: apt-get install acl")
    if problems:
        message = "; ".join(problems)
        unavailable(message)
