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

from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import AssociationRecord
from waldur_site_agent_slurm.slurm.rest import (
    SLURM,
    SLURMDB,
    RestAnswer,
    RestSettings,
    RestTransport,
)

__all__ = ["RestAccount", "RestSettings", "SlurmRestClient"]


@dataclass(frozen=True)
class RestAccount:
    """One account as ``/accounts/`` lists it."""

    name: str
    description: str
    organization: str


def _list(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise SlurmParseError(f"slurmrestd's answer has no list {key!r}")
    return items


def _str(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise SlurmParseError(f"slurmrestd's {key!r} is not a string: {value!r}")
    return value


def _tres_name(entry: Mapping[str, Any]) -> str:
    """``{"type": "gres", "name": "gpu"}`` → ``gres/gpu``; ``{"type": "cpu"}`` → ``cpu``."""
    kind, name = _str(entry, "type"), _str(entry, "name")
    return f"{kind}/{name}" if name else kind


def _tres_counts(entries: object) -> dict[str, int]:
    if not isinstance(entries, list):
        raise SlurmParseError(f"slurmrestd's TRES list is not a list: {entries!r}")
    counts: dict[str, int] = {}
    for entry in entries:
        count = entry.get("count") if isinstance(entry, Mapping) else None
        if not isinstance(count, int):
            raise SlurmParseError(f"slurmrestd's TRES entry has no count: {entry!r}")
        counts[_tres_name(entry)] = count
    return counts


def _tres_entries(values: Mapping[str, int]) -> list[dict[str, Any]]:
    """TRES counts as slurmrestd's list of ``{"type", "name", "count"}`` objects."""
    entries = []
    for tres, count in sorted(values.items()):
        kind, _, name = validation.tres_name(tres).partition("/")
        entry: dict[str, Any] = {"type": kind, "count": validation.limit_value(count, tres)}
        if name:
            entry["name"] = name
        entries.append(entry)
    return entries


def _dig(item: Mapping[str, Any], *keys: str) -> object:
    value: object = item
    for key in keys:
        if not isinstance(value, Mapping):
            return []
        value = value.get(key, [])
    return value


def association_record(item: Mapping[str, Any]) -> AssociationRecord:
    """One ``/associations/`` entry as the record ``sacctmgr show assoc`` gives."""
    qos = item.get("qos", [])
    shares = item.get("shares_raw")
    if not isinstance(qos, list) or not isinstance(shares, int):
        raise SlurmParseError(f"slurmrestd's association is malformed: {item!r}")
    default = item.get("default")
    return AssociationRecord(
        account=_str(item, "account"),
        user=_str(item, "user"),
        partition=_str(item, "partition"),
        parent=_str(item, "parent_account"),
        fairshare=str(shares),
        grp_tres_mins=_tres_counts(_dig(item, "max", "tres", "group", "minutes")),
        max_tres_mins=_tres_counts(_dig(item, "max", "tres", "minutes", "per", "job")),
        grp_tres=_tres_counts(_dig(item, "max", "tres", "total")),
        qos=tuple(str(q) for q in qos),
        default_qos=_str(default, "qos") if isinstance(default, Mapping) else "",
    )


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
        pings = _list(self._db("GET", "ping/").data, "pings")
        return bool(pings) and all(p.get("responding") is True for p in pings)

    def accounts(self) -> list[RestAccount]:
        """Every account in the accounting database."""
        return [
            RestAccount(_str(a, "name"), _str(a, "description"), _str(a, "organization"))
            for a in _list(self._db("GET", "accounts/").data, "accounts")
        ]

    def account(self, name: str) -> RestAccount | None:
        """The account ``name``, or None when it does not exist."""
        tail = f"account/{quote(validation.account_name(name), safe='')}"
        found = _list(self._db("GET", tail).data, "accounts")
        if not found:
            return None
        a = found[0]
        return RestAccount(_str(a, "name"), _str(a, "description"), _str(a, "organization"))

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
        return [association_record(a) for a in _list(answer.data, "associations")]

    def qos_names(self) -> frozenset[str]:
        """The names of every QoS."""
        return frozenset(_str(q, "name") for q in _list(self._db("GET", "qos/").data, "qos"))

    def tres_names(self) -> frozenset[str]:
        """The TRES the accounting database knows, such as ``cpu`` and ``gres/gpu``."""
        return frozenset(_tres_name(t) for t in _list(self._db("GET", "tres/").data, "TRES"))

    def clusters(self) -> frozenset[str]:
        """The clusters registered in the accounting database."""
        found = _list(self._db("GET", "clusters/").data, "clusters")
        return frozenset(_str(c, "name") for c in found)

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
        body = {
            "associations": [
                {
                    "account": validation.account_name(name),
                    "cluster": self.cluster,
                    "user": "",
                    "max": {"tres": {"group": {"minutes": _tres_entries(grp_tres_mins)}}},
                }
            ]
        }
        self._db("POST", "associations/", body=body)

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
