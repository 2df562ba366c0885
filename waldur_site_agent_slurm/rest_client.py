"""SlurmRestClient: the backend's client interface over slurmrestd (``execution_mode: rest``).

The same verbs, reads and caching as ``SlurmClient``: one associations read serves the
cycle until a write, one ``/jobs/`` read per usage window, settings keyed by SLURM's
field names. Every value is validated before it goes into a URL or a JSON body
(``RestVerbs``); every request has the configured timeout. The data-parser version is
checked against the server's ``/openapi/v3`` before the first request. An association
update sends the association's TRES lists again (slurmrestd clears one left out), from
the cycle's associations read or one read of the account's.

A QoS per allocation (``qos_management``) goes through ``/slurmdb/<v>/qos/`` (read, POST,
DELETE), made by ``rest_qos.RestQos``, which also says what an update keeps.

Three things slurmrestd cannot do run ``sacctmgr`` on the agent host (see the README's REST
mode section): resetting an account's or a QoS's RawUsage (no call for it) and reading
GrpSubmitJobs back (written as ``max.jobs.per.submitted``, but SLURM 24.11's answers leave
it out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.structures import ClientResource

from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.errors import (
    SlurmCommandError,
    SlurmConfigError,
    SlurmTimeoutError,
)
from waldur_site_agent_slurm.slurm import parser, rest_qos, validation
from waldur_site_agent_slurm.slurm.accounting import (
    AccountingClient,
    AssociationSnapshot,
    Operation,
)
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, JobRecord
from waldur_site_agent_slurm.slurm.rest import RestSettings
from waldur_site_agent_slurm.slurm.rest_parser import (
    association_record,
    association_tres,
    text,
    tres_entries,
)
from waldur_site_agent_slurm.slurm.rest_verbs import RestAccount, RestVerbs, merge
from waldur_site_agent_slurm.slurm.runner import CommandRunner, Runner
from waldur_site_agent_slurm.slurm.write_lock import WriteLock

__all__ = ["RestAccount", "RestSettings", "RestVerbs", "SlurmRestClient"]

# An association as the update of it needs: its record and every TRES list it holds.
_Current = tuple[AssociationRecord, dict[str, Any]]
# SLURM's field names → where they sit in a slurmrestd association (TRES lists).
_TRES_FIELDS = {
    "GrpTRESMins": ("max", "tres", "group", "minutes"),
    "GrpTRES": ("max", "tres", "total"),
    "MaxTRESMins": ("max", "tres", "minutes", "per", "job"),
}
# (url, version) pairs whose server offered the version: /openapi/v3 is megabytes, and a
# backend (with its client) is built every cycle, so it is read once per process.
_OFFERED: set[tuple[str, str]] = set()


def _nested(path: tuple[str, ...], value: object) -> dict[str, Any]:
    result: Any = value
    for key in reversed(path):
        result = {key: result}
    return dict(result)


def _tres_list(current: Mapping[str, int], setting: str) -> list[dict[str, Any]]:
    """``cpu=60,mem=-1`` applied to ``current``: slurmrestd replaces the whole list."""
    wanted = dict(current)
    for tres, value in parser.parse_tres(setting).items():
        if value < 0:
            wanted.pop(tres, None)
        else:
            wanted[tres] = value
    return tres_entries(wanted)


def _own(rows: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The account's own association among an account's rows (the one with no user)."""
    return next((r for r in rows if not r.get("user")), None)


def _no_match(operation: Operation, reason: str) -> SlurmCommandError:
    """A modify that matched nothing fails, as sacctmgr's does (never "already set")."""
    return SlurmCommandError([operation.verb, *map(str, operation.args)], None, "", "", reason)


class SlurmRestClient(AccountingClient):
    """SLURM accounts, associations, limits and accounting through slurmrestd."""

    def __init__(
        self,
        settings: RestSettings,
        cluster: str,
        *,
        transport: httpx.BaseTransport | None = None,
        command_runner: Runner | None = None,
        write_lock: WriteLock | None = None,
    ) -> None:
        """One HTTP client to slurmrestd for ``cluster``; ``command_runner`` for RawUsage.

        ``write_lock``: held around each write request (see ``slurm.write_lock``).
        """
        self.api = RestVerbs(settings, cluster, transport=transport, write_lock=write_lock)
        self.cluster_name = self.api.cluster
        self.version = settings.api_version
        self.commands: Runner = command_runner or CommandRunner()
        self.added_accounts: list[str] = []
        self._snapshot: AssociationSnapshot | None = None
        # The snapshot's associations as slurmrestd sent them, by account.
        self._raw: dict[str, list[Mapping[str, Any]]] = {}
        self._defaults: dict[str, str] = {}
        self._submit_limits: dict[str, int | None] | None = None
        self._tres: frozenset[str] | None = None
        self.qos = rest_qos.RestQos(self._verbs)

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self.api.close()

    def _verbs(self) -> RestVerbs:
        """The requests, once the server is known to offer the configured version."""
        key = (self.api.rest.settings.url, self.version)
        if key not in _OFFERED:
            self.api.check_version()
            _OFFERED.add(key)
        return self.api

    def _changed(self) -> RestVerbs:
        """The requests for a write: the cycle's cached reads are dropped."""
        self._snapshot = None
        self._raw = {}
        self._submit_limits = None
        return self._verbs()

    def describe(self, operation: Operation) -> str:
        """The operation in sacctmgr's words, as slurmrestd is asked to make it."""
        words = [operation.verb.replace("_", " ")]
        for arg in operation.args:
            if isinstance(arg, Mapping):
                words += [f"{k}={v}" for k, v in arg.items()]
            elif isinstance(arg, (tuple, list)):
                words.append(",".join(str(a) for a in arg))
            elif arg is not None:
                words.append(str(arg))
        words += [f"{k}={v}" for k, v in operation.options if v]
        return f"slurmrestd {self.version} (cluster {self.cluster_name}): " + " ".join(words)

    # ---- reads ---------------------------------------------------------------------------

    def snapshot(self) -> AssociationSnapshot:
        """All associations of the cluster, read once (one request) until the next write."""
        if self._snapshot is None:
            raw = self._verbs().raw_associations()
            self._snapshot = AssociationSnapshot(association_record(a) for a in raw)
            for a in raw:
                self._raw.setdefault(str(a.get("account", "")), []).append(a)
            # Each user's default account is the association slurmdbd marks as default.
            self._defaults = {
                str(a["user"]): str(a["account"])
                for a in raw
                if a.get("user") and a.get("is_default") is True
            }
        return self._snapshot

    def submit_limits(self, *, fresh: bool = False) -> dict[str, int | None]:
        """GrpSubmitJobs of every account, read once until the next write (sacctmgr)."""
        if self._submit_limits is None or fresh:
            argv = [
                "sacctmgr",
                "--parsable2",
                "--noheader",
                "show",
                "assoc",
                "where",
                f"cluster={self.cluster_name}",
                "format=" + ",".join(parser.SUBMIT_FIELDS),
            ]
            lines = self._sacctmgr(argv, "reading GrpSubmitJobs", mutating=False)
            self._submit_limits = parser.parse_submit_limits(lines)
        return self._submit_limits

    def account_record(self, name: str, *, fresh: bool = False) -> AssociationRecord | None:
        """One account's association: from the snapshot, else one targeted read."""
        account = validation.account_name(name)
        if self._snapshot is not None and not fresh:
            state = self._snapshot.account(account)
            return state.record if state else None
        rows = self._verbs().associations(account=account)
        return next((r for r in rows if r.account == account and not r.user), None)

    def tres_names(self) -> frozenset[str]:
        """TRES the accounting database knows, read once."""
        if self._tres is None:
            self._tres = self._verbs().tres_names()
        return self._tres

    def user_defaults(self, usernames: Iterable[str]) -> dict[str, str]:
        """Default account of each user among ``usernames``, from the cycle's snapshot."""
        names = {validation.username(name) for name in usernames}
        if not names:
            return {}
        self.snapshot()
        return {u: a for u, a in self._defaults.items() if u in names}

    def jobs(self, window: Window, accounts: Iterable[str]) -> Iterator[JobRecord]:
        """Job allocations of ``accounts`` in ``window``: one ``/jobs/`` request."""
        return iter(self._verbs().jobs(window, accounts))

    def list_accounts(self) -> list[ClientResource]:
        """Every account with its organization and description."""
        return [
            ClientResource(
                name=a.name,
                description=a.description,
                organization=a.organization,
                backend_id=a.name,
            )
            for a in sorted(self._verbs().accounts(), key=lambda a: a.name)
        ]

    def clusters(self) -> frozenset[str]:
        """Clusters registered in the accounting database (also a reachability check)."""
        return self._verbs().clusters()

    def qos_names(self) -> frozenset[str]:
        """Names of the QoS that exist."""
        return self._verbs().qos_names()

    def qos_records(self) -> dict[str, own_qos.QosRecord]:
        """The options of every QoS, by name (one request)."""
        return self.qos.records()

    def qos_record(self, name: str) -> own_qos.QosRecord | None:
        """The options of one QoS (one request); None when it does not exist."""
        return self.qos.record(name)

    def active_jobs(self, account: str, username: str) -> list[str]:
        """Ids of one user's pending, running and suspended jobs in ``account``."""
        account = validation.account_name(account)
        username = validation.username(username)
        return [
            job_id
            for job_id, acct, user in self._verbs().active_jobs()
            if acct == account and user == username
        ]

    # ---- writes --------------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        description: str,
        organization: str,
        parent: str,
        grp_tres_mins: Mapping[str, int] | None = None,
        *,
        qos: Mapping[str, str] | None = None,
    ) -> bool:
        """Create an account under ``parent`` with its QoS, then its limits; False if it existed.

        ``qos`` (``QOS+``, ``DefaultQOS``) goes on the new association in the same request
        (``rest_qos.new_account_levels``).
        """

        def above() -> list[str]:
            row = _own(self._rows(validation.account_name(parent, "parent account")))
            return [str(q) for q in (row or {}).get("qos") or []]

        levels, default = rest_qos.new_account_levels(qos or {}, above)
        created = self._changed().add_account(
            name,
            description=description,
            organization=organization,
            parent=parent,
            qos=levels,
            default_qos=default,
        )
        if not created:
            return False
        self.added_accounts.append(name)
        if grp_tres_mins:
            # A new association holds no TRES lists: there is none to send again.
            limits = {"max": {"tres": {"group": {"minutes": tres_entries(grp_tres_mins)}}}}
            self.api.update_association(name, "", "", limits, held={})
        logger.info("Executed: %s", self.describe(Operation.of("add_account", name, parent)))
        return True

    def remove_account(self, name: str) -> None:
        """Delete the account's associations on this cluster; a missing one is not an error."""
        self._changed().remove_account_associations(name)

    def _association_changes(
        self, settings: Mapping[str, str], current: AssociationRecord | None
    ) -> dict[str, Any]:
        """SLURM's ``Field=value`` settings as a slurmrestd association update."""
        changes: dict[str, Any] = {}
        for key, value in settings.items():
            if key in _TRES_FIELDS:
                now = {
                    "GrpTRESMins": current.grp_tres_mins if current else {},
                    "GrpTRES": current.grp_tres if current else {},
                    "MaxTRESMins": current.max_tres_mins if current else {},
                }[key]
                merge(changes, _nested(_TRES_FIELDS[key], _tres_list(now, value)))
            elif key == "GrpSubmitJobs":
                submitted = rest_qos.count(value, key)
                merge(changes, _nested(("max", "jobs", "per", "submitted"), submitted))
            elif key.lower() == "parent":
                changes["parent_account"] = validation.account_name(value, "parent account")
            elif key == "Fairshare":
                changes["shares_raw"] = validation.fairshare(rest_qos.integer(value, key))
            elif key in ("QOS", "QOS+"):
                names = [validation.qos_name(q) for q in value.split(",") if q]
                if key == "QOS+" and current is not None:
                    names = [*current.qos, *names]
                changes["qos"] = list(dict.fromkeys(names))
            elif key == "DefaultQOS":
                changes["default"] = {"qos": validation.qos_name(value, "default QoS")}
            else:
                raise SlurmConfigError(f"{key} cannot be set through slurmrestd")
        return changes

    def modify_account(self, name: str, settings: dict[str, str]) -> str:
        """Set fields of an account association in one request; return what was done."""
        account = validation.account_name(name)
        operation = Operation.of("modify_account", account, settings)
        rest = {k: v for k, v in settings.items() if k != "RawUsage"}
        if rest:
            # The cycle's snapshot when there is one (writes drop it), else one read: an
            # update of an account that does not exist would make a malformed association.
            rows = self._rows(account)
            found = self._account_now(rows)
            if found is None:
                raise _no_match(operation, f"account {account} does not exist")
            current, held = found
            changes = self._association_changes(rest, current)
            updates = [*self._followers(rows, changes), (account, "", "", changes, held)]
            self._changed().update_associations(updates)
        if "RawUsage" in settings:
            target = ["account", "where", f"name={account}"]
            self._reset_raw_usage(target, settings["RawUsage"], account)
        logger.info("Executed: %s", self.describe(operation))
        return self.describe(operation)

    def _followers(
        self, rows: list[Mapping[str, Any]], changes: Mapping[str, Any]
    ) -> list[tuple[str, str, str, Mapping[str, Any], Mapping[str, Any]]]:
        """A QoS change of an account, also for its users' associations that follow it.

        On the command line a user's association inherits the account's QoS until it is set
        on the user. slurmrestd 24.11 pins the inherited QoS list on a user's association
        whenever it updates that association (its limits, say), and then refuses an account
        QoS change those users' default QoS would not be in. So each user association of
        the account holding the account's present QoS list gets the change too, in the same
        request; one given a QoS of its own (another list) keeps it.
        """
        levels = {key: changes[key] for key in ("qos", "default") if key in changes}
        own = _own(rows)
        if not levels or own is None:
            return []
        present = sorted(own.get("qos") or [])
        return [
            (
                text(row, "account"),
                text(row, "user"),
                text(row, "partition"),
                levels,
                association_tres(row, own),
            )
            for row in rows
            if row.get("user") and sorted(row.get("qos") or []) == present
        ]

    def _rows(self, account: str) -> list[Mapping[str, Any]]:
        """The account's associations as slurmrestd sends them: the snapshot's, else read."""
        if self._snapshot is not None:
            return self._raw.get(account, [])
        return self._verbs().raw_associations(account=account)

    def _account_now(self, rows: list[Mapping[str, Any]]) -> _Current | None:
        """The account's association in its ``rows`` and the TRES lists an update resends.

        The parent account's association is read for the Max* lists the account inherits.
        """
        row = _own(rows)
        if row is None:
            return None
        record = association_record(row)
        parent = _own(self._rows(record.parent)) if record.parent else None
        return record, association_tres(row, parent)

    def _reset_raw_usage(self, target: list[str], value: str, what: str) -> str:
        """RawUsage=0 of ``target`` (``account where name=A``, ``qos Q``) through sacctmgr.

        slurmrestd has no call for it. Returns the command line.
        """
        if value != "0":
            raise SlurmConfigError(f"RawUsage can only be reset to 0, not {value!r}")
        self._snapshot = None
        argv = ["sacctmgr", "--immediate", "modify", *target, f"cluster={self.cluster_name}"]
        argv += ["set", "RawUsage=0"]
        self._sacctmgr(argv, f"resetting the RawUsage of {what}", mutating=True)
        return self.commands.display(argv)

    def _sacctmgr(self, argv: list[str], what: str, *, mutating: bool) -> list[str]:
        """Run one of the sacctmgr commands REST mode needs; a missing sacctmgr says so."""
        try:
            result = self.commands.run(argv, mutating=mutating, accept_nothing=mutating)
        except SlurmCommandError as err:
            if err.returncode is not None or isinstance(err, SlurmTimeoutError):
                raise
            raise SlurmConfigError(
                f"{what} needs sacctmgr on the agent host in REST mode (slurmrestd offers "
                f"no call for it): {err}"
            ) from err
        return result.stdout.splitlines()

    def add_qos(self, name: str, settings: Mapping[str, str]) -> bool:
        """Create a QoS with its options in one request; False when it already existed."""
        created = self.qos.add(name, settings)
        if created:
            logger.info("Executed: %s", self.describe(Operation.of("add_qos", name, settings)))
        return created

    def modify_qos(self, name: str, settings: Mapping[str, str]) -> str:
        """Set options of an existing QoS in one request; return what was done.

        A QoS that does not exist is an error, never created (a POST would create it).
        ``RawUsage=0`` resets its usage through sacctmgr, as for an account.
        """
        qos = validation.qos_name(name)
        operation = Operation.of("modify_qos", qos, settings)
        rest = {k: v for k, v in settings.items() if k != "RawUsage"}
        rest_qos.changes(rest)  # every value checked before any request
        if rest and not self.qos.modify(qos, rest):
            raise _no_match(operation, f"QoS {qos} does not exist")
        if "RawUsage" in settings:
            self.reset_qos_usage(qos, settings["RawUsage"])
        logger.info("Executed: %s", self.describe(operation))
        return self.describe(operation)

    def reset_qos_usage(self, name: str, value: str = "0") -> str:
        """A QoS's RawUsage=0 through sacctmgr, as an account's; the command line."""
        qos = validation.qos_name(name)
        return self._reset_raw_usage(["qos", qos], value, f"QoS {qos}")

    def remove_qos(self, name: str) -> None:
        """Delete a QoS (a missing one is fine); refused while it is a default QoS."""
        self.qos.remove(name)
        self._changed()  # the QoS left the associations' QoS lists
        logger.info("Executed: slurmrestd %s: remove qos %s", self.version, name)

    def _cancel(self, account: str, username: str | None) -> None:
        account = validation.account_name(account)
        user = validation.username(username) if username is not None else None
        for job_id, acct, owner in self._verbs().active_jobs():
            if acct == account and (user is None or owner == user):
                self.api.cancel_job(job_id)

    def cancel_user_jobs(self, username: str, account: str) -> None:
        """Cancel one user's pending and running jobs in ``account`` (``/slurm/<v>/job``)."""
        self._cancel(account, username)

    def cancel_jobs(self, account: str) -> None:
        """Cancel every pending and running job of ``account``."""
        self._cancel(account, None)

    def add_users(
        self,
        usernames: Iterable[str],
        accounts: Iterable[str],
        default_account: str | None = None,
        partition: str | None = None,
        *,
        partitions: Iterable[str] = (),
        qos: str | None = None,
    ) -> None:
        """Associate users with ``accounts`` in one request (one association per partition)."""
        names = sorted({validation.username(name) for name in usernames})
        if not names:
            return
        wanted = list(partitions) or ([partition] if partition else [])
        targets = list(accounts)
        self._changed().add_users(
            names, targets, partitions=wanted, qos=qos, default_account=default_account
        )
        operation = Operation.of("add_users", tuple(names), tuple(targets), default_account)
        logger.info("Executed: %s", self.describe(operation))

    def remove_user(self, username: str, account: str | None = None) -> None:
        """Delete a user's associations with ``account``, or all of them on this cluster."""
        if account is None:
            self._changed().remove_user_associations(username)
        else:
            self._changed().remove_user(username, account)

    def _user_rows(self, account: str, user: str) -> list[_Current]:
        """The user's associations with ``account`` (one per partition), with TRES lists."""
        rows = self._rows(account)
        own = _own(rows)
        return [
            (association_record(r), association_tres(r, own))
            for r in rows
            if r.get("user") == user and r.get("account") == account
        ]

    def modify_user(self, username: str, account: str | None, settings: dict[str, str]) -> str:
        """Set fields of a user's associations with ``account`` (or the user's default)."""
        user = validation.username(username)
        operation = Operation.of("modify_user", user, account, settings)
        rest = dict(settings)
        default = rest.pop("DefaultAccount", None)
        if default is not None:
            self._changed().set_default_account(user, default)
        if rest:
            if account is None:
                raise SlurmConfigError(f"{', '.join(rest)} is set per association: name one")
            rows = self._user_rows(validation.account_name(account), user)
            if not rows:
                raise _no_match(operation, f"{user} has no association with {account}")
            for row, held in rows:
                changes = self._association_changes(rest, row)
                self._changed().update_association(
                    row.account, user, row.partition, changes, held=held
                )
        logger.info("Executed: %s", self.describe(operation))
        return self.describe(operation)
