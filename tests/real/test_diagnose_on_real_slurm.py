"""The diagnostic once on the real SLURM of scripts/real-slurm.sh.

The real agent creates the scenario's allocations; the diagnostic finds them in sync,
then names a limit and a QoS changed by hand with the exact cluster-scoped command,
and ``--fix --yes`` puts them back, as real ``sacctmgr`` shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.e2e.conftest import Agent, agent_config, demo_scenario
from tests.real.conftest import DEMO_USERS, USERS, assoc_rows, real_settings, run, stack
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

pytestmark = pytest.mark.real_slurm

SCRIPT = Path(sys.executable).parent / "waldur_site_diagnose_slurm_account"
SCHEMA = Path(__file__).resolve().parents[2] / "waldur_site_agent_slurm/diagnose/report.schema.json"


def diagnose(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_diagnose_and_fix_an_allocation_on_real_slurm(tmp_path: Path, tag: str) -> None:
    scenario = load_scenario(demo_scenario(tmp_path / "scenario.yaml", DEMO_USERS))
    with StandIn(scenario) as standin:
        config = agent_config(tmp_path / "agent.yaml", standin.api_url, **real_settings(tag))
        Agent(config, {}).run("order_process")
        account = f"a{tag}_flood-model"

        in_sync = diagnose(config, account)
        assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
        assert f"[OK]       users: {USERS[0]},{USERS[1]} ==" in in_sync.stdout

        run(
            "sacctmgr",
            "-i",
            "modify",
            "account",
            "where",
            f"name={account}",
            f"cluster={stack().cluster}",
            "set",
            "GrpTRESMins=cpu=10",
            "QOS=blocked",
            "DefaultQOS=blocked",
        )
        drifted = diagnose(config, account, "--json")
        assert drifted.returncode == 1, drifted.stdout + drifted.stderr
        document = json.loads(drifted.stdout)
        jsonschema.validate(document, json.loads(SCHEMA.read_text()))
        assert document["accounts"][0]["remediation"] == [
            f"sacctmgr --immediate modify account where name={account} cluster={stack().cluster} "
            "set GrpTRESMins=cpu=6000 QOS=normal DefaultQOS=normal"
        ]

        fixed = diagnose(config, account, "--fix", "--yes")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        row = next(r for r in assoc_rows(account) if r[1] == "")
        assert "cpu=6000" in row[3].split(",")
        assert row[5] == "normal"
