"""Text printed by SLURM commands → frozen records. The only place that splits on '|'.

Commands are always run with ``--parsable2 --noheader`` and an explicit ``format=``
whose column list is defined here, next to the code that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from waldur_site_agent_slurm.errors import SlurmParseError

ASSOC_FIELDS = (
    "Account",
    "User",
    "Partition",
    "ParentName",
    "Fairshare",
    "GrpTRESMins",
    "MaxTRESMins",
    "GrpTRES",
    "QOS",
    "DefaultQOS",
)
SACCT_FIELDS = ("JobID", "Account", "User", "State", "Start", "End", "AllocTRES")
TRES_FIELDS = ("Type", "Name")
USER_FIELDS = ("User", "DefaultAccount")
SUBMIT_FIELDS = ("Account", "User", "GrpSubmitJobs")

# Memory in TRES strings is in MB, printed with the largest binary unit dividing it.
_MEM_UNITS = {"K": None, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}
# sacctmgr shows memory in the largest unit that keeps it exact to two decimals:
# 7864320 MB is ``7.50T``, 12288000 MB stays ``12000G``. A fraction needs a unit.
_TRES_VALUE_RE = re.compile(r"(\d+)(?:\.(\d{1,2}))?([KMGTP]?)")
_NO_TIME = {"Unknown", "None", ""}
_TIME_LENGTH = len("2026-01-31T22:00:00")  # what sacct prints with --parsable2


@dataclass(frozen=True)
class AssociationRecord:
    """One row of ``sacctmgr show assoc``: an account (user is empty) or a user association."""

    account: str
    user: str
    partition: str
    parent: str
    fairshare: str
    grp_tres_mins: dict[str, int]
    max_tres_mins: dict[str, int]
    grp_tres: dict[str, int]
    qos: tuple[str, ...]
    default_qos: str


class JobRecord(NamedTuple):
    """One job allocation from ``sacct --allocations``; times are naive, in sacct's zone.

    Immutable like the other records, but a named tuple: a year's load builds a million
    of them, and a frozen dataclass takes three times as long to construct.
    """

    job_id: str
    account: str
    user: str
    state: str
    start: datetime | None
    end: datetime | None
    alloc_tres: dict[str, int]


@dataclass(frozen=True)
class UserRecord:
    """One row of ``sacctmgr list user``."""

    user: str
    default_account: str


def split_row(line: str, fields: tuple[str, ...]) -> list[str]:
    """Split one ``--parsable2`` line, insisting on exactly one value per field."""
    values = line.split("|")
    if len(values) != len(fields):
        raise SlurmParseError(
            f"Expected {len(fields)} fields ({','.join(fields)}), got {len(values)}: {line!r}"
        )
    return values


def _rows(lines: Iterable[str], fields: tuple[str, ...]) -> Iterator[list[str]]:
    for line in lines:
        if line.strip():
            yield split_row(line, fields)


def parse_tres(text: str) -> dict[str, int]:
    """Parse ``billing=6000,cpu=6000,gres/gpu=600,mem=12000G`` (memory → MB)."""
    return dict(_tres_items(text))


# sacct prints the same few allocation shapes over and over: parse each text once.
@lru_cache(maxsize=4096)
def _tres_items(text: str) -> tuple[tuple[str, int], ...]:
    result: dict[str, int] = {}
    if not text:
        return ()
    for item in text.split(","):
        name, sep, raw = item.partition("=")
        match = _TRES_VALUE_RE.fullmatch(raw)
        if not sep or not name or match is None or (match.group(2) and not match.group(3)):
            raise SlurmParseError(f"Bad TRES entry {item!r} in {text!r}")
        whole, fraction, unit = match.groups()
        result[name] = _megabytes(whole, fraction, unit, item) if unit else int(whole)
    return tuple(result.items())


def _megabytes(whole: str, fraction: str | None, unit: str, item: str) -> int:
    """``7.50`` and ``T`` → 7864320: a memory amount in whole MB, exactly, or an error."""
    hundredths = int(whole) * 100 + int((fraction or "").ljust(2, "0"))
    factor = _MEM_UNITS[unit]
    kilobytes_x100 = hundredths * (1 if factor is None else factor * 1024)
    if kilobytes_x100 % (100 * 1024):
        raise SlurmParseError(f"Memory {item!r} is not a whole number of MB")
    return kilobytes_x100 // (100 * 1024)


def format_tres(values: dict[str, int]) -> str:
    """The inverse of ``parse_tres`` for command lines: ``cpu=60,mem=1024`` (sorted)."""
    return ",".join(f"{name}={values[name]}" for name in sorted(values))


def parse_time(text: str) -> datetime | None:
    """Parse a sacct timestamp; ``Unknown``/``None`` (not started, still running) → None.

    sacct prints ``YYYY-MM-DDTHH:MM:SS``, no zone; ``fromisoformat`` reads that many times
    faster than ``strptime``. Anything else, a time with a zone included, is refused.
    """
    if len(text) == _TIME_LENGTH:
        try:
            value: datetime | None = datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is not None and value.tzinfo is None:
            return value
    if text in _NO_TIME:
        return None
    raise SlurmParseError(f"Bad time {text!r}")


def parse_associations(lines: Iterable[str]) -> list[AssociationRecord]:
    """Parse ``sacctmgr show assoc format=<ASSOC_FIELDS>``."""
    records = []
    for acct, user, part, parent, share, grp_mins, max_mins, grp, qos, def_qos in _rows(
        lines, ASSOC_FIELDS
    ):
        records.append(
            AssociationRecord(
                account=acct,
                user=user,
                partition=part,
                parent=parent,
                fairshare=share,
                grp_tres_mins=parse_tres(grp_mins),
                max_tres_mins=parse_tres(max_mins),
                grp_tres=parse_tres(grp),
                qos=tuple(q for q in qos.split(",") if q),
                default_qos=def_qos,
            )
        )
    return records


def parse_tres_names(lines: Iterable[str]) -> frozenset[str]:
    """Parse ``sacctmgr list tres format=Type,Name`` into names like ``gres/gpu``."""
    return frozenset(f"{kind}/{name}" if name else kind for kind, name in _rows(lines, TRES_FIELDS))


def parse_names(lines: Iterable[str]) -> frozenset[str]:
    """Parse a one-column listing (``format=Name``) into a set of names."""
    return frozenset(line.strip() for line in lines if line.strip())


def parse_users(lines: Iterable[str]) -> list[UserRecord]:
    """Parse ``sacctmgr list user format=User,DefaultAccount``.

    ``show assoc OnlyDefaults format=User,Account`` gives the same two columns.
    """
    return [UserRecord(user, default) for user, default in _rows(lines, USER_FIELDS)]


def parse_submit_limits(lines: Iterable[str]) -> dict[str, int | None]:
    """Parse ``sacctmgr show assoc format=Account,User,GrpSubmitJobs``: each account's limit.

    User rows are left out; an empty value (no limit) is None.
    """
    limits: dict[str, int | None] = {}
    for account, user, value in _rows(lines, SUBMIT_FIELDS):
        if user or account in limits:
            continue
        if value and not value.isdigit():
            raise SlurmParseError(f"Bad GrpSubmitJobs {value!r} of account {account!r}")
        limits[account] = int(value) if value else None
    return limits


def parse_jobs(lines: Iterable[str]) -> Iterator[JobRecord]:
    """Parse ``sacct --allocations format=<SACCT_FIELDS>`` lazily, one record per line.

    This loop runs for every job of a month (a million in a year's load), so it splits
    rows itself instead of going through ``_rows``, and builds records positionally.
    """
    width = len(SACCT_FIELDS)
    for line in lines:
        values = line.split("|")
        if len(values) != width:
            if not line.strip():
                continue
            split_row(line, SACCT_FIELDS)  # raises, naming the fields
        job_id, account, user, state, start, end, alloc = values
        yield JobRecord(
            job_id,
            account,
            user,
            state.split(" ", 1)[0],
            parse_time(start),
            parse_time(end),
            parse_tres(alloc),
        )


ACTIVE_JOB_STATES = ("PENDING", "RUNNING", "SUSPENDED")
"""Job states that keep an association from being deleted (``Job(s) active``)."""
ACTIVE_JOB_FIELDS = ("JobID", "State")


def parse_job_ids(lines: Iterable[str]) -> list[str]:
    """Parse ``squeue --noheader --format=%i``: one job id a line, in squeue's order."""
    return [line.strip() for line in lines if line.strip()]


def parse_active_job_ids(lines: Iterable[str]) -> list[str]:
    """The ids of pending, running or suspended jobs in ``sacct format=JobID,State``."""
    return [
        job_id
        for job_id, state in _rows(lines, ACTIVE_JOB_FIELDS)
        if state.split(" ", 1)[0] in ACTIVE_JOB_STATES
    ]


ACCOUNT_FIELDS = ("Account", "Organization", "Description")  # free text last


@dataclass(frozen=True)
class AccountRecord:
    """One row of ``sacctmgr list account``."""

    name: str
    organization: str
    description: str


def parse_accounts(lines: Iterable[str]) -> list[AccountRecord]:
    """Parse ``sacctmgr list account format=<ACCOUNT_FIELDS>``; a description may hold '|'."""
    records = []
    for line in lines:
        if not line.strip():
            continue
        values = line.split("|", len(ACCOUNT_FIELDS) - 1)
        if len(values) != len(ACCOUNT_FIELDS):
            split_row(line, ACCOUNT_FIELDS)  # raises, naming the fields
        records.append(AccountRecord(*values))
    return records
