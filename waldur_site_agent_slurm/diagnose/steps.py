"""Remediation steps: the client's own operations, shown as the client makes them.

Each ``Step`` holds an ``Operation`` (the same in command-line and REST mode) and how
the configured client makes it (a sacctmgr command line, or a slurmrestd request);
``--fix`` has the client execute the operation as shown. Accounts are added as order processing adds
them (``accounts``), users as membership sync adds and removes them (``membership``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from waldur_site_agent_slurm.allocation import accounts, membership
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.diagnose.model import ResourceView, Step
from waldur_site_agent_slurm.slurm.accounting import (
    AccountingClient,
    AssociationSnapshot,
    Operation,
)


class StepBuilder:
    """Builds the steps of one offering's allocations."""

    def __init__(self, settings: SlurmSettings, client: AccountingClient) -> None:
        """Describe each operation as ``client`` makes it (cluster scoping included)."""
        self.settings = settings
        self.client = client

    def change(self, operation: Operation, reason: str) -> Step:
        """One change: what it does, how the client makes it, and why."""
        return Step(operation, self.client.describe(operation), reason)

    def modify(self, account: str, fields: Mapping[str, str]) -> Step:
        """The one ``modify account`` carrying every differing field."""
        operation = Operation.of("modify_account", account, dict(fields))
        return self.change(operation, "set " + ", ".join(fields))

    def own_qos(self, name: str, settings: Mapping[str, str], *, exists: bool) -> Step:
        """Add the allocation's QoS with its options, or set the options that differ."""
        if not exists:
            return self.change(Operation.of("add_qos", name, settings), "its QoS is missing")
        operation = Operation.of("modify_qos", name, settings)
        return self.change(operation, "set QoS " + ", ".join(settings))

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
                Operation.of(
                    "add_account", spec.name, spec.description, spec.organization, spec.parent
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
        args = Operation.of(
            "add_account", spec.name, spec.description, spec.organization, spec.parent
        )
        return [
            *self._parents(snapshot, resource),
            self.change(args, "the allocation account is missing"),
        ]

    def move(
        self, account: str, parent: str, snapshot: AssociationSnapshot, resource: ResourceView
    ) -> list[Step]:
        """Put the account back below ``parent`` (created first if missing)."""
        args = Operation.of("modify_account", account, {"Parent": parent})
        return [
            *self._parents(snapshot, resource),
            self.change(args, f"move below {parent}"),
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
            args = Operation.of(
                "add_account",
                customer.name,
                customer.description,
                customer.organization,
                customer.parent,
            )
            steps.append(self.change(args, f"customer account {customer.name} is missing"))
        args = Operation.of("modify_account", project, {"Parent": parent})
        steps.append(self.change(args, f"move {project} below {parent}"))
        return steps

    def add_users(
        self, account: str, missing: Sequence[str], snapshot: AssociationSnapshot
    ) -> list[Step]:
        """``add user`` as ``default_account_policy`` says."""
        partition = self.settings.default_partition
        steps = []
        for add in membership.additions(account, missing, self.settings, snapshot.user_accounts):
            args = Operation.of(
                "add_users", tuple(add.users), tuple(add.accounts), add.default_account, partition
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
                cancel = Operation.of("cancel_user_jobs", gone.user, where)
                steps.append(self.change(cancel, f"jobs of {gone.user}"))
            if gone.new_default:
                args = Operation.of(
                    "modify_user", gone.user, None, {"DefaultAccount": gone.new_default}
                )
                steps.append(self.change(args, f"move the default account of {gone.user}"))
            for where in membership.deletion_order(gone, defaults.get(gone.user)):
                args = Operation.of("remove_user", gone.user, where)
                steps.append(self.change(args, f"remove {gone.user}"))
        return steps
