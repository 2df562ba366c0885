"""The allocation's QoS over slurmrestd (REST mode): sacctmgr's options → slurmrestd's QoS.

``changes`` checks every value before any request, as on the command line, and nests it
where slurmrestd 24.11 keeps it (``rest_parser.QOS_PATHS``); ``entry`` makes the object
``POST /slurmdb/<v>/qos/`` takes. What slurmrestd 24.11 does with an update, checked on
the real server:

- ``flags`` and ``preempt.mode`` left out of an update are cleared (flags to none, the
  mode to DISABLED): both are sent again as the QoS holds them unless changed;
- a TRES list (GrpTRES, GrpTRESMins, MinTRESPerJob) changes only the TRES it names,
  as ``sacctmgr modify qos set GrpTRES=mem=100`` does, and ``-1`` removes one; a list
  left out is kept (unlike an association's, which an update clears);
- counts and times left out are kept; ``{"set": true, "infinite": true}`` unsets one;
- a POST for a QoS that exists updates it (200, never "already exists"), and one for a
  QoS that does not exist creates it: the client reads the QoS before either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.allocation.own_qos import QosRecord
from waldur_site_agent_slurm.errors import InvalidValueError, SlurmCommandError, SlurmConfigError
from waldur_site_agent_slurm.slurm import parser, validation
from waldur_site_agent_slurm.slurm.rest_parser import QOS_FLAGS, QOS_PATHS, qos_record, text
from waldur_site_agent_slurm.slurm.rest_verbs import RestVerbs

_TRES_KEYS = ("GrpTRES", "GrpTRESMins", "MinTRESPerJob")
_COUNT_KEYS = ("MaxJobs", "MaxSubmit")
_FLAG_BY_KEY = {name.lower(): rest for name, rest in QOS_FLAGS.items()}
UNSET = {"set": True, "infinite": True, "number": 0}


def integer(value: str, what: str) -> int:
    """A whole number given in sacctmgr's form, before it goes into a JSON body."""
    try:
        return int(value)
    except ValueError:
        raise InvalidValueError(what, value, "expected a whole number") from None


def count(value: str, what: str) -> dict[str, Any]:
    """A job count as slurmrestd's ``{"set", "infinite", "number"}``; -1 lifts it."""
    number = integer(value, what)
    if number < 0:
        return dict(UNSET)
    return {"set": True, "infinite": False, "number": validation.limit_value(number, what)}


def _flags(value: str) -> list[str]:
    """``DenyOnLimit,NoDecay`` (any case) as slurmrestd's flag names; ``-1``: none."""
    if value.strip() == "-1":
        return []
    flags = []
    for name in filter(None, (part.strip() for part in value.split(","))):
        flag = _FLAG_BY_KEY.get(name.lower())
        if flag is None:
            raise InvalidValueError("QoS Flags", name, f"known: {', '.join(QOS_FLAGS)}")
        flags.append(flag)
    return list(dict.fromkeys(flags))


def _tres(value: str, what: str) -> list[dict[str, Any]]:
    """``cpu=4,mem=-1`` as TRES entries: slurmrestd changes the named TRES, -1 removes one."""
    entries = []
    for tres, amount in sorted(parser.parse_tres(value).items()):
        kind, _, name = validation.tres_name(tres, what).partition("/")
        number = -1 if amount < 0 else validation.limit_value(amount, f"{what} {tres}")
        entry: dict[str, Any] = {"type": kind, "count": number}
        if name:
            entry["name"] = name
        entries.append(entry)
    return entries


def _wall(value: str) -> dict[str, Any]:
    """MaxWall in minutes (or a SLURM time) as slurmrestd's minutes; -1 lifts it."""
    if value.strip() == "-1":
        return dict(UNSET)
    minutes = own_qos.wall_minutes(value)
    if minutes is None:
        raise InvalidValueError("QoS MaxWall", value, "expected minutes or [days-]hours:min:sec")
    return {"set": True, "infinite": False, "number": validation.limit_value(minutes, "MaxWall")}


def _nest(into: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = into
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def changes(settings: Mapping[str, str]) -> dict[str, Any]:
    """QoS settings in sacctmgr's form as a checked slurmrestd QoS fragment.

    The keys: ``Flags``, ``GrpTRES``, ``GrpTRESMins``, ``MaxJobs``, ``MaxSubmit``,
    ``MaxWall``, ``MinTRESPerJob``.
    """
    fragment: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "Flags":
            fragment["flags"] = _flags(value)
        elif key in _TRES_KEYS:
            _nest(fragment, QOS_PATHS[key], _tres(value, key))
        elif key in _COUNT_KEYS:
            _nest(fragment, QOS_PATHS[key], count(value, key))
        elif key == "MaxWall":
            _nest(fragment, QOS_PATHS[key], _wall(value))
        else:
            raise SlurmConfigError(f"{key} cannot be set on a QoS through slurmrestd")
    return fragment


def entry(
    name: str, fragment: Mapping[str, Any], current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The QoS object to POST: a new QoS (``current`` None) or an update of ``current``.

    A new QoS gets its name as description, as ``sacctmgr add qos`` gives it. An update
    sends the QoS's flags and preemption mode again unless ``fragment`` changes them.
    """
    body: dict[str, Any] = {"name": validation.qos_name(name)}
    if current is None:
        body["description"] = body["name"]
    else:
        body["flags"] = list(current.get("flags") or [])
        preempt = current.get("preempt")
        mode = preempt.get("mode") if isinstance(preempt, Mapping) else None
        if isinstance(mode, list) and mode:
            body["preempt"] = {"mode": list(mode)}
    body.update(fragment)
    return body


def new_account_levels(
    qos: Mapping[str, str], parent_levels: Callable[[], list[str]]
) -> tuple[list[str] | None, str | None]:
    """The QoS list and default QoS of a new account from ``QOS+``/``QOS``/``DefaultQOS``.

    ``QOS+=a,b`` is the parent's list followed by a and b, the list sacctmgr's ``add
    account … QOS+=a,b`` gives: slurmrestd refuses a ``+name``.
    """
    levels: list[str] | None = None
    default = None
    for key, value in qos.items():
        names = [validation.qos_name(q) for q in value.split(",") if q]
        if key == "QOS+":
            levels = [*parent_levels(), *names]
        elif key == "QOS":
            levels = names
        elif key == "DefaultQOS":
            default = validation.qos_name(value, "default QoS")
        else:
            raise SlurmConfigError(f"{key} cannot be set on a new account through slurmrestd")
    return levels, default


class RestQos:
    """``SlurmRestClient``'s QoS verbs: each QoS as last read, kept for the write after it.

    ``add`` posts only for a QoS a read found missing (a POST would update an existing
    one, where ``sacctmgr add qos`` leaves it as it is); ``modify`` sends the read QoS's
    flags and preemption mode again, without reading it a second time.
    """

    def __init__(self, verbs: Callable[[], RestVerbs]) -> None:
        """``verbs`` gives the requests once the server's version is checked."""
        self.verbs = verbs
        self._read: dict[str, Mapping[str, Any] | None] = {}

    def records(self) -> dict[str, QosRecord]:
        """The options of every QoS, by name (one request)."""
        rows = {text(row, "name"): row for row in self.verbs().all_qos()}
        self._read.update(rows)
        return {name: qos_record(row) for name, row in rows.items()}

    def record(self, name: str) -> QosRecord | None:
        """The options of one QoS (one request); None when it does not exist."""
        qos = validation.qos_name(name)
        row = self._read[qos] = self.verbs().qos(qos)
        return None if row is None else qos_record(row)

    def _now(self, name: str) -> Mapping[str, Any] | None:
        if name not in self._read:
            self._read[name] = self.verbs().qos(name)
        return self._read[name]

    def add(self, name: str, settings: Mapping[str, str]) -> bool:
        """Create a QoS with its options in one request; False when it already existed."""
        qos = validation.qos_name(name)
        fragment = changes(settings)
        if self._now(qos) is not None:
            return False
        self.verbs().post_qos(entry(qos, fragment, None))
        self._read.pop(qos, None)
        return True

    def modify(self, name: str, settings: Mapping[str, str]) -> bool:
        """Set options of an existing QoS in one request; False when there is no such QoS.

        A POST for a QoS that does not exist would create it: none is sent.
        """
        qos = validation.qos_name(name)
        fragment = changes(settings)
        current = self._now(qos)
        if current is None:
            return False
        self.verbs().post_qos(entry(qos, fragment, current))
        self._read.pop(qos, None)
        return True

    def remove(self, name: str) -> None:
        """Delete a QoS (a missing one is fine), refused while it is a default QoS.

        slurmrestd would delete it and leave those associations' default unknown, where
        sacctmgr refuses.
        """
        qos = validation.qos_name(name)
        users = self.verbs().qos_defaults(qos)
        if users:
            reason = f"QoS {qos} is the default QoS of {', '.join(users)}; not deleted"
            raise SlurmCommandError(["remove_qos", qos], None, "", "", reason)
        self.verbs().remove_qos(qos)
        self._read.pop(qos, None)
