"""Reading usage out of SLURM for report cycles and the historical loader.

One sacct call serves a whole window: the first request of a window reads every
allocation-like account at once, and later requests of the same window are answered
from what that call accumulated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.allocation import accounts
from waldur_site_agent_slurm.allocation.usage import (
    UsageAccumulator,
    Window,
    build_report,
    period_window,
    this_month,
)
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.errors import (
    HistoricalLoadStopped,
    SlurmError,
    UnknownAllocationError,
)
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient

MISSING_SHOWN = 10  # missing allocation accounts named in an error, the rest counted


class UsageReader:
    """Usage reports in Waldur units, one sacct call per window."""

    def __init__(self, client: AccountingClient, settings: SlurmSettings) -> None:
        """Read through ``client``; ``settings`` say which accounts are allocations."""
        self.client = client
        self.settings = settings
        self._cache: dict[Window, tuple[frozenset[str], UsageAccumulator]] = {}

    def report(
        self, window: Window, resource_backend_ids: list[str], cover: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The usage of ``resource_backend_ids`` in ``window``, per account and user.

        A read also covers ``cover`` (the other accounts of the cycle), so the cycle's
        later requests are answered from it.
        """
        wanted = frozenset(validation.account_name(i) for i in resource_backend_ids)
        cached = self._cache.get(window)
        if cached is None or not wanted <= cached[0]:
            accounts = wanted | cover | self.allocation_accounts()
            jobs = self.client.jobs(window, accounts)
            accumulator = UsageAccumulator(window, running=False).add_all(jobs)
            cached = (accounts, accumulator)
            self._cache[window] = cached
        return build_report(cached[1], sorted(wanted), self.settings.components)

    def month_report(
        self, zone: str, resource_backend_ids: list[str], cover: frozenset[str]
    ) -> dict[str, Any]:
        """Usage of the current month in ``zone``; the read also covers ``cover``."""
        return self.report(this_month(zone), resource_backend_ids, cover=cover)

    def period_report(
        self,
        year: int,
        month: int,
        zone: Callable[[], str],
        resource_backend_ids: list[str],
        *,
        loader: bool,
    ) -> dict[str, Any]:
        """Usage of one month in ``zone``, jobs clipped to it, of allocations SLURM knows.

        For the historical loader (``loader``) any failure (an allocation SLURM does not
        know, a month that has not begun, SLURM failing) stops the whole run before the
        month is posted (``HistoricalLoadStopped``); else the ``SlurmError`` is raised.
        """
        try:
            window = period_window(year, month, zone())
            self.require_allocations(resource_backend_ids)
            return self.report(window, resource_backend_ids)
        except SlurmError as err:
            if not loader:
                raise
            message = (
                f"Usage of {year:04d}-{month:02d} not loaded, nothing posted for it or any "
                f"later month: {err}"
            )
            logger.error("%s", message)
            raise HistoricalLoadStopped(message) from err

    def allocation_accounts(self) -> frozenset[str]:
        """Every allocation-like account: what one sacct call of a cycle covers.

        Allocations are leaves of the account tree whose names start with
        ``allocation_prefix``, where ``accounts.in_allocation_tier`` puts them (below a
        project account under ``parent_account`` in a flat hierarchy).
        """
        snapshot = self.client.snapshot()
        prefix = self.settings.allocation_prefix

        def parent_of(name: str) -> str:
            state = snapshot.account(name)
            return state.parent if state else ""

        return frozenset(
            name
            for name, state in snapshot.accounts.items()
            if not state.children
            and name != self.settings.root_account
            and name.startswith(prefix)
            and accounts.in_allocation_tier(self.settings, state.parent, parent_of(state.parent))
        )

    def require_allocations(self, resource_backend_ids: list[str]) -> None:
        """Refuse usage of allocation accounts SLURM does not know (rather than zeros)."""
        wanted = {validation.account_name(i, "allocation account") for i in resource_backend_ids}
        missing = sorted(wanted - set(self.client.snapshot().accounts))
        if not missing:
            return
        shown = ", ".join(missing[:MISSING_SHOWN])
        if missing[MISSING_SHOWN:]:
            shown += f" and {len(missing) - MISSING_SHOWN} more"
        cluster = f" on cluster {self.settings.cluster_name}" if self.settings.cluster_name else ""
        raise UnknownAllocationError(
            f"Allocation accounts not in SLURM{cluster}: {shown}; create them, or leave those "
            "resources out (the loader's --resource-backend-id)"
        )
