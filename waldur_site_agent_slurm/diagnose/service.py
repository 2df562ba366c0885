"""The diagnostic as a service: configuration → SLURM and Waldur reads → report → fix.

SLURM is read once per run (one ``show assoc`` for every account, ``list tres`` for the
limit conversions, ``list user`` only when users would have to be removed); Waldur is
read through ``WaldurReader``. ``--fix`` runs exactly the steps of the report through
the plugin's command runner, then diagnoses again with fresh reads.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from waldur_site_agent.backend import logger
from waldur_site_agent.common import structures, utils

from waldur_site_agent_slurm.allocation.usage import usage_zone
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.diagnose.expected import Diagnoser
from waldur_site_agent_slurm.diagnose.model import FixResult, Report, Step
from waldur_site_agent_slurm.diagnose.waldur import WaldurReader
from waldur_site_agent_slurm.errors import SlurmCommandError, SlurmConfigError, SlurmError
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient

SLURM_BACKEND = "slurm"


class DiagnoseError(Exception):
    """The diagnosis could not be made (configuration, Waldur or SLURM); one line."""


@dataclass(frozen=True)
class Params:
    """What the command line asked for."""

    config: Path
    account: str | None = None
    all_accounts: bool = False
    offering_uuid: str | None = None
    fix: bool = False
    yes: bool = False


Confirm = Callable[[list[Step]], bool]


def _hex(value: str) -> str:
    try:
        return uuidlib.UUID(value).hex
    except ValueError as err:
        raise DiagnoseError(f"--offering-uuid {value!r} is not a UUID") from err


def select_offering(
    configuration: structures.WaldurAgentConfiguration, wanted: str | None
) -> structures.Offering:
    """The SLURM offering to diagnose: the one asked for, or the only one configured."""
    slurm = [
        o
        for o in configuration.waldur_offerings
        if SLURM_BACKEND in (o.backend_type, o.order_processing_backend)
    ]
    listing = ", ".join(f"{o.name!r} ({o.waldur_offering_uuid})" for o in slurm) or "none"
    if wanted is not None:
        target = _hex(wanted)
        for offering in slurm:
            if _hex(offering.waldur_offering_uuid) == target:
                return offering
        raise DiagnoseError(f"no SLURM offering {wanted} in the configuration; it has: {listing}")
    if len(slurm) == 1:
        return slurm[0]
    if not slurm:
        raise DiagnoseError("the configuration has no SLURM offering (backend_type: slurm)")
    raise DiagnoseError(f"several SLURM offerings, choose one with --offering-uuid: {listing}")


def load(path: Path) -> structures.WaldurAgentConfiguration:
    """The agent configuration, or a one-line reason why it cannot be used."""
    try:
        return utils.load_configuration(str(path), user_agent_suffix="diagnose")
    except FileNotFoundError as err:
        raise DiagnoseError(f"configuration file {path} not found") from err
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DiagnoseError(
            f"configuration {path} is invalid: {first} (every problem: "
            f"waldur_site_diagnose_slurm_account --check-config -c {path})"
        ) from err


class DiagnoseService:
    """One run against one offering."""

    def __init__(self, params: Params, configuration: structures.WaldurAgentConfiguration) -> None:
        """Pick the offering and check the account name before anything is read."""
        self.params = params
        self.configuration = configuration
        self.offering = select_offering(configuration, params.offering_uuid)
        if params.account is not None:
            try:
                validation.account_name(params.account, "account")
            except SlurmError as err:
                raise DiagnoseError(str(err)) from err
        self.reader = WaldurReader(
            utils.get_client_for_offering(self.offering, configuration.waldur_user_agent),
            self.offering.waldur_offering_uuid,
        )

    def _backend(self) -> SlurmBackend:
        try:
            return SlurmBackend(
                self.offering.backend_settings, self.offering.backend_components_dict
            )
        except SlurmConfigError as err:
            raise DiagnoseError(
                f"{err} (every problem: waldur_site_diagnose_slurm_account --check-config "
                f"-c {self.params.config})"
            ) from err
        except SlurmError as err:
            raise DiagnoseError(str(err)) from err

    def diagnose(self) -> Report:
        """Read both sides and compare (no writes)."""
        backend = self._backend()
        settings = backend.settings
        try:
            logger.info(
                "Reading SLURM associations (one sacctmgr show assoc%s)",
                f", cluster {settings.cluster_name}" if settings.cluster_name else "",
            )
            snapshot = backend.client.snapshot()
            logger.info(
                "Reading Waldur offering %s and its periodic usage policy",
                self.offering.waldur_offering_uuid,
            )
            offering = self.reader.offering()
            policy = self.reader.policy()
            zone = usage_zone(self.configuration.timezone, settings.timezone)
            periodic = PeriodicService(backend.client, settings, timezone=zone)
            backend.offering_enforce_qos = offering.enforce_qos
            diagnoser = Diagnoser(
                settings,
                backend.client,
                periodic,
                policy,
                offering.units,
                soft_delete=bool(self.offering.backend_settings.get("soft_delete")),
                lever=backend.submit_lever(),
            )
            report = Report(offering, settings.cluster_name, "all" if self._all else "account")
            if self._all:
                resources = self.reader.resources()
                logger.info("Waldur lists %d resources of the offering", len(resources))
                pairs = [(r.backend_id, r) for r in resources if _valid(r.backend_id)]
                for skipped in sorted({r.backend_id for r in resources} - {n for n, _ in pairs}):
                    logger.warning("Skipping backend_id %r: not a valid account name", skipped)
                extras: set[str] = set()
                for name, item in pairs:
                    extras |= diagnoser.extra_users(snapshot.account(name), item)
                diagnoser.prefetch_defaults(extras)
                report.accounts = [diagnoser.diagnose(n, snapshot, r) for n, r in pairs]
                logger.info("Compared %d allocation accounts", len(report.accounts))
            else:
                account = str(self.params.account)
                resource = self.reader.resource_by_backend_id(account)
                logger.info(
                    "Waldur resource with backend_id %s: %s",
                    account,
                    "found" if resource is not None else "none",
                )
                if resource is None and snapshot.account(account) is None:
                    raise DiagnoseError(
                        f"no account {account} in SLURM and no resource with backend_id "
                        f"{account} in Waldur offering {offering.name!r}"
                    )
                report.accounts = [diagnoser.diagnose(account, snapshot, resource)]
        except SlurmCommandError as err:
            raise DiagnoseError(f"SLURM unreachable: {err}") from err
        except SlurmError as err:
            raise DiagnoseError(str(err)) from err
        return report

    @property
    def _all(self) -> bool:
        return self.params.all_accounts

    def fix(self, report: Report, confirm: Confirm) -> Report:
        """Apply the report's steps (after ``confirm`` unless ``--yes``), then check again."""
        steps = report.steps()
        if not steps:
            report.fix = FixResult()
            return report
        if not self.params.yes and not confirm(steps):
            report.fix = FixResult(declined=True)
            return report
        report.fix = apply_steps(self._backend().client, steps)
        report.after_fix = self.diagnose()
        return report


def apply_steps(client: AccountingClient, steps: Sequence[Step]) -> FixResult:
    """Make ``steps`` in order through the plugin's client; stop at the first failure."""
    applied: list[str] = []
    error = None
    for step in steps:
        try:
            client.execute(step.operation)
        except SlurmError as err:
            error = f"{step.line}: {err}"
            break
        applied.append(step.line)
    return FixResult(tuple(applied), error)


def _valid(name: str) -> bool:
    try:
        validation.account_name(name)
    except SlurmError:
        return False
    return True
