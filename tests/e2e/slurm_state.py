"""Read SLURM state the way a site admin would, for assertions (emulator or real)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from waldur_site_agent_slurm.slurm.parser import parse_tres as tres


@dataclass(frozen=True)
class Association:
    account: str
    user: str
    parent: str
    grp_tres_mins: dict[str, int]
    qos: frozenset[str]
    default_qos: str


def associations(rows: list[list[str]]) -> list[Association]:
    """Rows of Account,User,ParentName,GrpTRESMins,MaxTRESMins,QOS,DefaultQOS."""
    return [
        Association(
            row[0], row[1], row[2], tres(row[3]), frozenset(filter(None, row[5].split(","))), row[6]
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Tree:
    """Accounts with their parents, users per account, and account-level settings."""

    rows: list[Association]

    @classmethod
    def read(cls, read_rows: Callable[[], list[list[str]]]) -> Tree:
        return cls(associations(read_rows()))

    def account(self, name: str) -> Association | None:
        return next((a for a in self.rows if a.account == name and not a.user), None)

    def users(self, account: str) -> set[str]:
        return {a.user for a in self.rows if a.account == account and a.user}

    @property
    def accounts(self) -> set[str]:
        return {a.account for a in self.rows if not a.user}
