"""The QoS decision: which QoS level an allocation should be on.

Two inputs ask for a level: Waldur's resource flags (paused/downscaled, applied by
membership sync) and, when a site enables it, the usage thresholds of the last periodic
settings. The decision is the strictest level any input asks for, so one input can
never undo another and the two never flap.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum

from waldur_site_agent_slurm.config import SlurmSettings
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


def qos_fields(record: AssociationRecord, target: str) -> dict[str, str]:
    """The fields to set so the account is on ``target`` only ({} when it already is)."""
    # A single-QoS list with no explicit default already means that QoS.
    if record.qos == (target,) and record.default_qos in ("", target):
        return {}
    return {"QOS": target, "DefaultQOS": target}
