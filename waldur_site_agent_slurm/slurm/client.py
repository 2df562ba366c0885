"""SlurmClient: SLURM verbs with typed results, on top of the one command runner.

Reads are done in bulk and cached on the instance (the framework builds a new backend,
and with it a new client, every cycle): one ``show assoc`` serves every account and
user question of a cycle, and any write drops that cache. Every sacctmgr command is
scoped with ``cluster=`` when a cluster name is configured, and every value on a
command line has passed ``validation`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.structures import ClientResource

from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.errors import SlurmTimeoutError
from waldur_site_agent_slurm.slurm import inherit, parser, validation
from waldur_site_agent_slurm.slurm.accounting import (
    ROOT_ACCOUNT,
    AccountingClient,
    AccountState,
    AssociationSnapshot,
    Operation,
)
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, JobRecord
from waldur_site_agent_slurm.slurm.runner import CommandResult, CommandRunner, Runner

SACCTMGR = "sacctmgr"
SACCT = "sacct"
SCANCEL = "scancel"
SQUEUE = "squeue"
READ = ("--parsable2", "--noheader")
__all__ = ["ROOT_ACCOUNT", "AccountState", "AssociationSnapshot", "SlurmClient"]


def _checked_tres(values: Mapping[str, int]) -> dict[str, int]:
    """``{tres: minutes}`` with every TRES name and value checked for a command line."""
    return {
        validation.tres_name(k): validation.limit_value(v, f"limit for {k}")
        for k, v in values.items()
    }


class SlurmClient(AccountingClient):
    """SLURM accounts, associations, limits and accounting through sacctmgr/sacct."""

    def __init__(
        self,
        runner: Runner | None = None,
        cluster_name: str | None = None,
        *,
        active_jobs_from_sacct: bool = False,
    ) -> None:
        """Use ``runner`` for every command; scope sacctmgr to ``cluster_name`` if set.

        Without a runner, SLURM's commands are run from ``PATH`` with the default
        timeout, so ``SlurmClient().list_accounts()`` works on a head node as it is.
        Active jobs are listed with squeue (slurmctld knows a job the moment it is
        submitted; slurmdbd, which sacct asks, learns of it a moment later), or with
        sacct where there is no squeue (``active_jobs_from_sacct``: slurm-emulator).
        """
        self.runner: Runner = runner if runner is not None else CommandRunner()
        self.cluster_name = cluster_name
        self.active_jobs_from_sacct = active_jobs_from_sacct
        self._snapshot: AssociationSnapshot | None = None
        # The bulk read that timed out on this client, raised again without waiting.
        self._snapshot_timeout: SlurmTimeoutError | None = None
        self._submit_limits: dict[str, int | None] | None = None
        self._tres: frozenset[str] | None = None
        # Accounts this client added, oldest first, so a failed create can be undone.
        self.added_accounts: list[str] = []

    # ---- command building -------------------------------------------------------------

    def _cluster(self, key: str = "cluster") -> list[str]:
        return [f"{key}={self.cluster_name}"] if self.cluster_name else []

    def _write(self, *args: str, accept_nothing: bool = True) -> CommandResult:
        """Run a sacctmgr change; "nothing changed" answers are success (idempotent writes).

        What counts as "nothing changed" is recognised in every release's words
        (``answers``); ``accept_nothing=False`` makes a modify that matched nothing fail.
        """
        self._snapshot = None
        self._submit_limits = None
        argv = self.change_argv(*args)
        result = self.runner.run(argv, mutating=True, accept_nothing=accept_nothing)
        logger.info("Executed: %s", self.runner.display(argv))
        return result

    def change_argv(self, *args: str) -> list[str]:
        """The argv of a sacctmgr change (``--immediate``: no confirmation prompt)."""
        return [SACCTMGR, "--immediate", *args]

    def command_line(self, *args: str) -> str:
        """The sacctmgr change command for ``args``, as it would be run (for plans)."""
        return self.runner.display(self.change_argv(*args))

    def argv(self, operation: Operation) -> list[str]:
        """The exact command that makes ``operation``."""
        options = dict(operation.options)
        if operation.verb == "cancel_user_jobs":
            return self.cancel_user_jobs_argv(*operation.args)
        builders: dict[str, Callable[..., list[str]]] = {
            "add_account": self.add_account_args,
            "modify_account": self.account_settings_args,
            "add_qos": self.add_qos_args,
            "modify_qos": self.qos_settings_args,
            "add_users": self.add_users_args,
            "modify_user": self.modify_user_args,
            "remove_user": self.remove_user_args,
        }
        return self.change_argv(*builders[operation.verb](*operation.args, **options))

    def describe(self, operation: Operation) -> str:
        """The command line that makes ``operation``, as a site admin would type it."""
        return self.runner.display(self.argv(operation))

    # ---- bulk reads --------------------------------------------------------------------

    def snapshot(self) -> AssociationSnapshot:
        """All associations (of the configured cluster), read once until the next write.

        When the read timed out (SLURM hangs), this client raises the same error again
        at once: a cycle asks for the snapshot once per allocation, and would otherwise
        wait ``command_timeout`` for each. The next cycle's client reads again.
        """
        if self._snapshot_timeout is not None:
            raise self._snapshot_timeout.with_traceback(None)
        if self._snapshot is None:
            try:
                records = self._associations(*self._where())
            except SlurmTimeoutError as err:
                self._snapshot_timeout = err
                raise
            self._snapshot = AssociationSnapshot(records)
        return self._snapshot

    def _where(self) -> list[str]:
        return ["where", *self._cluster()] if self.cluster_name else []

    def _associations(self, *where: str) -> list[AssociationRecord]:
        """``show assoc`` records with inherited values, read the way slurmdbd survives.

        SLURM before 23.02 gets the read without parent information, and the inherited
        values are computed here (``inherit``): its slurmdbd dies on the plain read when
        an association's parent is gone.
        """
        if inherit.needs_own_values(self.runner.release()):
            fields = "format=" + ",".join(inherit.OWN_FIELDS)
            lines = self._read("show", "assoc", *where, *inherit.OWN_VALUES, fields)
            return inherit.inherited(lines)
        fields = "format=" + ",".join(parser.ASSOC_FIELDS)
        return parser.parse_associations(self._read("show", "assoc", *where, fields))

    def submit_limits(self, *, fresh: bool = False) -> dict[str, int | None]:
        """GrpSubmitJobs of every account (None: no limit), read once until the next write.

        ``fresh`` always reads (for decisions taken under a lock).
        """
        if self._submit_limits is None or fresh:
            fields = "format=" + ",".join(parser.SUBMIT_FIELDS)
            # WOPInfo: GrpSubmitJobs is not inherited, and 22.05 survives this read (inherit).
            lines = self._read("show", "assoc", *self._where(), "WOPInfo", fields)
            self._submit_limits = parser.parse_submit_limits(lines)
        return self._submit_limits

    def account_record(self, name: str, *, fresh: bool = False) -> AssociationRecord | None:
        """One account's association: from the cycle's snapshot, else one targeted read.

        ``fresh`` always reads: for decisions taken under a lock, which another process
        may have changed SLURM for since the snapshot was read.
        """
        account = validation.account_name(name)
        if self._snapshot is not None and not fresh:
            state = self._snapshot.account(account)
            return state.record if state else None
        if inherit.needs_own_values(self.runner.release()):
            rows = self._associations(*self._where())  # the values it inherits need its parents
        else:
            rows = self._associations("where", f"account={account}", *self._cluster())
        return next((r for r in rows if r.account == account and not r.user), None)

    def tres_names(self) -> frozenset[str]:
        """TRES the cluster accounts for (``cpu``, ``mem``, ``gres/gpu`` …), read once."""
        if self._tres is None:
            lines = self._read("list", "tres", "format=" + ",".join(parser.TRES_FIELDS))
            self._tres = parser.parse_tres_names(lines)
        return self._tres

    def user_defaults(self, usernames: Iterable[str]) -> dict[str, str]:
        """Default account of each existing user among ``usernames``."""
        names = sorted({validation.username(name) for name in usernames})
        if not names:
            return {}
        if inherit.needs_own_values(self.runner.release()):
            # 22.05's list user reads associations with parent information (inherit).
            lines = self._read(
                "show",
                "assoc",
                "where",
                "user=" + ",".join(names),
                *self._cluster(),
                "OnlyDefaults",
                "WOPInfo",
                "format=" + ",".join(inherit.DEFAULTS_FIELDS),
            )
        else:
            lines = self._read(
                "list",
                "user",
                "where",
                "name=" + ",".join(names),
                *self._cluster(),
                "format=" + ",".join(parser.USER_FIELDS),
            )
        return {rec.user: rec.default_account for rec in parser.parse_users(lines)}

    def jobs(self, window: Window, accounts: Iterable[str]) -> Iterator[JobRecord]:
        """Job allocations of ``accounts`` eligible or running in ``window``, streamed.

        sacct runs with TZ=UTC, so the window goes in and the times come out in UTC.
        """
        names = sorted({validation.account_name(name) for name in accounts})
        if not names:
            return iter(())
        start, end = window.sacct_bounds()
        argv = [
            SACCT,
            *READ,
            "--allusers",
            "--allocations",
            "--noconvert",
            f"--starttime={start}",
            f"--endtime={end}",
            "--accounts=" + ",".join(names),
            "--format=" + ",".join(parser.SACCT_FIELDS),
            *self._cluster("--clusters"),
        ]
        return parser.parse_jobs(self.runner.stream(argv, env={"TZ": "UTC"}))

    # ---- accounts ----------------------------------------------------------------------

    def add_account_args(
        self,
        name: str,
        description: str,
        organization: str,
        parent: str,
        grp_tres_mins: Mapping[str, int] | None = None,
        *,
        qos: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Arguments of ``add account`` creating ``name`` under ``parent`` (with its limits).

        ``qos`` are QoS fields of the new association (``QOS+``, ``DefaultQOS``), names checked.
        """
        args = [
            "add",
            "account",
            validation.account_name(name),
            f"Description={description}",
            f"Organization={validation.account_name(organization, 'organization')}",
            f"Parent={validation.account_name(parent, 'parent account')}",
            *self._cluster("Cluster"),
        ]
        if grp_tres_mins:
            args.append("GrpTRESMins=" + parser.format_tres(_checked_tres(grp_tres_mins)))
        for key, value in (qos or {}).items():
            names = ",".join(validation.qos_name(q) for q in value.split(","))
            args.append(f"{key}={names}")
        return args

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
        """Create an account under ``parent``, its GrpTRESMins and QoS set in the same command.

        False when the account already existed (sacctmgr 22.05 answers " Nothing new
        added.", 24.11 " Already existing account …"): it is left as it is, limits
        included.
        """
        args = self.add_account_args(
            name, description, organization, parent, grp_tres_mins, qos=qos
        )
        if self._write(*args).nothing_to_do:
            return False
        self.added_accounts.append(name)
        return True

    def remove_account(self, name: str) -> None:
        """Delete an account association; a missing one is not an error."""
        self._write(
            "delete", "account", "where", f"name={validation.account_name(name)}", *self._cluster()
        )

    def account_settings_args(self, name: str, settings: dict[str, str]) -> list[str]:
        """Arguments of ``modify account`` setting ``settings`` (keys are SLURM fields)."""
        return [
            "modify",
            "account",
            "where",
            f"name={validation.account_name(name)}",
            *self._cluster(),
            "set",
            *(f"{k}={v}" for k, v in settings.items()),
        ]

    def modify_account(self, name: str, settings: dict[str, str]) -> str:
        """Set fields of an account association in one command; return the command line."""
        args = self.account_settings_args(name, settings)
        self._write(*args, accept_nothing=False)
        return self.command_line(*args)

    def _read(self, *args: str) -> list[str]:
        """Lines printed by a read-only ``sacctmgr --parsable2 --noheader`` command."""
        argv = [SACCTMGR, *READ, *args]
        return self.runner.run(argv, mutating=False).stdout.splitlines()

    def list_accounts(self) -> list[ClientResource]:
        """Every account of the accounting database with its organization and description."""
        lines = self._read("list", "account", "format=" + ",".join(parser.ACCOUNT_FIELDS))
        return [
            ClientResource(
                name=rec.name,
                description=rec.description,
                organization=rec.organization,
                backend_id=rec.name,
            )
            for rec in sorted(parser.parse_accounts(lines), key=lambda rec: rec.name)
        ]

    def clusters(self) -> frozenset[str]:
        """Clusters registered in the accounting database (also a reachability check)."""
        return parser.parse_names(self._read("show", "cluster", "format=Cluster"))

    def qos_names(self) -> frozenset[str]:
        """Names of the QoS that exist."""
        return parser.parse_names(self._read("show", "qos", "format=Name"))

    def qos_records(self) -> dict[str, own_qos.QosRecord]:
        """The options of every QoS, by name (one read, for the diagnostic)."""
        fields = "format=" + ",".join(own_qos.QOS_FIELDS)
        return {row.name: row for row in own_qos.parse(self._read("show", "qos", fields))}

    def qos_record(self, name: str) -> own_qos.QosRecord | None:
        """The options of one QoS; None when it does not exist."""
        qos = validation.qos_name(name)
        fields = "format=" + ",".join(own_qos.QOS_FIELDS)
        rows = own_qos.parse(self._read("show", "qos", "where", f"name={qos}", fields))
        return next((row for row in rows if row.name == qos), None)

    def add_qos_args(self, name: str, settings: Mapping[str, str]) -> list[str]:
        """Arguments of ``add qos`` creating ``name`` with its options."""
        return ["add", "qos", validation.qos_name(name), *(f"{k}={v}" for k, v in settings.items())]

    def add_qos(self, name: str, settings: Mapping[str, str]) -> bool:
        """Create a QoS with its options in one command; False when it already existed."""
        return not self._write(*self.add_qos_args(name, settings)).nothing_to_do

    def qos_settings_args(self, name: str, settings: Mapping[str, str]) -> list[str]:
        """Arguments of ``modify qos NAME set …`` (the form SLURM and slurm-emulator share)."""
        qos = validation.qos_name(name)
        return ["modify", "qos", qos, "set"] + [f"{k}={v}" for k, v in settings.items()]

    def modify_qos(self, name: str, settings: Mapping[str, str]) -> str:
        """Set options of a QoS in one command; return the command line."""
        args = self.qos_settings_args(name, settings)
        self._write(*args, accept_nothing=False)
        return self.command_line(*args)

    def reset_qos_usage(self, name: str) -> str:
        """Set a QoS's RawUsage to 0 on the configured cluster; return the command line.

        Alone in its command: SLURM 22.05 and 24.11 drop the other options of a ``modify
        qos`` that also sets RawUsage=0 (exit 0, nothing said).
        """
        args = ["modify", "qos", validation.qos_name(name), *self._cluster(), "set", "RawUsage=0"]
        self._write(*args, accept_nothing=False)
        return self.command_line(*args)

    def remove_qos(self, name: str) -> None:
        """Delete a QoS; a missing one is not an error."""
        self._write("delete", "qos", "where", f"name={validation.qos_name(name)}")

    def active_jobs_argv(self, account: str, username: str) -> list[str]:
        """The read listing one user's pending, running and suspended jobs in ``account``."""
        account = validation.account_name(account)
        username = validation.username(username)
        if self.active_jobs_from_sacct:
            return [
                SACCT,
                *READ,
                "--allusers",
                "--allocations",
                f"--accounts={account}",
                f"--user={username}",
                "--format=" + ",".join(parser.ACTIVE_JOB_FIELDS),
                *self._cluster("--clusters"),
            ]
        return [
            SQUEUE,
            "--noheader",
            "--format=%i",
            "--states=" + ",".join(parser.ACTIVE_JOB_STATES),
            f"--account={account}",
            f"--user={username}",
            *self._cluster("--clusters"),
        ]

    def active_jobs(self, account: str, username: str) -> list[str]:
        """Ids of one user's pending, running and suspended jobs in ``account``.

        A user the host does not know has no jobs: squeue says so on stderr and exits 0.
        """
        result = self.runner.run(self.active_jobs_argv(account, username), mutating=False)
        lines = result.stdout.splitlines()
        if self.active_jobs_from_sacct:
            return parser.parse_active_job_ids(lines)
        return parser.parse_job_ids(lines)

    def cancel_user_jobs_argv(self, username: str, account: str) -> list[str]:
        """The ``scancel`` of one user's pending and running jobs in ``account``."""
        return [
            SCANCEL,
            f"--account={validation.account_name(account)}",
            f"--user={validation.username(username)}",
            *self._cluster("--clusters"),
        ]

    def cancel_user_jobs(self, username: str, account: str) -> None:
        """Cancel one user's pending and running jobs in ``account``."""
        self.runner.run(self.cancel_user_jobs_argv(username, account), mutating=True)

    def cancel_jobs(self, account: str) -> None:
        """Cancel every pending and running job of ``account``."""
        argv = [
            SCANCEL,
            f"--account={validation.account_name(account)}",
            *self._cluster("--clusters"),
        ]
        self.runner.run(argv, mutating=True)

    # ---- users -------------------------------------------------------------------------

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
        """Associate users with ``accounts`` in one command (one association per partition)."""
        args = self.add_users_args(
            usernames, accounts, default_account, partition, partitions=partitions, qos=qos
        )
        if args:
            self._write(*args)

    def add_users_args(
        self,
        usernames: Iterable[str],
        accounts: Iterable[str],
        default_account: str | None = None,
        partition: str | None = None,
        *,
        partitions: Iterable[str] = (),
        qos: str | None = None,
    ) -> list[str]:
        """Arguments of ``add user`` (``[]`` when there is nobody to add).

        ``partitions`` (or the single ``partition``) give one association per partition;
        ``qos`` becomes the associations' only and default QoS.
        """
        names = sorted({validation.username(name) for name in usernames})
        if not names:
            return []
        targets = ",".join(dict.fromkeys(validation.account_name(a) for a in accounts))
        args = ["add", "user", ",".join(names), f"Account={targets}"]
        if default_account:
            args.append(f"DefaultAccount={validation.account_name(default_account)}")
        wanted = list(partitions) or ([partition] if partition else [])
        if wanted:
            checked = dict.fromkeys(validation.partition_name(p) for p in wanted)
            args.append("Partition=" + ",".join(checked))
        if qos:
            name = validation.qos_name(qos)
            args += [f"QOS={name}", f"DefaultQOS={name}"]
        return [*args, *self._cluster("Cluster")]

    def _user_where(self, username: str, account: str | None) -> list[str]:
        """``where name=U [account=A]`` and the cluster: one association, or every one."""
        where = ["where", f"name={validation.username(username)}"]
        if account is not None:
            where.append(f"account={validation.account_name(account)}")
        return [*where, *self._cluster()]

    def remove_user_args(self, username: str, account: str | None = None) -> list[str]:
        """Arguments of ``delete user`` for one association, or the whole user if None."""
        return ["delete", "user", *self._user_where(username, account)]

    def remove_user(self, username: str, account: str | None = None) -> None:
        """Delete a user's association with ``account``, or the whole user if None."""
        self._write(*self.remove_user_args(username, account))

    def modify_user_args(
        self, username: str, account: str | None, settings: dict[str, str]
    ) -> list[str]:
        """Arguments of ``modify user`` setting ``settings`` (keys are SLURM fields)."""
        return [
            "modify",
            "user",
            *self._user_where(username, account),
            "set",
            *(f"{k}={v}" for k, v in settings.items()),
        ]

    def modify_user(self, username: str, account: str | None, settings: dict[str, str]) -> str:
        """Set fields of a user association (or of the user); return the command line."""
        args = self.modify_user_args(username, account, settings)
        self._write(*args, accept_nothing=False)
        return self.command_line(*args)

    # ---- the framework's BaseClient interface --------------------------------------------

    def execute_command(self, command: list[str], silent: bool = False) -> str:
        """Run a command for the framework (home directories, quotas) through the runner."""
        del silent
        return self.runner.run(command, mutating=True).stdout
