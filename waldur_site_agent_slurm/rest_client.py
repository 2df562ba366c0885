"""SLURM's accounting and job verbs over slurmrestd (REST mode).

``SlurmRestClient`` speaks to ``/slurmdb/<version>/`` for accounts, associations, users,
QoS, TRES and clusters and to ``/slurm/<version>/`` for jobs, through one
``RestTransport`` (one pooled HTTP client). Every name is validated before it goes into
a URL or a JSON body, as on the command line, and association rows come back as the
same ``AssociationRecord`` the ``sacctmgr`` parser makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from waldur_site_agent_slurm.allocation.usage import Window
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
    job_record,
    many,
    text,
    tres_entries,
    tres_name,
)

__all__ = ["RestAccount", "RestSettings", "SlurmRestClient"]


@dataclass(frozen=True)
class RestAccount:
    """One account as ``/accounts/`` lists it."""

    name: str
    description: str
    organization: str


class SlurmRestClient:
    """The SLURM verbs of one cluster over one slurmrestd."""

    def __init__(
        self,
        settings: RestSettings,
        cluster: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Validate the cluster name and open the HTTP client (``transport``: tests)."""
        self.cluster = validation.account_name(cluster, "cluster name")
        self.rest = RestTransport(settings, transport=transport)

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
        params = {"cluster": self.cluster}
        if account is not None:
            params["account"] = validation.account_name(account)
        if user is not None:
            params["user"] = validation.username(user)
        answer = self._db("GET", "associations/", params=params)
        return [association_record(a) for a in many(answer.data, "associations")]

    def qos_names(self) -> frozenset[str]:
        """The names of every QoS."""
        return frozenset(text(q, "name") for q in many(self._db("GET", "qos/").data, "qos"))

    def tres_names(self) -> frozenset[str]:
        """The TRES the accounting database knows, such as ``cpu`` and ``gres/gpu``."""
        return frozenset(tres_name(t) for t in many(self._db("GET", "tres/").data, "TRES"))

    def jobs(self, window: Window, accounts: Iterable[str]) -> list[JobRecord]:
        """Job allocations of ``accounts`` eligible or running in ``window``, as sacct's.

        One ``/jobs/`` read per window, the same selection and the same records as
        ``SlurmClient.jobs`` (sacct ``--allocations`` with ``--starttime/--endtime``).
        """
        names = sorted({validation.account_name(name) for name in accounts})
        if not names:
            return []
        params = {
            "cluster": self.cluster,
            "account": ",".join(names),
            "start_time": str(int(window.start.timestamp())),
            "end_time": str(int(window.end.timestamp())),
        }
        answer = self._db("GET", "jobs/", params=params)
        return [job_record(job) for job in many(answer.data, "jobs")]

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
    ) -> bool:
        """Create an account with its association under ``parent``; False if it existed.

        ``/accounts_association/`` makes the account and a proper association in one call
        (``/associations/`` with an empty user would leave a malformed one behind).
        """
        association: dict[str, Any] = {"parent": validation.account_name(parent, "parent")}
        if fairshare is not None:
            association["fairshare"] = validation.fairshare(fairshare)
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
        association = {
            "account": validation.account_name(name),
            "cluster": self.cluster,
            "user": "",
            **changes,
        }
        self._db("POST", "associations/", body={"associations": [association]})

    def add_users(self, usernames: Iterable[str], account: str) -> bool:
        """Give each user an association with ``account``; False when all had one."""
        users = sorted(validation.usernames(set(usernames)))
        body = {
            "association_condition": {
                "accounts": [validation.account_name(account)],
                "users": users,
                "clusters": [self.cluster],
            },
            "user": {},
        }
        return not self._db("POST", "users_association/", body=body).unchanged

    def remove_user(self, username: str, account: str) -> bool:
        """Remove the user's association with ``account``; False when there was none."""
        params = {
            "account": validation.account_name(account),
            "user": validation.username(username),
            "cluster": self.cluster,
        }
        answer = self._db("DELETE", "association/", params=params)
        return not answer.unchanged and bool(answer.data.get("removed_associations"))

    def cancel_job(self, job_id: str) -> None:
        """Cancel one job through slurmctld."""
        path = self.rest.path(SLURM, f"job/{validation.job_id(job_id)}")
        self.rest.request("DELETE", path)
