"""slurmrestd's JSON → the same frozen records the command-line parser makes.

The only place that reads slurmrestd's answer shapes (data parsers v0.0.40-v0.0.43):
associations become ``AssociationRecord``, jobs ``JobRecord`` exactly as
``sacct --allocations --noconvert`` in UTC gives them, QoS ``own_qos.QosRecord`` as
``sacctmgr show qos`` gives them, TRES lists ``{"cpu": 60, …}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from waldur_site_agent_slurm.allocation.own_qos import QosRecord
from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.parser import AssociationRecord, JobRecord

# A time slurmdbd never set: 0, or NO_VAL/INFINITE as 32-bit values.
_NO_TIMES = frozenset({0, 0xFFFFFFFE, 0xFFFFFFFF})


def many(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The list of objects under ``key``; anything else is a parse error."""
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise SlurmParseError(f"slurmrestd's answer has no list {key!r}")
    return items


def text(item: Mapping[str, Any], key: str) -> str:
    """The string under ``key`` (empty when absent); anything else is a parse error."""
    value = item.get(key, "")
    if not isinstance(value, str):
        raise SlurmParseError(f"slurmrestd's {key!r} is not a string: {value!r}")
    return value


def tres_name(entry: Mapping[str, Any]) -> str:
    """``{"type": "gres", "name": "gpu"}`` → ``gres/gpu``; ``{"type": "cpu"}`` → ``cpu``."""
    kind, name = text(entry, "type"), text(entry, "name")
    return f"{kind}/{name}" if name else kind


def _tres_counts(entries: object) -> dict[str, int]:
    if not isinstance(entries, list):
        raise SlurmParseError(f"slurmrestd's TRES list is not a list: {entries!r}")
    counts: dict[str, int] = {}
    for entry in entries:
        count = entry.get("count") if isinstance(entry, Mapping) else None
        if not isinstance(count, int):
            raise SlurmParseError(f"slurmrestd's TRES entry has no count: {entry!r}")
        counts[tres_name(entry)] = count
    return counts


def tres_entries(values: Mapping[str, int]) -> list[dict[str, Any]]:
    """TRES counts as slurmrestd's list of ``{"type", "name", "count"}`` objects."""
    entries = []
    for tres, count in sorted(values.items()):
        kind, _, name = validation.tres_name(tres).partition("/")
        entry: dict[str, Any] = {"type": kind, "count": validation.limit_value(count, tres)}
        if name:
            entry["name"] = name
        entries.append(entry)
    return entries


def _dig(item: Mapping[str, Any], *keys: str) -> object:
    value: object = item
    for key in keys:
        if not isinstance(value, Mapping):
            return []
        value = value.get(key, [])
    return value


# Every TRES list of an association: an update that leaves one out puts it back to what
# the association inherits (nothing, for the Grp* lists), on SLURM 24.11's slurmrestd as
# on the emulator's. Its other fields (job counts, QoS, parent) stay as they are.
GROUP_TRES_LISTS: tuple[tuple[str, ...], ...] = (
    ("max", "tres", "total"),  # GrpTRES
    ("max", "tres", "group", "minutes"),  # GrpTRESMins
    ("max", "tres", "group", "active"),  # GrpTRESRunMins
)
# The Max* lists, which an association inherits from its parent unless it sets its own.
MAX_TRES_LISTS: tuple[tuple[str, ...], ...] = (
    ("max", "tres", "minutes", "total"),  # MaxTRESRunMins
    ("max", "tres", "minutes", "per", "job"),  # MaxTRESMins
    ("max", "tres", "per", "job"),  # MaxTRES
    ("max", "tres", "per", "node"),  # MaxTRESPerNode
)


def _entries(item: Mapping[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    found = _dig(item, *path)
    _tres_counts(found)  # a malformed list is a parse error, never sent back
    entries = found if isinstance(found, list) else []
    return [{k: e[k] for k in ("type", "name", "count") if k in e} for e in entries]


def association_tres(
    item: Mapping[str, Any], parent: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The TRES lists of one association an update must send again, nested as sent.

    Every Grp* list; a Max* list only when it differs from the ``parent``'s (the account
    of a user's association, the parent account of an account's): slurmrestd reads back
    inherited values too, and sending one again would pin it on this association.
    """
    held: dict[str, Any] = {}
    for path in (*GROUP_TRES_LISTS, *MAX_TRES_LISTS):
        entries = _entries(item, path)
        if path in MAX_TRES_LISTS and parent is not None and entries == _entries(parent, path):
            continue
        node = held
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = entries
    return held


def association_record(item: Mapping[str, Any]) -> AssociationRecord:
    """One ``/associations/`` entry as the record ``sacctmgr show assoc`` gives."""
    qos = item.get("qos", [])
    shares = item.get("shares_raw")
    if not isinstance(qos, list) or not isinstance(shares, int):
        raise SlurmParseError(f"slurmrestd's association is malformed: {item!r}")
    default = item.get("default")
    return AssociationRecord(
        account=text(item, "account"),
        user=text(item, "user"),
        partition=text(item, "partition"),
        parent=text(item, "parent_account"),
        fairshare=str(shares),
        grp_tres_mins=_tres_counts(_dig(item, "max", "tres", "group", "minutes")),
        max_tres_mins=_tres_counts(_dig(item, "max", "tres", "minutes", "per", "job")),
        grp_tres=_tres_counts(_dig(item, "max", "tres", "total")),
        qos=tuple(str(q) for q in qos),
        default_qos=text(default, "qos") if isinstance(default, Mapping) else "",
    )


# sacctmgr's QoS flag names → slurmrestd's (v0.0.40-v0.0.43 alike).
QOS_FLAGS = {
    "DenyOnLimit": "DENY_LIMIT",
    "EnforceUsageThreshold": "ENFORCE_USAGE_THRESHOLD",
    "NoDecay": "NO_DECAY",
    "NoReserve": "NO_RESERVE",
    "OverPartQOS": "OVERRIDE_PARTITION_QOS",
    "PartitionMaxNodes": "PARTITION_MAXIMUM_NODE",
    "PartitionMinNodes": "PARTITION_MINIMUM_NODE",
    "PartitionTimeLimit": "PARTITION_TIME_LIMIT",
    "RequiresReservation": "REQUIRED_RESERVATION",
    "UsageFactorSafe": "USAGE_FACTOR_SAFE",
    "Relative": "RELATIVE",
}
_FLAG_NAMES = {rest: name for name, rest in QOS_FLAGS.items()}
# Where a QoS's options sit in slurmrestd's QoS object. On a QoS, sacctmgr's MaxJobs and
# MaxSubmit are per user (MaxJobsPerUser, MaxSubmitJobsPerUser), MaxWall is per job in
# minutes and MinTRESPerJob is ``min.tres.per.job``.
QOS_PATHS: dict[str, tuple[str, ...]] = {
    "GrpTRES": ("limits", "max", "tres", "total"),
    "GrpTRESMins": ("limits", "max", "tres", "minutes", "total"),
    "MaxJobs": ("limits", "max", "jobs", "active_jobs", "per", "user"),
    "MaxSubmit": ("limits", "max", "jobs", "per", "user"),
    "MaxWall": ("limits", "max", "wall_clock", "per", "job"),
    "MinTRESPerJob": ("limits", "min", "tres", "per", "job"),
}


def qos_record(item: Mapping[str, Any]) -> QosRecord:
    """One ``/qos/`` entry as the record ``sacctmgr show qos format=<QOS_FIELDS>`` gives.

    Flags in sacctmgr's spelling (one slurmrestd does not name is kept as it is: the
    emulator stores what it was sent); an unset count or time is None.
    """
    flags = item.get("flags", [])
    if not isinstance(flags, list):
        raise SlurmParseError(f"slurmrestd's QoS flags are not a list: {flags!r}")

    def count(key: str) -> int | None:
        value = _dig(item, *QOS_PATHS[key])
        if value == []:  # not in the answer
            return None
        if isinstance(value, Mapping) and (not value.get("set") or value.get("infinite")):
            return None
        return _number(value, f"QoS {key}")

    return QosRecord(
        name=text(item, "name"),
        flags=frozenset(_FLAG_NAMES.get(str(f), str(f)) for f in flags),
        grp_tres=_tres_counts(_dig(item, *QOS_PATHS["GrpTRES"])),
        max_jobs=count("MaxJobs"),
        max_submit=count("MaxSubmit"),
        max_wall=count("MaxWall"),
        min_tres_per_job=_tres_counts(_dig(item, *QOS_PATHS["MinTRESPerJob"])),
        grp_tres_mins=_tres_counts(_dig(item, *QOS_PATHS["GrpTRESMins"])),
    )


def _number(value: object, what: str) -> int:
    """A plain integer, or the ``number`` of a ``{"set", "infinite", "number"}`` object."""
    if isinstance(value, Mapping):
        value = value.get("number") if value.get("set") else 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise SlurmParseError(f"slurmrestd's {what} is not a number: {value!r}")
    return value


def _time(value: object, what: str) -> datetime | None:
    """An epoch time as the naive UTC time sacct prints with TZ=UTC; unset → None."""
    seconds = _number(value, what)
    if seconds in _NO_TIMES:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def _object(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}


def _job_id(job: Mapping[str, Any]) -> str:
    """The job ID as sacct prints it: ``123``, an array task ``120_3``, a het part ``130+1``."""
    array = _object(job, "array")
    het = _object(job, "het")
    array_id = _number(array.get("job_id", 0), "array job ID")
    if array_id:
        task = array.get("task_id", {})
        if isinstance(task, Mapping) and task.get("set"):
            return f"{array_id}_{_number(task, 'array task ID')}"
        pending = array.get("task", "")
        if isinstance(pending, str) and pending:
            return f"{array_id}_[{pending}]"
    het_id = _number(het.get("job_id", 0), "het job ID")
    offset = het.get("job_offset", {})
    if het_id and isinstance(offset, Mapping) and offset.get("set"):
        return f"{het_id}+{_number(offset, 'het job offset')}"
    return str(_number(job.get("job_id"), "job ID"))


def job_record(job: Mapping[str, Any]) -> JobRecord:
    """One ``/jobs/`` entry as ``sacct --allocations --noconvert`` (TZ=UTC) gives it.

    Unset TRES counts (negative: energy that was not measured) are left out, as sacct's
    AllocTRES leaves them out; memory is in MB in both.
    """
    times, state, tres = job.get("time"), job.get("state"), job.get("tres")
    if not isinstance(times, Mapping) or not isinstance(state, Mapping):
        raise SlurmParseError(f"slurmrestd's job has no time or state: {job.get('job_id')!r}")
    current = state.get("current")
    if not isinstance(current, list) or not current:
        raise SlurmParseError(f"slurmrestd's job state is malformed: {state!r}")
    allocated = tres.get("allocated", []) if isinstance(tres, Mapping) else []
    alloc = {name: count for name, count in _tres_counts(allocated).items() if count >= 0}
    return JobRecord(
        _job_id(job),
        text(job, "account"),
        text(job, "user"),
        str(current[0]),
        _time(times.get("start"), "start time"),
        _time(times.get("end"), "end time"),
        alloc,
    )
