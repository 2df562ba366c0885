"""waldur_site_diagnose_slurm_account end to end: the real console script against the
stand-in and the emulator, after the real agent created the scenario's allocations.

Each kind of drift is made by hand with the emulator's sacctmgr (or in Waldur through
the stand-in), then the diagnostic must name it, print the exact command that undoes
it, and ``--fix`` must converge.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.e2e.conftest import FLOOD, SCENARIO, Agent, agent_config
from tests.e2e.slurm_state import Tree
from tests.emulator.conftest import assoc_rows, sacctmgr
from waldur_site_agent_slurm.devtools.standin import StandIn
from waldur_site_agent_slurm.devtools.standin.scenario import parse_scenario

SCRIPT = Path(sys.executable).parent / "waldur_site_diagnose_slurm_account"
SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "waldur_site_agent_slurm"
        / "diagnose"
        / "report.schema.json"
    ).read_text()
)
ACCOUNT = "a_flood-model"
CLUSTER = "default"  # slurm-emulator's cluster: every command is scoped with it
TOKEN = "demo-offering-token"  # noqa: S105 - the scenario's token, looked for in output
WRONG_TOKEN = "not-a-valid-token-4f2a9c"  # noqa: S105
WHERE = f"where name={ACCOUNT} cluster={CLUSTER}"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def diagnose(config: Path, *args: str, stdin: str | None = None, **env: str) -> Run:
    proc = subprocess.run(
        [str(SCRIPT), "-c", str(config), *args],
        capture_output=True,
        text=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def valid(document: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(document, SCHEMA)
    return document


@pytest.fixture
def config(standin: StandIn, emulator: Path, tmp_path: Path) -> Path:
    """The allocations exist: the real agent processed the scenario's Create orders."""
    path = agent_config(tmp_path / "agent-config.yaml", standin.api_url, cluster_name=CLUSTER)
    Agent(path, {}).run("order_process")
    return path


def qos_of(account: str) -> frozenset[str]:
    found = Tree.read(assoc_rows).account(account)
    assert found is not None
    return found.qos


# ---- an account in sync -----------------------------------------------------------------


def test_an_account_in_sync_is_ok_in_every_section(config: Path) -> None:
    result = diagnose(config, ACCOUNT, "-v")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for section in (
        "SLURM CLUSTER",
        "WALDUR MASTERMIND",
        "SLURM POLICY",
        "EXPECTED vs ACTUAL",
        "REMEDIATION COMMANDS",
    ):
        assert section in out
    assert "[MISMATCH]" not in out
    assert "[OK]       GrpTRESMins[cpu]: 6000 == 6000" in out
    assert "[OK]       GrpTRESMins[mem]: 12288000 == 12288000" in out
    assert "[OK]       users: alice,bob == alice,bob" in out
    assert "Units: Waldur: 200 GB-hours -> SLURM: 12288000 TRES-minutes (factor: 61440)" in out
    quiet = diagnose(config, ACCOUNT)
    assert "Units:" not in quiet.stdout  # conversions only with -v
    assert out.rstrip().splitlines()[-2] == "OVERALL: OK"
    assert quiet.stderr == ""  # without -v only warnings are logged, and there are none


def test_verbose_logs_what_it_reads_on_stderr_as_json_info_lines(config: Path) -> None:
    result = diagnose(config, ACCOUNT, "-v")

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {r["level"] for r in records} == {"info"}
    events = [r["event"] for r in records]
    assert f"Reading SLURM associations (one sacctmgr show assoc, cluster {CLUSTER})" in events
    assert f"Waldur resource with backend_id {ACCOUNT}: found" in events


def test_waldur_site_agent_log_level_debug_shows_each_slurm_command(config: Path) -> None:
    result = diagnose(config, ACCOUNT, WALDUR_SITE_AGENT_LOG_LEVEL="DEBUG")

    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(
        r["level"] == "debug" and r["event"].startswith("Executing: sacctmgr --parsable2")
        for r in records
    ), result.stderr


def test_an_invalid_configuration_logs_json_lines_only_and_points_to_check_config(
    config: Path, tmp_path: Path
) -> None:
    settings = yaml.safe_load(config.read_text())
    settings["offerings"][0]["backend_settings"]["command_timeout"] = -3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(settings))

    result = diagnose(bad, ACCOUNT)

    assert result.returncode == 2
    *logs, reason = result.stderr.strip().splitlines()
    assert logs and all(json.loads(line)["level"] == "warning" for line in logs), result.stderr
    assert "command_timeout" in reason
    assert f"waldur_site_diagnose_slurm_account --check-config -c {bad}" in reason


def test_all_allocations_in_sync(config: Path) -> None:
    result = diagnose(config, "--all")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "a_flood-model  OK" in result.stdout
    assert "a_sky-survey   OK" in result.stdout
    assert "2 allocations checked: 2 OK, 0 mismatching (0 issues)" in result.stdout


# ---- each kind of mismatch ------------------------------------------------------------------


def test_changed_limits_are_named_with_the_modify_that_restores_them(config: Path) -> None:
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "GrpTRESMins=cpu=10,mem=5")

    result = diagnose(config, ACCOUNT)

    assert result.returncode == 1
    assert "[MISMATCH] GrpTRESMins[cpu]: 10 != 6000 (expected)" in result.stdout
    assert "[MISMATCH] GrpTRESMins[mem]: 5 != 12288000 (expected)" in result.stdout
    assert "[OK]       GrpTRESMins[gres/gpu]: 600 == 600" in result.stdout
    assert (
        f"  sacctmgr --immediate modify account {WHERE} set GrpTRESMins=cpu=6000,mem=12288000\n"
        in result.stdout
    )
    assert "OVERALL: MISMATCH (2 issues found)" in result.stdout


def test_a_pause_in_waldur_not_yet_applied_is_a_qos_mismatch(
    config: Path, standin: StandIn
) -> None:
    standin.state.update_resource(standin.state.resource_by_name(FLOOD)["uuid"], paused=True)

    result = diagnose(config, ACCOUNT)

    assert result.returncode == 1
    assert "[MISMATCH] qos: normal != blocked (expected)" in result.stdout
    assert (
        f"sacctmgr --immediate modify account {WHERE} set QOS=blocked DefaultQOS=blocked"
        in result.stdout
    )


def test_missing_and_extra_users(config: Path) -> None:
    sacctmgr("-i", "delete", "user", "where", "name=bob", f"account={ACCOUNT}")
    sacctmgr("-i", "add", "user", "mallory", f"Account={ACCOUNT}", f"Cluster={CLUSTER}")

    result = diagnose(config, ACCOUNT)

    assert result.returncode == 1
    assert "[MISMATCH] users: alice,mallory != alice,bob (expected)" in result.stdout
    assert "missing bob; extra mallory" in result.stdout
    steps = result.stdout.split("REMEDIATION COMMANDS")[1]
    # bob had no other association: he gets this allocation as default (policy individual)
    assert (
        f"sacctmgr --immediate add user bob Account={ACCOUNT} DefaultAccount={ACCOUNT} "
        f"Cluster={CLUSTER}" in steps
    )
    assert f"scancel --account={ACCOUNT} --user=mallory --clusters={CLUSTER}" in steps
    # the allocation was mallory's only association: deleting it removes the user
    assert (
        f"sacctmgr --immediate delete user where name=mallory account={ACCOUNT} "
        f"cluster={CLUSTER}" in steps
    )


def test_a_missing_account_is_recreated_by_fix(config: Path) -> None:
    for user in ("alice", "bob"):
        sacctmgr("-i", "delete", "user", "where", f"name={user}", f"account={ACCOUNT}")
    sacctmgr("-i", "delete", "account", "where", f"name={ACCOUNT}")
    assert Tree.read(assoc_rows).account(ACCOUNT) is None

    result = diagnose(config, ACCOUNT)
    assert result.returncode == 1
    assert "[MISMATCH] account: missing != exists (expected)" in result.stdout
    assert (
        f"sacctmgr --immediate add account {ACCOUNT} Description=Flood model 2026 "
        f"Organization=p_hydro-sim Parent=p_hydro-sim Cluster={CLUSTER}" in result.stdout
    )

    fixed = diagnose(config, ACCOUNT, "--fix", "--yes")

    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    tree = Tree.read(assoc_rows)
    account = tree.account(ACCOUNT)
    assert account is not None
    assert account.parent == "p_hydro-sim"
    assert account.grp_tres_mins == {"cpu": 6000, "mem": 12288000, "gres/gpu": 600}
    assert tree.users(ACCOUNT) == {"alice", "bob"}


def test_a_wrong_parent_is_named_and_moved_back(config: Path) -> None:
    sacctmgr("-i", "add", "account", "p_elsewhere", "Parent=root", f"Cluster={CLUSTER}")
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "Parent=p_elsewhere")

    result = diagnose(config, ACCOUNT)
    assert result.returncode == 1
    assert "[MISMATCH] parent: p_elsewhere != p_hydro-sim (expected)" in result.stdout
    assert f"sacctmgr --immediate modify account {WHERE} set Parent=p_hydro-sim" in result.stdout

    assert diagnose(config, ACCOUNT, "--fix", "--yes").returncode == 0
    moved = Tree.read(assoc_rows).account(ACCOUNT)
    assert moved is not None
    assert moved.parent == "p_hydro-sim"


def test_an_account_without_a_waldur_resource_is_reported_not_removed(config: Path) -> None:
    sacctmgr("-i", "add", "account", "a_orphan", "Parent=p_hydro-sim", f"Cluster={CLUSTER}")

    result = diagnose(config, "a_orphan")

    assert result.returncode == 1
    assert "Resource Found:     No" in result.stdout
    assert "[MISMATCH] waldur resource: none" in result.stdout
    assert "(none)" in result.stdout.split("REMEDIATION COMMANDS")[1]


# ---- the periodic usage policy ----------------------------------------------------------------


@pytest.fixture
def policy_config(emulator: Path, tmp_path: Path) -> Any:
    """The scenario with a monthly policy (grace 0.2, no carry-over, billing off)."""
    data = yaml.safe_load(SCENARIO.read_text())
    data["policies"] = [
        {
            "uuid": "11111111222233334444555555555555",
            "period": 1,
            "grace_ratio": 0.2,
            "carryover_enabled": False,
            "tres_billing_enabled": False,
        }
    ]
    with StandIn(parse_scenario(data)) as server:
        path = agent_config(
            tmp_path / "agent-config.yaml",
            server.api_url,
            cluster_name=CLUSTER,
            periodic_limits={
                "enabled": True,
                "state_dir": str(tmp_path / "periodic-state"),
                "period": "month",
            },
        )
        Agent(path, {}).run("order_process")
        yield path


def test_policy_limits_fairshare_and_their_convergence(policy_config: Path) -> None:
    # Create orders set limits × unit_factor; the policy's message (never sent here)
    # asks for cpu 100 h × 60 × 1.2 = 7200, mem 240 GB-h = 14745600 MB-min, gpu 720,
    # and fairshare (100 + 200 + 10) // 3 = 103.
    result = diagnose(policy_config, ACCOUNT, "--json")

    assert result.returncode == 1
    document = valid(result.document)
    flood = document["accounts"][0]
    assert flood["policy"]["found"] is True
    assert flood["policy"]["applied_by_agent"] is True
    checks = {c["field"]: c for c in flood["checks"]}
    assert checks["Fairshare"] | {"units": None} == {
        "field": "Fairshare",
        "status": "MISMATCH",
        "expected": "103",
        "actual": "1",
        "units": None,
    }
    assert checks["GrpTRESMins[cpu]"]["expected"] == "7200"
    assert checks["GrpTRESMins[mem]"]["expected"] == "14745600"
    assert checks["GrpTRESMins[gres/gpu]"]["expected"] == "720"
    assert flood["remediation"] == [
        f"sacctmgr --immediate modify account {WHERE} set Fairshare=103 "
        "GrpTRESMins=cpu=7200,gres/gpu=720,mem=14745600"
    ]

    assert diagnose(policy_config, "--all", "--fix", "--yes").returncode == 0
    assert diagnose(policy_config, ACCOUNT).returncode == 0

    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "Fairshare=7")
    drifted = diagnose(policy_config, ACCOUNT)
    assert drifted.returncode == 1
    assert "[MISMATCH] Fairshare: 7 != 103 (expected)" in drifted.stdout
    assert f"modify account {WHERE} set Fairshare=103\n" in drifted.stdout


# ---- --fix ----------------------------------------------------------------------------------


def test_fix_converges_and_a_second_fix_changes_nothing(config: Path, standin: StandIn) -> None:
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "GrpTRESMins=cpu=10")
    sacctmgr("-i", "add", "user", "mallory", f"Account={ACCOUNT}", f"Cluster={CLUSTER}")
    standin.state.update_resource(standin.state.resource_by_name(FLOOD)["uuid"], downscaled=True)
    planned = diagnose(config, "--all", "--json").document["accounts"][0]["remediation"]

    first = diagnose(config, "--all", "--fix", "--yes", "--json")

    assert first.returncode == 0, first.stdout + first.stderr
    document = valid(first.document)
    assert document["fix"]["applied"] == planned  # the plan is what was printed
    assert document["fix"]["after"]["overall"] == "OK"
    assert document["overall"] == "OK"
    assert qos_of(ACCOUNT) == {"slowdown"}
    before = assoc_rows()

    second = diagnose(config, "--all", "--fix", "--yes", "--json")

    assert second.returncode == 0
    assert second.document["fix"]["applied"] == []
    assert assoc_rows() == before


def test_fix_asks_first_and_a_no_leaves_slurm_alone(config: Path) -> None:
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "GrpTRESMins=cpu=10")
    before = assoc_rows()

    declined = diagnose(config, ACCOUNT, "--fix", stdin="n\n")

    assert declined.returncode == 1
    assert "Apply the 1 command above? [y/N]" in declined.stdout
    assert "Not applied: declined." in declined.stdout
    assert assoc_rows() == before

    accepted = diagnose(config, ACCOUNT, "--fix", stdin="y\n")

    assert accepted.returncode == 0, accepted.stdout
    assert "applied: sacctmgr --immediate modify account" in accepted.stdout
    assert "CHECK AFTER FIX" in accepted.stdout


# ---- JSON, colour, exit codes, secrets -------------------------------------------------------


def test_json_is_one_valid_document_and_nothing_else(config: Path) -> None:
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "GrpTRESMins=cpu=10")

    single = diagnose(config, ACCOUNT, "--json", "-v")
    every = diagnose(config, "--all", "--json")

    assert (single.returncode, every.returncode) == (1, 1)
    one = valid(single.document)  # json.loads refuses anything around the document
    assert one["schema_version"] == 1
    assert one["mode"] == "account"
    assert one["cluster"] == CLUSTER
    assert one["accounts"][0]["status"] == "MISMATCH"
    assert one["summary"] == {"checked": 1, "ok": 0, "mismatch": 1, "issues": 1}
    cpu = next(c for c in one["accounts"][0]["conversions"] if c["tres"] == "cpu")
    assert cpu == {
        "component": "cpu",
        "waldur_amount": 100.0,
        "waldur_unit": "CPU-hours",
        "slurm_field": "GrpTRESMins",
        "tres": "cpu",
        "tres_minutes": 6000,
        "factor": 60.0,
        "source": "resource",
    }
    assert [a["account"] for a in valid(every.document)["accounts"]] == [
        "a_flood-model",
        "a_sky-survey",
    ]
    # -v puts the agent's JSON log lines on stderr; the document is never among them.
    logs = [json.loads(line) for line in single.stderr.splitlines()]
    assert logs and all(r["level"] == "info" and "schema_version" not in r for r in logs)


def test_json_error_document_when_waldur_is_unreachable(config: Path, tmp_path: Path) -> None:
    settings = yaml.safe_load(config.read_text())
    settings["offerings"][0]["waldur_api_url"] = "http://127.0.0.1:9/api/"
    broken = tmp_path / "unreachable.yaml"
    broken.write_text(yaml.safe_dump(settings))

    result = diagnose(broken, ACCOUNT, "--json")

    assert result.returncode == 2
    assert valid(result.document) == {
        "schema_version": 1,
        "overall": "ERROR",
        "error": result.document["error"],
    }
    assert "Waldur unreachable" in result.document["error"]
    assert len(result.stderr.strip().splitlines()) == 1


def run_on_a_terminal(config: Path, *args: str, **env: str) -> str:
    """Run with stdout on a pseudo-terminal; return what it printed there."""
    main, child = pty.openpty()
    with subprocess.Popen(
        [str(SCRIPT), "-c", str(config), *args],
        stdout=child,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
    ) as proc:
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_when_turned_off(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    escape = "\033["

    assert escape in run_on_a_terminal(config, ACCOUNT)
    assert escape not in run_on_a_terminal(config, ACCOUNT, "--no-color")
    assert escape not in run_on_a_terminal(config, ACCOUNT, NO_COLOR="1")
    assert escape not in diagnose(config, ACCOUNT).stdout  # a pipe is not a terminal


def test_exit_2_with_a_one_line_reason_when_it_cannot_diagnose(
    config: Path, tmp_path: Path
) -> None:
    settings = yaml.safe_load(config.read_text())
    offering = settings["offerings"][0]
    second = {**offering, "name": "Second", "waldur_offering_uuid": "0" * 32}
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump({**settings, "offerings": [offering, second]}))
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    sacctmgr_fake = fake_bin / "sacctmgr"
    sacctmgr_fake.write_text(
        "#!/bin/sh\necho 'sacctmgr: error: Problem talking to the database: "
        "Connection refused' >&2\nexit 1\n"
    )
    sacctmgr_fake.chmod(0o755)
    no_slurm = tmp_path / "no-slurm.yaml"
    offering_down = {
        **offering,
        "backend_settings": {
            **offering["backend_settings"],
            "emulator_mode": False,
            "slurm_bin_path": str(fake_bin),
        },
    }
    no_slurm.write_text(yaml.safe_dump({**settings, "offerings": [offering_down]}))

    cases = {
        "missing config": (tmp_path / "nope.yaml", [ACCOUNT], "not found"),
        "ambiguous offering": (two, [ACCOUNT], "several SLURM offerings"),
        "unknown offering": (config, [ACCOUNT, "--offering-uuid", "1" * 32], "no SLURM offering"),
        "bad account name": (config, ["a_flood;rm"], "Invalid account"),
        "SLURM down": (no_slurm, [ACCOUNT], "SLURM unreachable"),
        "nothing anywhere": (config, ["a_no-such"], "no account a_no-such in SLURM"),
    }
    for name, (path, args, reason) in cases.items():
        result = diagnose(path, *args)
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert "could not diagnose" in lines[0]
        assert reason in lines[0], (name, lines[0])
        assert result.stdout == "", name
    both = diagnose(two, ACCOUNT, "--offering-uuid", offering["waldur_offering_uuid"])
    assert both.returncode == 0, both.stderr


def test_the_token_never_appears_in_any_output(config: Path, tmp_path: Path) -> None:
    sacctmgr("-i", "modify", "account", *WHERE.split(), "set", "GrpTRESMins=cpu=10")
    settings = yaml.safe_load(config.read_text())
    settings["offerings"][0]["waldur_api_token"] = WRONG_TOKEN
    wrong = tmp_path / "wrong-token.yaml"
    wrong.write_text(yaml.safe_dump(settings))
    settings["offerings"][0]["waldur_api_token"] = TOKEN
    settings["offerings"][0]["backend_type"] = 42  # invalid: the validation error is shown
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump(settings))

    runs = [
        (TOKEN, diagnose(config, ACCOUNT, "-v")),
        (TOKEN, diagnose(config, "--all", "--json", "-v")),
        (WRONG_TOKEN, diagnose(wrong, ACCOUNT, "-v")),
        (TOKEN, diagnose(invalid, ACCOUNT, "-v")),
    ]

    assert [r.returncode for _, r in runs] == [1, 1, 2, 2]
    assert "401" in runs[2][1].stderr
    for token, result in runs:
        assert token not in result.stdout + result.stderr
