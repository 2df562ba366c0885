"""SLURM's accounting and job requests over slurmrestd (REST mode), one method each.

``RestVerbs`` speaks to ``/slurmdb/<version>/`` for accounts, associations, users,
QoS, TRES and clusters and to ``/slurm/<version>/`` for jobs, through one
``RestTransport`` (one pooled HTTP client). Every name is validated before it goes into
a URL or a JSON body, as on the command line, and association rows come back as the
same ``AssociationRecord`` the ``sacctmgr`` parser makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.errors import SlurmCommandError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, JobRecord
from waldur_site_agent_slurm.slurm.rest import (
    SLURM,
    SLURMDB,
    RestAnswer,
    RestSettings,
    RestTransport,
)
from waldur_site_agent_slurm.slurm.rest_parser import (
    association_record,
    association_tres,
    job_record,
    many,
    text,
    tres_entries,
    tres_name,
)
from waldur_site_agent_slurm.slurm.write_lock import WriteLock

__all__ = ["RestAccount", "RestSettings", "RestVerbs", "merge"]

# The job states of a job that still runs or may run (squeue's pending/running/suspended).
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "CONFIGURING", "COMPLETING"})
# Data parsers whose ``/jobs/`` query refuses a bare number as a time (SLURM 24.11).
_TIME_AS_UTS = frozenset({"v0.0.40", "v0.0.41"})


def merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Merge nested ``changes`` into ``into``; a list (a TRES list) replaces the old one."""
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            merge(into[key], value)
        else:
            into[key] = value


@dataclass(frozen=True)
class RestAccount:
    """One account as ``/accounts/`` lists it."""

    name: str
    description: str
    organization: str


class RestVerbs:
    """The SLURM requests of one cluster over one slurmrestd (``SlurmRestClient`` uses them)."""

    def __init__(
        self,
        settings: RestSettings,
        cluster: str,
        *,
        transport: httpx.BaseTransport | None = None,
        write_lock: WriteLock | None = None,
    ) -> None:
        """Validate the cluster name and open the HTTP client (``transport``: tests)."""
        self.cluster = validation.account_name(cluster, "cluster name")
        self.rest = RestTransport(settings, transport=transport, write_lock=write_lock)

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self.rest.close()

    def check_version(self) -> None:
        """Fail clearly when slurmrestd does not offer the configured data parser."""
        self.rest.check_version()

    def _db(
        self,
        method: str,
        tail: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> RestAnswer:
        path = self.rest.path(SLURMDB, tail)
        return self.rest.request(method, path, params=params, body=body)

    # ------------------------------------------------------------------ reads

    def ping(self) -> bool:
        """True when slurmdbd answers slurmrestd."""
        pings = many(self._db("GET", "ping/").data, "pings")
        return bool(pings) and all(p.get("responding") is True for p in pings)

    def accounts(self) -> list[RestAccount]:
        """Every account in the accounting database."""
        return [
            RestAccount(text(a, "name"), text(a, "description"), text(a, "organization"))
            for a in many(self._db("GET", "accounts/").data, "accounts")
        ]

    def account(self, name: str) -> RestAccount | None:
        """The account ``name``, or None when it does not exist."""
        tail = f"account/{quote(validation.account_name(name), safe='')}"
        found = many(self._db("GET", tail).data, "accounts")
        if not found:
            return None
        a = found[0]
        return RestAccount(text(a, "name"), text(a, "description"), text(a, "organization"))

    def associations(
        self, *, account: str | None = None, user: str | None = None
    ) -> list[AssociationRecord]:
        """This cluster's associations, optionally of one account and/or one user."""
        return [association_record(a) for a in self.raw_associations(account=account, user=user)]

    def raw_associations(
        self, *, account: str | None = None, user: str | None = None
    ) -> list[Mapping[str, Any]]:
        """This cluster's associations as slurmrestd sends them (one request)."""
        params = {"cluster": self.cluster}
        if account is not None:
            params["account"] = validation.account_name(account)
        if user is not None:
            params["user"] = validation.username(user)
        return many(self._db("GET", "associations/", params=params).data, "associations")

    def set_default_account(self, username: str, account: str) -> None:
        """Make ``account`` the user's default account."""
        user = {"name": validation.username(username), "default": {"account": account}}
        validation.account_name(account, "default account")
        self._db("POST", "users/", body={"users": [user]})

    def active_jobs(self) -> list[tuple[str, str, str]]:
        """(job ID, account, user) of every pending, running or suspended job (slurmctld)."""
        answer = self.rest.request("GET", self.rest.path(SLURM, "jobs/"))
        found = []
        for job in many(answer.data, "jobs"):
            states = job.get("job_state", [])
            if isinstance(states, list) and ACTIVE_STATES & set(states):
                job_id = job.get("job_id")
                found.append((str(job_id), text(job, "account"), text(job, "user_name")))
        return found

    def qos_names(self) -> frozenset[str]:
        """The names of every QoS."""
        return frozenset(text(q, "name") for q in self.all_qos())

    def all_qos(self) -> list[Mapping[str, Any]]:
        """Every QoS as slurmrestd sends it (one request)."""
        return many(self._db("GET", "qos/").data, "qos")

    def qos(self, name: str) -> Mapping[str, Any] | None:
        """One QoS as slurmrestd sends it; None when it does not exist (an empty list)."""
        tail = f"qos/{quote(validation.qos_name(name), safe='')}"
        found = [q for q in many(self._db("GET", tail).data, "qos") if q.get("name") == name]
        return found[0] if found else None

    def qos_defaults(self, name: str) -> list[str]:
        """``cluster/account[/user]`` of every association (all clusters) defaulting to a QoS.

        slurmrestd 24.11 ignores the ``default_qos`` and ``qos`` filters of this read, so
        every association is read.
        """
        qos = validation.qos_name(name)
        found = []
        for row in many(self._db("GET", "associations/").data, "associations"):
            default = row.get("default")
            if isinstance(default, Mapping) and default.get("qos") == qos:
                parts = [text(row, "cluster"), text(row, "account"), text(row, "user")]
                found.append("/".join(p for p in parts if p))
        return found

    def tres_names(self) -> frozenset[str]:
        """The TRES the accounting database knows, such as ``cpu`` and ``gres/gpu``."""
        return frozenset(tres_name(t) for t in many(self._db("GET", "tres/").data, "TRES"))

    def jobs(self, window: Window, accounts: Iterable[str]) -> list[JobRecord]:
        """Job allocations of ``accounts`` eligible or running in ``window``, as sacct's.

        One ``/jobs/`` read per window, the same selection and the same records as
        ``SlurmClient.jobs`` (sacct ``--allocations`` with ``--starttime/--endtime``).
        With no flag, slurmrestd adds each requeued job's earlier runs (``-D``) and the
        steps; ``skip_steps`` alone would clip the times to the window (``-T``). Both
        flags together ask for what sacct ``--allocations`` gives: the allocations
        only, each job once, with its own times.
        """
        names = sorted({validation.account_name(name) for name in accounts})
        if not names:
            return []
        params = {
            "cluster": self.cluster,
            "account": ",".join(names),
            "start_time": self._timestamp(window.start),
            "end_time": self._timestamp(window.end),
            "skip_steps": "true",
            "disable_truncate_usage_time": "true",
        }
        answer = self._db("GET", "jobs/", params=params)
        return [job_record(job) for job in many(answer.data, "jobs")]

    def _timestamp(self, moment: datetime) -> str:
        """A time as a ``/jobs/`` query takes it, independent of slurmrestd's time zone.

        From v0.0.42 on a number is seconds since the epoch; v0.0.40 and v0.0.41 refuse
        a number ("Parsing of … for timestamp failed") and take ``uts<seconds>``.
        """
        seconds = str(int(moment.timestamp()))
        old = self.rest.settings.api_version in _TIME_AS_UTS
        return f"uts{seconds}" if old else seconds

    def clusters(self) -> frozenset[str]:
        """The clusters registered in the accounting database."""
        found = many(self._db("GET", "clusters/").data, "clusters")
        return frozenset(text(c, "name") for c in found)

    # ------------------------------------------------------------------ writes

    def add_account(
        self,
        name: str,
        *,
        description: str,
        organization: str,
        parent: str,
        fairshare: int | None = None,
        qos: Iterable[str] | None = None,
        default_qos: str | None = None,
    ) -> bool:
        """Create an account with its association under ``parent``; False if it existed.

        ``/accounts_association/`` makes the account and a proper association in one call
        (``/associations/`` with an empty user would leave a malformed one behind).
        ``qos`` is the association's whole QoS list (slurmrestd refuses sacctmgr's
        ``+name``), ``default_qos`` its default QoS.
        """
        association: dict[str, Any] = {"parent": validation.account_name(parent, "parent")}
        if fairshare is not None:
            association["fairshare"] = validation.fairshare(fairshare)
        if qos is not None:
            association["qoslevel"] = list(dict.fromkeys(validation.qos_name(q) for q in qos))
        if default_qos is not None:
            association["defaultqos"] = validation.qos_name(default_qos, "default QoS")
        body = {
            "association_condition": {
                "accounts": [validation.account_name(name)],
                "clusters": [self.cluster],
                "association": association,
            },
            "account": {
                "description": validation.description(description, name),
                "organization": validation.account_name(organization, "organization"),
            },
        }
        return not self._db("POST", "accounts_association/", body=body).unchanged

    def remove_account(self, name: str) -> bool:
        """Delete an account and its associations; False when there was none.

        Active jobs make it fail with ``Answer.JOBS_ACTIVE``, as on the command line.
        """
        tail = f"account/{quote(validation.account_name(name), safe='')}"
        return not self._db("DELETE", tail).unchanged

    def remove_account_associations(self, name: str) -> bool:
        """Delete the account's associations on this cluster; False when there were none.

        Users' associations go too, as with sacctmgr's ``delete account where name=A
        cluster=C``; ``DELETE account/<name>`` would remove it on every cluster of slurmdbd.
        """
        params = {"account": validation.account_name(name), "cluster": self.cluster}
        answer = self._db("DELETE", "associations/", params=params)
        return not answer.unchanged and bool(answer.data.get("removed_associations"))

    def set_account_limits(self, name: str, grp_tres_mins: Mapping[str, int]) -> None:
        """Set the account association's GrpTRESMins to exactly these TRES minutes."""
        limits = {"max": {"tres": {"group": {"minutes": tres_entries(grp_tres_mins)}}}}
        self._update_account(name, limits)

    def modify_account(
        self,
        name: str,
        *,
        fairshare: int | None = None,
        qos: Iterable[str] | None = None,
        default_qos: str | None = None,
    ) -> None:
        """Set the account association's fairshare, QoS list and/or default QoS."""
        changes: dict[str, Any] = {}
        if fairshare is not None:
            changes["shares_raw"] = validation.fairshare(fairshare)
        if qos is not None:
            changes["qos"] = sorted({validation.qos_name(q) for q in qos})
        if default_qos is not None:
            changes["default"] = {"qos": validation.qos_name(default_qos, "default QoS")}
        if changes:
            self._update_account(name, changes)

    def _update_account(self, name: str, changes: Mapping[str, Any]) -> None:
        """Change the existing account association (never create one: see add_account)."""
        held = self.held_tres(name, "", "")
        if held is None:
            argv = ["modify account", validation.account_name(name)]
            raise SlurmCommandError(argv, None, "", "", f"account {name} does not exist")
        self.update_association(name, "", "", changes, held=held)

    def held_tres(self, account: str, user: str, partition: str) -> dict[str, Any] | None:
        """The TRES lists an update of one association must send again, or None (no such).

        One read of the account's associations, and one of its parent's for an account's
        own: ``association_tres`` leaves out what the association inherits.
        """
        rows = self.raw_associations(account=account)
        own = next((r for r in rows if not text(r, "user")), None)
        for row in rows:
            key = (text(row, "account"), text(row, "user"), text(row, "partition"))
            if key != (account, user, partition):
                continue
            parent = own
            if not user:
                above = text(row, "parent_account")
                found = self.raw_associations(account=above) if above else []
                parent = next((r for r in found if not text(r, "user")), None)
            return association_tres(row, parent)
        return None

    def update_association(
        self,
        account: str,
        user: str,
        partition: str,
        changes: Mapping[str, Any],
        *,
        held: Mapping[str, Any],
    ) -> None:
        """Change one existing association (``user`` '' for the account's own).

        slurmrestd clears every TRES list an update leaves out, so the association's
        lists as last read (``held``, from ``association_tres``) are sent again with
        ``changes`` merged in: a fairshare change or a pause keeps GrpTRESMins.
        """
        self.update_associations([(account, user, partition, changes, held)])

    def update_associations(
        self, updates: Iterable[tuple[str, str, str, Mapping[str, Any], Mapping[str, Any]]]
    ) -> None:
        """Change several existing associations in one request, as ``update_association``.

        Each update is ``(account, user, partition, changes, held)``.
        """
        associations = []
        for account, user, partition, changes, held in updates:
            association: dict[str, Any] = {
                "account": validation.account_name(account),
                "cluster": self.cluster,
                "user": validation.username(user) if user else "",
            }
            merge(association, held)
            merge(association, changes)
            if partition:
                association["partition"] = validation.partition_name(partition)
            associations.append(association)
        self._db("POST", "associations/", body={"associations": associations})

    def add_users(
        self,
        usernames: Iterable[str],
        account: str | Iterable[str],
        *,
        partitions: Iterable[str] = (),
        qos: str | None = None,
        default_account: str | None = None,
    ) -> bool:
        """Give each user an association with the account(s); False when all had one.

        One association per partition in ``partitions``; ``qos`` becomes their only and
        default QoS; ``default_account`` the default of users new to SLURM.
        """
        users = sorted(validation.usernames(set(usernames)))
        targets = [account] if isinstance(account, str) else list(account)
        condition: dict[str, Any] = {
            "accounts": list(dict.fromkeys(validation.account_name(a) for a in targets)),
            "users": users,
            "clusters": [self.cluster],
        }
        wanted = list(dict.fromkeys(validation.partition_name(p) for p in partitions))
        if wanted:
            condition["partitions"] = wanted
        if qos is not None:
            name = validation.qos_name(qos)
            condition["association"] = {"qoslevel": [name], "defaultqos": name}
        user: dict[str, Any] = {}
        if default_account is not None:
            user["defaultaccount"] = validation.account_name(default_account, "default account")
        body = {"association_condition": condition, "user": user}
        return not self._db("POST", "users_association/", body=body).unchanged

    def remove_user_associations(self, username: str) -> bool:
        """Remove every association of the user on this cluster; False when there was none."""
        params = {"user": validation.username(username), "cluster": self.cluster}
        answer = self._db("DELETE", "associations/", params=params)
        return not answer.unchanged and bool(answer.data.get("removed_associations"))

    def remove_user(self, username: str, account: str) -> bool:
        """Remove the user's associations with ``account``; False when there was none."""
        params = {
            "account": validation.account_name(account),
            "user": validation.username(username),
            "cluster": self.cluster,
        }
        answer = self._db("DELETE", "association/", params=params)
        return not answer.unchanged and bool(answer.data.get("removed_associations"))

    def post_qos(self, entry: Mapping[str, Any]) -> None:
        """Create or update one QoS (``rest_qos.entry`` made and checked ``entry``).

        A field the data parser does not know is dropped with a warning and a 200 (v0.0.40
        and v0.0.41 have no GrpTRESMins on a QoS): that is an error here, as nothing of
        what was asked may be left unset silently.
        """
        answer = self._db("POST", "qos/", body={"qos": [entry]})
        ignored = [
            str(w.get("description", ""))
            for w in answer.data.get("warnings") or []
            if isinstance(w, Mapping) and "Ignoring unknown field" in str(w.get("description"))
        ]
        if ignored:
            argv = ["POST", self.rest.path(SLURMDB, "qos/")]
            raise SlurmCommandError(argv, None, "", "; ".join(ignored), "slurmrestd " + ignored[0])

    def remove_qos(self, name: str) -> bool:
        """Delete a QoS; False when there was none.

        slurmrestd 24.11 deletes a QoS that is some association's default too (which then
        shows ``UNKN-<id>``), where sacctmgr refuses: the client checks ``qos_defaults``
        first. A missing QoS is a 200 with a "found nothing" warning (the emulator: 304).
        """
        tail = f"qos/{quote(validation.qos_name(name), safe='')}"
        answer = self._db("DELETE", tail)
        warnings = answer.data.get("warnings") or []
        said = " ".join(str(w.get("description", "")) for w in warnings if isinstance(w, Mapping))
        return not answer.unchanged and "found nothing" not in said

    def cancel_job(self, job_id: str) -> None:
        """Cancel one job through slurmctld."""
        path = self.rest.path(SLURM, f"job/{validation.job_id(job_id)}")
        self.rest.request("DELETE", path)
