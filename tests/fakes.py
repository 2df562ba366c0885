"""A fake command runner: the only thing tests replace. It records the exact argv."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from waldur_site_agent_slurm.slurm import parser
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
    # Like ``failures``, each answered only once (the next matching command succeeds).
    failures_once: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    # What ``sacctmgr --version`` says (the client reads differently before 23.02).
    slurm_release: tuple[int, int] | None = None

    def display(self, argv: Sequence[str]) -> str:
        return " ".join(argv)

    def release(self) -> tuple[int, int] | None:
        return self.slurm_release

    def _answer(self, argv: Sequence[str], accept_nothing: bool) -> CommandResult:
        line = " ".join(argv)
        self.calls.append(list(argv))
        once = next((needle for needle in self.failures_once if needle in line), None)
        if once is not None:
            code, out, err = self.failures_once.pop(once)
            return checked(
                CommandResult(tuple(argv), code, out, err), accept_nothing=accept_nothing
            )
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


# What ``show assoc`` prints for one account: the client's columns, in order.
_ASSOC_COLUMNS = parser.ASSOC_FIELDS
_TRES_COLUMNS = ("GrpTRESMins", "MaxTRESMins", "GrpTRES")
_JOB_COUNT_COLUMNS = ("GrpSubmitJobs", "GrpJobs", "MaxJobs", "MaxSubmitJobs")


@dataclass
class AccountFake(FakeRunner):
    """A FakeRunner whose ``show assoc`` shows what ``modify account`` wrote, as SLURM does.

    ``accounts`` maps an account to its association's columns (sacctmgr's names), shown
    before ``user_rows``, in the order a ``format=`` asks for (all columns without one);
    ``of`` builds both from ``assoc_lines`` text. A TRES
    setting changes only the TRES it names (``-1`` removes one); ``RawUsage`` is not shown.
    ``stored`` makes SLURM keep something else than a ``Field=value`` it was given, the
    way 24.11 stores ``cpu=0`` for ``cpu=abc``.
    """

    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    stored: dict[str, str] = field(default_factory=dict)
    user_rows: list[dict[str, str]] = field(default_factory=list)  # shown as they are

    @classmethod
    def of(cls, assoc: str, **outputs: str) -> AccountFake:
        """A fake holding the account rows of ``assoc`` (``assoc_lines`` text).

        ``outputs`` answers other reads, keyed as ``FakeRunner.outputs``.
        """
        fake = cls(outputs=dict(outputs))
        for line in filter(str.strip, assoc.splitlines()):
            columns = dict(zip(_ASSOC_COLUMNS, line.split("|"), strict=True))
            if columns["User"]:
                fake.user_rows.append(columns)
            else:
                fake.accounts[columns["Account"]] = columns
        return fake

    def _answer(self, argv: Sequence[str], accept_nothing: bool) -> CommandResult:
        result = super()._answer(argv, accept_nothing)
        if result.returncode != 0:
            return result
        if "modify" in argv and "account" in argv and "set" in argv:
            self._modify(argv)
        elif "show" in argv and "assoc" in argv:
            wanted = [a.removeprefix("account=") for a in argv if a.startswith("account=")]
            shown = next(
                (a.removeprefix("format=").split(",") for a in argv if a.startswith("format=")),
                _ASSOC_COLUMNS,
            )
            rows = [
                "|".join(columns.get(c, "") for c in shown)
                for columns in [*self.accounts.values(), *self.user_rows]
                if not wanted or columns["Account"] in wanted
            ]
            return CommandResult(tuple(argv), 0, "".join(f"{row}\n" for row in rows), "")
        return result

    def _modify(self, argv: Sequence[str]) -> None:
        name = next(a.removeprefix("name=") for a in argv if a.startswith("name="))
        columns = self.accounts[name]
        for setting in argv[list(argv).index("set") + 1 :]:
            key, _, value = self.stored.get(setting, setting).partition("=")
            if key in _TRES_COLUMNS:
                held = dict(i.split("=", 1) for i in columns.get(key, "").split(",") if i)
                for item in value.split(","):
                    tres, _, amount = item.partition("=")
                    held[tres] = amount
                columns[key] = ",".join(f"{t}={v}" for t, v in sorted(held.items()) if v != "-1")
            elif key in _JOB_COUNT_COLUMNS:
                columns[key] = "" if value == "-1" else value  # -1 lifts the limit
            elif key != "RawUsage":
                columns[key] = value


@dataclass
class QosFake(AccountFake):
    """An AccountFake that also keeps QoS: ``add qos``, ``modify qos NAME [cluster=] set``.

    ``qos`` maps a QoS name to its columns (sacctmgr's names); ``show qos`` prints them in
    the order its ``format=`` asks for. A TRES setting changes only the TRES it names;
    ``RawUsage`` is not shown.
    """

    qos: dict[str, dict[str, str]] = field(default_factory=dict)

    def _answer(self, argv: Sequence[str], accept_nothing: bool) -> CommandResult:
        args = list(argv)
        if "qos" not in args or "assoc" in args or "account" in args:
            return super()._answer(argv, accept_nothing)
        result = FakeRunner._answer(self, argv, accept_nothing)
        if result.returncode != 0:
            return result
        name = args[args.index("qos") + 1]
        if "add" in args:
            self.qos[name] = {"Name": name}
            self._set_qos(name, args[args.index("qos") + 2 :])
        elif "modify" in args:
            self._set_qos(name, args[args.index("set") + 1 :])
        elif "show" in args:
            shown = next(a.removeprefix("format=").split(",") for a in args if "format=" in a)
            wanted = [a.removeprefix("name=") for a in args if a.startswith("name=")]
            rows = [
                "|".join(columns.get(c, "") for c in shown)
                for columns in self.qos.values()
                if not wanted or columns["Name"] in wanted
            ]
            return CommandResult(tuple(argv), 0, "".join(f"{row}\n" for row in rows), "")
        return result

    def _set_qos(self, name: str, settings: list[str]) -> None:
        columns = self.qos[name]
        for setting in settings:
            key, _, value = self.stored.get(setting, setting).partition("=")
            if key == "GrpTRESMins":
                held = dict(i.split("=", 1) for i in columns.get(key, "").split(",") if i)
                held.update(item.split("=", 1) for item in value.split(","))
                columns[key] = ",".join(f"{t}={v}" for t, v in sorted(held.items()) if v != "-1")
            elif key != "RawUsage":
                columns[key] = value
