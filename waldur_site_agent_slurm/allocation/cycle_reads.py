"""The accounts a cycle's pull read, and which of them were removed since.

A cycle reads every allocation first and then works on each in turn. An account a
terminate order (or an admin) removed meanwhile has nothing left to add, remove or set:
failing on it would make the framework mark its resource, already Terminated, as Erred.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from waldur_api_client.models.resource import Resource as WaldurResource
from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.errors import InvalidValueError, SlurmError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient


class CycleReads:
    """What the current cycle's pull covered and found, and the accounts gone since."""

    def __init__(self) -> None:
        """Nothing read yet: every missing account is an error."""
        # Accounts of the resources this cycle pulls: the cycle's one sacct covers them.
        self.cycle_accounts: frozenset[str] = frozenset()
        # Accounts this cycle's pull found in SLURM.
        self.read_accounts: frozenset[str] = frozenset()
        self.removed_accounts: set[str] = set()

    def begin(self, waldur_resources: Iterable[WaldurResource]) -> None:
        """A cycle pulls these resources; one with a bad backend id is skipped (logged)."""
        ids = []
        for resource in waldur_resources:
            try:
                ids.append(validation.account_name(resource.backend_id))
            except InvalidValueError as err:
                logger.error("Skipping resource %s: %s", resource.uuid, err)
        self.cycle_accounts = frozenset(ids)

    def found(self, pulled: Iterable[str]) -> None:
        """The pull found these accounts in SLURM; none is known removed yet."""
        self.read_accounts = frozenset(validation.account_name(i) for i in pulled)
        self.removed_accounts = set()

    def removed_since_read(self, client: AccountingClient, account: str) -> bool:
        """Whether an account this cycle's pull found in SLURM is gone now.

        A terminate order (or an admin) removed it after the read. Never true for an
        account ``client`` added (an order's own create) nor for one the cycle did not
        read: a missing account stays an error there.
        """
        if account not in self.read_accounts or account in client.added_accounts:
            return False
        if account in self.removed_accounts:
            return True
        try:
            removed = client.account_record(account, fresh=True) is None
        except SlurmError:
            return False  # SLURM cannot say: the original error stands
        if removed:
            self.removed_accounts.add(account)
        return removed

    @contextmanager
    def unless_removed(self, client: AccountingClient, account: str, what: str) -> Iterator[None]:
        """Run the block; failing because the account was removed since the read is no error.

        Any other error, and any error for an account that is still there, is raised.
        """
        try:
            yield
        except BackendError as err:
            known = account in self.removed_accounts
            if not self.removed_since_read(client, account):
                raise
            if known:
                logger.info(
                    "Account %s was removed after this cycle read it; %s skipped", account, what
                )
                return
            logger.warning(
                "Account %s was removed after this cycle read it (a terminate order, or by "
                "hand); %s: nothing to do (%s)",
                account,
                what,
                err,
            )
