"""Periodic settings are read back once after the write and compared with the plan.

sacctmgr can say "Modified" and store something else: 22.05 and 24.11 answer
``GrpTRESMins=cpu=abc`` with an error on stderr, exit 0, and store cpu=0. An apply
fails when SLURM does not hold what the plan wrote, naming field, expected and actual.
"""

from __future__ import annotations

from pathlib import Path

from tests.captures import load
from tests.test_periodic import APPLIED_GRP, READ, SET, backend, fake, message
from waldur_site_agent_slurm.periodic.plan import Action, Mismatch, Plan, unapplied
from waldur_site_agent_slurm.slurm import parser

WRITE = [*SET, "Fairshare=500", f"GrpTRESMins={APPLIED_GRP}"]


def test_a_write_slurm_stored_differently_fails_the_apply_naming_field_expected_and_actual(
    tmp_path: Path,
) -> None:
    runner = fake()
    runner.stored[f"GrpTRESMins={APPLIED_GRP}"] = "GrpTRESMins=cpu=0"
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert runner.calls == [READ, WRITE, READ]  # one read back, not one per field
    assert result["success"] is False
    assert result["error"] == (
        "SLURM did not store the settings written to alloc-1: GrpTRESMins billing: expected "
        "14400, SLURM has unset; GrpTRESMins cpu: expected 60000000, SLURM has 0; GrpTRESMins "
        "gres/gpu: expected 300, SLURM has unset; GrpTRESMins mem: expected 614400, SLURM has "
        "unset"
    )
    assert result["commands_executed"] == [" ".join(WRITE)]


def test_a_fairshare_slurm_did_not_keep_fails_the_apply(tmp_path: Path) -> None:
    runner = fake(fairshare="500", grp=APPLIED_GRP)
    runner.stored["Fairshare=7"] = "Fairshare=500"
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message(fairshare=7))
    assert runner.writes == [[*SET, "Fairshare=7"]]
    assert result["success"] is False
    assert result["error"].endswith("Fairshare: expected 7, SLURM has 500")


def test_a_write_stored_as_asked_passes_the_read_back(tmp_path: Path) -> None:
    runner = fake(grp="cpu=60000000,billing=100")
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert result["success"] is True, result["error"]
    assert runner.accounts["alloc-1"]["GrpTRESMins"] == APPLIED_GRP


def test_an_account_gone_after_the_write_fails_the_apply(tmp_path: Path) -> None:
    runner = fake()
    real_modify = runner._modify

    def modify_then_vanish(argv: list[str]) -> None:
        real_modify(argv)
        del runner.accounts["alloc-1"]

    runner._modify = modify_then_vanish  # type: ignore[method-assign]
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert result["success"] is False
    assert "alloc-1 vanished from SLURM" in result["error"]


def test_24_11_error_with_exit_0_on_the_write_fails_before_any_read_back(tmp_path: Path) -> None:
    bad = load("24.11", "extra/sacctmgr_modify_account_bad_value")
    runner = fake()
    runner.failures["modify account"] = (bad.exit, bad.stdout, bad.stderr)
    result = backend(runner, tmp_path).apply_periodic_settings("alloc-1", message())
    assert runner.calls == [READ, WRITE]
    assert result["success"] is False
    assert "Invalid unit type" in result["error"]
    assert result["commands_executed"] == []


# ---- unapplied: the comparison itself -------------------------------------------------------


def record(**fields: str) -> parser.AssociationRecord:
    columns = {"Account": "alloc-1", "ParentName": "proj-1", **fields}
    line = "|".join(columns.get(name, "") for name in parser.ASSOC_FIELDS)
    return parser.parse_associations([line])[0]


def plan(*changes: tuple[str, str]) -> Plan:
    return Plan("alloc-1", tuple(Action(name, value, "why") for name, value in changes))


def test_qos_lists_compare_without_order_and_the_default_qos_exactly() -> None:
    wanted = plan(("QOS", "slowdown,normal"), ("DefaultQOS", "slowdown"))
    assert unapplied(wanted, record(QOS="normal,slowdown", DefaultQOS="slowdown")) == []
    assert unapplied(wanted, record(QOS="normal", DefaultQOS="normal")) == [
        Mismatch("QOS", "slowdown,normal", "normal"),
        Mismatch("DefaultQOS", "slowdown", "normal"),
    ]


def test_memory_written_in_megabytes_matches_slurms_printed_units() -> None:
    # The plan writes mem in MB-minutes; SLURM prints mem=600G for 614400.
    assert unapplied(plan(("GrpTRESMins", "mem=614400")), record(GrpTRESMins="mem=600G")) == []


def test_a_cleared_tres_must_be_gone_and_other_tres_are_not_judged() -> None:
    wanted = plan(("MaxTRESMins", "cpu=-1"))
    assert unapplied(wanted, record(MaxTRESMins="gres/gpu=5")) == []
    assert unapplied(wanted, record(MaxTRESMins="cpu=5")) == [
        Mismatch("MaxTRESMins cpu", "unset", "5")
    ]


def test_grp_tres_is_compared_as_well() -> None:
    assert unapplied(plan(("GrpTRES", "gres/gpu=2")), record(GrpTRES="gres/gpu=1")) == [
        Mismatch("GrpTRES gres/gpu", "2", "1")
    ]
