"""A fake command runner: the only thing tests replace. It records the exact argv."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from waldur_site_agent_slurm.slurm.runner import CommandResult, checked


@dataclass
class FakeRunner:
    """Answers reads from canned text keyed by a substring of the command line.

    ``outputs`` maps a substring of the joined argv to stdout; the first match wins.
    ``failures`` maps a substring to (returncode, stdout, stderr) for commands that fail
    (or answer something else than plain success), judged as the real runner judges them.
    Writes succeed with no output unless a failure matches.
    """

    outputs: dict[str, str] = field(default_factory=dict)
    failures: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def display(self, argv: Sequence[str]) -> str:
        return " ".join(argv)

    def _answer(self, argv: Sequence[str], accept_nothing: bool) -> CommandResult:
        line = " ".join(argv)
        self.calls.append(list(argv))
        for needle, (code, out, err) in self.failures.items():
            if needle in line:
                result = CommandResult(tuple(argv), code, out, err)
                return checked(result, accept_nothing=accept_nothing)
        for needle, out in self.outputs.items():
            if needle in line:
                return CommandResult(tuple(argv), 0, out, "")
        return CommandResult(tuple(argv), 0, "", "")

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        del mutating
        return self._answer(argv, accept_nothing)

    def stream(self, argv: Sequence[str], env: dict[str, str] | None = None) -> Iterator[str]:
        del env
        yield from self._answer(argv, False).stdout.splitlines()

    @property
    def writes(self) -> list[list[str]]:
        """Commands that change SLURM (sacctmgr add/modify/delete, scancel)."""
        return [
            c
            for c in self.calls
            if c[0] == "scancel" or any(v in c for v in ("add", "modify", "delete"))
        ]


def assoc_lines(*rows: str) -> str:
    """Rows of ``show assoc`` in the client's format (Account|User|Partition|Parent|...)."""
    return "\n".join(rows) + "\n"


TRES_OUTPUT = "cpu|\nmem|\nenergy|\nnode|\nbilling|\nfs|disk\nvmem|\npages|\ngres|gpu\n"
