"""Periodic limits over a real broker: ``waldur_site_agent -m event_process`` end to end.

The real agent runs as a site starts it, against the Waldur stand-in and the RabbitMQ of
scripts/rabbitmq.sh. Its start-up order cycle creates the scenario's allocations; the
test then publishes ``resource_periodic_limits`` messages to the offering's queue the
way Waldur Mastermind does (``mastermind-periodic-policy.md`` §6), and checks SLURM's
associations and the ``report-command-result`` calls the stand-in receives.

Expected figures are computed here from Mastermind's documented formulas (§2) and the
offering's units, not by the plugin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker import publish, purge
from tests.broker.conftest import rabbitmq  # noqa: F401 - the broker tier's guard fixture
from tests.e2e import events
from tests.e2e.conftest import FLOOD, SKY
from tests.e2e.events import (
    CARRYOVER_FACTOR,
    GRACE,
    POLICY,
    READY,
    SUBSCRIBED,
    event_config,
    message,
    policy_scenario,
)
from tests.emulator.conftest import sacctmgr
from tests.mastermind import Policy, expected_grp_tres_mins
from tests.real.conftest import DEMO_USERS, real_settings, run, stack
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentProcess, start_agent
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario
from waldur_site_agent_slurm.slurm.parser import parse_tres

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.usefixtures("rabbitmq")]

REPORT_WAIT = 60  # seconds for one message to be applied and reported

# A monthly Mastermind policy: grace 0.2, carry-over factor 50, billing on with its
# default weights. The scenario's resources have limits cpu 100, mem 200, gpu 10 (hours).
BASE = {"cpu": 100.0, "mem": 200.0, "gpu": 10.0}
MASTERMIND = Policy(BASE, grace=GRACE, carryover_factor=CARRYOVER_FACTOR)
EMULATOR_CLUSTER = "default"  # cluster_name of examples/emulator-config.yaml


# ---- what Mastermind sends --------------------------------------------------------------


def mastermind_settings(previous_usage: dict[str, float], *, reset: bool) -> dict[str, Any]:
    """``calculate_slurm_settings`` for the scenario's limits (§2 of the policy sheet)."""
    return MASTERMIND.settings(previous_usage, previous_period="2026-04", reset=reset)


def modify_line(account: str, fields: str, *, cluster: str = EMULATOR_CLUSTER) -> str:
    where = f"name={account}" + (f" cluster={cluster}" if cluster else "")
    return f"sacctmgr --immediate modify account where {where} set {fields}"


def changes_line(account: str, before: tuple[str, dict[str, int]], settings: dict[str, Any]) -> str:
    """The modify command for what differs between ``before`` and ``settings``."""
    fields = []
    if before[0] != str(settings["fairshare"]):
        fields.append(f"Fairshare={settings['fairshare']}")
    wanted = expected_grp_tres_mins(settings)
    differ = {k: v for k, v in sorted(wanted.items()) if before[1].get(k) != v}
    if differ:
        fields.append("GrpTRESMins=" + ",".join(f"{k}={v}" for k, v in differ.items()))
    return modify_line(account, " ".join(fields))


def limits_line(settings: dict[str, Any]) -> str:
    tres = ",".join(f"{k}={v}" for k, v in sorted(expected_grp_tres_mins(settings).items()))
    return f"Fairshare={settings['fairshare']} GrpTRESMins={tres}"


def first_apply_report(
    resource: dict[str, Any],
    account: str,
    settings: dict[str, Any],
    *,
    cluster: str = EMULATOR_CLUSTER,
) -> dict[str, Any]:
    """The result a first apply with a RawUsage reset reports: one modify, then the reset."""
    return {
        "resource_uuid": str(uuid.UUID(resource["uuid"])),
        "success": True,
        "error_message": "",
        "mode": "production",
        "commands_executed": [
            modify_line(account, limits_line(settings), cluster=cluster),
            modify_line(account, "RawUsage=0", cluster=cluster),
        ],
    }


# ---- the stand-in, the agent and SLURM ------------------------------------------------------


def reports(standin: StandIn) -> list[dict[str, Any]]:
    return standin.state.command_results()


def wait_for_reports(standin: StandIn, agent: AgentProcess, count: int) -> list[dict[str, Any]]:
    """Wait until the stand-in holds ``count`` command results (and no more); their bodies."""
    found = events.wait_for_reports(standin, agent, count, timeout=REPORT_WAIT)
    assert len(found) == count, found
    return found


def send(
    standin: StandIn, agent: AgentProcess, body: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Publish one message; return its report and the agent's log records meanwhile."""
    seen_reports = len(reports(standin))
    seen_records = len(agent.snapshot().records)
    publish(body)
    report = wait_for_reports(standin, agent, seen_reports + 1)[-1]
    return report, agent.snapshot().records[seen_records:]


def errors(records: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("event", "")) for r in records if r.get("level") == "error"]


def skipped_resets(records: list[dict[str, Any]]) -> list[str]:
    """The agent's log lines saying a requested RawUsage reset did not run, and why."""
    return [str(r["event"]) for r in records if str(r.get("event", "")).startswith("RawUsage of ")]


def executed(records: list[dict[str, Any]]) -> list[str]:
    """The SLURM changes the agent logged having run."""
    prefix = "Executed: "
    return [
        str(r["event"])[len(prefix) :]
        for r in records
        if str(r.get("event", "")).startswith(prefix)
    ]


def account_settings(read: Callable[..., str], account: str, *where: str) -> tuple[str, dict]:
    """(Fairshare, GrpTRESMins) of ``account``'s own association, as sacctmgr shows it."""
    out = read("-P", "-n", "show", "assoc", *where, "format=Account,User,Fairshare,GrpTRESMins")
    for line in out.splitlines():
        name, user, fairshare, grp = line.split("|")
        if name == account and not user:
            return fairshare, parse_tres(grp)
    raise AssertionError(f"no association of {account}: {out!r}")


def emulator_account(account: str) -> tuple[str, dict]:
    return account_settings(sacctmgr, account)


@pytest.fixture
def queue() -> Iterator[None]:
    """An empty offering queue before and after the test."""
    purge()
    yield
    purge()


@pytest.fixture
def policy_standin(tmp_path: Path) -> Iterator[StandIn]:
    with StandIn(load_scenario(policy_scenario(tmp_path / "scenario.yaml"))) as server:
        yield server


@pytest.fixture
def event_agent(
    policy_standin: StandIn, emulator: Path, queue: None, tmp_path: Path
) -> Iterator[AgentProcess]:
    """The real agent in event_process mode, subscribed to the queue."""
    config = event_config(
        tmp_path / "agent-config.yaml",
        policy_standin.api_url,
        {"state_dir": str(tmp_path / "periodic-state")},
    )
    with start_agent("event_process", config) as agent:
        agent.wait_for_log(SUBSCRIBED)
        agent.wait_for_log(READY)
        yield agent
        finished = agent.stop()
    assert finished.returncode == 0, finished.output[-3000:]


# ---- emulator ---------------------------------------------------------------------------------


def test_a_periodic_message_is_applied_and_reported_then_a_resend_changes_nothing(
    policy_standin: StandIn, event_agent: AgentProcess
) -> None:
    standin = policy_standin
    flood = standin.state.resource_by_name(FLOOD)
    assert (flood["state"], flood["backend_id"]) == ("OK", "a_flood-model")
    sky_before = emulator_account("a_sky-survey")
    # April: 80 CPU-hours, all the memory, no GPU used → CPU and GPU carry over.
    settings = mastermind_settings({"cpu": 80.0, "mem": 200.0, "gpu": 0.0}, reset=True)
    assert settings["grp_tres_mins"] == {"cpu": 8640, "mem": 14400, "gpu": 1080, "billing": 162}
    assert settings["fairshare"] == 111

    report, records = send(standin, event_agent, message(flood, settings))

    assert report == first_apply_report(flood, "a_flood-model", settings)
    assert errors(records) == []
    assert executed(records) == report["commands_executed"]
    assert emulator_account("a_flood-model") == ("111", expected_grp_tres_mins(settings))
    assert emulator_account("a_sky-survey") == sky_before
    [stored] = standin.state.command_results()
    assert (stored["policy_uuid"], stored["user_agent"]) == (uuid.UUID(POLICY).hex, "site-agent")

    # The same message again (Mastermind re-sends after its hash cache expires).
    before = emulator_account("a_flood-model")
    again, records = send(standin, event_agent, message(flood, settings))

    assert again == {**report, "commands_executed": []}
    assert errors(records) == []
    assert executed(records) == []
    # Waldur's report body has no field for it; the agent's log says why nothing was reset.
    assert skipped_resets(records) == [
        "RawUsage of a_flood-model not reset: already reset for period 2026-05"
    ]
    assert emulator_account("a_flood-model") == before


# (case, settings, message changes, what the error must name)
MALFORMED: list[tuple[str, Any, dict[str, Any], str]] = [
    (
        "unknown component",
        {"grp_tres_mins": {"cpu": 6000, "tpu": 600}},
        {},
        "unknown component 'tpu' in grp_tres_mins",
    ),
    ("negative limit", {"grp_tres_mins": {"cpu": -6000}}, {}, "must not be negative"),
    (
        "non-numeric fairshare",
        {"fairshare": "plenty", "grp_tres_mins": {"cpu": 6000}},
        {},
        "fairshare",
    ),
    ("non-numeric limit", {"grp_tres_mins": {"cpu": "6000 minutes"}}, {}, "grp_tres_mins.cpu"),
    (
        "limit key of another limit type",
        {"limit_type": "GrpTRESMins", "max_tres_mins": {"cpu": 6000}},
        {},
        "max_tres_mins present but limit_type is GrpTRESMins",
    ),
    ("settings not a mapping", "fairshare=500", {}, "must be a mapping"),
    ("missing backend_id", {"grp_tres_mins": {"cpu": 6000}}, {"backend_id": None}, "backend_id"),
    ("unknown action", {"grp_tres_mins": {"cpu": 6000}}, {"action": "apply"}, "invalid action"),
    (
        "unknown account",
        {"grp_tres_mins": {"cpu": 6000}},
        {"backend_id": "a_no-such-allocation"},
        "a_no-such-allocation does not exist",
    ),
]


def test_bad_messages_are_reported_as_failed_and_the_agent_keeps_applying_good_ones(
    policy_standin: StandIn, event_agent: AgentProcess
) -> None:
    standin = policy_standin
    flood = standin.state.resource_by_name(FLOOD)
    for n, (case, settings, changes, problem) in enumerate(MALFORMED):
        before = emulator_account("a_flood-model")

        report, records = send(standin, event_agent, message(flood, settings, **changes))

        assert report == {
            "resource_uuid": str(uuid.UUID(flood["uuid"])),
            "success": False,
            "error_message": report["error_message"],
            "mode": "production",
            "commands_executed": [],
        }, case
        assert problem in report["error_message"], (case, report)
        assert "Unexpected" not in report["error_message"], (case, report)
        assert any(problem in e for e in errors(records)), (case, errors(records))
        assert emulator_account("a_flood-model") == before, case

        # The agent keeps consuming: the next valid message is applied.
        good = mastermind_settings({"cpu": 60.0 + 5 * n}, reset=False)
        expected = changes_line("a_flood-model", before, good)
        report, records = send(standin, event_agent, message(flood, good))
        assert report["success"] is True, (case, report)
        assert report["commands_executed"] == [expected], case
        assert errors(records) == [], case
        assert emulator_account("a_flood-model") == (
            str(good["fairshare"]),
            expected_grp_tres_mins(good),
        ), case
    assert event_agent.process.poll() is None


def test_a_zero_billing_limit_is_refused_and_reported_while_the_rest_is_applied(
    policy_standin: StandIn, event_agent: AgentProcess
) -> None:
    """Mastermind's ``billing: 0`` pitfall (policy sheet §6 example 3, §9.1)."""
    standin = policy_standin
    flood = standin.state.resource_by_name(FLOOD)
    fairshare, limits = emulator_account("a_flood-model")
    assert "billing" not in limits

    report, records = send(
        standin,
        event_agent,
        message(flood, {"limit_type": "GrpTRESMins", "grp_tres_mins": {"cpu": 9000, "billing": 0}}),
    )

    assert report["success"] is False
    assert "billing=0" in report["error_message"]
    assert report["commands_executed"] == [modify_line("a_flood-model", "GrpTRESMins=cpu=9000")]
    assert any("billing=0" in e for e in errors(records)), errors(records)
    assert emulator_account("a_flood-model") == (fairshare, {**limits, "cpu": 9000})


def test_messages_for_two_allocations_change_each_its_own_account(
    policy_standin: StandIn, event_agent: AgentProcess
) -> None:
    standin = policy_standin
    flood = standin.state.resource_by_name(FLOOD)
    sky = standin.state.resource_by_name(SKY)
    flood_settings = mastermind_settings({"cpu": 100.0, "mem": 200.0, "gpu": 10.0}, reset=False)
    sky_settings = mastermind_settings({}, reset=False)

    publish(message(flood, flood_settings))
    publish(message(sky, sky_settings))
    bodies = wait_for_reports(standin, event_agent, 2)

    assert [b["resource_uuid"] for b in bodies] == [
        str(uuid.UUID(flood["uuid"])),
        str(uuid.UUID(sky["uuid"])),
    ]
    assert all(b["success"] for b in bodies), bodies
    assert emulator_account("a_flood-model") == (
        str(flood_settings["fairshare"]),
        expected_grp_tres_mins(flood_settings),
    )
    assert emulator_account("a_sky-survey") == (
        str(sky_settings["fairshare"]),
        expected_grp_tres_mins(sky_settings),
    )


def test_a_message_without_policy_uuid_is_applied_but_cannot_be_reported(
    policy_standin: StandIn, event_agent: AgentProcess
) -> None:
    """Mastermind's first (v1) messages carry no policy_uuid (policy sheet §4)."""
    standin = policy_standin
    flood = standin.state.resource_by_name(FLOOD)
    settings = mastermind_settings({}, reset=False)
    seen = len(event_agent.snapshot().records)

    publish(message(flood, settings, policy_uuid=None))

    event_agent.wait_for_log("Successfully applied periodic settings", after=seen)
    event_agent.wait_for_log("No policy_uuid in periodic limits message", after=seen)
    assert standin.state.command_results() == []
    assert standin.state.writes(path_contains="report-command-result") == []
    assert emulator_account("a_flood-model") == (
        str(settings["fairshare"]),
        expected_grp_tres_mins(settings),
    )


# ---- real SLURM -------------------------------------------------------------------------------


@pytest.mark.real_slurm
@pytest.mark.usefixtures("queue")
def test_a_periodic_message_reaches_real_slurm_and_is_reported(tmp_path: Path, tag: str) -> None:
    scenario = load_scenario(policy_scenario(tmp_path / "scenario.yaml", DEMO_USERS))
    with StandIn(scenario) as standin:
        config = event_config(
            tmp_path / "agent.yaml",
            standin.api_url,
            {"state_dir": str(tmp_path / "periodic-state")},
            **real_settings(tag),
        )
        account = f"a{tag}_flood-model"
        with start_agent("event_process", config) as agent:
            agent.wait_for_log(SUBSCRIBED)
            agent.wait_for_log(READY)
            flood = standin.state.resource_by_name(FLOOD)
            assert flood["backend_id"] == account
            settings = mastermind_settings({"cpu": 80.0, "mem": 200.0, "gpu": 0.0}, reset=True)

            report, records = send(standin, agent, message(flood, settings))

            assert report == first_apply_report(flood, account, settings, cluster=stack().cluster)
            assert errors(records) == []
            real = account_settings(
                lambda *a: run("sacctmgr", *a).stdout,
                account,
                "where",
                f"account={account}",
                f"cluster={stack().cluster}",
            )
            assert real == ("111", expected_grp_tres_mins(settings))

            again, _ = send(standin, agent, message(flood, settings))
            assert again["success"] is True
            assert again["commands_executed"] == []
            finished = agent.stop()
        assert finished.returncode == 0, finished.output[-3000:]
