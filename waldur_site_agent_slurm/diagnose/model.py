"""What the diagnostic reads and what it finds, as frozen records.

``ResourceView``, ``PolicyView`` and ``OfferingView`` are Waldur's side, reduced to
what the expected SLURM state depends on; the SLURM side is the plugin's own
``AccountState``. ``AccountDiagnosis`` holds the checks, the unit conversions and the
remediation steps of one allocation, and turns into the JSON document of
``report.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from waldur_site_agent_slurm.slurm.accounting import AccountState, Operation

SCHEMA_VERSION = 1
OK = "OK"
MISMATCH = "MISMATCH"
ERROR = "ERROR"


@dataclass(frozen=True)
class TeamMember:
    """A project member as membership sync sees it: offering username and its state."""

    username: str
    state: str | None


@dataclass(frozen=True)
class ResourceView:
    """A Waldur resource of the offering."""

    uuid: str
    name: str
    backend_id: str
    state: str
    limits: Mapping[str, float]
    paused: bool
    downscaled: bool
    restrict_member_access: bool
    project_uuid: str
    project_slug: str
    project_name: str
    customer_slug: str
    customer_name: str
    team: tuple[TeamMember, ...] = ()
    created: datetime | None = None
    end_date: date | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "found": True,
            "uuid": self.uuid,
            "name": self.name,
            "state": self.state,
            "limits": dict(self.limits),
            "paused": self.paused,
            "downscaled": self.downscaled,
            "restrict_member_access": self.restrict_member_access,
            "project": self.project_slug,
            "customer": self.customer_slug,
            "team": [{"username": m.username, "state": m.state} for m in self.team],
        }


@dataclass(frozen=True)
class PolicyView:
    """The offering's SLURM periodic usage policy."""

    uuid: str
    period: str
    limit_type: str
    tres_billing_enabled: bool
    weights: Mapping[str, float]
    grace_ratio: float
    carryover_enabled: bool
    carryover_factor: int
    one_off: bool

    def summary(self, applied: bool) -> dict[str, Any]:
        """The JSON form; ``applied``: this agent applies the policy's settings."""
        return {
            "found": True,
            "uuid": self.uuid,
            "period": self.period,
            "limit_type": self.limit_type,
            "tres_billing_enabled": self.tres_billing_enabled,
            "grace_ratio": self.grace_ratio,
            "carryover_enabled": self.carryover_enabled,
            "carryover_factor": self.carryover_factor,
            "applied_by_agent": applied,
        }


@dataclass(frozen=True)
class OfferingView:
    """The offering: its name, the unit of each component, its ``enforce_qos`` option."""

    uuid: str
    name: str
    units: Mapping[str, str]
    enforce_qos: bool = False


@dataclass(frozen=True)
class Check:
    """One expected-vs-actual comparison."""

    field: str
    expected: str
    actual: str
    ok: bool
    units: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "field": self.field,
            "status": OK if self.ok else MISMATCH,
            "expected": self.expected,
            "actual": self.actual,
            "units": self.units or None,
        }


@dataclass(frozen=True)
class Conversion:
    """How one Waldur amount became TRES-minutes."""

    component: str
    amount: float
    unit: str
    slurm_field: str
    tres: str
    minutes: int
    factor: float
    via_policy: bool = False

    def __str__(self) -> str:
        """``Waldur: 100 k-Hours -> SLURM: 6000000 TRES-minutes (factor: 60000)``."""
        source = "policy" if self.via_policy else "Waldur"
        return (
            f"{source}: {self.amount:g} {self.unit} -> SLURM: {self.minutes} TRES-minutes "
            f"(factor: {self.factor:g})"
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "component": self.component,
            "waldur_amount": self.amount,
            "waldur_unit": self.unit,
            "slurm_field": self.slurm_field,
            "tres": self.tres,
            "tres_minutes": self.minutes,
            "factor": self.factor,
            "source": "policy" if self.via_policy else "resource",
        }


@dataclass(frozen=True)
class Step:
    """One remediation: the client operation, how the client makes it, and why."""

    operation: Operation
    line: str
    reason: str


@dataclass(frozen=True)
class AccountDiagnosis:
    """Everything found about one allocation account."""

    account: str
    slurm: AccountState | None
    resource: ResourceView | None
    policy: PolicyView | None
    policy_applied: bool
    checks: tuple[Check, ...] = ()
    conversions: tuple[Conversion, ...] = ()
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def issues(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    @property
    def status(self) -> str:
        """OK or MISMATCH."""
        return MISMATCH if self.issues else OK

    def to_json(self) -> dict[str, Any]:
        """The per-account object of the JSON document."""
        return {
            "account": self.account,
            "status": self.status,
            "slurm": slurm_json(self.slurm),
            "waldur": self.resource.summary() if self.resource else {"found": False},
            "policy": self.policy.summary(self.policy_applied) if self.policy else {"found": False},
            "checks": [c.to_json() for c in self.checks],
            "conversions": [c.to_json() for c in self.conversions],
            "notes": list(self.notes),
            "remediation": [s.line for s in self.steps],
        }


def slurm_json(state: AccountState | None) -> dict[str, Any]:
    """The SLURM side of one account as JSON."""
    if state is None:
        return {"exists": False}
    record = state.record
    return {
        "exists": True,
        "parent": record.parent,
        "fairshare": record.fairshare,
        "qos": list(record.qos),
        "default_qos": record.default_qos,
        "grp_tres_mins": dict(record.grp_tres_mins),
        "max_tres_mins": dict(record.max_tres_mins),
        "grp_tres": dict(record.grp_tres),
        "users": sorted(state.users),
    }


@dataclass(frozen=True)
class FixResult:
    """What ``--fix`` ran and what the check found afterwards."""

    applied: tuple[str, ...] = ()
    error: str | None = None
    declined: bool = False


@dataclass
class Report:
    """The result of one run: every account diagnosed, and the fix if one ran."""

    offering: OfferingView
    cluster: str | None
    mode: str
    accounts: list[AccountDiagnosis] = field(default_factory=list)
    fix: FixResult | None = None
    after_fix: Report | None = None

    @property
    def issue_count(self) -> int:
        """Failed checks over all accounts."""
        return sum(len(a.issues) for a in self.accounts)

    @property
    def overall(self) -> str:
        """OK when no account has a failed check."""
        return MISMATCH if self.issue_count else OK

    def steps(self) -> list[Step]:
        """Every remediation step, account by account."""
        return [step for account in self.accounts for step in account.steps]

    def summary(self) -> dict[str, int]:
        """Counts for the JSON document and the table footer."""
        mismatching = sum(1 for a in self.accounts if a.issues)
        return {
            "checked": len(self.accounts),
            "ok": len(self.accounts) - mismatching,
            "mismatch": mismatching,
            "issues": self.issue_count,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole document (see ``report.schema.json``)."""
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "mode": self.mode,
            "overall": self.overall,
            "offering": {"uuid": self.offering.uuid, "name": self.offering.name},
            "cluster": self.cluster,
            "summary": self.summary(),
            "accounts": [a.to_json() for a in self.accounts],
            "fix": None,
        }
        if self.fix is not None:
            document["fix"] = {
                "applied": list(self.fix.applied),
                "error": self.fix.error,
                "declined": self.fix.declined,
                "after": self.after_fix.to_json() if self.after_fix else None,
            }
            if self.after_fix is not None:
                document["overall"] = self.after_fix.overall
        return document


def error_document(reason: str) -> dict[str, Any]:
    """The JSON document of a run that could not diagnose."""
    return {"schema_version": SCHEMA_VERSION, "overall": ERROR, "error": reason}
