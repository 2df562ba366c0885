"""The QoS decision: which QoS level an allocation should be on.

Waldur asks for pause and downscale through resource flags; the decision is the
strictest level any input asks for, so one input can never undo another.
"""

from __future__ import annotations

from enum import IntEnum

from waldur_site_agent_slurm.config import SlurmSettings


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


def qos_name(level: QosLevel, settings: SlurmSettings) -> str:
    """The configured SLURM QoS name of a level."""
    return {
        QosLevel.DEFAULT: settings.qos_default,
        QosLevel.DOWNSCALED: settings.qos_downscaled,
        QosLevel.PAUSED: settings.qos_paused,
    }[level]
