"""slurmdbd stopped in the middle of an order, a report cycle and a periodic apply.

A tripwire ``slurm_bin_path`` (``tests/real/slurmdbd.py``) runs the real commands and
stops slurmdbd just before a chosen one, so the fault lands at the same step every
time. Each test checks that the agent says clearly what failed, claims nothing it did
not do, and that the first cycle after slurmdbd is back converges.

These tests stop a daemon everyone on this machine shares: outside CI they skip while
another pytest process runs, and slurmdbd is always started again afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from waldur_site_agent.backend.exceptions import BackendNotReadyError

from tests.e2e.conftest import FLOOD, SKY, Agent, agent_config, demo_scenario
from tests.real import slurmdbd
from tests.real.conftest import (
    DEMO_USERS,
    USERS,
    assoc_rows,
    real_backend,
    real_settings,
    remove_accounts,
    run,
    stack,
    submit,
    wait_finished,
)
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario
from waldur_site_agent_slurm.errors import SlurmUnavailableError
from waldur_site_agent_slurm.periodic.state import StateStore
from waldur_site_agent_slurm.slurm.parser import parse_tres
from waldur_site_agent_slurm.slurm.runner import CommandRunner

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

pytestmark = pytest.mark.real_slurm

# What sacctmgr and sacct print (22.05 and 24.11 alike) while slurmdbd is down (sacct adds
# "Problem talking to the database: Connection refused", sacctmgr does not).
DOWN = "Sending PersistInit msg: Connection refused"


@pytest.fixture
def dbd() -> Iterator[None]:
    """This test may stop slurmdbd; it runs again when the test ends, whatever happened."""
    with slurmdbd.exclusive():
        yield


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag for this test's account names; its accounts go afterwards, slurmdbd up first."""
    tag = uuid.uuid4().hex[:6]
    yield tag
    if not slurmdbd.running():
        slurmdbd.start()
    remove_accounts(sorted(our_accounts(tag), key=lambda a: "apc".index(a[0])))


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    """The demo scenario with the real test users."""
    with StandIn(load_scenario(demo_scenario(tmp_path / "scenario.yaml", DEMO_USERS))) as server:
        yield server


def real_agent(path: Path, api_url: str, tag: str, bin_path: Path | str | None = None) -> Agent:
    """The agent on the real SLURM, with this test's prefixes; CPU is reported in minutes."""
    return Agent(agent_config(path, api_url, cpu_minutes=True, **real_settings(tag, bin_path)), {})


def our_accounts(tag: str) -> set[str]:
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    return {a for a in out.split() if a[1:].startswith(tag + "_")}


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ---- what SLURM prints while slurmdbd is down ---------------------------------------------


@pytest.mark.usefixtures("dbd")
def test_every_command_the_plugin_runs_reads_as_slurm_unavailable_while_slurmdbd_is_down(
    names: dict[str, str],
) -> None:
    account = names["slug"]
    runner = CommandRunner(bin_path=stack().bin, timeout=60)
    read = ["sacctmgr", "--parsable2", "--noheader"]
    commands: list[tuple[list[str], bool]] = [
        ([*read, "show", "cluster", "format=Cluster"], False),
        ([*read, "show", "assoc", "where", f"cluster={stack().cluster}", "format=Account"], False),
        ([*read, "list", "tres", "format=Type,Name"], False),
        ([*read, "show", "qos", "format=Name"], False),
        ([*read, "list", "user", "where", f"name={USERS[0]}", "format=User"], False),
        (["sacctmgr", "--immediate", "add", "account", account, "Parent=root"], True),
        (["sacctmgr", "--immediate", "modify", "account", "where", f"name={account}",
          "set", "Fairshare=5"], True),
        (["sacctmgr", "--immediate", "delete", "account", "where", f"name={account}"], True),
        (["sacct", "--parsable2", "--noheader", "--allusers", "--starttime=now-1hour",
          f"--accounts={account}", "--format=JobID", f"--clusters={stack().cluster}"], False),
    ]  # fmt: skip
    slurmdbd.stop()
    errors = []
    for argv, mutating in commands:
        with pytest.raises(SlurmUnavailableError) as caught:
            if argv[0] == "sacct":
                list(runner.stream(argv))
            else:
                runner.run(argv, mutating=mutating, accept_nothing=mutating)
        assert isinstance(caught.value, BackendNotReadyError)
        assert " ".join(argv[1:]) in str(caught.value)
        errors.append(caught.value.stderr)

    backend = real_backend()
    assert backend.ping() is False
    assert backend.diagnostics() is False
    slurmdbd.start()
    assert backend.ping() is True
    # The texts this SLURM printed, which the answer classifier recognises; the function
    # that reports the failed connection was renamed after 22.05.
    opener = {"22.05": "slurm_persist_conn_open_without_init"}.get(
        stack().version, "_open_persist_conn"
    )
    persist = f"{opener}: failed to open persistent connection"
    assert all(persist in text and DOWN in text for text in errors), errors


# ---- an order ------------------------------------------------------------------------------


@pytest.mark.usefixtures("dbd")
def test_slurmdbd_stopping_mid_order_leaves_it_open_and_the_next_cycle_adopts_the_accounts(
    standin: StandIn, tmp_path: Path, tag: str
) -> None:
    account = f"a{tag}_flood-model"
    # slurmdbd stops after the customer and project accounts are made, just before the
    # allocation's add account (which carries its limits).
    trip = slurmdbd.tripwire_bin(
        tmp_path / "trip", f"sacctmgr*add*account*{account}' '*GrpTRESMins=*"
    )
    faulty = real_agent(tmp_path / "trip.yaml", standin.api_url, tag, trip)

    first = faulty.run("order_process", expect_ok=False)

    assert (trip / "tripped").exists()
    assert not slurmdbd.running()
    # Waldur was told nothing: no order done or erred, no backend id, no limits.
    assert {o["state"] for o in standin.state.orders()} == {"executing"}
    assert not standin.state.resource_by_name(FLOOD)["backend_id"]
    assert not standin.state.resource_by_name(SKY)["backend_id"]
    for path in ("set_state_done", "set_state_erred", "set_backend_id", "set_limits"):
        assert standin.state.writes(path_contains=path) == [], path
    # The log says what failed and why, naming the command.
    warnings = [m for m in first.messages() if "not ready for processing yet" in m]
    assert any(DOWN in m and f"account {account} " in m and "GrpTRESMins" in m for m in warnings), (
        first.messages()
    )

    slurmdbd.start()
    real_agent(tmp_path / "ok.yaml", standin.api_url, tag).run("order_process")

    assert {o["state"] for o in standin.state.orders()} == {"done"}
    assert standin.state.resource_by_name(FLOOD)["backend_id"] == account
    assert our_accounts(tag) == {
        f"c{tag}_hydro",
        f"c{tag}_astro",
        f"p{tag}_hydro-sim",
        f"p{tag}_astro-sky",
        account,
        f"a{tag}_sky-survey",
    }
    rows = {row[1]: row for row in assoc_rows(account)}
    assert rows[""][2] == f"p{tag}_hydro-sim"
    assert parse_tres(rows[""][3]) == {"cpu": 100, "mem": 200 * 61440, "gres/gpu": 600}
    assert set(rows) == {"", USERS[0], USERS[1]}


# ---- a report cycle -------------------------------------------------------------------------


@pytest.mark.usefixtures("dbd")
def test_slurmdbd_stopping_mid_report_posts_nothing_and_the_next_cycle_reports_the_jobs(
    standin: StandIn, tmp_path: Path, tag: str
) -> None:
    agent = real_agent(tmp_path / "ok.yaml", standin.api_url, tag)
    agent.run("order_process")
    flood = standin.state.resource_by_name(FLOOD)
    account = flood["backend_id"]
    code, job = submit(USERS[0], account, "-n2", wrap="sleep 2")
    assert code == 0, job
    wait_finished([job])
    elapsed, tres = (
        run("sacct", "-X", "-n", "-P", "-j", job, "--noconvert", "--format=ElapsedRaw,AllocTRES")
        .stdout.strip()
        .split("|")
    )
    cpus = int(dict(item.split("=") for item in tres.split(","))["cpu"])
    expected = cents(Decimal(cpus * int(elapsed)) / 60)
    assert expected > 0
    # The association snapshot is read, then slurmdbd stops before the usage is.
    trip = slurmdbd.tripwire_bin(tmp_path / "trip", "'sacct '*")
    faulty = real_agent(tmp_path / "trip.yaml", standin.api_url, tag, trip)
    standin.state.clear_writes()

    first = faulty.run("report", expect_ok=False)

    assert (trip / "tripped").exists()
    assert standin.state.writes(path_contains="usage") == []
    assert standin.state.component_usages(flood["uuid"]) == []
    errors = first.messages("error")
    assert any(DOWN in m and "sacct" in m and account in m for m in errors), first.messages()

    slurmdbd.start()
    agent.run("report")

    month = datetime.now(UTC).date().replace(day=1).isoformat()
    cpu = {
        u["billing_period"][:10]: Decimal(str(u["usage"]))
        for u in standin.state.component_usages(flood["uuid"])
        if u["type"] == "cpu"
    }
    assert cpu[month] == expected
    users = {
        u["username"]: Decimal(str(u["usage"]))
        for u in standin.state.user_usages(flood["uuid"])
        if u["component_type"] == "cpu" and u["billing_period"][:10] == month
    }
    assert users == {USERS[0]: expected}


# ---- a periodic apply -----------------------------------------------------------------------


@pytest.mark.usefixtures("dbd")
def test_slurmdbd_stopping_mid_periodic_apply_reports_what_ran_and_the_resend_converges(
    names: dict[str, str], tmp_path: Path
) -> None:
    account = names["slug"]
    run("sacctmgr", "-i", "add", "account", account, "Parent=root", f"Cluster={stack().cluster}")
    state_dir = tmp_path / "periodic-state"
    periodic = {"enabled": True, "state_dir": str(state_dir), "period": "month"}
    settings: dict[str, Any] = {
        "fairshare": 321,
        "limit_type": "GrpTRESMins",
        "grp_tres_mins": {"cpu": 6000, "billing": 900},
        "reset_raw_usage": True,
    }
    # The first modify (Fairshare, limits) runs; slurmdbd stops before the RawUsage reset.
    trip = slurmdbd.tripwire_bin(tmp_path / "trip", "sacctmgr*RawUsage=0*")
    faulty = real_backend(slurm_bin_path=str(trip), periodic_limits=periodic)

    result = faulty.apply_periodic_settings(account, settings)

    assert (trip / "tripped").exists()
    where = f"where name={account} cluster={stack().cluster} set"
    limits_line = (
        f"sacctmgr --immediate modify account {where} Fairshare=321 GrpTRESMins=billing=900,cpu=100"
    )
    assert result["success"] is False
    assert result["commands_executed"] == [limits_line]
    assert DOWN in result["error"]
    assert f"modify account {where} RawUsage=0" in result["error"]
    state = StateStore(state_dir, stack().cluster).read(account)
    assert state.resets == ()  # the reset did not happen, so it is not recorded

    slurmdbd.start()
    own = next(r for r in assoc_rows(account, "User,Fairshare,GrpTRESMins") if not r[0])
    assert own[1] == "321"  # what the result said ran, did
    assert own[2].startswith("billing=900,cpu=100")
    again = real_backend(periodic_limits=periodic).apply_periodic_settings(account, settings)

    assert again["success"] is True, again
    assert again["commands_executed"] == [f"sacctmgr --immediate modify account {where} RawUsage=0"]
    assert StateStore(state_dir, stack().cluster).read(account).resets == (again["period"],)
    third = real_backend(periodic_limits=periodic).apply_periodic_settings(account, settings)
    assert third["commands_executed"] == []
