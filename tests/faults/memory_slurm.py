"""A thread-safe SLURM in memory, slow on purpose, for concurrency tests.

It answers the commands the plugin runs for QoS, Fairshare and usage (``show assoc``,
``modify account``, ``list tres``, ``sacct``) from one shared association table. Every
command takes a random few milliseconds, like a real round trip to slurmdbd, so
threads interleave between reading SLURM, deciding and writing. A write applies
atomically, as slurmdbd applies one ``sacctmgr modify``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tests.fakes import TRES_OUTPUT, assoc_lines
from waldur_site_agent_slurm.slurm.runner import CommandResult


@dataclass
class Account:
    """The fields of one account association the plugin reads and writes."""

    parent: str = "root"
    fairshare: str = "1"
    grp_tres_mins: str = ""
    qos: str = "normal"
    default_qos: str = ""


@dataclass
class MemorySlurm:
    """The Runner protocol over an in-memory association table."""

    accounts: dict[str, Account] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)  # sacct --parsable2 lines
    latency: float = 0.004
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _pause(self) -> None:
        time.sleep(random.random() * self.latency)  # noqa: S311 - scheduling noise only

    def display(self, argv: Sequence[str]) -> str:
        return " ".join(argv)

    def release(self) -> tuple[int, int] | None:
        return None  # reads as the plain ``show assoc`` of SLURM 23.02 and later

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        del mutating, accept_nothing
        self._pause()
        args = list(argv)
        with self._lock:
            if "tres" in args:
                out = TRES_OUTPUT
            elif "show" in args and "assoc" in args:
                out = self._assoc(args)
            elif args[2:4] == ["modify", "account"]:
                self._modify(args)
                out = ""
            else:
                raise AssertionError(f"unexpected command {args}")
        self._pause()
        return CommandResult(tuple(argv), 0, out, "")

    def stream(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
        del env
        self._pause()
        with self._lock:
            lines = list(self.jobs)
        yield from lines

    def _assoc(self, args: list[str]) -> str:
        wanted = next((a.split("=", 1)[1] for a in args if a.startswith("account=")), None)
        return assoc_lines(
            *(
                f"{name}|||{a.parent}|{a.fairshare}|{a.grp_tres_mins}|||{a.qos}|{a.default_qos}"
                for name, a in self.accounts.items()
                if wanted in (None, name)
            )
        )

    def _modify(self, args: list[str]) -> None:
        name = next(a.split("=", 1)[1] for a in args if a.startswith("name="))
        account = self.accounts[name]
        for item in args[args.index("set") + 1 :]:
            key, value = item.split("=", 1)
            if key == "QOS":
                account.qos = value
            elif key == "DefaultQOS":
                account.default_qos = value
            elif key == "Fairshare":
                account.fairshare = value
            elif key == "GrpTRESMins":
                account.grp_tres_mins = value
            elif key != "RawUsage":
                raise AssertionError(f"unexpected field {item}")

    def current_qos(self, name: str) -> str:
        account = self.accounts[name]
        return account.default_qos or account.qos
