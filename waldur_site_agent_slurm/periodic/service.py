"""Periodic settings and Waldur's QoS flags, applied through one QoS decision.

``PeriodicService.apply`` carries out one ``apply_periodic_settings`` message (see
``periodic.message``): read the account's association once, plan, run a single
``sacctmgr modify`` with the fields that differ (and a RawUsage reset when one is due).
``PeriodicService.enforce_flags`` is what pause/downscale/restore call. Both put the
account on ``qos.decide(flags level, threshold level)``: the stricter of what Waldur's
flags and the last thresholds ask for, so membership sync's restore never undoes a
threshold level. A level is the account's QoS, or under QoS enforcement its
GrpSubmitJobs (``qos.LevelTarget``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime
from typing import Any

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation import qos
from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.allocation.usage import (
    TOTAL_KEY,
    UsageAccumulator,
    Window,
    build_report,
)
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.errors import SlurmCommandError
from waldur_site_agent_slurm.periodic import emulator_api
from waldur_site_agent_slurm.periodic.clock import Clock, make_clock
from waldur_site_agent_slurm.periodic.periods import Period, parse_period, period_of
from waldur_site_agent_slurm.periodic.plan import (
    Action,
    Plan,
    Progress,
    ResetOutcome,
    plan_settings,
    unapplied,
)
from waldur_site_agent_slurm.periodic.settings import (
    BILLING,
    PeriodicConfig,
    PeriodicSettings,
    PeriodicSettingsError,
    Refusal,
    threshold_usage,
    usable_thresholds,
)
from waldur_site_agent_slurm.periodic.state import (
    AccountState,
    LockedState,
    StateStore,
    ThresholdState,
)
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.parser import AssociationRecord

# The limit that ``qos_management.apply_limits_to_qos`` keeps on the allocation's QoS.
QOS_LIMIT = "GrpTRESMins"


class PeriodicService:
    """Periodic limits and QoS for one backend instance (one message or one cycle)."""

    def __init__(
        self,
        client: AccountingClient,
        settings: SlurmSettings,
        *,
        timezone: str = "UTC",
        clock: Clock | None = None,
        override: Mapping[str, Any] | None = None,
        lever: bool | None = False,
    ) -> None:
        """Resolve the ``periodic_limits`` configuration (with ``override`` on top).

        ``lever``: whether QoS enforcement applies (levels go to GrpSubmitJobs), None
        when only the offering's ``enforce_qos`` could tell (``qos.enforcement``).
        """
        self.client = client
        self.lever = lever
        self.settings = settings
        self.timezone = timezone
        self.config = PeriodicConfig.from_schema(settings.periodic, override)
        self.clock = clock or make_clock(
            settings.emulator_mode or self.config.emulator_mode, self.config.emulator_base_url
        )
        self.store = StateStore(self.config.state_dir, settings.cluster_name)

    @property
    def thresholds_on(self) -> bool:
        """Whether the last thresholds take part in the QoS decision."""
        return self.config.enabled and self.config.threshold_qos

    # ---- the QoS decision ----------------------------------------------------------------

    def _threshold_level(self, state: AccountState, now: datetime) -> QosLevel:
        """The level the last thresholds ask for; none once their period is over."""
        if state.threshold is None:
            return QosLevel.DEFAULT
        if parse_period(state.threshold.period).ended_before(now, self.timezone):
            return QosLevel.DEFAULT
        return state.threshold.level

    def level_target(
        self, account: str, level: QosLevel, why: str, *, lever: bool, fresh: bool = False
    ) -> qos.LevelTarget:
        """``level`` as the account's QoS, or under QoS enforcement its GrpSubmitJobs.

        Under the lever the account's GrpSubmitJobs is read (``fresh``: read again).
        """
        now = self.client.submit_limits(fresh=fresh).get(account) if lever else None
        return qos.target(level, why, self.settings, account=account, lever=lever, submit_now=now)

    def _set_level(self, record: AssociationRecord, target: qos.LevelTarget) -> None:
        """Put the account on ``target`` (no command when it already is)."""
        fields = target.fields(record)
        if not fields:
            return
        logger.info(
            "Setting %s of %s to %s (was %s): %s",
            target.setting,
            record.account,
            target.expected,
            target.actual(record),
            target.why,
        )
        try:
            self.client.modify_account(record.account, fields)
        except SlurmCommandError as err:
            # "Nothing modified" although the account was there: another agent process
            # (event_process beside membership_sync) may have set the level after this one
            # read it. A fresh read decides: on the level is success; off it, the fields
            # it still needs are written once more, and a second refusal is the error.
            if err.answer is not Answer.NO_MATCH:
                raise
            still = self._fields_now(record.account, target)
            if still is None:
                raise
            if not still:
                logger.info(
                    "%s of %s was already %s", target.setting, record.account, target.expected
                )
                return
            logger.warning(
                "SLURM modified nothing on %s; writing %s once more", record.account, still
            )
            self.client.modify_account(record.account, still)

    def _fields_now(self, account: str, target: qos.LevelTarget) -> dict[str, str] | None:
        """The fields a fresh read says the account still needs for ``target`` (None: gone)."""
        record = self.client.account_record(account, fresh=True)
        if record is None:
            return None
        if target.lever:
            now = self.client.submit_limits(fresh=True).get(account)
            target = replace(target, submit_now=now)
        return target.fields(record)

    def enforce_flags(self, resource_id: str, requested: QosLevel, *, lever: bool = False) -> bool:
        """Apply the level Waldur's flags ask for, never below the thresholds' level.

        ``lever``: QoS enforcement is on, so the level goes to the account's
        GrpSubmitJobs and its QoS is left alone.
        """
        account = validation.account_name(resource_id)
        state = self.client.snapshot().account(account)
        if state is None:
            raise BackendError(f"Account {account} does not exist; cannot set its QoS")
        if not self.thresholds_on:
            level, why = self.decide_level(requested, None)
            self._set_level(state.record, self.level_target(account, level, why, lever=lever))
            return True
        # Read, decide and write under the account's lock, so that a message applied
        # meanwhile is neither overwritten by an older decision nor hidden by a stale read.
        with self.store.locked(account) as held:
            record = self.client.account_record(account, fresh=True)
            if record is None:
                raise BackendError(f"Account {account} does not exist; cannot set its QoS")
            held.save(replace(held.state, flags=requested))
            level, why = self.decide_level(requested, held.state)
            self._set_level(record, self.level_target(account, level, why, lever=lever, fresh=True))
        return True

    def decide_level(
        self, requested: QosLevel, state: AccountState | None, now: datetime | None = None
    ) -> tuple[QosLevel, str]:
        """The level for Waldur's flags and, when thresholds count, the remembered state."""
        if state is None or not self.thresholds_on:
            return qos.decide(requested), f"Waldur asks for {requested.name}"
        by_threshold = self._threshold_level(state, now or self.clock())
        why = f"Waldur asks for {requested.name}, usage thresholds for {by_threshold.name}"
        return qos.decide(requested, by_threshold), why

    def expected_level(self, account: str, requested: QosLevel) -> tuple[QosLevel, str]:
        """What ``enforce_flags`` would choose for ``account`` now, reading state only."""
        state = self.store.read(account) if self.thresholds_on else None
        return self.decide_level(requested, state)

    # ---- periodic settings ---------------------------------------------------------------

    def current_period(self, settings: PeriodicSettings, now: datetime) -> Period:
        """The period a message belongs to.

        The successor of ``carryover_details.previous_period`` when Waldur names it (its
        format gives the granularity, and it follows Mastermind's calendar), else the
        configured ``period`` at ``now``. ``total`` in the configuration or in the
        message (``reason: no_previous_period``) always wins: one-off allocations never
        reset.
        """
        if self.config.period_kind == "total" or settings.one_off:
            return Period("total")
        if settings.previous_period is not None:
            current = settings.previous_period.next()
            if current.kind != self.config.period_kind:
                logger.warning(
                    "Waldur's period %s is a %s, periodic_limits.period says %s; using Waldur's",
                    current.id,
                    current.kind,
                    self.config.period_kind,
                )
            return current
        return period_of(self.config.period_kind, now, self.timezone)

    def _period_usage(self, account: str, period: Period, now: datetime) -> dict[str, float]:
        """The account's usage in the period so far, per component in Waldur units."""
        window = period.window(self.timezone, now)
        window = Window(window.start, max(window.start, min(window.end, now)))
        accumulator = UsageAccumulator(window, now).add_all(self.client.jobs(window, [account]))
        report = build_report(accumulator, [account], self.settings.components)
        return report[account][TOTAL_KEY]

    def _evaluate_thresholds(
        self, account: str, settings: PeriodicSettings, period: Period, now: datetime
    ) -> tuple[ThresholdState | None, tuple[Refusal, ...]]:
        threshold, grace, refused = usable_thresholds(settings, self.config.allow_blocking_limits)
        chosen = threshold or grace
        if chosen is None:
            return None, refused
        key = chosen.key
        usage = self._period_usage(account, period, now)
        minutes = threshold_usage(usage, key, self.config.weights)
        level = qos.from_thresholds(
            minutes,
            threshold.minutes if threshold else None,
            grace.minutes if grace else None,
        )
        logger.info(
            "Usage of %s in %s: %s %s-minutes (qos_threshold %s, grace_limit %s) → %s",
            account,
            period.id,
            minutes,
            key,
            threshold,
            grace,
            level.name,
        )
        return (
            ThresholdState(
                period=period.id,
                level=level,
                usage_minutes=str(minutes),
                qos_threshold=str(threshold) if threshold else None,
                grace_limit=str(grace) if grace else None,
            ),
            refused,
        )

    def _assumed_flags(
        self, state: AccountState, record: AssociationRecord, submit_now: int | None
    ) -> QosLevel:
        """What Waldur's flags ask for, as membership sync last recorded it.

        Before membership sync has recorded anything, the account's current QoS (under
        QoS enforcement: its GrpSubmitJobs) stands for Waldur's wish, unless the last
        thresholds explain it: a message must never lower a level it cannot attribute
        to itself.
        """
        if state.flags is not None:
            return state.flags
        current = qos.lever_level(submit_now) if self.lever else qos.level_of(record, self.settings)
        if state.threshold is not None and state.threshold.level >= current:
            return QosLevel.DEFAULT
        return current

    def _message_target(
        self,
        account: str,
        record: AssociationRecord,
        previous: AccountState,
        held: LockedState,
        now: datetime,
    ) -> tuple[qos.LevelTarget | None, tuple[str, ...]]:
        """The level a message puts the account on: QoS, or GrpSubmitJobs under enforcement.

        When only the offering's ``enforce_qos`` says whether enforcement applies (the
        event process does not read the offering), the message sets neither: the stored
        threshold level reaches SLURM at membership sync's next pause/downscale/restore,
        which knows the offering and combines the two.
        """
        if self.lever is None:
            note = (
                "leave QoS and GrpSubmitJobs: whether QoS enforcement applies depends on "
                "the offering's enforce_qos, which membership sync reads; it applies the "
                "threshold level"
            )
            return None, (note,)
        submit_now = self.client.submit_limits(fresh=True).get(account) if self.lever else None
        flags = self._assumed_flags(previous, record, submit_now)
        level, why = self.decide_level(flags, held.state, now)
        target = qos.target(
            level, why, self.settings, account=account, lever=self.lever, submit_now=submit_now
        )
        return target, ()

    @staticmethod
    def _reset_decision(
        settings: PeriodicSettings, period: Period, state: AccountState
    ) -> tuple[bool, str]:
        if not settings.reset_raw_usage:
            return False, ""
        if period.is_total:
            return False, "never reset for a one-off (total) allocation"
        if state.reset_done(period.id):
            return False, f"already reset for period {period.id}"
        return True, f"first reset request of period {period.id}"

    @staticmethod
    def _reset_outcome(settings: PeriodicSettings, decision: tuple[bool, str]) -> ResetOutcome:
        """The outcome until the reset has run: a due reset stays unperformed on failure."""
        due, why = decision
        if not settings.reset_raw_usage:
            return ResetOutcome.not_requested()
        if due:
            return ResetOutcome(True, False, f"{why}: not performed, the message failed first")
        return ResetOutcome(True, False, why)

    def _log_received(self, account: str, settings: PeriodicSettings) -> None:
        if settings.without_tres:
            logger.warning(
                "Periodic limits of %s for components without a SLURM TRES not applied: %s "
                "(set backend_components.<key>.tres_name to limit them)",
                account,
                ", ".join(settings.without_tres),
            )
        if settings.ignored_keys:
            logger.warning(
                "Ignoring unknown periodic settings keys for %s: %s",
                account,
                ", ".join(settings.ignored_keys),
            )
        if settings.carryover_details is not None:
            logger.info(
                "Carry-over for %s (computed by Waldur, applied as sent): %s",
                account,
                dict(settings.carryover_details),
            )
        if self.config.fairshare_decay_half_life is not None:
            logger.debug(
                "fairshare_decay_half_life %s is informational: Waldur computes carry-over",
                self.config.fairshare_decay_half_life,
            )
        billing = next((e for e in settings.limits if e.key == BILLING), None)
        grace = settings.grace_limit
        if billing and grace and grace.key == BILLING and abs(billing.sent - grace.minutes) > 1:
            logger.warning(
                "Billing limit %s of %s differs from grace_limit %s; applied as sent "
                "(grace is never added here)",
                billing.sent,
                account,
                grace,
            )

    def apply(
        self, account: str, settings: PeriodicSettings, progress: Progress
    ) -> tuple[Plan, Period, tuple[Refusal, ...]]:
        """Plan and apply validated settings; ``progress`` records what ran as it runs."""
        executed = progress.commands
        self._log_received(account, settings)
        now = self.clock()
        period = self.current_period(settings, now)
        needs_state = settings.reset_raw_usage or self.thresholds_on
        if needs_state:
            self.store.ensure_writable()
        held_context = self.store.locked(account) if needs_state else nullcontext(None)
        with held_context as held:
            # Read under the lock: membership sync may have set the QoS a moment ago.
            record = self.client.account_record(account, fresh=held is not None)
            if record is None:
                raise PeriodicSettingsError(f"Account {account} does not exist in SLURM")
            record = self._limit_view(record)
            previous = held.state if held is not None else AccountState()
            qos_target = None
            refused: tuple[Refusal, ...] = ()
            notes: tuple[str, ...] = ()
            if held is not None and self.thresholds_on:
                evaluated, refused = self._evaluate_thresholds(account, settings, period, now)
                if evaluated is not None:
                    held.save(replace(held.state, threshold=evaluated))
                qos_target, notes = self._message_target(account, record, previous, held, now)
            decision = self._reset_decision(settings, period, previous)
            progress.reset = self._reset_outcome(settings, decision)
            plan = plan_settings(
                settings,
                record,
                allow_blocking=self.config.allow_blocking_limits,
                qos_target=qos_target,
                reset=decision,
            )
            plan = replace(plan, notes=(*plan.notes, *notes))
            for line in plan.describe():
                logger.info("Periodic settings for %s (%s): %s", account, period.id, line)
            if plan.changes:
                executed += self._write(account, plan)
                self._check_written(account, plan)
            if plan.reset is not None and held is not None:
                executed.append(self.client.modify_account(account, {"RawUsage": "0"}))
                if self.limits_on_qos:  # the QoS's usage counts against its GrpTRESMins
                    executed.append(self.client.reset_qos_usage(account))
                held.save(held.state.with_reset(period.id))
                progress.reset = ResetOutcome(True, True, plan.reset.reason)
        return plan, period, refused

    @property
    def limits_on_qos(self) -> bool:
        """Whether GrpTRESMins live on the allocation's own QoS (``apply_limits_to_qos``)."""
        own = self.settings.managed_qos
        return own is not None and own.limits_on_qos

    def _limit_view(self, record: AssociationRecord) -> AssociationRecord:
        """The association, its GrpTRESMins read from the allocation's QoS when they live there."""
        if not self.limits_on_qos:
            return record
        found = self.client.qos_record(record.account)
        if found is None:
            raise PeriodicSettingsError(
                f"QoS {record.account} does not exist, and qos_management.apply_limits_to_qos "
                "keeps the allocation's GrpTRESMins there: run waldur_site_diagnose_slurm_account "
                f"{record.account} --fix to create it"
            )
        return replace(record, grp_tres_mins=dict(found.grp_tres_mins))

    def _write(self, account: str, plan: Plan) -> list[str]:
        """Run the plan's ``set`` clause: one ``modify account``, GrpTRESMins on the QoS.

        Returns the command lines that ran.
        """
        fields = plan.fields()
        on_qos = {}
        if self.limits_on_qos and QOS_LIMIT in fields:
            on_qos[QOS_LIMIT] = fields.pop(QOS_LIMIT)
        executed = []
        if fields:
            executed.append(self.client.modify_account(account, fields))
        if on_qos:
            executed.append(self.client.modify_qos(account, on_qos))
        return executed

    def _check_written(self, account: str, plan: Plan) -> None:
        """Read the association back once and fail when SLURM holds other values.

        sacctmgr can report success and store something else (22.05 and 24.11 answer
        ``GrpTRESMins=cpu=abc`` with "Modified", exit 0, and store cpu=0).
        """
        record = self.client.account_record(account, fresh=True)
        if record is None:
            raise PeriodicSettingsError(f"Account {account} vanished from SLURM while applied")
        wrong = unapplied(plan, self._limit_view(record))
        if wrong:
            raise PeriodicSettingsError(
                f"SLURM did not store the settings written to {account}: "
                + "; ".join(str(item) for item in wrong)
            )

    def apply_on_emulator(
        self, account: str, settings: PeriodicSettings, progress: Progress
    ) -> tuple[Plan, Period, tuple[Refusal, ...]]:
        """Send validated settings to slurm-emulator's API in one request (emulator_mode).

        The same conversion, refusals and once-per-period RawUsage guard as on a cluster;
        the emulator creates a missing account itself. Usage thresholds are passed on as
        ``qos_threshold``, not evaluated here.
        """
        base_url = self.config.emulator_base_url
        if base_url is None:  # checked by apply_settings
            raise PeriodicSettingsError("periodic_limits.emulator_base_url is not set")
        self._log_received(account, settings)
        now = self.clock()
        period = self.current_period(settings, now)
        threshold, grace, refused = usable_thresholds(settings, self.config.allow_blocking_limits)
        if not self.config.allow_blocking_limits:
            settings, zeros = emulator_api.zero_limit_refusals(settings)
            refused = (*refused, *zeros)
        if settings.reset_raw_usage:
            self.store.ensure_writable()
        held_context = self.store.locked(account) if settings.reset_raw_usage else nullcontext(None)
        with held_context as held:
            previous = held.state if held is not None else AccountState()
            decision = self._reset_decision(settings, period, previous)
            progress.reset = self._reset_outcome(settings, decision)
            body = emulator_api.payload(
                account,
                settings,
                reset=decision[0],
                threshold=threshold or grace,
                qos_names=(
                    qos.qos_name(QosLevel.DEFAULT, self.settings),
                    qos.qos_name(QosLevel.DOWNSCALED, self.settings),
                ),
                weights=self.config.weights,
                cluster=self.settings.cluster_name,
            )
            emulator_api.post(base_url, body)
            progress.commands.append(emulator_api.command_line(base_url, body))
            if decision[0] and held is not None:
                held.save(held.state.with_reset(period.id))
                progress.reset = ResetOutcome(True, True, decision[1])
        notes = [f"skip {item}" for item in settings.skipped]
        if settings.reset_raw_usage and not decision[0]:
            notes.append(f"keep RawUsage: {decision[1]}")
        plan = Plan(
            account=account,
            reset=Action("RawUsage", "0", decision[1]) if decision[0] else None,
            refused=(),
            notes=(f"sent to slurm-emulator: {emulator_api.command_line(base_url, body)}", *notes),
        )
        return plan, period, refused
