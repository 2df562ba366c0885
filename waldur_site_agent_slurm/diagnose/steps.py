"""Remediation steps: the exact commands, built by the client's own argument builders.

Each ``Step`` holds the argv the plugin's runner would start and its command line as
printed; ``--fix`` runs the argv as it is. Accounts are added as order processing adds
them (``accounts``), users as membership sync adds and removes them (``membership``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from waldur_site_agent_slurm.allocation import accounts, membership
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.diagnose.model import ResourceView, Step
from waldur_site_agent_slurm.slurm.client import AssociationSnapshot, SlurmClient


class StepBuilder:
    """Builds the steps of one offering's allocations."""

    def __init__(self, settings: SlurmSettings, client: SlurmClient) -> None:
        """Use the client's argument builders (cluster scoping included)."""
        self.settings = settings
        self.client = client

    def change(self, args: list[str], reason: str, *, accept_nothing: bool = True) -> Step:
        """A sacctmgr change: its argv, its command line and why."""
        argv = self.client.change_argv(*args)
        return Step(tuple(argv), self.client.command_line(*args), reason, accept_nothing)

    def modify(self, account: str, fields: Mapping[str, str]) -> Step:
        """The one ``modify account`` carrying every differing field."""
        args = self.client.account_settings_args(account, dict(fields))
        return self.change(args, "set " + ", ".join(fields), accept_nothing=False)

    def own_qos(self, name: str, settings: Mapping[str, str], *, exists: bool) -> Step:
        """Add the allocation's QoS with its options, or set the options that differ."""
        if not exists:
            return self.change(self.client.add_qos_args(name, settings), "its QoS is missing")
        args = self.client.qos_settings_args(name, settings)
        return self.change(args, "set QoS " + ", ".join(settings), accept_nothing=False)

    def _parents(self, snapshot: AssociationSnapshot, resource: ResourceView) -> list[Step]:
        chain = accounts.parent_chain(
            self.settings,
            customer_slug=resource.customer_slug,
            customer_name=resource.customer_name,
            project_slug=resource.project_slug,
            project_name=resource.project_name,
        )
        return [
            self.change(
                self.client.add_account_args(
                    spec.name, spec.description, spec.organization, spec.parent
                ),
                f"parent account {spec.name} is missing",
            )
            for spec in chain
            if snapshot.account(spec.name) is None
        ]

    def create(
        self, account: str, snapshot: AssociationSnapshot, resource: ResourceView
    ) -> list[Step]:
        """Add the missing allocation account (and any missing account above it)."""
        spec = accounts.allocation_spec(
            self.settings, account, resource.name, resource.project_slug
        )
        args = self.client.add_account_args(
            spec.name, spec.description, spec.organization, spec.parent
        )
        return [
            *self._parents(snapshot, resource),
            self.change(args, "the allocation account is missing"),
        ]

    def move(
        self, account: str, parent: str, snapshot: AssociationSnapshot, resource: ResourceView
    ) -> list[Step]:
        """Put the account back below ``parent`` (created first if missing)."""
        args = self.client.account_settings_args(account, {"Parent": parent})
        return [
            *self._parents(snapshot, resource),
            self.change(args, f"move below {parent}", accept_nothing=False),
        ]

    def move_project(
        self, project: str, parent: str, snapshot: AssociationSnapshot, resource: ResourceView
    ) -> list[Step]:
        """Put a project account back below ``parent``; [] when that cannot be done.

        A missing customer account is added first (below ``root_account``, which must
        exist); a missing ``parent_account`` is the site's to create, so no step moves a
        project below an account that will not be there.
        """
        steps = []
        if snapshot.account(parent) is None:
            if self.settings.parent_account:
                return []
            customer = accounts.customer_spec(
                self.settings, resource.customer_slug, resource.customer_name
            )
            if snapshot.account(customer.parent) is None:
                return []
            args = self.client.add_account_args(
                customer.name, customer.description, customer.organization, customer.parent
            )
            steps.append(self.change(args, f"customer account {customer.name} is missing"))
        args = self.client.account_settings_args(project, {"Parent": parent})
        steps.append(self.change(args, f"move {project} below {parent}", accept_nothing=False))
        return steps

    def add_users(
        self, account: str, missing: Sequence[str], snapshot: AssociationSnapshot
    ) -> list[Step]:
        """``add user`` as ``default_account_policy`` says."""
        partition = self.settings.default_partition
        steps = []
        for add in membership.additions(account, missing, self.settings, snapshot.user_accounts):
            args = self.client.add_users_args(
                add.users, add.accounts, add.default_account, partition
            )
            steps.append(self.change(args, "add " + ",".join(add.users)))
        return steps

    def remove_users(
        self,
        account: str,
        extra: Sequence[str],
        snapshot: AssociationSnapshot,
        defaults: Mapping[str, str],
    ) -> list[Step]:
        """Per user: cancel its jobs here, move its default account if needed, remove it."""
        steps: list[Step] = []
        for gone in membership.removals(
            account, extra, snapshot.user_accounts, defaults, self.settings
        ):
            for where in gone.accounts:
                cancel = self.client.cancel_user_jobs_argv(gone.user, where)
                display = self.client.runner.display(cancel)
                steps.append(Step(tuple(cancel), display, f"jobs of {gone.user}"))
            if gone.new_default:
                args = self.client.modify_user_args(
                    gone.user, None, {"DefaultAccount": gone.new_default}
                )
                reason = f"move the default account of {gone.user}"
                steps.append(self.change(args, reason, accept_nothing=False))
            for where in membership.deletion_order(gone, defaults.get(gone.user)):
                args = self.client.remove_user_args(gone.user, where)
                steps.append(self.change(args, f"remove {gone.user}"))
        return steps
