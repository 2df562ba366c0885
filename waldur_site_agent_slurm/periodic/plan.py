"""The plan for one periodic-settings message: desired settings against the association.

``plan_settings`` returns the actions, each with its reason, that one ``sacctmgr
modify`` carries out (only the fields that differ), the RawUsage reset when one is due,
and the values refused because they would block the account by accident. The same list
is logged, returned to Waldur and applied. ``unapplied`` compares the association read
back after the write with what the actions set: SLURM can answer "Modified" with exit 0
and store something else (24.11 stores cpu=0 for ``cpu=abc``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from waldur_site_agent_slurm.allocation import limits, qos
from waldur_site_agent_slurm.periodic.settings import (
    LIMIT_KEYS,
    RECORD_FIELDS,
    PeriodicSettings,
    Refusal,
)
from waldur_site_agent_slurm.slurm.parser import AssociationRecord


@dataclass(frozen=True)
class Action:
    """One field of the ``sacctmgr modify`` (or the RawUsage reset), with the reason."""

    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class ResetOutcome:
    """Whether a message asked for a RawUsage reset, whether it ran, and why (not)."""

    requested: bool
    performed: bool
    reason: str

    @classmethod
    def not_requested(cls) -> ResetOutcome:
        """The message did not ask for a reset."""
        return cls(requested=False, performed=False, reason="not requested")

    def as_dict(self) -> dict[str, bool | str]:
        """``{"requested", "performed", "reason"}`` for the result."""
        return {"requested": self.requested, "performed": self.performed, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    """What applying one message does to one account."""

    account: str
    changes: tuple[Action, ...] = ()
    reset: Action | None = None
    refused: tuple[Refusal, ...] = ()
    notes: tuple[str, ...] = ()

    def fields(self) -> dict[str, str]:
        """The ``set`` clause of the single modify command."""
        return {action.field: action.value for action in self.changes}

    def describe(self) -> list[str]:
        """Every decision, for the log and the result."""
        lines = [f"set {a.field}={a.value}: {a.reason}" for a in self.changes]
        if self.reset:
            lines.append(f"set RawUsage=0: {self.reset.reason}")
        lines += list(self.notes)
        lines += [f"refuse {item}" for item in self.refused]
        return lines


def _limit_actions(
    settings: PeriodicSettings, actual: AssociationRecord, allow_blocking: bool
) -> tuple[list[Action], list[Refusal], list[str]]:
    if settings.limit_type is None or not settings.limits:
        return [], [], []
    field_name = settings.limit_type
    current: dict[str, int] = getattr(actual, RECORD_FIELDS[field_name])
    desired: dict[str, int] = {}
    refused: list[Refusal] = []
    for entry in settings.limits:
        now = current.get(entry.tres)
        if entry.minutes == 0 and now != 0 and not allow_blocking:
            refused.append(
                Refusal(
                    f"{field_name} {entry.tres}=0 ({LIMIT_KEYS[field_name]}.{entry.key})",
                    f"would block {actual.account} (now {entry.tres}="
                    f"{'unset' if now is None else now}); set "
                    "periodic_limits.allow_blocking_limits to apply it",
                )
            )
            continue
        desired[entry.tres] = entry.minutes
    todo = limits.changes(current, desired)
    if not todo:
        return [], refused, [f"{field_name} {limits.format_setting(desired)}"] if desired else []
    reason = ", ".join(
        f"{tres} {current.get(tres, 'unset')} → {value}" for tres, value in sorted(todo.items())
    )
    return [Action(field_name, limits.format_setting(todo), reason)], refused, []


def plan_settings(
    settings: PeriodicSettings,
    actual: AssociationRecord,
    *,
    allow_blocking: bool,
    qos_target: qos.LevelTarget | None = None,
    reset: tuple[bool, str] = (False, ""),
) -> Plan:
    """Compare the desired settings with the account's association.

    Args:
        settings: the parsed message.
        actual: the account's association as SLURM has it now.
        allow_blocking: apply zero limits too (``allow_blocking_limits``).
        qos_target: the level the account should be on (its QoS, or its GrpSubmitJobs
            under QoS enforcement) and why; None leaves both alone.
        reset: (whether a RawUsage reset is due, why or why not).
    """
    changes: list[Action] = []
    notes = [f"skip {item}" for item in settings.skipped]
    if settings.fairshare is not None:
        if actual.fairshare != str(settings.fairshare):
            changes.append(
                Action(
                    "Fairshare",
                    str(settings.fairshare),
                    f"Fairshare {actual.fairshare or 'unset'} → {settings.fairshare}",
                )
            )
        else:
            notes.append(f"keep Fairshare {settings.fairshare}")
    limit_changes, refused, same = _limit_actions(settings, actual, allow_blocking)
    changes += limit_changes
    notes += [f"keep {item}" for item in same]
    if qos_target is not None:
        setting, wanted, why = qos_target.setting, qos_target.expected, qos_target.why
        fields = qos_target.fields(actual)
        if not fields:
            notes.append(f"keep {setting} {wanted}: {why}")
        else:
            reason = f"{setting} {qos_target.actual(actual)} → {wanted}: {why}"
            changes += [Action(name, value, reason) for name, value in fields.items()]
    due, why_reset = reset
    if not due and why_reset:
        notes.append(f"keep RawUsage: {why_reset}")
    return Plan(
        account=actual.account,
        changes=tuple(changes),
        reset=Action("RawUsage", "0", why_reset) if due else None,
        refused=tuple(refused),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Mismatch:
    """A field the plan wrote that SLURM does not hold afterwards."""

    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        """``GrpTRESMins cpu: expected 600, SLURM has 0``."""
        return f"{self.field}: expected {self.expected}, SLURM has {self.actual}"


def _written_tres(value: str) -> dict[str, int]:
    """``cpu=60,mem=-1`` as written by a plan (``-1`` clears a TRES)."""
    pairs = (item.partition("=") for item in value.split(",") if item)
    return {name: int(number) for name, _, number in pairs}


def unapplied(plan: Plan, record: AssociationRecord) -> list[Mismatch]:
    """The values of ``plan.changes`` that ``record`` (read after the write) lacks."""
    found = []
    for action in plan.changes:
        if action.field in RECORD_FIELDS:
            held: dict[str, int] = getattr(record, RECORD_FIELDS[action.field])
            for tres, value in sorted(_written_tres(action.value).items()):
                now = held.get(tres)
                if now != (None if value == limits.CLEAR else value):
                    found.append(
                        Mismatch(
                            f"{action.field} {tres}",
                            "unset" if value == limits.CLEAR else str(value),
                            "unset" if now is None else str(now),
                        )
                    )
            continue
        actual = _field_value(action.field, record)
        if actual is not None and not _same(action.field, action.value, actual):
            found.append(Mismatch(action.field, action.value, actual or "unset"))
    return found


def _field_value(field_name: str, record: AssociationRecord) -> str | None:
    """What ``record`` holds for a non-TRES field (None: a field the read does not show)."""
    return {
        "Fairshare": record.fairshare,
        "QOS": ",".join(record.qos),
        "DefaultQOS": record.default_qos,
    }.get(field_name)


def _same(field_name: str, written: str, actual: str) -> bool:
    if field_name == "QOS":  # SLURM prints a QoS list in its own order
        return set(written.split(",")) == set(actual.split(","))
    return written == actual


@dataclass
class Progress:
    """What one message has done so far, kept up to date so that a failure still tells."""

    commands: list[str] = field(default_factory=list)
    reset: ResetOutcome | None = None

    def reset_report(self, raw: object) -> dict[str, bool | str]:
        """``raw_usage_reset`` of the result: what the message asked and what happened."""
        if self.reset is not None:
            return self.reset.as_dict()
        asked = isinstance(raw, Mapping) and raw.get("reset_raw_usage") is True
        if asked:
            return ResetOutcome(True, False, "not performed: the message failed first").as_dict()
        return ResetOutcome.not_requested().as_dict()
