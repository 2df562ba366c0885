"""SlurmBackend: the framework's verbs, mapped onto the client and the domain modules."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

from waldur_api_client.models.resource import Resource as WaldurResource
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.backends import BaseBackend
from waldur_site_agent.backend.exceptions import BackendError
from waldur_site_agent.backend.structures import BackendResourceInfo

from waldur_site_agent_slurm.allocation import (
    accounts,
    deletion,
    limit_sync,
    member_sync,
    membership,
    qos,
    resource_accounts,
    tree,
    waldur_state,
)
from waldur_site_agent_slurm.allocation.creation import Creation
from waldur_site_agent_slurm.allocation.cycle_reads import CycleReads
from waldur_site_agent_slurm.allocation.pulled import PulledResource
from waldur_site_agent_slurm.allocation.usage import (
    Window,
    this_month,
    usage_zone,
)
from waldur_site_agent_slurm.allocation.usage_reader import UsageReader
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import (
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.log_level import apply_env_log_level
from waldur_site_agent_slurm.periodic.message import apply_settings
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.site import homedirs
from waldur_site_agent_slurm.site.project_site import ProjectSite
from waldur_site_agent_slurm.slurm import cluster_checks, validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient
from waldur_site_agent_slurm.slurm.modes import make_client
from waldur_site_agent_slurm.slurm.runner import CommandRunner
from waldur_site_agent_slurm.slurm.write_lock import LOCK_NAME, WriteLock


class SlurmBackend(BaseBackend):
    """Keeps SLURM accounts, associations, limits and QoS in step with Waldur."""

    supports_user_homedirs = True
    supports_periodic_settings = True
    # Order cycles start with a cheap ping, so an unreachable SLURM leaves orders alone.
    supports_cycle_preflight = True
    # Set by the framework's processors from the offering's plugin_options.enforce_qos
    # (only because the class defines it); None where no processor built the backend.
    offering_enforce_qos: bool | None = None

    def __init__(
        self, backend_settings: dict[str, Any], backend_components: dict[str, dict[str, Any]]
    ) -> None:
        """Validate the settings (fail hard with a clear message) and build the client."""
        super().__init__(backend_settings, backend_components)
        self.backend_type = "slurm"
        apply_env_log_level()
        self.settings = load_settings(backend_settings, backend_components)
        if self.settings.cluster_name:
            self.cluster_name = self.settings.cluster_name
        self.runner = CommandRunner(
            bin_path=self.settings.slurm_bin_path,
            emulator=self.settings.emulator_mode,
            timeout=self.settings.command_timeout,
            write_lock=WriteLock(
                Path(self.settings.periodic.state_dir) / LOCK_NAME, self.settings.command_timeout
            ),
        )
        self.client: AccountingClient = make_client(self.settings, self.runner)
        self._usage_reader: UsageReader | None = None
        # The create in progress: the limits its ``add account`` carries, what it added.
        self._creation: Creation | None = None
        self._flat_move_logged = False
        # Read by the framework's processors; offering_partitions is set by them.
        self.partition_enforcement_enabled = self.settings.enforce_offering_partitions
        # What this cycle's pull read (see _unless_removed_since_read).
        self._cycle = CycleReads()
        # True while pull_resources runs: its resources' usage is read when asked for.
        self._usage_on_access = False
        # The projects' LDAP groups and directories (None each when not configured).
        self.site = ProjectSite(self.settings)
        self.project_groups = self.site.groups
        self.project_directories = self.site.directories

    def qos_enforced(self) -> bool:
        """Whether user associations get the resource's QoS and partition grants.

        Then pause and downscale use the account's GrpSubmitJobs instead of its QoS.
        """
        return qos.enforced(self.settings, self.offering_enforce_qos)

    def submit_lever(self) -> bool:
        """Whether pause, downscale and restore set the account's GrpSubmitJobs (``qos.lever``)."""
        return bool(qos.lever(self.settings, self.offering_enforce_qos))

    # ---- identifiers ---------------------------------------------------------------------

    def _get_resource_backend_id(self, resource_slug: str, prefix: str = "") -> str:
        del prefix
        return accounts.allocation_account(self.settings, resource_slug)

    def _get_project_backend_id(self, slug: str) -> str:
        return accounts.project_account(self.settings, slug)

    def _get_customer_backend_id(self, slug: str) -> str:
        return accounts.customer_account(self.settings, slug)

    # ---- health ------------------------------------------------------------------------

    def ping(self, raise_exception: bool = False) -> bool:
        """Check that SLURM's accounting database answers (and knows the cluster)."""
        return cluster_checks.usable(self.client, self.settings, raise_exception)

    def _ping_problems(self) -> list[str]:
        return cluster_checks.ping_problems(self.client, self.settings)

    def diagnostics(self) -> bool:
        """Log what is wrong between the configuration and the cluster; True when nothing."""
        logger.info("SLURM backend settings: %s", self.settings)
        problems = []
        try:
            problems += self._ping_problems()
            problems += self._configuration_problems()
        except BackendError as err:
            problems.append(str(err))
        try:
            self.site.check_groups()
        except BackendError as err:
            problems.append(str(err))
        for problem in problems:
            logger.error("Diagnostics: %s", problem)
        if not problems:
            logger.info("Diagnostics: SLURM backend is configured correctly")
        return not problems

    def _configuration_problems(self) -> list[str]:
        problems = cluster_checks.configuration_problems(self.client, self.settings)
        return problems + self.site.problems()

    def list_components(self) -> list[str]:
        """TRES the cluster accounts for."""
        return sorted(self.client.tres_names())

    # ---- creation ----------------------------------------------------------------------

    def create_resource_with_id(
        self,
        waldur_resource: WaldurResource,
        resource_backend_id: str,
        user_context: dict[str, Any] | None = None,
    ) -> BackendResourceInfo:
        """Check every name and limit first, then create with the limits on ``add account``."""
        validation.account_name(resource_backend_id, "allocation account")
        resource_accounts.parent_chain(self.settings, waldur_resource)  # checks their names
        if self.project_directories is not None:  # a path that is not safe stops it here
            project = resource_accounts.project_of(self.settings, waldur_resource)
            self.project_directories.checked_path(project)
        tres_limits, _ = self._collect_resource_limits(waldur_resource)  # fails before writes
        # The project's LDAP group comes first: with the directory away nothing is made.
        group = self.site.ensure_group(self._group_project(waldur_resource))
        carried = tree.CarriedLimits(resource_backend_id, tres_limits)
        self._creation = creation = self._new_creation(carried)
        # Orders of one cycle share the backend: undo only what this create adds.
        self.client.added_accounts.clear()
        try:
            return super().create_resource_with_id(
                waldur_resource, resource_backend_id, user_context
            )
        except SlurmUnavailableError:
            self.site.undo_group(group)
            raise  # SLURM is away: the next attempt adopts the accounts already created
        except BackendError as err:
            creation.undo(err)
            self.site.undo_group(group)
            raise
        finally:
            self._creation = None

    def _new_creation(self, carried: tree.CarriedLimits | None = None) -> Creation:
        return Creation(self.client, self.settings, self.submit_lever(), carried)

    def _group_project(self, waldur_resource: WaldurResource, slug: str = "") -> str | None:
        """The project account whose LDAP group the resource's users belong to.

        None without ``ldap``. ``slug`` overrides the resource's project slug (a terminate
        order names the project itself).
        """
        if self.project_groups is None:
            return None
        return resource_accounts.group_project(self.settings, waldur_resource, slug)

    def project_group_gid(self, project_account: str) -> int | None:
        """The gid of the project's LDAP group; None without ``ldap`` or without a group."""
        return self.site.gid(project_account)

    def _pre_create_resource(
        self, waldur_resource: WaldurResource, user_context: dict[str, Any] | None = None
    ) -> None:
        """Create the accounts above the allocation: customer and project, or the project."""
        del user_context
        tree.require_top(self.client, self.settings)
        tree.ensure_chain(
            self.client, resource_accounts.parent_chain(self.settings, waldur_resource)
        )

    def _create_backend_resource(
        self,
        resource_backend_id: str,
        resource_name: str,
        resource_organization: str,
        resource_parent_name: str | None = None,
    ) -> bool:
        """Create the allocation account with its limits; adopt one left by an earlier run."""
        name = validation.account_name(resource_backend_id, "allocation account")
        parent = resource_parent_name or resource_organization
        creation = self._creation or self._new_creation()
        return creation.create_account(name, resource_name, resource_organization, parent)

    def has_prepaid_components(self) -> bool:
        """True when a component is prepaid (``accounting_type: one``)."""
        return limit_sync.has_prepaid(self.settings)

    def _limits(self) -> limit_sync.AllocationLimits:
        """Limits through the current client (tests may swap the client)."""
        return limit_sync.AllocationLimits(self.client, self.settings, self._zone)

    def _collect_resource_limits(
        self, waldur_resource: WaldurResource
    ) -> tuple[dict[str, int], dict[str, int]]:
        """GrpTRESMins for an allocation: Waldur limits × factor (× months if prepaid)."""
        return self._limits().collect(waldur_resource)

    def _setup_resource_limits(
        self, resource_backend_id: str, waldur_resource: WaldurResource
    ) -> dict[str, int]:
        tres_limits, waldur_limits = self._collect_resource_limits(waldur_resource)
        carried = self._creation.carried if self._creation else None
        if carried and carried.cover(resource_backend_id, tres_limits):
            logger.info("Limits of %s were set on creation: %s", resource_backend_id, tres_limits)
        else:
            self._limits().apply(resource_backend_id, tres_limits)
        return waldur_limits

    def set_resource_limits(self, resource_backend_id: str, limits_: dict[str, int]) -> None:
        """Set GrpTRESMins from Waldur limits, writing only the TRES that differ."""
        allocation = self._limits()
        tres_limits = allocation.to_tres(limits_)
        allocation.apply(validation.account_name(resource_backend_id), tres_limits)

    def sync_resource_end_date(
        self, waldur_resource: WaldurResource, waldur_rest_client: Any
    ) -> None:
        """Recompute prepaid limits for the resource's current end date; write what differs."""
        del waldur_rest_client
        if not self.has_prepaid_components() or self.settings.periodic.enabled:
            return  # with a periodic policy, the policy sets GrpTRESMins
        account = validation.account_name(waldur_resource.backend_id, "allocation account")
        if self.client.snapshot().account(account) is None:
            logger.warning("Account %s does not exist; prepaid limits not synced", account)
            return
        allocation = self._limits()
        paid = allocation.prepaid(waldur_resource)
        with self._unless_removed_since_read(account, "syncing prepaid limits"):
            allocation.apply(account, paid)

    def get_resource_limits(self, resource_backend_id: str) -> dict[str, int]:
        """The allocation's GrpTRESMins in whole Waldur units (prepaid: per month of one)."""
        return self._limits().in_waldur_units(resource_backend_id, None)

    def sync_resource_limits(
        self, waldur_resource: WaldurResource, waldur_rest_client: Any
    ) -> None:
        """Push SLURM's limits to Waldur where they differ, unless a periodic policy runs.

        Without periodic limits this is the framework's default (SLURM is the source of
        truth), except that Waldur keeps the limits of components SLURM does not hold.
        With ``periodic_limits.enabled`` it does nothing: limits there carry grace and
        carry-over, and echoing them into Waldur would compound on the next policy run.

        It is the last step of a membership pass with the Waldur client before the
        framework sets an Erred resource OK, so an Erred resource's state is read from
        Waldur again first (``allocation/waldur_state.py``); one an order now works on
        (Terminating, Terminated, Updating) is left alone.
        """
        if not waldur_state.refresh_erred(waldur_resource, waldur_rest_client):
            return  # an order works on it in Waldur; the framework then sets it nothing
        if self.settings.periodic.enabled:
            return
        backend = self._limits().in_waldur_units(waldur_resource.backend_id, waldur_resource)
        limit_sync.push_to_waldur(waldur_resource, backend, waldur_rest_client)

    # ---- deletion ----------------------------------------------------------------------

    def _pre_delete_resource(self, waldur_resource: WaldurResource, project_slug: str = "") -> None:
        """Cancel the allocation's jobs and remove its users."""
        account = validation.account_name(waldur_resource.backend_id)
        self.client.cancel_jobs(account)
        users = set(self.client.list_resource_users(account))
        self._remove_users(account, users, self._group_project(waldur_resource, project_slug))

    def delete_resource(self, waldur_resource: WaldurResource, **kwargs: str) -> str | None:
        """Terminate: cancel jobs, remove users and the account, then an emptied project."""
        account = validation.account_name(waldur_resource.backend_id, "allocation account")
        project_slug = kwargs.get("project_slug") or ""
        group_project = self._group_project(waldur_resource, project_slug)
        self.site.check_groups()  # with the directory away, nothing is removed
        empty = partial(self._pre_delete_resource, waldur_resource, project_slug)
        soft = bool(self.backend_settings.get("soft_delete", False))
        if not deletion.remove_allocation(self._limits(), account, empty, soft=soft):
            return None
        if project_slug:
            project = validation.account_name(self._get_project_backend_id(project_slug))
            removed = tree.remove_empty_project(self.client, self.settings, project)
            if removed:
                self.site.keep_directory(project)
        self.site.remove_group_if_unused(self.client, group_project)
        return None

    def sync_resource_project(
        self, waldur_resource: WaldurResource, source_project: Any = None
    ) -> None:
        """Keep the project account under its customer's account after a project moved.

        Skipped in a flat hierarchy (no customer accounts). Writes nothing when the project
        account is already under the right customer or does not exist.
        """
        del source_project
        if self.settings.parent_account:
            if not self._flat_move_logged:
                logger.info("Flat hierarchy: project accounts are not moved between customers")
                self._flat_move_logged = True
            return
        moved = resource_accounts.moved_project(self.settings, waldur_resource)
        if moved is not None:
            tree.move_project(self.client, *moved)

    # ---- an account removed while a cycle works on it ----------------------------------

    def _unless_removed_since_read(self, account: str, what: str) -> AbstractContextManager[None]:
        """The block's failure is no error when the account was removed since the read."""
        return self._cycle.unless_removed(self.client, account, what)

    # ---- users -------------------------------------------------------------------------

    def add_users_to_resource(
        self, waldur_resource: WaldurResource, user_ids: set[str], **kwargs: Any
    ) -> set[str]:
        """Associate users with the allocation, following the default-account policy.

        The account must exist (an order's create, or a cycle's read, found it): when it
        is missing this is an error, except in a cycle that read it and finds it removed
        since, which adds no one.
        """
        account = validation.account_name(waldur_resource.backend_id, "allocation account")
        with self._unless_removed_since_read(account, "adding users"):
            return self._add_users_to_account(waldur_resource, account, user_ids, kwargs)
        return set()

    def _add_users_to_account(
        self,
        waldur_resource: WaldurResource,
        account: str,
        user_ids: set[str],
        kwargs: dict[str, Any],
    ) -> set[str]:
        wanted = membership.wanted_users(user_ids, kwargs.get("offering_user_states") or {})
        validation.usernames(wanted)
        grant = partial(self._grant, waldur_resource)
        new = member_sync.add_users(self.client, self.settings, account, wanted, grant)
        self.site.add_members(self._group_project(waldur_resource), wanted)
        self._make_homedirs(new, kwargs.get("homedir_umask"))
        return wanted

    def _grant(self, waldur_resource: WaldurResource) -> membership.Grant:
        """The partitions and QoS of the allocation's user associations (names checked)."""
        return membership.grant(
            self.settings,
            offering_partitions=self.offering_partitions,
            qos_enforced=self.qos_enforced(),
            attributes=membership.resource_attributes(waldur_resource),
        )

    def reconcile_existing_user_roles(
        self,
        waldur_resource: WaldurResource,
        existing_users: set[str],
        user_roles: dict[str, Any],
        user_cuids: dict[str, Any],
    ) -> None:
        """Give members already on the allocation the partition associations they lack."""
        del user_roles, user_cuids
        if not existing_users:
            return
        account = validation.account_name(waldur_resource.backend_id, "allocation account")
        validation.usernames(existing_users)
        grant = self._grant(waldur_resource)
        with self._unless_removed_since_read(account, "completing members' associations"):
            present = member_sync.complete(self.client, account, existing_users, grant)
            if present is not None:
                # Members a cycle with the directory away could not add to the group.
                self.site.add_members(self._group_project(waldur_resource), present)

    def post_create_resource(
        self,
        resource: BackendResourceInfo,
        waldur_resource: WaldurResource,
        user_context: dict[str, Any] | None = None,
    ) -> None:
        """Make or correct the project directory, then the team's home directories.

        A project directory that cannot be made fails the create, so the accounts it
        added are removed again; what the directory step already did stays (no data is
        ever removed) and the next attempt corrects it.
        """
        del resource
        if self.project_directories is not None:
            self.project_directories.ensure(
                resource_accounts.project_of(self.settings, waldur_resource)
            )
        self._make_homedirs(homedirs.offering_usernames(user_context))

    def process_existing_users(self, existing_users: set[str]) -> None:
        """Make the home directories that members of the allocation still lack."""
        self._make_homedirs(existing_users)

    def _make_homedirs(self, usernames: Iterable[str], umask: object = None) -> None:
        """The framework makes the missing ones (never in emulator mode, nor when disabled)."""
        if not self.settings.homedirs_enabled or self.settings.emulator_mode:
            return
        todo = homedirs.missing(usernames, self.settings.homedir_base_path)
        if todo:
            self.create_user_homedirs(set(todo), umask=str(umask or self.settings.homedir_umask))

    def add_user(self, waldur_resource: WaldurResource, username: str, **kwargs: str) -> bool:
        """Associate one user (see ``add_users_to_resource``)."""
        return bool(self.add_users_to_resource(waldur_resource, {username}, **kwargs))

    def remove_users_from_resource(
        self, waldur_resource: WaldurResource, usernames: set[str], **kwargs: Any
    ) -> list[str]:
        """Remove users' associations with the allocation (their jobs there are cancelled)."""
        del kwargs
        account = validation.account_name(waldur_resource.backend_id, "allocation account")
        validation.usernames(usernames)
        if not usernames:
            return []
        with self._unless_removed_since_read(account, "removing users"):
            return self._remove_users(account, usernames, self._group_project(waldur_resource))
        return []

    def remove_user(self, waldur_resource: WaldurResource, username: str, **kwargs: str) -> bool:
        """Remove one user (see ``remove_users_from_resource``)."""
        return bool(self.remove_users_from_resource(waldur_resource, {username}, **kwargs))

    def _remove_users(
        self, account: str, usernames: set[str], project: str | None = None
    ) -> list[str]:
        """Remove the users' associations; first from the project's group those who leave it."""
        snapshot = self.client.snapshot()
        # Before SLURM: a directory that is away leaves the associations to retry with.
        self.site.remove_leaving(snapshot, project, account, usernames)
        return member_sync.remove_users(self.client, self.settings, account, usernames, snapshot)

    def list_active_user_jobs(self, account: str, user: str) -> list[str]:
        """Ids of the user's pending, running and suspended jobs under the account."""
        return member_sync.active_jobs(self.client, account, user)

    def cancel_active_jobs_for_account_user(self, account: str, user: str) -> None:
        """Cancel the user's active jobs under the account (no command when there are none)."""
        member_sync.cancel_jobs(self.client, account, user)

    # ---- QoS ---------------------------------------------------------------------------

    def _apply_qos_level(self, resource_backend_id: str, flags: qos.QosLevel) -> bool:
        """QoS = the stricter of Waldur's flags and the last usage thresholds.

        Under QoS enforcement or ``skip_qos_swap`` the level goes to the account's
        GrpSubmitJobs instead.
        """
        service = PeriodicService(self.client, self.settings, timezone=self._zone())
        account = validation.account_name(resource_backend_id)
        with self._unless_removed_since_read(account, f"setting the {flags.name.lower()} level"):
            return service.enforce_flags(account, flags, lever=self.submit_lever())
        return False

    def downscale_resource(self, resource_backend_id: str) -> bool:
        """Put the allocation on ``qos_downscaled`` (or stricter, see ``qos``)."""
        flags = qos.from_flags(paused=False, downscaled=True)
        return self._apply_qos_level(resource_backend_id, flags)

    def pause_resource(self, resource_backend_id: str) -> bool:
        """Put the allocation on ``qos_paused``."""
        flags = qos.from_flags(paused=True, downscaled=False)
        return self._apply_qos_level(resource_backend_id, flags)

    def restore_resource(self, resource_backend_id: str) -> bool:
        """Put the allocation back on ``qos_default`` (or its own QoS, with ``qos_management``).

        Unless usage thresholds hold it on a stricter level.
        """
        flags = qos.from_flags(paused=False, downscaled=False)
        return self._apply_qos_level(resource_backend_id, flags)

    def apply_periodic_settings(
        self, resource_id: str, settings: dict[str, Any], config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Apply Waldur's periodic settings (``config`` overrides ``periodic_limits`` keys).

        Under QoS enforcement or ``skip_qos_swap`` a threshold level goes to the account's
        GrpSubmitJobs.
        """
        return apply_settings(
            self.client,
            self.settings,
            resource_id,
            settings,
            self.timezone,
            override=config,
            lever=qos.lever(self.settings, self.offering_enforce_qos),
        )

    def get_resource_metadata(self, resource_backend_id: str) -> dict[str, Any]:
        """The allocation's current QoS; under the submit lever also its GrpSubmitJobs."""
        account = validation.account_name(resource_backend_id)
        state = self.client.snapshot().account(account)
        if state is None:
            return {}
        metadata: dict[str, Any] = {"qos": qos.current_qos(state.record)}
        if self.submit_lever():
            metadata["grp_submit_jobs"] = self.client.submit_limits().get(account)
        return metadata

    # ---- per-user limits ---------------------------------------------------------------

    def set_resource_user_limits(
        self, resource_backend_id: str, username: str, limits_: dict[str, int]
    ) -> None:
        """Set a user's MaxTRESMins from Waldur units; ``{}`` clears them."""
        account = validation.account_name(resource_backend_id)
        validation.username(username)
        allocation = self._limits()
        tres_limits = allocation.to_tres(limits_)
        with self._unless_removed_since_read(account, f"setting the limits of {username}"):
            allocation.set_user_limits(account, username, tres_limits)

    def get_resource_user_limits(self, resource_backend_id: str) -> dict[str, dict[str, int]]:
        """Each user's MaxTRESMins in Waldur units."""
        return self._limits().user_limits(resource_backend_id)

    # ---- usage -------------------------------------------------------------------------

    def _usage(self) -> UsageReader:
        """The usage reader of the current client (tests may swap the client)."""
        if self._usage_reader is None or self._usage_reader.client is not self.client:
            self._usage_reader = UsageReader(self.client, self.settings)
        return self._usage_reader

    def _zone(self) -> str:
        """The zone usage months are cut in: the agent's or ``backend_settings.timezone``."""
        return usage_zone(self.timezone, self.settings.timezone)

    def _get_usage_report(self, resource_backend_ids: list[str]) -> dict[str, Any]:
        """Usage of the current month (in the configured timezone), in Waldur units.

        Nothing is read while ``pull_resources`` runs: its resources read their usage
        when it is asked for (``_pull_backend_resource``).
        """
        if self._usage_on_access:
            return {}
        zone = self._zone()
        return self._usage().month_report(zone, resource_backend_ids, self._cycle.cycle_accounts)

    def get_usage_report_for_period(
        self,
        resource_backend_ids: list[str],
        year: int,
        month: int,
        waldur_resource: WaldurResource | None = None,
    ) -> dict[str, Any]:
        """Usage of one month in Waldur units, with jobs clipped to the month.

        Report mode asks for past months one resource at a time, with ``waldur_resource``,
        and gets a ``BackendError`` when a month cannot be reported. The historical loader
        asks once per month for all its allocations, without it, on a backend that no
        processor gave the agent's timezone (hence ``backend_settings.timezone``); there
        any failure stops the whole run (``UsageReader.period_report``).
        """
        if not self.timezone and not self.settings.timezone:
            logger.warning(
                "Cutting usage months at midnight UTC: the agent passed no timezone; set "
                "backend_settings.timezone to the agent's timezone"
            )
        loader = waldur_resource is None
        reader = self._usage()
        return reader.period_report(year, month, self._zone, resource_backend_ids, loader=loader)

    def pull_resources(
        self, waldur_resources: list[WaldurResource]
    ) -> dict[str, tuple[WaldurResource, BackendResourceInfo]]:
        """Pull each resource (one associations read); read no usage until it is asked for.

        The framework's membership cycle pulls this way and uses the users only, so it
        reads no jobs. The first resource whose ``usage`` is asked for reads the pull's
        month for all of them at once (``PulledResource``): one sacct, or one ``/jobs/``
        request, covers every resource of the cycle, and none is made when no resource
        exists in SLURM. The report cycle pulls one resource at a time
        (``pull_resource``), which reads its usage in the pull, as the framework does.
        """
        self._cycle.begin(waldur_resources)
        pulled: dict[str, tuple[WaldurResource, BackendResourceInfo]]
        self._usage_on_access = True
        try:
            pulled = super().pull_resources(waldur_resources)
        finally:
            self._usage_on_access = False
        self._cycle.found(pulled)
        return pulled

    def _pull_backend_resource(self, resource_backend_id: str) -> BackendResourceInfo | None:
        """The framework's pull; within ``pull_resources`` the usage is read on access."""
        info = super()._pull_backend_resource(resource_backend_id)
        if info is None or not self._usage_on_access:
            return info
        read = partial(
            self._pulled_usage,
            resource_backend_id,
            this_month(self._zone()),
            self._cycle.cycle_accounts,
        )
        return PulledResource(info.users, read)

    def _pulled_usage(self, account: str, month: Window, cover: frozenset[str]) -> dict[str, Any]:
        """The usage of one pulled resource in the pull's month; the read covers ``cover``."""
        report = self._usage().report(month, [account], cover=cover)
        usage: dict[str, Any] = report[validation.account_name(account)]
        return usage
