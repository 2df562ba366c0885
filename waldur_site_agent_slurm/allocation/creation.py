"""Creating an allocation account, and undoing a create that failed.

The account gets its limits on ``add account`` (or, with ``apply_limits_to_qos``, on its
own QoS, made first); an account left by an earlier run is adopted, with its own QoS
made and attached. A failed create removes what it added: its accounts, newest first,
then its QoS.
"""

from __future__ import annotations

from dataclasses import dataclass

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation import limits, own_qos, qos, tree
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient
from waldur_site_agent_slurm.slurm.parser import AssociationRecord


@dataclass
class Creation:
    """One create in progress: the limits its ``add account`` carries, the QoS it added.

    ``lever``: pause, downscale and restore set GrpSubmitJobs (no QoS swapping).
    """

    client: AccountingClient
    settings: SlurmSettings
    lever: bool
    carried: tree.CarriedLimits | None = None
    added_qos: str | None = None

    def create_account(self, name: str, resource_name: str, organization: str, parent: str) -> bool:
        """Create the allocation account with its limits; adopt one left by an earlier run."""
        state = self.client.snapshot().account(name)
        if state is not None:
            if state.parent == parent:
                logger.info("Account %s already exists under %s; adopting it", name, parent)
                self.attach_own_qos(state.record)
                return True
            logger.warning("Account %s exists under %s, not %s", name, state.parent, parent)
            return False
        organization = validation.account_name(organization.lower(), "organization")
        carried = self.carried if self.carried and self.carried.account == name else None
        options = self.settings.managed_qos
        # apply_limits_to_qos: the limits go on the allocation's QoS, made first.
        on_qos = options is not None and options.limits_on_qos
        made = False
        if options is not None:
            made = self.ensure_own_qos(name, options, carried.tres if carried and on_qos else None)
        created = self.client.add_account(
            name,
            validation.description(resource_name, name),
            organization,
            parent,
            carried.tres if carried and not on_qos else None,
            qos=own_qos.attach_fields(options, name, (), "") if options is not None else None,
        )
        if carried is not None:
            carried.stored = made if on_qos else created
        return True

    def ensure_own_qos(
        self, name: str, options: own_qos.QosOptions, grp_tres_mins: dict[str, int] | None = None
    ) -> bool:
        """Create the allocation's QoS with its options; adopt or correct an existing one.

        ``grp_tres_mins`` goes on a QoS this adds (apply_limits_to_qos); True when it did.
        """
        found = self.client.qos_record(name)
        if found is None:
            settings = options.settings()
            if grp_tres_mins:
                settings["GrpTRESMins"] = limits.format_setting(grp_tres_mins)
            if self.client.add_qos(name, settings):
                self.added_qos = name
                return True
            return False
        todo = own_qos.differences(options, found)
        if todo:
            logger.info("QoS %s exists with other options; setting %s", name, todo)
            self.client.modify_qos(name, todo)
        else:
            logger.info("QoS %s already exists with the configured options; adopting it", name)
        return False

    def attach_own_qos(self, record: AssociationRecord) -> None:
        """An adopted account: its QoS made and attached, in one ``modify account`` at most.

        An account that QoS swapping holds on a paused or downscaled QoS is left there:
        restore puts it back on its own QoS.
        """
        options = self.settings.managed_qos
        if options is None:
            return
        self.ensure_own_qos(record.account, options)
        swapped = not self.lever
        if swapped and qos.level_of(record, self.settings) is not qos.QosLevel.DEFAULT:
            return
        fields = own_qos.attach_fields(options, record.account, record.qos, record.default_qos)
        if fields:
            self.client.modify_account(record.account, fields)

    def undo(self, err: BackendError) -> None:
        """After a failed create: remove the accounts it added, newest first, then its QoS."""
        added = list(reversed(self.client.added_accounts))
        if added:
            logger.error("Creating the allocation failed (%s); removing %s", err, ", ".join(added))
        for name in added:
            try:
                self.client.remove_account(name)
            except BackendError as undo_err:
                logger.error("Could not remove %s, remove it by hand: %s", name, undo_err)
        self.client.added_accounts.clear()
        if self.added_qos is None:
            return
        try:
            self.client.remove_qos(self.added_qos)
        except BackendError as undo_err:
            logger.error("Could not remove QoS %s, remove it by hand: %s", self.added_qos, undo_err)
