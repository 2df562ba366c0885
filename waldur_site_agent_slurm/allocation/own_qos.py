"""The allocation's own QoS (``qos_management``): its options, checked once, and how they compare.

With ``qos_management.enabled`` every allocation account gets a QoS of the same name,
created with the configured flags and limits in one ``sacctmgr add qos`` and attached to
the account as its default QoS (with ``additional_qos`` beside it). Every value is checked
when the configuration loads, so a bad one stops the agent before any command runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from waldur_site_agent_slurm.errors import SlurmConfigError, SlurmError
from waldur_site_agent_slurm.slurm import parser, validation

BLOCK = "backend_settings.qos_management"

# The QoS flags sacctmgr knows, in the spelling it prints them.
FLAGS = (
    "DenyOnLimit",
    "EnforceUsageThreshold",
    "NoDecay",
    "NoReserve",
    "OverPartQOS",
    "PartitionMaxNodes",
    "PartitionMinNodes",
    "PartitionTimeLimit",
    "RequiresReservation",
    "UsageFactorSafe",
)
_FLAG_BY_KEY = {flag.lower(): flag for flag in FLAGS}
# SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_WALL_RE = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")

# ``sacctmgr show qos`` columns read back. On a QoS, SLURM's MaxJobs and MaxSubmit are per
# user, and its ``MaxJobs``/``MaxSubmit`` columns print those (as MaxJobsPU/MaxSubmitPU);
# slurm-emulator prints what it stored under the same names (-1: unset) and MaxWall in
# minutes, which ``wall_minutes`` reads too. GrpTRESMins is the allocation's limit under
# ``apply_limits_to_qos`` (SLURM 22.05, 24.11 and slurm-emulator print it alike).
QOS_FIELDS = (
    "Name",
    "Flags",
    "GrpTRES",
    "MaxJobs",
    "MaxSubmit",
    "MaxWall",
    "MinTRES",
    "GrpTRESMins",
)


@dataclass(frozen=True)
class QosOptions:
    """The checked ``qos_management`` block: what each allocation's QoS carries."""

    flags: tuple[str, ...]
    grp_tres: Mapping[str, int] | None = None
    max_jobs: int | None = None
    max_submit: int | None = None
    max_wall: int | None = None  # minutes
    min_tres_per_job: Mapping[str, int] | None = None
    additional_qos: tuple[str, ...] = ()
    skip_qos_swap: bool = False
    # GrpTRESMins on the allocation's QoS instead of its account (needs skip_qos_swap).
    limits_on_qos: bool = False

    def settings(self) -> dict[str, str]:
        """The ``Key=value`` options of ``add qos`` / ``modify qos`` (configured ones only)."""
        fields = {"Flags": ",".join(self.flags) if self.flags else "-1"}
        if self.grp_tres is not None:
            fields["GrpTRES"] = parser.format_tres(dict(self.grp_tres))
        if self.max_jobs is not None:
            fields["MaxJobs"] = str(self.max_jobs)
        if self.max_submit is not None:
            fields["MaxSubmit"] = str(self.max_submit)
        if self.max_wall is not None:
            fields["MaxWall"] = str(self.max_wall)
        if self.min_tres_per_job is not None:
            fields["MinTRESPerJob"] = parser.format_tres(dict(self.min_tres_per_job))
        return fields

    def attached(self, name: str) -> tuple[str, ...]:
        """The QoS the account must list: its own, then ``additional_qos``."""
        return (name, *self.beside(name))

    def beside(self, name: str) -> tuple[str, ...]:
        """``additional_qos`` without the allocation's own QoS ``name``."""
        return tuple(q for q in self.additional_qos if q != name)


@dataclass(frozen=True)
class QosRecord:
    """One row of ``sacctmgr show qos format=<QOS_FIELDS>``."""

    name: str
    flags: frozenset[str]
    grp_tres: dict[str, int]
    max_jobs: int | None
    max_submit: int | None
    max_wall: int | None  # minutes
    min_tres_per_job: dict[str, int]
    grp_tres_mins: dict[str, int] = field(default_factory=dict)


def load(block: object) -> QosOptions | None:
    """The checked options of a ``QosManagementConfig``; None when the feature is off."""
    if block is None or not getattr(block, "enabled", False):
        return None
    try:
        return QosOptions(
            flags=_flags(block.flags),  # type: ignore[attr-defined]
            grp_tres=_tres(block.grp_tres, "grp_tres"),  # type: ignore[attr-defined]
            max_jobs=_count(block.max_jobs, "max_jobs"),  # type: ignore[attr-defined]
            max_submit=_count(block.max_submit, "max_submit"),  # type: ignore[attr-defined]
            max_wall=_wall(block.max_wall),  # type: ignore[attr-defined]
            min_tres_per_job=_tres(block.min_tres_per_job, "min_tres_per_job"),  # type: ignore[attr-defined]
            additional_qos=tuple(
                validation.qos_name(str(name).lower(), f"{BLOCK}.additional_qos")
                for name in block.additional_qos or ()  # type: ignore[attr-defined]
            ),
            skip_qos_swap=bool(block.skip_qos_swap),  # type: ignore[attr-defined]
            limits_on_qos=bool(block.apply_limits_to_qos),  # type: ignore[attr-defined]
        )
    except SlurmError as err:
        raise SlurmConfigError(f"Invalid {BLOCK}: {err}") from err


def _flags(value: list[str] | str) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    flags = []
    for name in names:
        flag = _FLAG_BY_KEY.get(str(name).strip().lower())
        if flag is None:
            raise SlurmConfigError(
                f"{BLOCK}.flags: unknown QoS flag {name!r}; known: {', '.join(FLAGS)}"
            )
        if flag not in flags:
            flags.append(flag)
    return tuple(flags)


def _tres(value: Mapping[str, int] | str | None, key: str) -> dict[str, int] | None:
    if value is None:
        return None
    field = f"{BLOCK}.{key}"
    if isinstance(value, str):
        try:
            value = parser.parse_tres(value)
        except SlurmError as err:
            raise SlurmConfigError(f"{field}: {err}") from err
    return {
        validation.tres_name(tres, field): validation.limit_value(amount, f"{field}.{tres}")
        for tres, amount in value.items()
    }


def _count(value: int | None, key: str) -> int | None:
    return None if value is None else validation.limit_value(value, f"{BLOCK}.{key}")


def _wall(value: int | str | None) -> int | None:
    """``max_wall`` in minutes: a number of minutes or a SLURM time (``1-00:00:00``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return validation.limit_value(value, f"{BLOCK}.max_wall")
    minutes = wall_minutes(str(value))
    if minutes is None:
        raise SlurmConfigError(
            f"{BLOCK}.max_wall: {value!r} is not a time: give minutes, or "
            "[days-]hours:minutes:seconds such as 01:00:00 or 2-00:00:00"
        )
    return minutes


def wall_minutes(text: str) -> int | None:
    """Minutes of a SLURM time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); None if not one."""
    match = _WALL_RE.fullmatch(text.strip())
    if match is None:
        return None
    days, first, second, third = (int(part) if part else None for part in match.groups())
    if days is not None:  # D-H[:M[:S]]
        seconds = ((days * 24 + (first or 0)) * 60 + (second or 0)) * 60 + (third or 0)
    elif third is not None:  # H:M:S
        seconds = ((first or 0) * 60 + (second or 0)) * 60 + third
    else:  # M[:S]
        seconds = (first or 0) * 60 + (second or 0)
    return seconds // 60


def parse(lines: list[str]) -> list[QosRecord]:
    """Parse ``sacctmgr --parsable2 --noheader show qos format=<QOS_FIELDS>``."""
    records = []
    for line in lines:
        if not line.strip():
            continue
        name, flags, grp_tres, jobs, submit, wall, min_tres, grp_tres_mins = parser.split_row(
            line, QOS_FIELDS
        )
        records.append(
            QosRecord(
                name=name,
                flags=frozenset(f for f in flags.split(",") if f),
                grp_tres=parser.parse_tres(grp_tres),
                max_jobs=_unset_or_count(jobs),
                max_submit=_unset_or_count(submit),
                max_wall=wall_minutes(wall) if wall else None,
                min_tres_per_job=parser.parse_tres(min_tres),
                grp_tres_mins=parser.parse_tres(grp_tres_mins),
            )
        )
    return records


def _unset_or_count(text: str) -> int | None:
    return None if text in ("", "-1") else int(text)


def differences(options: QosOptions, record: QosRecord) -> dict[str, str]:
    """The options of ``record`` that differ from the configured ones, as ``modify qos`` sets."""
    wanted = options.settings()
    found = {
        "Flags": frozenset(record.flags) != frozenset(options.flags),
        "GrpTRES": options.grp_tres is not None and record.grp_tres != options.grp_tres,
        "MaxJobs": options.max_jobs is not None and record.max_jobs != options.max_jobs,
        "MaxSubmit": options.max_submit is not None and record.max_submit != options.max_submit,
        "MaxWall": options.max_wall is not None and record.max_wall != options.max_wall,
        "MinTRESPerJob": options.min_tres_per_job is not None
        and record.min_tres_per_job != options.min_tres_per_job,
    }
    return {key: wanted[key] for key, differs in found.items() if differs}


def shown(record: QosRecord) -> dict[str, str]:
    """A QoS's options in the ``Key=value`` form of ``QosOptions.settings`` (set ones only)."""
    values = {
        "Flags": ",".join(sorted(record.flags)) or "-1",
        "GrpTRES": parser.format_tres(record.grp_tres),
        "MaxJobs": "" if record.max_jobs is None else str(record.max_jobs),
        "MaxSubmit": "" if record.max_submit is None else str(record.max_submit),
        "MaxWall": "" if record.max_wall is None else str(record.max_wall),
        "MinTRESPerJob": parser.format_tres(record.min_tres_per_job),
    }
    return {key: value for key, value in values.items() if value}


def attach_fields(
    options: QosOptions, name: str, qos: tuple[str, ...], default: str
) -> dict[str, str]:
    """The account fields to set so it lists its QoS and defaults to it ({} when it does)."""
    missing = [q for q in options.attached(name) if q not in qos]
    fields = {}
    if missing:
        fields["QOS+"] = ",".join(missing)
    if default != name:
        fields["DefaultQOS"] = name
    return fields
