"""The one client interface the backend talks to, whichever way it reaches SLURM.

``AccountingClient`` is what ``backend``, ``allocation``, ``periodic`` and ``diagnose``
use: bulk reads cached for the cycle (``snapshot``, ``submit_limits``, ``jobs``), the
writes (accounts, users, QoS, jobs) and the framework's ``BaseClient`` verbs on top of
them. ``SlurmClient`` implements it with sacctmgr/sacct/squeue/scancel, ``SlurmRestClient``
with slurmrestd. A change that is planned before it is made (the diagnostic's ``--fix``)
is an ``Operation``: which verb with which values, shown and executed by either client.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from waldur_site_agent.backend.clients import BaseClient
from waldur_site_agent.backend.structures import Association, ClientResource

from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.slurm import parser, validation
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, JobRecord

ROOT_ACCOUNT = "root"  # the account SLURM puts at the top of every cluster's tree

Verb = Literal[
    "add_account",
    "modify_account",
    "add_qos",
    "modify_qos",
    "add_users",
    "modify_user",
    "remove_user",
    "cancel_user_jobs",
]


@dataclass(frozen=True)
class Operation:
    """One planned change: the client verb and its arguments, the same in both modes.

    ``AccountingClient.describe`` shows it as the client would send it (a sacctmgr
    command line, or a slurmrestd request); ``execute`` makes it.
    """

    verb: Verb
    args: tuple[Any, ...]
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, verb: Verb, *args: Any, **options: Any) -> Operation:
        """``Operation.of("modify_account", "a1", {"Parent": "p1"})``."""
        frozen = tuple(dict(a) if isinstance(a, Mapping) else a for a in args)
        return cls(verb, frozen, tuple(sorted(options.items())))


@dataclass
class AccountState:
    """An account association and the user associations below it."""

    record: AssociationRecord
    users: dict[str, AssociationRecord] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    # The partitions of each user's associations with this account ('' for none).
    partitions: dict[str, set[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The account name."""
        return self.record.account

    @property
    def parent(self) -> str:
        """The parent account name ('' for root)."""
        return self.record.parent


class AssociationSnapshot:
    """Every association of the cluster, indexed by account and by user."""

    def __init__(self, records: Iterable[AssociationRecord]) -> None:
        """Index the rows of one association read."""
        self.accounts: dict[str, AccountState] = {}
        self.user_accounts: dict[str, set[str]] = {}
        user_rows = []
        for record in records:
            if record.user:
                user_rows.append(record)
            elif record.account not in self.accounts:
                self.accounts[record.account] = AccountState(record)
        for record in user_rows:
            state = self.accounts.get(record.account)
            if state is not None:
                state.users.setdefault(record.user, record)
                state.partitions.setdefault(record.user, set()).add(record.partition)
            self.user_accounts.setdefault(record.user, set()).add(record.account)
        for state in self.accounts.values():
            parent = self.accounts.get(state.parent)
            if parent is not None:
                parent.children.append(state.name)

    def account(self, name: str) -> AccountState | None:
        """The account, or None when it does not exist."""
        return self.accounts.get(name)


class AccountingClient(BaseClient):
    """SLURM accounts, associations, limits, QoS and accounting: the backend's verbs.

    Settings are keyed by SLURM's field names (``GrpTRESMins``, ``QOS``, ``DefaultQOS``,
    ``GrpSubmitJobs``, ``Fairshare``, ``Parent``, ``RawUsage``, ``MaxTRESMins``,
    ``DefaultAccount``) in both modes; the values are in sacctmgr's form.
    """

    # Accounts this client added, oldest first, so a failed create can be undone.
    added_accounts: list[str]

    # ---- planned changes -----------------------------------------------------------------

    @abstractmethod
    def describe(self, operation: Operation) -> str:
        """The change as this client makes it, for plans and reports."""

    def execute(self, operation: Operation) -> None:
        """Make the planned change."""
        getattr(self, operation.verb)(*operation.args, **dict(operation.options))

    # ---- reads ---------------------------------------------------------------------------

    @abstractmethod
    def snapshot(self) -> AssociationSnapshot:
        """All associations of the cluster, read once until the next write."""

    @abstractmethod
    def submit_limits(self, *, fresh: bool = False) -> dict[str, int | None]:
        """GrpSubmitJobs of every account (None: no limit)."""

    @abstractmethod
    def account_record(self, name: str, *, fresh: bool = False) -> AssociationRecord | None:
        """One account's association; ``fresh`` always reads."""

    @abstractmethod
    def tres_names(self) -> frozenset[str]:
        """TRES the cluster accounts for."""

    @abstractmethod
    def user_defaults(self, usernames: Iterable[str]) -> dict[str, str]:
        """Default account of each existing user among ``usernames``."""

    @abstractmethod
    def jobs(self, window: Window, accounts: Iterable[str]) -> Iterator[JobRecord]:
        """Job allocations of ``accounts`` eligible or running in ``window``."""

    @abstractmethod
    def list_accounts(self) -> list[ClientResource]:
        """Every account with its organization and description."""

    @abstractmethod
    def clusters(self) -> frozenset[str]:
        """Clusters registered in the accounting database (also a reachability check)."""

    @abstractmethod
    def qos_names(self) -> frozenset[str]:
        """Names of the QoS that exist."""

    @abstractmethod
    def qos_records(self) -> dict[str, own_qos.QosRecord]:
        """The options of every QoS, by name."""

    @abstractmethod
    def qos_record(self, name: str) -> own_qos.QosRecord | None:
        """The options of one QoS; None when it does not exist."""

    @abstractmethod
    def active_jobs(self, account: str, username: str) -> list[str]:
        """Ids of one user's pending, running and suspended jobs in ``account``."""

    # ---- writes --------------------------------------------------------------------------

    @abstractmethod
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
        """Create an account under ``parent``; False when it already existed."""

    @abstractmethod
    def remove_account(self, name: str) -> None:
        """Delete an account association; a missing one is not an error."""

    @abstractmethod
    def modify_account(self, name: str, settings: dict[str, str]) -> str:
        """Set fields of an account association; return the change as made."""

    @abstractmethod
    def add_qos(self, name: str, settings: Mapping[str, str]) -> bool:
        """Create a QoS with its options; False when it already existed."""

    @abstractmethod
    def modify_qos(self, name: str, settings: Mapping[str, str]) -> str:
        """Set options of a QoS; return the change as made."""

    @abstractmethod
    def remove_qos(self, name: str) -> None:
        """Delete a QoS; a missing one is not an error."""

    @abstractmethod
    def reset_qos_usage(self, name: str) -> str:
        """Set a QoS's RawUsage to 0 on the cluster; return the change as made."""

    @abstractmethod
    def cancel_user_jobs(self, username: str, account: str) -> None:
        """Cancel one user's pending and running jobs in ``account``."""

    @abstractmethod
    def cancel_jobs(self, account: str) -> None:
        """Cancel every pending and running job of ``account``."""

    @abstractmethod
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
        """Associate users with ``accounts`` (one association per partition)."""

    @abstractmethod
    def remove_user(self, username: str, account: str | None = None) -> None:
        """Delete a user's association with ``account``, or the whole user if None."""

    @abstractmethod
    def modify_user(self, username: str, account: str | None, settings: dict[str, str]) -> str:
        """Set fields of a user association (or of the user); return the change as made."""

    # ---- the framework's BaseClient interface --------------------------------------------

    def list_resources(self) -> list[ClientResource]:
        """All accounts, with their parent as organization."""
        return [
            ClientResource(name=s.name, organization=s.parent, backend_id=s.name)
            for s in self.snapshot().accounts.values()
        ]

    def get_resource(self, resource_id: str) -> ClientResource | None:
        """The account, or None when it does not exist."""
        state = self.snapshot().account(validation.account_name(resource_id))
        if state is None:
            return None
        return ClientResource(name=state.name, organization=state.parent, backend_id=state.name)

    def create_resource(
        self, name: str, description: str, organization: str, parent_name: str | None = None
    ) -> str:
        """Create an account; ``organization`` is SLURM's field, the parent defaults to root."""
        self.add_account(name, description, organization, parent_name or ROOT_ACCOUNT)
        return name

    def delete_resource(self, name: str) -> str:
        """Delete an account."""
        self.remove_account(name)
        return name

    def set_resource_limits(self, resource_id: str, limits_dict: dict[str, int]) -> str | None:
        """Set GrpTRESMins from ``{tres: minutes}``."""
        tres = {
            validation.tres_name(k): validation.limit_value(v, f"limit for {k}")
            for k, v in limits_dict.items()
        }
        if not tres:
            return None
        return self.modify_account(resource_id, {"GrpTRESMins": parser.format_tres(tres)})

    def get_resource_limits(self, resource_id: str) -> dict[str, int]:
        """GrpTRESMins of the account as ``{tres: minutes}``."""
        state = self.snapshot().account(validation.account_name(resource_id))
        return dict(state.record.grp_tres_mins) if state else {}

    def get_resource_user_limits(self, resource_id: str) -> dict[str, dict[str, int]]:
        """MaxTRESMins of each user association of the account."""
        state = self.snapshot().account(validation.account_name(resource_id))
        if state is None:
            return {}
        return {
            user: dict(rec.max_tres_mins) for user, rec in state.users.items() if rec.max_tres_mins
        }

    def set_resource_user_limits(
        self, resource_id: str, username: str, limits_dict: dict[str, int]
    ) -> str:
        """Set MaxTRESMins of one user association from ``{tres: minutes}``."""
        tres = {
            validation.tres_name(k): validation.limit_value(v, f"limit for {k}")
            for k, v in limits_dict.items()
        }
        return self.modify_user(username, resource_id, {"MaxTRESMins": parser.format_tres(tres)})

    def get_association(self, user: str, resource_id: str) -> Association | None:
        """The user's association with the account, or None."""
        state = self.snapshot().account(validation.account_name(resource_id))
        if state is None or validation.username(user) not in state.users:
            return None
        return Association(account=state.name, user=user)

    def create_association(
        self, username: str, resource_id: str, default_account: str | None = None
    ) -> str:
        """Associate one user with the account."""
        self.add_users([username], [resource_id], default_account)
        return username

    def delete_association(self, username: str, resource_id: str) -> str:
        """Remove one user's association with the account."""
        self.remove_user(username, resource_id)
        return username

    def get_usage_report(self, resource_ids: list[str], timezone: str | None = None) -> list[Any]:
        """Not used: usage goes through ``jobs`` and ``usage.build_report``."""
        del resource_ids, timezone
        return []

    def list_resource_users(self, resource_id: str) -> list[str]:
        """Users associated with the account, sorted."""
        state = self.snapshot().account(validation.account_name(resource_id))
        return sorted(state.users) if state else []
