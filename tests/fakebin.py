"""Stand-in ``sacctmgr`` and ``sacct`` executables for a ``slurm_bin_path`` directory.

They let the backend's real runner start real processes and stream real pipes, with
output the test or bench decides:

- ``sacctmgr ... show assoc ...`` prints ``assoc.txt``; other sacctmgr commands print
  nothing.
- ``sacct`` prints ``sacct-<starttime>.txt`` for its ``--starttime=`` value, or nothing.

Each appends its arguments as one line to ``<name>.calls``, so a test can count and
inspect every invocation.
"""

from __future__ import annotations

import shlex
from pathlib import Path

_SACCTMGR = """#!/bin/sh
printf '%s\\n' "$*" >> {dir}/sacctmgr.calls
case "$*" in
  *"show assoc"*) exec cat {dir}/assoc.txt ;;
esac
"""

_SACCT = """#!/bin/sh
printf '%s\\n' "$*" >> {dir}/sacct.calls
for arg in "$@"; do
  case "$arg" in --starttime=*) start="${{arg#--starttime=}}" ;; esac
done
if [ -f "{dir}/sacct-$start.txt" ]; then exec cat "{dir}/sacct-$start.txt"; fi
"""


class FakeSlurmBin:
    """A directory holding the two commands and the files they print."""

    def __init__(self, directory: Path) -> None:
        """Write both executables into ``directory`` (created if needed)."""
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        quoted = shlex.quote(str(directory))
        for name, text in (("sacctmgr", _SACCTMGR), ("sacct", _SACCT)):
            path = directory / name
            path.write_text(text.format(dir=quoted))
            path.chmod(0o755)
        self.set_accounts([])

    def set_accounts(self, rows: list[str]) -> None:
        """``show assoc`` rows in the client's column order (Account|User|Partition|...)."""
        (self.dir / "assoc.txt").write_text("".join(f"{row}\n" for row in rows))

    def month_file(self, sacct_start: str) -> Path:
        """The file sacct prints for ``--starttime=<sacct_start>``."""
        return self.dir / f"sacct-{sacct_start}.txt"

    def calls(self, name: str) -> list[str]:
        """The argument lines of every invocation of ``name`` so far."""
        return calls_in(self.dir, name)


def calls_in(directory: Path, name: str) -> list[str]:
    """The argument lines of every invocation of ``name`` from ``directory`` so far."""
    path = directory / f"{name}.calls"
    return path.read_text().splitlines() if path.exists() else []


def allocation_rows(accounts: list[str], parent: str = "proj") -> list[str]:
    """``show assoc`` rows for a project and allocation accounts below it."""
    rows = ["root||||1||||normal|", f"{parent}|||root|1||||normal|"]
    return rows + [f"{name}|||{parent}|1||||normal|" for name in accounts]
