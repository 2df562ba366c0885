"""The human-readable report: one account in sections, or a table for ``--all``."""

from __future__ import annotations

from collections.abc import Mapping

from waldur_site_agent_slurm.diagnose.model import MISMATCH, OK, AccountDiagnosis, Report, Step
from waldur_site_agent_slurm.slurm.parser import format_tres

WIDTH = 80
RULE = "=" * WIDTH
LINE = "-" * WIDTH
INDENT = " " * 13
LIMIT_FIELDS = ("GrpTRESMins[", "MaxTRESMins[", "GrpTRES[")
COLOURS = {"green": "32", "red": "31", "yellow": "33", "bold": "1"}


class Style:
    """ANSI colour when enabled, plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        """Colour only when ``enabled``."""
        self.enabled = enabled

    def __call__(self, text: str, colour: str) -> str:
        """``text`` in ``colour`` (green, red, yellow, bold)."""
        if not self.enabled:
            return text
        return f"\033[{COLOURS[colour]}m{text}\033[0m"

    def status(self, status: str) -> str:
        """OK in green, anything else in red."""
        return self(status, "green" if status == OK else "red")


def _tres(values: Mapping[str, int]) -> str:
    return format_tres(dict(values)) or "-"


def _field(name: str, value: object) -> str:
    return f"  {name + ':':<20}{value}"


def _section(title: str, style: Style) -> list[str]:
    return ["", style(title, "bold"), LINE]


def _slurm(diag: AccountDiagnosis, cluster: str | None, style: Style) -> list[str]:
    lines = _section("SLURM CLUSTER", style)
    lines.append(_field("Cluster", cluster or "(not scoped: no cluster_name)"))
    state = diag.slurm
    lines.append(_field("Account Exists", "Yes" if state else "No"))
    if state is None:
        return lines
    record = state.record
    qos = ",".join(record.qos) or "-"
    lines += [
        _field("Parent", record.parent or "-"),
        _field("Fairshare", record.fairshare or "-"),
        _field("QoS", qos + (f" (default {record.default_qos})" if record.default_qos else "")),
        _field("GrpTRESMins", _tres(record.grp_tres_mins)),
        _field("MaxTRESMins", _tres(record.max_tres_mins)),
        _field("GrpTRES", _tres(record.grp_tres)),
        _field("Users", ", ".join(sorted(state.users)) or "-"),
    ]
    return lines


def _waldur(diag: AccountDiagnosis, report: Report, style: Style) -> list[str]:
    lines = _section("WALDUR MASTERMIND", style)
    lines.append(_field("Offering", f"{report.offering.name} ({report.offering.uuid})"))
    resource = diag.resource
    lines.append(_field("Resource Found", "Yes" if resource else "No"))
    if resource is None:
        return lines
    limits = ", ".join(f"{k}={v:g}" for k, v in sorted(resource.limits.items())) or "-"
    team = ", ".join(f"{m.username} ({m.state or '?'})" for m in resource.team) or "-"
    lines += [
        _field("Resource Name", resource.name),
        _field("Resource UUID", resource.uuid),
        _field("State", resource.state),
        _field("Paused", "Yes" if resource.paused else "No"),
        _field("Downscaled", "Yes" if resource.downscaled else "No"),
        _field("Limits", limits),
        _field("Team", team),
    ]
    return lines


def _policy(diag: AccountDiagnosis, style: Style) -> list[str]:
    lines = _section("SLURM POLICY", style)
    policy = diag.policy
    lines.append(_field("Policy Found", "Yes" if policy else "No"))
    if policy is None:
        return lines
    carry = f"up to {policy.carryover_factor}%" if policy.carryover_enabled else "Disabled"
    lines += [
        _field("Period", policy.period),
        _field("Limit Type", policy.limit_type),
        _field("TRES Billing", "Enabled" if policy.tres_billing_enabled else "Disabled"),
        _field("Grace Ratio", f"{policy.grace_ratio:g}"),
        _field("Carry-over", carry),
        _field("Applied by agent", "Yes" if diag.policy_applied else "No"),
    ]
    return lines


def _checks(diag: AccountDiagnosis, style: Style, verbose: bool) -> list[str]:
    lines = _section("EXPECTED vs ACTUAL", style)
    for check in diag.checks:
        if check.ok:
            tag, text = style("[OK]", "green") + " " * 7, f"{check.actual} == {check.expected}"
        else:
            tag = style("[MISMATCH]", "red") + " "
            text = f"{check.actual} != {check.expected} (expected)"
        lines.append(f"  {tag}{check.field}: {text}")
        is_limit = check.field.startswith(LIMIT_FIELDS)
        if check.units and is_limit and verbose:
            lines.append(f"{INDENT}Units: {check.units}")
        elif check.units and not is_limit and not check.ok:
            lines.append(f"{INDENT}{check.units}")
    if diag.notes:
        lines.append("")
        lines += [f"  Note: {note}" for note in diag.notes]
    return lines


def _steps(steps: list[Step], style: Style, verbose: bool) -> list[str]:
    lines = _section("REMEDIATION COMMANDS", style)
    if not steps:
        lines.append("  (none)")
    for step in steps:
        if verbose:
            lines.append(f"  # {step.reason}")
        lines.append(f"  {step.line}")
    return lines


def _overall(report: Report, style: Style) -> str:
    issues = report.issue_count
    if not issues:
        return f"OVERALL: {style.status(OK)}"
    noun = "issue" if issues == 1 else "issues"
    return f"OVERALL: {style.status(MISMATCH)} ({issues} {noun} found)"


def account_report(report: Report, style: Style, verbose: bool) -> list[str]:
    """The sectioned report of a single account."""
    diag = report.accounts[0]
    lines = [RULE, style(f"SLURM Account Diagnostic: {diag.account}", "bold"), RULE]
    lines += _slurm(diag, report.cluster, style)
    lines += _waldur(diag, report, style)
    lines += _policy(diag, style)
    lines += _checks(diag, style, verbose)
    lines += _steps(report.steps(), style, verbose)
    return [*lines, "", _overall(report, style), RULE]


def table_report(report: Report, style: Style, verbose: bool) -> list[str]:
    """One line per allocation, the summary, the remediation and the overall verdict."""
    offering = report.offering
    lines = [RULE, style(f"SLURM Allocations of {offering.name} ({offering.uuid})", "bold"), RULE]
    width = max([len("ACCOUNT"), *(len(a.account) for a in report.accounts)]) + 2
    lines.append(f"  {'ACCOUNT':<{width}}{'STATUS':<10}MISMATCHING FIELDS")
    for diag in report.accounts:
        fields = ", ".join(c.field for c in diag.issues)
        status = diag.status
        pad = " " * (10 - len(status))
        lines.append(f"  {diag.account:<{width}}{style.status(status)}{pad}{fields}".rstrip())
    summary = report.summary()
    lines += [
        "",
        f"  {_count(summary['checked'], 'allocation')} checked: {summary['ok']} OK, "
        f"{summary['mismatch']} mismatching ({_count(summary['issues'], 'issue')})",
    ]
    lines += _steps(report.steps(), style, verbose)
    return [*lines, "", _overall(report, style), RULE]


def render(report: Report, style: Style, verbose: bool) -> list[str]:
    """The report: one account in sections, or the table of ``--all``."""
    body = account_report if report.mode == "account" else table_report
    return body(report, style, verbose)


def render_fix(report: Report, style: Style, verbose: bool) -> list[str]:
    """What ``--fix`` did, then the check after it."""
    fix = report.fix
    if fix is None:
        return []
    lines = ["", style("FIX", "bold"), LINE]
    if fix.declined:
        lines.append("  Not applied: declined.")
    elif not fix.applied and fix.error is None:
        lines.append("  Nothing to apply.")
    else:
        lines += [f"  applied: {line}" for line in fix.applied]
        if fix.error:
            lines.append(f"  {style('FAILED', 'red')}: {fix.error}")
    if report.after_fix is not None:
        lines += ["", style("CHECK AFTER FIX", "bold"), *render(report.after_fix, style, verbose)]
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun if number == 1 else noun + 's'}"
