"""Expected against actual for one allocation, and the steps that close the gap.

Every expectation comes from the code that makes it true in the agent:

- the account and its parent from ``accounts`` (what order processing creates);
- ``GrpTRESMins`` from ``limits.requested`` and ``limits.to_tres_minutes`` (create and
  update orders), compared with ``limits.changes``;
- with a periodic policy that this agent applies, the policy's message rebuilt by
  ``diagnose.policy`` and put through ``periodic.parse_settings`` and
  ``periodic_plan.plan_settings`` (fairshare, the policy's limit type, billing, grace);
- the QoS from Waldur's paused/downscaled flags through ``PeriodicService.
  expected_level`` and ``level_target`` (the decision and the fields pause/downscale/
  restore apply), in the same plan; under QoS enforcement the level is the account's
  ``GrpSubmitJobs`` and the QoS is not compared;
- with ``qos_management``, the allocation's own QoS and its options from ``own_qos``
  (what order processing creates and attaches); when QoS are swapped, the own QoS (with
  ``additional_qos``) is the default level the QoS check expects; with
  ``apply_limits_to_qos`` every GrpTRESMins expectation is compared with, and set on,
  the allocation's QoS;
- the users from ``membership`` (team offering users in state OK; additions and
  removals as membership sync makes them).

The plan's ``set`` clause is one ``sacctmgr modify account``, exactly as the agent would
run it; ``diagnose.steps`` turns it and the account and user changes into the ``Step``
list that is printed, returned in JSON and applied by ``--fix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from waldur_site_agent_slurm.allocation import accounts, limits, membership, own_qos, prepaid, qos
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.diagnose.model import (
    AccountDiagnosis,
    Check,
    Conversion,
    PolicyView,
    ResourceView,
    Step,
)
from waldur_site_agent_slurm.diagnose.policy import carries_over, mastermind_settings
from waldur_site_agent_slurm.diagnose.steps import StepBuilder
from waldur_site_agent_slurm.errors import InvalidValueError
from waldur_site_agent_slurm.periodic.plan import Action, Plan, plan_settings
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.periodic.settings import (
    BILLING,
    MINUTES_PER_HOUR,
    RECORD_FIELDS,
    LimitEntry,
    PeriodicSettings,
    PeriodicSettingsError,
    parse_settings,
)
from waldur_site_agent_slurm.slurm.accounting import (
    AccountingClient,
    AccountState,
    AssociationSnapshot,
)
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, parse_tres

GRP_TRES_MINS = "GrpTRESMins"
GONE_STATES = frozenset({"Terminated"})


def blank_record(account: str, parent: str) -> AssociationRecord:
    """The association of an account that does not exist yet (nothing set)."""
    return AssociationRecord(account, "", "", parent, "", {}, {}, {}, (), "")


class Diagnoser:
    """Diagnoses allocations of one offering against one association snapshot."""

    def __init__(
        self,
        settings: SlurmSettings,
        client: AccountingClient,
        periodic: PeriodicService,
        policy: PolicyView | None,
        units: Mapping[str, str],
        *,
        soft_delete: bool = False,
        lever: bool = False,
    ) -> None:
        """Use ``client`` for reads and command lines, ``periodic`` for QoS decisions.

        ``lever``: QoS enforcement applies, so the level is expected on GrpSubmitJobs.
        """
        self.settings = settings
        self.lever = lever
        self.client = client
        self.periodic = periodic
        self.policy = policy
        self.units = units
        self.soft_delete = soft_delete
        self.defaults: dict[str, str] = {}
        self.steps = StepBuilder(settings, client)
        # Project accounts whose move is already planned (several allocations share one).
        self.moved_projects: set[str] = set()
        # Every QoS with its options, read once when qos_management is on.
        self._qos_table: dict[str, own_qos.QosRecord] | None = None

    @property
    def policy_applied(self) -> bool:
        """Whether this agent applies the policy's settings (periodic_limits.enabled)."""
        return self.policy is not None and self.periodic.config.enabled

    # ---- users ---------------------------------------------------------------------------

    @staticmethod
    def expected_users(resource: ResourceView) -> set[str]:
        """Users membership sync puts on the allocation."""
        if resource.restrict_member_access:
            return set()
        states = {m.username: m.state for m in resource.team}
        return membership.wanted_users(states, states)

    @staticmethod
    def extra_users(state: AccountState | None, resource: ResourceView | None) -> set[str]:
        """Associated users membership sync would remove (not in the team)."""
        if state is None or resource is None:
            return set()
        team = set() if resource.restrict_member_access else {m.username for m in resource.team}
        return set(state.users) - team

    def prefetch_defaults(self, users: set[str]) -> None:
        """Read the default accounts of ``users`` in one command (for removal steps)."""
        wanted = sorted(users - set(self.defaults))
        if wanted:
            self.defaults.update(self.client.user_defaults(wanted))

    # ---- the whole account -----------------------------------------------------------------

    def diagnose(
        self, account: str, snapshot: AssociationSnapshot, resource: ResourceView | None
    ) -> AccountDiagnosis:
        """Compare ``account`` with what ``resource`` (and the policy) ask for."""
        state = snapshot.account(account)
        base = AccountDiagnosis(
            account, state, resource, self.policy if resource else None, self.policy_applied
        )
        if resource is None:
            check = Check("waldur resource", "a resource with this backend_id", "none", False)
            note = (
                "no Waldur resource of this offering has this backend_id; nothing to compare "
                "with, and nothing is removed automatically"
            )
            return replace(base, checks=(check,), notes=(note,))
        if resource.state in GONE_STATES:
            return self._gone(base, state)
        notes: list[str] = []
        if resource.state != "OK":
            notes.append(f"the Waldur resource is in state {resource.state}")
        checks: list[Check] = []
        steps: list[Step] = []
        self._project(snapshot, resource, checks, steps, notes)
        parent = accounts.allocation_parent(self.settings, resource.project_slug)
        if state is None:
            checks.append(Check("account", "exists", "missing", False))
            steps += self.steps.create(account, snapshot, resource)
            record = blank_record(account, parent)
        else:
            checks.append(Check("account", "exists", "exists", True))
            record = state.record
            checks.append(Check("parent", parent, record.parent, record.parent == parent))
            if record.parent != parent:
                steps += self.steps.move(account, parent, snapshot, resource)
        limits_record = self._limits_view(account, record, notes)
        fields, field_checks, conversions = self._settings(account, limits_record, resource, notes)
        checks += field_checks
        on_qos = None
        if limits_record is not record:
            on_qos = fields.pop(GRP_TRES_MINS, None)
            fields.update(self._account_limits_left(record, checks))
        fields.update(self._own_qos(account, record, checks, steps))
        if on_qos is not None:
            steps.append(self.steps.own_qos(account, {GRP_TRES_MINS: on_qos}, exists=True))
        if fields:
            steps.append(self.steps.modify(account, fields))
        checks_users, user_steps = self._users(account, state, snapshot, resource)
        checks += checks_users
        steps += user_steps
        return replace(
            base,
            checks=tuple(checks),
            conversions=tuple(conversions),
            steps=tuple(steps),
            notes=tuple(notes),
        )

    def _project(
        self,
        snapshot: AssociationSnapshot,
        resource: ResourceView,
        checks: list[Check],
        steps: list[Step],
        notes: list[str],
    ) -> None:
        """The project account's own parent: ``parent_account`` (flat) or its customer.

        A missing project account is left to the allocation's steps, which add it. A
        project is moved only below an account that exists or that a step adds first,
        so a fix never leaves it at the root.
        """
        project = accounts.project_account(self.settings, resource.project_slug)
        state = snapshot.account(project)
        if state is None:
            return
        wanted = accounts.project_parent(self.settings, resource.customer_slug)
        ok = state.parent == wanted
        checks.append(Check("project parent", wanted, state.parent or "(top)", ok))
        if ok or project in self.moved_projects:
            return
        move = self.steps.move_project(project, wanted, snapshot, resource)
        if not move:
            notes.append(
                f"{project} cannot be moved below {wanted}: {wanted} does not exist "
                f"(sacctmgr add account {wanted})"
            )
            return
        self.moved_projects.add(project)
        steps += move

    def _gone(self, base: AccountDiagnosis, state: AccountState | None) -> AccountDiagnosis:
        """A Terminated resource: its account is gone (or kept, emptied, with soft_delete)."""
        if state is None:
            return replace(base, checks=(Check("account", "removed", "removed", True),))
        if self.soft_delete:
            note = "the resource is Terminated; soft_delete keeps its account"
            return replace(base, checks=(Check("account", "kept", "kept", True),), notes=(note,))
        check = Check("account", "removed (resource Terminated)", "exists", False)
        note = "the resource is Terminated in Waldur; remove the account by hand if unused"
        return replace(base, checks=(check,), notes=(note,))

    # ---- the allocation's own QoS (qos_management) ------------------------------------------

    def _qos_of(self, account: str) -> own_qos.QosRecord | None:
        """The allocation's QoS as SLURM has it (every QoS read once per run)."""
        if self._qos_table is None:
            self._qos_table = self.client.qos_records()
        return self._qos_table.get(account)

    def _limits_view(
        self, account: str, record: AssociationRecord, notes: list[str]
    ) -> AssociationRecord:
        """``record``, its GrpTRESMins those of the allocation's QoS under apply_limits_to_qos."""
        options = self.settings.managed_qos
        if options is None or not options.limits_on_qos:
            return record
        notes.append(
            "qos_management.apply_limits_to_qos: GrpTRESMins are compared with and set on "
            f"the QoS {account}"
        )
        found = self._qos_of(account)
        return replace(record, grp_tres_mins=dict(found.grp_tres_mins) if found else {})

    @staticmethod
    def _account_limits_left(record: AssociationRecord, checks: list[Check]) -> dict[str, str]:
        """Under apply_limits_to_qos the account holds no GrpTRESMins: the fields clearing any.

        One left from before the switch would limit the allocation a second time.
        """
        left = record.grp_tres_mins
        actual = limits.format_setting(left) if left else "unset"
        checks.append(Check("account GrpTRESMins", "unset (on the QoS)", actual, not left))
        if not left:
            return {}
        return {GRP_TRES_MINS: limits.format_setting(dict.fromkeys(left, limits.CLEAR))}

    def _own_qos(
        self, account: str, record: AssociationRecord, checks: list[Check], steps: list[Step]
    ) -> dict[str, str]:
        """Its QoS with the configured options (a step adds or corrects it) and attached.

        Returns the account fields that attach it, for the one ``modify account``. When
        QoS are swapped (no lever), the level's QoS check covers the account's QoS list.
        """
        options = self.settings.managed_qos
        if options is None:
            return {}
        found = self._qos_of(account)
        wanted = options.settings()
        expected = " ".join(f"{k}={v}" for k, v in wanted.items())
        if found is None:
            checks.append(Check("own QoS", expected, "missing", False))
            steps.append(self.steps.own_qos(account, wanted, exists=False))
        else:
            todo = own_qos.differences(options, found)
            actual = " ".join(f"{k}={v}" for k, v in own_qos.shown(found).items())
            checks.append(Check("own QoS", expected, actual, not todo))
            if todo:
                steps.append(self.steps.own_qos(account, todo, exists=True))
        if not self.lever:
            return {}
        fields = own_qos.attach_fields(options, account, record.qos, record.default_qos)
        attached = ",".join(options.attached(account))
        listed = ",".join(record.qos) or "(none)"
        actual = f"QOS={listed}, DefaultQOS={record.default_qos or '(none)'}"
        expected = f"QOS has {attached}, DefaultQOS={account}"
        checks.append(Check("QoS attached", expected, actual, not fields))
        return fields

    # ---- limits, fairshare, QoS ---------------------------------------------------------------

    def _settings(
        self, account: str, record: AssociationRecord, resource: ResourceView, notes: list[str]
    ) -> tuple[dict[str, str], list[Check], list[Conversion]]:
        """One plan for limits, fairshare and QoS: the fields to set, checks, conversions."""
        checks: list[Check] = []
        conversions: list[Conversion] = []
        periodic, ranges = self._periodic(resource, record, notes, checks)
        fields: dict[str, str] = {}
        if periodic is None or periodic.limit_type != GRP_TRES_MINS:
            created = self._created_limits(resource, record, checks, conversions, notes)
            if created is not None:
                fields[created.field] = created.value
        flags = qos.from_flags(paused=resource.paused, downscaled=resource.downscaled)
        level, why = self.periodic.expected_level(account, flags)
        target = self.periodic.level_target(account, level, why, lever=self.lever)
        name = qos.GRP_SUBMIT_JOBS if self.lever else "qos"
        ok = not target.fields(record)
        checks.insert(0, Check(name, target.expected, target.actual(record), ok))
        if self.lever:
            notes.append(
                "QoS enforcement: pause and downscale are the account's GrpSubmitJobs; its "
                f"QoS ({qos.current_qos(record) or 'none'}) is left as it is"
            )
        plan = plan_settings(
            periodic or PeriodicSettings(),
            record,
            allow_blocking=self.periodic.config.allow_blocking_limits,
            qos_target=target,
        )
        fields.update(plan.fields())
        notes += [f"not applied by the agent: {item}" for item in plan.refused]
        if periodic is not None:
            checks += self._periodic_checks(periodic, ranges, record, plan, conversions)
        return fields, checks, conversions

    def _created_limits(
        self,
        resource: ResourceView,
        record: AssociationRecord,
        checks: list[Check],
        conversions: list[Conversion],
        notes: list[str],
    ) -> Action | None:
        """GrpTRESMins as order processing sets it: Waldur limits × factor (× months)."""
        components = self.settings.components
        zone = self.periodic.timezone
        months = prepaid.resource_months(resource.created, resource.end_date, zone)
        try:
            desired, amounts = limits.to_tres_minutes(
                limits.requested(resource.limits, components),
                components,
                self.client.tres_names(),
                months,
            )
        except InvalidValueError as err:
            notes.append(f"limits cannot be applied: {err}")
            checks.append(Check(GRP_TRES_MINS, "valid Waldur limits", str(err), False))
            return None
        current = record.grp_tres_mins
        for key, amount in amounts.items():
            comp = components[key]
            paid = months if comp.prepaid else 1
            for tres, factor in ((t.tres, t.factor) for t in comp.targets if t.tres in desired):
                conversion = Conversion(
                    key, amount, self._unit(key), GRP_TRES_MINS, tres, desired[tres], factor * paid
                )
                conversions.append(conversion)
                actual = current.get(tres)
                checks.append(
                    Check(
                        f"{GRP_TRES_MINS}[{tres}]",
                        str(desired[tres]),
                        "unset" if actual is None else str(actual),
                        actual == desired[tres],
                        str(conversion),
                    )
                )
        todo = limits.changes(current, desired)
        if not todo:
            return None
        return Action(GRP_TRES_MINS, limits.format_setting(todo), "limits differ")

    def _unit(self, key: str) -> str:
        comp = self.settings.components.get(key)
        return self.units.get(key) or (comp.measured_unit if comp else "") or "units"

    def _periodic(
        self,
        resource: ResourceView,
        record: AssociationRecord,
        notes: list[str],
        checks: list[Check],
    ) -> tuple[PeriodicSettings | None, dict[str, tuple[int, int]]]:
        """The policy's settings with accepted carry-over values; the range of each TRES."""
        policy = self.policy
        if policy is None:
            return None, {}
        if not self.policy_applied:
            notes.append(
                "a periodic usage policy exists but periodic_limits.enabled is false: this "
                "agent does not apply its settings"
            )
            return None, {}
        config = self.periodic.config
        components = self.settings.components
        try:
            low = parse_settings(
                mastermind_settings(policy, resource.limits, with_carryover=False),
                config,
                components,
            )
            high = parse_settings(
                mastermind_settings(policy, resource.limits, with_carryover=carries_over(policy)),
                config,
                components,
            )
        except PeriodicSettingsError as err:
            checks.append(Check("periodic settings", "accepted by the agent", str(err), False))
            return None, {}
        notes += [f"skipped: {item}" for item in low.skipped]
        if low.limit_type is not None:
            current = getattr(record, RECORD_FIELDS[low.limit_type])
        else:
            current = {}
        ranges: dict[str, tuple[int, int]] = {}
        entries = []
        for entry in low.limits:
            top = next((e.minutes for e in high.limits if e.tres == entry.tres), entry.minutes)
            span = (min(entry.minutes, top), max(entry.minutes, top))
            ranges[entry.tres] = span
            actual = current.get(entry.tres)
            within = actual is not None and span[0] <= actual <= span[1]
            entries.append(
                replace(entry, minutes=actual) if within and actual is not None else entry
            )
        fairshare = low.fairshare
        if low.fairshare is not None and high.fairshare is not None:
            span = (low.fairshare, high.fairshare)
            ranges["Fairshare"] = span
            if record.fairshare.isdigit() and span[0] <= int(record.fairshare) <= span[1]:
                fairshare = int(record.fairshare)
        if carries_over(policy):
            notes.append(
                f"carry-over up to {policy.carryover_factor}% is accepted: Waldur computes it "
                "from the previous period's usage"
            )
        return replace(low, limits=tuple(entries), fairshare=fairshare), ranges

    def _periodic_checks(
        self,
        periodic: PeriodicSettings,
        ranges: Mapping[str, tuple[int, int]],
        record: AssociationRecord,
        plan: Plan,
        conversions: list[Conversion],
    ) -> list[Check]:
        """Fairshare and each limit of the policy against the plan's changes."""
        checks: list[Check] = []
        if periodic.fairshare is not None:
            low, high = ranges.get("Fairshare", (periodic.fairshare, periodic.fairshare))
            ok = not any(a.field == "Fairshare" for a in plan.changes)
            checks.append(Check("Fairshare", _span(low, high), record.fairshare or "unset", ok))
        field = periodic.limit_type
        if field is None:
            return checks
        current = getattr(record, RECORD_FIELDS[field])
        changed: set[str] = set()
        for action in plan.changes:
            if action.field == field:
                changed |= set(parse_tres(action.value))
        for entry in periodic.limits:
            low, high = ranges[entry.tres]
            actual = current.get(entry.tres)
            ok = entry.tres not in changed
            conversion = self._policy_conversion(entry, field, low)
            conversions.append(conversion)
            checks.append(
                Check(
                    f"{field}[{entry.tres}]",
                    _span(low, high),
                    "unset" if actual is None else str(actual),
                    ok,
                    str(conversion),
                )
            )
        return checks

    def _policy_conversion(self, entry: LimitEntry, field: str, minutes: int) -> Conversion:
        """A policy entry: Waldur units × 60 (grace included) → TRES-minutes."""
        comp = self.settings.components.get(entry.key)
        if entry.key == BILLING or comp is None:
            unit, factor = "billing-hours", float(MINUTES_PER_HOUR)
        else:
            unit, factor = self._unit(entry.key) + " (grace included)", comp.unit_factor
        hours = entry.sent / MINUTES_PER_HOUR
        return Conversion(entry.key, hours, unit, field, entry.tres, minutes, factor, True)

    # ---- users ---------------------------------------------------------------------------------

    def _users(
        self,
        account: str,
        state: AccountState | None,
        snapshot: AssociationSnapshot,
        resource: ResourceView,
    ) -> tuple[list[Check], list[Step]]:
        expected = self.expected_users(resource)
        actual = set(state.users) if state else set()
        missing = sorted(expected - actual)
        extra = sorted(self.extra_users(state, resource))
        problems = []
        if missing:
            problems.append("missing " + ",".join(missing))
        if extra:
            problems.append("extra " + ",".join(extra))
        check = Check(
            "users",
            ",".join(sorted(expected)) or "(none)",
            ",".join(sorted(actual)) or "(none)",
            not problems,
            "; ".join(problems),
        )
        steps = self.steps.add_users(account, missing, snapshot)
        if extra:
            self.prefetch_defaults(set(extra))
        steps += self.steps.remove_users(account, extra, snapshot, self.defaults)
        return [check], steps


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}..{high}"
