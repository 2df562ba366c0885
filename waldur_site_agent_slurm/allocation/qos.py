"""The QoS decision: which QoS level an allocation should be on, and how it is applied.

Two inputs ask for a level: Waldur's resource flags (paused/downscaled, applied by
membership sync) and, when a site enables it, the usage thresholds of the last periodic
settings. The decision is the strictest level any input asks for, so one input can
never undo another and the two never flap. A level is applied by swapping the
account's QoS, or, under QoS enforcement or ``qos_management.skip_qos_swap``, through the
account's ``GrpSubmitJobs``. With ``qos_management`` and QoS swapped, the default level
is the allocation's own QoS (with ``additional_qos``) instead of ``qos_default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import AssociationRecord


class QosLevel(IntEnum):
    """QoS levels, ordered from least to most restrictive."""

    DEFAULT = 0
    DOWNSCALED = 1
    PAUSED = 2


def decide(*requested: QosLevel) -> QosLevel:
    """The strictest of the requested levels (DEFAULT when nothing is requested)."""
    return max(requested, default=QosLevel.DEFAULT)


def from_flags(*, paused: bool, downscaled: bool) -> QosLevel:
    """The level Waldur's resource flags ask for; paused wins over downscaled."""
    if paused:
        return QosLevel.PAUSED
    if downscaled:
        return QosLevel.DOWNSCALED
    return QosLevel.DEFAULT


def from_thresholds(usage: Decimal | float, threshold: int | None, grace: int | None) -> QosLevel:
    """The level usage asks for: PAUSED at the grace limit, DOWNSCALED at the threshold.

    Mastermind's rule: ``usage ≥ (1 + grace_ratio) × allocation`` pauses and
    ``usage ≥ allocation`` downscales (its 80 % mark only notifies). ``None`` is a
    threshold the settings did not carry.
    """
    if grace is not None and usage >= grace:
        return QosLevel.PAUSED
    if threshold is not None and usage >= threshold:
        return QosLevel.DOWNSCALED
    return QosLevel.DEFAULT


def qos_name(level: QosLevel, settings: SlurmSettings) -> str:
    """The configured SLURM QoS name of a level."""
    return {
        QosLevel.DEFAULT: settings.qos_default,
        QosLevel.DOWNSCALED: settings.qos_downscaled,
        QosLevel.PAUSED: settings.qos_paused,
    }[level]


def current_qos(record: AssociationRecord) -> str:
    """The QoS an account's jobs get: its default QoS, else its QoS list."""
    return record.default_qos or ",".join(record.qos)


def level_of(record: AssociationRecord, settings: SlurmSettings) -> QosLevel:
    """The level an account is on now (DEFAULT for any QoS that is not a managed one)."""
    name = current_qos(record)
    if name == settings.qos_paused:
        return QosLevel.PAUSED
    if name == settings.qos_downscaled:
        return QosLevel.DOWNSCALED
    return QosLevel.DEFAULT


def qos_fields(
    record: AssociationRecord, target: str, beside: tuple[str, ...] = ()
) -> dict[str, str]:
    """The fields to set so the account lists ``target`` (and ``beside``) only, defaulting to it.

    {} when it already does. ``beside``: QoS listed next to the default (the allocation's
    own QoS with ``qos_management.additional_qos``).
    """
    wanted = (target, *beside)
    # A single-QoS list with no explicit default already means that QoS.
    defaults = (target,) if beside else ("", target)
    if set(record.qos) == set(wanted) and record.default_qos in defaults:
        return {}
    return {"QOS": ",".join(wanted), "DefaultQOS": target}


# ---- QoS enforcement: the submit lever ------------------------------------------------------
#
# Under QoS enforcement users' associations carry the resource's own QoS, so pausing by
# swapping the account's QoS would not reach them; with ``qos_management.skip_qos_swap``
# the allocation keeps its own QoS. The lever is the account's
# GrpSubmitJobs instead: 0 refuses every new job of the account (paused, downscaled),
# -1 clears the limit (restored). Running jobs are left to finish.

GRP_SUBMIT_JOBS = "GrpSubmitJobs"
SUBMIT_BLOCKED = 0
SUBMIT_CLEAR = "-1"


def enforcement(settings: SlurmSettings, offering_enforce_qos: bool | None) -> bool | None:
    """Whether QoS enforcement applies to an offering; None when only the offering can tell.

    ``qos_enforcement_enabled`` first; then ``enforce_offering_qos``, or the offering's
    ``enforce_qos`` plugin option when that is unset. None: enforcement follows the
    offering's option and nobody told this backend its value (the event process builds
    backends without reading the offering).
    """
    if not settings.qos_enforcement_enabled:
        return False
    if settings.enforce_offering_qos is not None:
        return settings.enforce_offering_qos
    return offering_enforce_qos if offering_enforce_qos is None else bool(offering_enforce_qos)


def enforced(settings: SlurmSettings, offering_enforce_qos: bool | None) -> bool:
    """Whether QoS enforcement applies to an offering (an unknown offering option: no)."""
    return bool(enforcement(settings, offering_enforce_qos))


def lever(settings: SlurmSettings, offering_enforce_qos: bool | None) -> bool | None:
    """Whether levels go to the account's GrpSubmitJobs instead of its QoS.

    ``qos_management.skip_qos_swap`` always; else under QoS enforcement (``enforcement``:
    None when only the offering can tell).
    """
    management = settings.qos_management
    if management is not None and management.skip_qos_swap:
        return True
    return enforcement(settings, offering_enforce_qos)


def submit_limit(level: QosLevel) -> int | None:
    """The GrpSubmitJobs an account on ``level`` has under enforcement (None: no limit)."""
    return None if level is QosLevel.DEFAULT else SUBMIT_BLOCKED


def submit_text(value: int | None) -> str:
    """A GrpSubmitJobs value as the diagnostic prints it."""
    return "unlimited" if value is None else str(value)


def submit_fields(current: int | None, level: QosLevel) -> dict[str, str]:
    """The GrpSubmitJobs to set so the account is on ``level`` ({} when it already is)."""
    target = submit_limit(level)
    if current == target:
        return {}
    return {GRP_SUBMIT_JOBS: SUBMIT_CLEAR if target is None else str(target)}


def lever_level(current: int | None) -> QosLevel:
    """The least strict level an account's GrpSubmitJobs stands for (0: DOWNSCALED)."""
    return QosLevel.DOWNSCALED if current == SUBMIT_BLOCKED else QosLevel.DEFAULT


# ---- the level an account should be on, and the fields that put it there --------------------


@dataclass(frozen=True)
class LevelTarget:
    """A level, why it is wanted, and how it is applied: QoS swap or the submit lever.

    pause/downscale/restore, periodic messages and the diagnostic all turn a level into
    ``sacctmgr`` fields through ``fields``, so they cannot disagree on what a level means.
    """

    level: QosLevel
    why: str
    qos: str
    lever: bool = False
    submit_now: int | None = None
    # QoS listed beside ``qos`` (an allocation's own QoS: its ``additional_qos``).
    beside: tuple[str, ...] = ()

    @property
    def setting(self) -> str:
        """What the level sets: ``GrpSubmitJobs`` under the lever, else ``QOS``."""
        return GRP_SUBMIT_JOBS if self.lever else "QOS"

    @property
    def expected(self) -> str:
        """The value the level asks for, as the diagnostic prints it."""
        if self.lever:
            return submit_text(submit_limit(self.level))
        if self.beside:
            return f"{','.join((self.qos, *self.beside))} (default {self.qos})"
        return self.qos

    def actual(self, record: AssociationRecord) -> str:
        """The account's value now, as the diagnostic prints it."""
        if self.lever:
            return submit_text(self.submit_now)
        if self.beside:
            listed = ",".join(record.qos) or "(none)"
            return f"{listed} (default {record.default_qos or '(none)'})"
        return current_qos(record) or "(none)"

    def fields(self, record: AssociationRecord) -> dict[str, str]:
        """The fields to set so the account is on the level ({} when it already is)."""
        if self.lever:
            return submit_fields(self.submit_now, self.level)
        return qos_fields(record, self.qos, self.beside)


def target(
    level: QosLevel,
    why: str,
    settings: SlurmSettings,
    *,
    account: str = "",
    lever: bool = False,
    submit_now: int | None = None,
) -> LevelTarget:
    """The target for ``level``; ``submit_now`` is the account's GrpSubmitJobs (lever only).

    With ``qos_management`` and QoS swapped (no lever), the default level of ``account``
    is its own QoS (named after it) with ``additional_qos`` beside it.
    """
    own = settings.managed_qos
    if own is not None and not lever and level is QosLevel.DEFAULT and account:
        name = validation.qos_name(account, "allocation QoS")
        return LevelTarget(level, why, name, beside=own.beside(name))
    name = validation.qos_name(qos_name(level, settings))
    return LevelTarget(level, why, name, lever, submit_now if lever else None)
