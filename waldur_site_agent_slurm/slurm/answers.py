"""What a SLURM command's answer means, recognised by meaning in SLURM 22.05 and 24.11.

sacctmgr words the same outcome differently from one release to the next, so each
outcome is matched on what its texts have in common, never on one release's bytes
(22.05 → 24.11):

* nothing changed, add: " Nothing new added." → " Already existing account …", or
  "Request didn't affect anything" / "Nothing added." (add user), on stdout;
* nothing changed, modify: " Nothing modified" → stdout empty, stderr
  "sacctmgr: error: Request didn't affect anything";
* nothing changed, delete: " Nothing deleted" in both;
* parent account missing: " Parent account '…' doesn't exist …" → " error: No parent
  account '…' on cluster '…'";
* account missing (add user): stderr " This account '…' doesn't exist." → stdout
  "No account X on cluster C, skipping." and nothing on stderr;
* jobs active: " Error with request: Job(s) active …" in both;
* default account: " Error with request: You can not remove the default account of a
  user" in both;
* SLURM unreachable: "slurm_persist_conn_open_without_init: failed to open persistent
  connection …" → "_open_persist_conn: failed to open persistent connection …", then
  "Sending PersistInit msg: Connection refused" in both.

"Nothing changed" means different things by verb, so the verb of the command decides:
an ``add`` that changed nothing found everything already there, a ``delete`` found
nothing to delete, and a ``modify`` matched no association (not "already set": SLURM
answers a modify to the same value with "Modified …" and exit 0).

A sacctmgr change that exits 0 but says ``error:`` on stderr has failed: 22.05 and 24.11
answer ``set GrpTRESMins=cpu=abc`` with ``error: Invalid unit type`` and exit 0, and
store 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum
from pathlib import PurePath


class Answer(Enum):
    """The outcome of a command, whatever release worded it."""

    DONE = "done"
    ALREADY_EXISTS = "already exists"
    NOTHING_DELETED = "nothing to delete"
    NO_MATCH = "no association matched"
    MISSING_PARENT = "the parent account does not exist"
    MISSING_ACCOUNT = "the account does not exist"
    JOBS_ACTIVE = "jobs are still active"
    DEFAULT_ACCOUNT = "it is a user's default account"
    UNAVAILABLE = "SLURM cannot be reached"
    FAILED = "failed"


NOTHING_TO_DO = frozenset({Answer.ALREADY_EXISTS, Answer.NOTHING_DELETED, Answer.NO_MATCH})
"""Answers of a request that changed nothing (sacctmgr exits 1 for them)."""

CHANGE_VERBS = {"add": Answer.ALREADY_EXISTS, "delete": Answer.NOTHING_DELETED}
"""What "nothing changed" means for each verb; any other change verb matched nothing."""
WRITE_VERBS = frozenset({"add", "create", "modify", "update", "delete", "remove"})

# SLURM cannot be reached: slurmdbd (persistent connection) or slurmctld.
_UNAVAILABLE = re.compile(
    r"failed to open persistent connection|persist_conn|Sending PersistInit msg"
    r"|Problem talking to the database|Unable to contact slurm controller"
    r"|Connection refused|Socket timed out|Zero Bytes were transmitted or received"
)
_JOBS_ACTIVE = re.compile(r"Job\(s\) active")
_DEFAULT_ACCOUNT = re.compile(r"can ?not remove the default account", re.IGNORECASE)
# 22.05: " Parent account 'p' doesn't exist on cluster c"; 24.11: "error: No parent account 'p'".
_MISSING_PARENT = re.compile(
    r"\bno parent account\b|\bparent account\s+'[^']*'\s+does(?:n't| not) exist", re.IGNORECASE
)
# 24.11: "No account a on cluster c, skipping."; 22.05: " This account 'a' doesn't exist."
_SKIPPED_ACCOUNT = re.compile(r"\bno account\s+\S+\s+on cluster\b.*\bskipping\b", re.IGNORECASE)
_MISSING_ACCOUNT = re.compile(
    rf"{_SKIPPED_ACCOUNT.pattern}|\baccount\s+'[^']*'\s+does(?:n't| not) exist", re.IGNORECASE
)
# Lines that only say the request changed nothing (with 24.11's follow-up advice).
_NOTHING_CHANGED = re.compile(
    r"^(?:sacctmgr: error: )?\s*(?:"
    r"nothing (?:new )?(?:added|modified|deleted)\b"
    r"|already existing\b"
    r"|request didn't affect anything"
    r"|error with request: data has not changed"
    r"|make sure the accounts requested here have been added"
    r")",
    re.IGNORECASE,
)
_ERROR = re.compile(r"\berror:", re.IGNORECASE)


def verb(argv: Sequence[str]) -> str | None:
    """The sacctmgr verb of ``argv`` (``add``, ``modify``, ``show`` …); None for other commands."""
    if not argv or PurePath(argv[0]).name != "sacctmgr":
        return None
    return next((arg.lower() for arg in argv[1:] if not arg.startswith("-")), None)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _only_nothing_changed(lines: list[str]) -> bool:
    return all(_NOTHING_CHANGED.match(line) for line in lines)


def classify(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> Answer:
    """What the command's exit status and output mean (see the module's list)."""
    command = verb(argv)
    write = command in WRITE_VERBS
    if returncode == 0:
        if write and _ERROR.search(stderr):
            return Answer.FAILED  # SLURM said error and exited 0: the value it stored is wrong
        if write and _SKIPPED_ACCOUNT.search(stdout):
            return Answer.MISSING_ACCOUNT  # an association asked for was skipped
        return Answer.DONE
    output = f"{stderr}\n{stdout}"
    for pattern, answer in (
        (_UNAVAILABLE, Answer.UNAVAILABLE),
        (_JOBS_ACTIVE, Answer.JOBS_ACTIVE),
        (_DEFAULT_ACCOUNT, Answer.DEFAULT_ACCOUNT),
        (_MISSING_PARENT, Answer.MISSING_PARENT),
        (_MISSING_ACCOUNT, Answer.MISSING_ACCOUNT),
    ):
        if pattern.search(output):
            return answer
    said = _lines(stdout) + _lines(stderr)
    if write and said and _only_nothing_changed(said):
        return CHANGE_VERBS.get(command or "", Answer.NO_MATCH)
    return Answer.FAILED
