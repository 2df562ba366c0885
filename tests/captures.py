"""Real SLURM output captured from 22.05 and 24.11 (``tests/data/slurm-<version>/``).

Each ``NAME.txt`` holds ``# command: …``, ``# exit: N`` and then stdout byte for byte;
``NAME.stderr.txt`` (present only when stderr was not empty) holds stderr after the
same two lines. Both versions ran the same commands on the same state, under the same
file names, so a test can take one name and check it on both.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"
VERSIONS = ("22.05", "24.11")


@dataclass(frozen=True)
class Run:
    """One captured command: its command line, exit status, stdout and stderr."""

    name: str
    command: str
    exit: int
    stdout: str
    stderr: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def directory(version: str) -> Path:
    return DATA / f"slurm-{version}"


def _split(path: Path) -> tuple[str, int, str]:
    text = path.read_text()
    command_line, _, rest = text.partition("\n")
    exit_line, _, body = rest.partition("\n")
    assert command_line.startswith("# command: "), path
    assert exit_line.startswith("# exit: "), path
    return command_line.removeprefix("# command: "), int(exit_line.removeprefix("# exit: ")), body


def load(version: str, name: str) -> Run:
    """The capture ``name`` (relative, without ``.txt``) of ``version``, stderr included."""
    base = directory(version) / name
    command, code, stdout = _split(base.with_name(base.name + ".txt"))
    stderr_path = base.with_name(base.name + ".stderr.txt")
    stderr = ""
    if stderr_path.exists():
        err_command, err_code, stderr = _split(stderr_path)
        assert (err_command, err_code) == (command, code), stderr_path
    return Run(name, command, code, stdout, stderr)


def names(version: str) -> set[str]:
    """Every capture of ``version`` with a command line (relative names, no ``.txt``)."""
    root = directory(version)
    found = set()
    for path in root.rglob("*.txt"):
        if path.name.endswith(".stderr.txt") or "rest" in path.relative_to(root).parts:
            continue
        if not path.read_text().startswith("# command: "):
            continue
        found.add(str(path.relative_to(root).with_suffix("")))
    return found


def columns(run: Run) -> tuple[tuple[str, ...], list[str]]:
    """The capture's column names (from ``format=`` or its header line) and its data rows."""
    for arg in run.argv:
        for prefix in ("format=", "--format="):
            if arg.startswith(prefix):
                fields = tuple(arg.removeprefix(prefix).split(","))
                has_header = not ({"--noheader", "-n"} & set(run.argv))
                return fields, run.lines[1:] if has_header else run.lines
    header, *rows = run.lines
    return tuple(header.split("|")), rows


def project(run: Run, fields: tuple[str, ...]) -> list[str]:
    """The capture's rows rewritten with only ``fields``, picked by column name."""
    names_, rows = columns(run)
    index = [names_.index(field) for field in fields]
    projected = []
    for row in rows:
        values = row.split("|")
        assert len(values) == len(names_), row
        projected.append("|".join(values[i] for i in index))
    return projected
