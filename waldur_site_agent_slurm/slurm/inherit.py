"""Association reads that SLURM 22.05's slurmdbd survives, and what they leave out.

22.05's slurmdbd fills in each association's parent and inherited limits row by row
with its stored procedure ``get_parent_limits``. When an association's parent account
row is gone, the procedure answers NULL and slurmdbd passes it to ``strtoul``: it dies
(SIGSEGV), and again at every such read until the row is removed by hand. Such a row is
left behind when ``add user … Account=A`` or ``add account … Parent=A`` races
``delete account A`` (sacctmgr checks that A exists before slurmdbd inserts). Any
read that takes the parent into account can kill it then: ``show assoc`` with or without
``WOPLimits``, ``list user`` (for DefaultAccount), ``list account withassoc``.

``WOPInfo`` skips the procedure: each row comes back with its own values only, no
ParentName. ``WithRawQOS`` shows a QoS list that adds to or removes from the parent's
(``+name``/``-name``) as such, and ``Lft``/``Rgt`` (22.05's nested-set tree) give the
parents. From these, ``inherited`` computes what the plain read shows: ParentName of
account rows; MaxTRESMins per TRES from the nearest association that sets it; the QoS
list from the nearest absolute list with the additions and removals below it applied,
in sacctmgr's order (by name); DefaultQOS from the nearest association that sets it. A
user association inherits from its account's association. Grp* limits and Fairshare
are not inherited.

From 23.02 on, SLURM keeps each association's lineage and parent id in its table, and
24.11's slurmdbd answers the plain read of such a row (with the row's own values): there
the plain read is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import parser
from waldur_site_agent_slurm.slurm.parser import AssociationRecord

# The first release that stores each association's lineage (no parent procedure per row).
LINEAGE_RELEASE = (23, 2)
OWN_VALUES = ("WOPInfo", "WithRawQOS")
OWN_FIELDS = (*parser.ASSOC_FIELDS, "Cluster", "Lft", "Rgt")
DEFAULTS_FIELDS = ("User", "Account")


def needs_own_values(release: tuple[int, int] | None) -> bool:
    """True for a release whose slurmdbd dies on the plain read of an orphaned association."""
    return release is not None and release < LINEAGE_RELEASE


@dataclass(frozen=True)
class _Row:
    record: AssociationRecord  # own values; ``qos`` as printed with WithRawQOS
    cluster: str  # each cluster has a tree (Lft/Rgt) of its own
    lft: int
    rgt: int


@dataclass(frozen=True)
class _Inherited:
    """What an association passes down: its effective QoS, DefaultQOS and MaxTRESMins."""

    qos: frozenset[str] = frozenset()
    default_qos: str = ""
    max_tres_mins: tuple[tuple[str, int], ...] = ()


def _number(text: str, line: str) -> int:
    if not text.isdigit():
        raise SlurmParseError(f"Expected Lft and Rgt numbers: {line!r}")
    return int(text)


def _rows(lines: Iterable[str]) -> list[_Row]:
    rows = []
    for line in lines:
        if not line.strip():
            continue
        values = parser.split_row(line, OWN_FIELDS)
        (record,) = parser.parse_associations(["|".join(values[:-3])])
        cluster, lft, rgt = values[-3:]
        rows.append(_Row(record, cluster, _number(lft, line), _number(rgt, line)))
    return rows


def _effective(own: AssociationRecord, above: _Inherited) -> _Inherited:
    """What ``own`` (as read with WOPInfo WithRawQOS) comes to under ``above``."""
    absolute = {q for q in own.qos if q[0] not in "+-"}
    qos = set(absolute) if absolute else set(above.qos)
    for item in own.qos:
        if item[0] == "+":
            qos.add(item[1:])
        elif item[0] == "-":
            qos.discard(item[1:])
    return _Inherited(
        frozenset(qos),
        own.default_qos or above.default_qos,
        tuple({**dict(above.max_tres_mins), **own.max_tres_mins}.items()),
    )


def _filled(own: AssociationRecord, values: _Inherited) -> AssociationRecord:
    return replace(
        own,
        qos=tuple(sorted(values.qos)),
        default_qos=values.default_qos,
        max_tres_mins=dict(values.max_tres_mins),
    )


def inherited(lines: Iterable[str]) -> list[AssociationRecord]:
    """The records of ``show assoc WOPInfo WithRawQOS format=<OWN_FIELDS>`` as the plain read.

    Account rows are taken parents first (by Lft); an account's parent is the nearest
    account row whose Lft..Rgt holds its own. The records come in the plain read's order:
    each account, its user associations (by user, partition), then its sub-accounts (by
    name). A user association whose account row is missing (the orphan that crashes
    22.05) keeps its own values and comes last.
    """
    rows = _rows(lines)
    accounts = sorted((r for r in rows if not r.record.user), key=lambda r: (r.cluster, r.lft))
    parents: dict[tuple[str, str], str] = {}
    passed: dict[tuple[str, str], _Inherited] = {}
    enclosing: list[_Row] = []
    for row in accounts:
        while enclosing and (enclosing[-1].cluster != row.cluster or enclosing[-1].rgt < row.lft):
            enclosing.pop()
        parent = enclosing[-1].record.account if enclosing else ""
        key = (row.cluster, row.record.account)
        parents[key] = parent
        passed[key] = _effective(row.record, passed.get((row.cluster, parent), _Inherited()))
        enclosing.append(row)
    below: dict[tuple[str, str], list[AssociationRecord]] = {}
    for row in sorted(accounts, key=lambda r: r.record.account):
        key = (row.cluster, row.record.account)
        record = _filled(replace(row.record, parent=parents[key]), passed[key])
        below.setdefault((row.cluster, parents[key]), []).append(record)
    users: dict[tuple[str, str], list[AssociationRecord]] = {}
    for row in sorted(rows, key=lambda r: (r.record.user, r.record.partition)):
        if row.record.user:
            key = (row.cluster, row.record.account)
            values = _effective(row.record, passed.get(key, _Inherited()))
            users.setdefault(key, []).append(_filled(row.record, values))
    ordered: list[AssociationRecord] = []

    def visit(cluster: str, record: AssociationRecord) -> None:
        ordered.append(record)
        ordered.extend(users.pop((cluster, record.account), []))
        for child in below.get((cluster, record.account), []):
            visit(cluster, child)

    for cluster in sorted({r.cluster for r in accounts}):
        for top in below.get((cluster, ""), []):
            visit(cluster, top)
    for orphans in users.values():
        ordered.extend(orphans)
    return ordered
