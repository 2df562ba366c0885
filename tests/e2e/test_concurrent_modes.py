"""report, membership_sync and event_process at the same time against one real SLURM.

The three real agent processes share the cluster and the periodic state directory.
While membership sync restores the allocation (Waldur's flags: no pause) and report
reads usage, a periodic message arrives whose usage threshold the allocation has
crossed. Whatever order their commands land in, SLURM must end on what the last
decisions ask for: the message's Fairshare and limits, and the stricter of the two QoS
levels (slowdown); the usage report must hold every second of the job.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.broker import publish, purge
from tests.broker.conftest import rabbitmq  # noqa: F401 - the broker tier's guard fixture
from tests.e2e.conftest import FLOOD, SKY
from tests.e2e.events import (
    READY,
    SUBSCRIBED,
    event_config,
    message,
    policy_scenario,
    wait_for_reports,
)
from tests.real.conftest import (  # noqa: F401 - real_slurm is a fixture
    DEMO_USERS,
    USERS,
    assoc_rows,
    fairshare,
    real_settings,
    real_slurm,
    remove_accounts,
    run,
    stack,
    submit,
    wait_finished,
)
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentRun, run_agent_cycle, start_agent
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario
from waldur_site_agent_slurm.slurm.parser import parse_tres

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.broker,
    pytest.mark.real_slurm,
    pytest.mark.usefixtures("rabbitmq", "real_slurm"),
]


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag for the account names, an empty queue; accounts and messages go afterwards."""
    tag = uuid.uuid4().hex[:6]
    purge()
    yield tag
    purge()
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    ours = [a for a in out.split() if a[1:].startswith(tag + "_")]
    remove_accounts(sorted(ours, key=lambda a: "apc".index(a[0])))


def association(account: str) -> list[str]:
    return next(row for row in assoc_rows(account) if not row[1])


def test_three_modes_at_once_leave_slurm_as_the_last_decisions_ask(
    tmp_path: Path, tag: str
) -> None:
    scenario = load_scenario(policy_scenario(tmp_path / "scenario.yaml", DEMO_USERS))
    with StandIn(scenario) as standin:
        config = event_config(
            tmp_path / "agent.yaml",
            standin.api_url,
            {"state_dir": str(tmp_path / "state"), "threshold_qos": True, "period": "month"},
            cpu_minutes=True,
            **real_settings(tag),
        )

        with start_agent("event_process", config) as events:
            events.wait_for_log(SUBSCRIBED)
            events.wait_for_log(READY)  # its start-up cycles created the accounts
            flood = standin.state.resource_by_name(FLOOD)
            account = flood["backend_id"]
            sky = standin.state.resource_by_name(SKY)["backend_id"]
            code, job = submit(USERS[0], account, "-n2", wrap="sleep 2")
            assert code == 0, job
            wait_finished([job])
            elapsed, tres = (
                run("sacct", "-X", "-n", "-P", "-j", job, "--noconvert",
                    "--format=ElapsedRaw,AllocTRES").stdout.strip().split("|")
            )  # fmt: skip
            cpu_minutes = Decimal(int(dict(t.split("=") for t in tres.split(","))["cpu"]))
            cpu_minutes *= Decimal(int(elapsed)) / 60
            assert cpu_minutes * 60 >= 1  # over the 1 node-minute threshold below

            # The usage of this month crosses qos_threshold (downscale) but not grace.
            settings: dict[str, Any] = {
                "fairshare": 77,
                "limit_type": "GrpTRESMins",
                "grp_tres_mins": {"cpu": 60_000, "gpu": 600},
                "qos_threshold": {"node": 1},
                "grace_limit": {"node": 10**9},
            }
            finished: dict[str, AgentRun] = {}

            def cycle(mode: str) -> None:
                finished[mode] = run_agent_cycle(mode, config)

            threads = [
                threading.Thread(target=cycle, args=(mode,))
                for mode in ("membership_sync", "report")
            ]
            for thread in threads:
                thread.start()
            publish(message(flood, settings))
            [report] = wait_for_reports(standin, events, 1, timeout=120)
            for thread in threads:
                thread.join(timeout=300)
            assert report["success"] is True, report
            for mode, result in finished.items():
                assert result.returncode == 0, (mode, result.output[-3000:])
                assert result.messages("error") == [], (mode, result.messages("error"))

            # The last decisions: the message's settings, and the stricter QoS level.
            row = association(account)
            assert row[5:7] == ["slowdown", "slowdown"], row
            assert fairshare(account) == "77"
            assert parse_tres(row[3]) == {"cpu": 1000, "gres/gpu": 600, "mem": 200 * 61440}
            assert {r[1] for r in assoc_rows(account)} == {"", USERS[0], USERS[1]}
            assert association(sky)[6] in ("", "normal")  # the other allocation untouched

            # Membership sync again, alone: restore never undoes the threshold's QoS.
            assert run_agent_cycle("membership_sync", config).returncode == 0
            assert association(account)[5:7] == ["slowdown", "slowdown"]
            finished_events = events.stop()
        assert finished_events.returncode == 0, finished_events.output[-3000:]

        month = datetime.now(UTC).date().replace(day=1).isoformat()
        used = {
            u["username"]: Decimal(str(u["usage"]))
            for u in standin.state.user_usages(flood["uuid"])
            if u["component_type"] == "cpu" and u["billing_period"][:10] == month
        }
        assert used == {USERS[0]: cpu_minutes.quantize(Decimal("0.01"), ROUND_HALF_UP)}
