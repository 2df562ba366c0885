"""One command shows the whole loop: Waldur orders → SLURM accounts → usage → QoS.

Starts the Waldur stand-in (examples/standin-scenario.yaml) and a fresh slurm-emulator
state in a temporary directory, then runs the real ``waldur_site_agent`` for one cycle
of each mode, printing what changed in SLURM and what Waldur received, and ends with
the diagnostic of one account.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from waldur_site_agent_slurm.devtools.demo import emulated
from waldur_site_agent_slurm.devtools.demo.agentrun import AgentRun, run_agent_cycle
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario
from waldur_site_agent_slurm.slurm.client import AssociationSnapshot, SlurmClient
from waldur_site_agent_slurm.slurm.runner import CommandRunner

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def say(text: str = "") -> None:
    """Print one line of the demo's account of events."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def step(title: str) -> None:
    """Print a step heading."""
    say()
    say(f"== {title}")


def snapshot() -> AssociationSnapshot:
    """The emulated cluster's associations, read as the plugin reads them."""
    return SlurmClient(CommandRunner(emulator=True)).snapshot()


def show_tree(snap: AssociationSnapshot) -> None:
    """Print the account tree with limits, QoS and users of each allocation."""

    def walk(name: str, depth: int) -> None:
        state = snap.accounts[name]
        line = "   " * depth + ("└─ " if depth else "") + name
        record = state.record
        if record.grp_tres_mins:
            limits = ",".join(f"{k}={v}" for k, v in sorted(record.grp_tres_mins.items()))
            line += f"  GrpTRESMins={limits}"
        if not state.children and record.qos:
            line += f"  QoS={','.join(record.qos)}"
        if state.users:
            line += f"  users: {', '.join(sorted(state.users))}"
        say("   " + line)
        for child in sorted(state.children):
            walk(child, depth + 1)

    for name in sorted(n for n, s in snap.accounts.items() if not s.parent):
        walk(name, 0)


def show_usage(standin: StandIn) -> None:
    """Print what Waldur received: usage per resource, billing month and component."""
    say(f"   {'resource':<18} {'month':<8} {'component':<9} {'total':>8}   per user")
    for resource in standin.state.resources():
        users: dict[tuple[str, str], list[str]] = {}
        for usage in standin.state.user_usages(resource["uuid"]):
            key = (usage["billing_period"][:7], usage["component_type"])
            users.setdefault(key, []).append(f"{usage['username']} {usage['usage']}")
        for usage in sorted(
            standin.state.component_usages(resource["uuid"]),
            key=lambda u: (u["billing_period"], u["type"]),
        ):
            month = usage["billing_period"][:7]
            per_user = ", ".join(sorted(users.get((month, usage["type"]), [])))
            say(
                f"   {resource['backend_id'] or '-':<18} {month:<8} {usage['type']:<9} "
                f"{usage['usage']:>8}   {per_user}"
            )


def qos_of(account: str) -> str:
    """The account's QoS list as SLURM shows it."""
    state = snapshot().account(account)
    return ",".join(state.record.qos) if state else "(no account)"


def check(run: AgentRun) -> None:
    """Stop the demo when an agent cycle logged errors."""
    errors = run.messages("error")
    if run.returncode != 0 or errors:
        say(run.output[-4000:])
        raise SystemExit(f"the {run.mode} cycle failed: {errors or run.returncode}")
    say(f"   ({run.mode}: one cycle, {len(run.records)} log lines, no errors)")


def diagnose_account(account: str, config: Path) -> str:
    """The diagnostic's report of ``account`` (its console script, as a site admin runs it)."""
    script = Path(sys.executable).parent / "waldur_site_diagnose_slurm_account"
    proc = subprocess.run(  # noqa: S603 - fixed argv: this package's own console script
        [str(script), account, "-c", str(config), "--no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        say(proc.stdout + proc.stderr)
        raise SystemExit(f"the diagnostic of {account} exited {proc.returncode}")
    return proc.stdout


def agent_config(directory: Path, api_url: str) -> Path:
    """examples/emulator-config.yaml pointed at the running stand-in."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "emulator-config.yaml").read_text())
    config["offerings"][0]["waldur_api_url"] = api_url
    path = directory / "agent-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def emulator_state(directory: Path) -> Iterator[None]:
    """Point slurm-emulator at fresh state files for the demo, and create the site's QoS."""
    saved = {
        k: os.environ.get(k) for k in ("SLURM_EMULATOR_STATE_FILE", "SLURM_EMULATOR_TIME_FILE")
    }
    os.environ["SLURM_EMULATOR_STATE_FILE"] = str(directory / "emulator-state.json")
    os.environ["SLURM_EMULATOR_TIME_FILE"] = str(directory / "emulator-time.json")
    try:
        emulated.add_qos("slowdown", "blocked")
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(directory: Path) -> None:
    """Run every step; raise SystemExit with a reason if one fails."""
    started = time.monotonic()
    with (
        emulator_state(directory),
        StandIn(load_scenario(EXAMPLES / "standin-scenario.yaml")) as standin,
    ):
        config = agent_config(directory, standin.api_url)
        say(f"Waldur stand-in at {standin.api_url}; emulator state in {directory}")

        step("1. order_process: Waldur's pending Create orders become SLURM accounts")
        for order in standin.state.orders():
            say(f"   order {order['type']} {order['resource_name']!r}: {order['state']}")
        check(run_agent_cycle("order_process", config))
        for order in standin.state.orders():
            say(f"   order {order['type']} {order['resource_name']!r}: {order['state']}")
        show_tree(snapshot())

        step("2. report: emulated jobs (this month and last) reach Waldur as usage")
        now = datetime.now(UTC).replace(microsecond=0)
        this_month = now.replace(day=1, hour=0, minute=0, second=0)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        jobs = [
            (
                "a_flood-model",
                "alice",
                last_month + timedelta(days=9),
                6,
                {"cpu": 16, "mem": 32768},
            ),
            (
                "a_flood-model",
                "bob",
                this_month - timedelta(hours=3),
                5,
                {"cpu": 4, "mem": 8192, "gres/gpu": 1},
            ),
            (
                "a_sky-survey",
                "carol",
                last_month + timedelta(days=20),
                10,
                {"cpu": 8, "mem": 16384, "gres/gpu": 2},
            ),
        ]
        for account, user, start, hours, tres in jobs:
            end = min(start + timedelta(hours=hours), now - timedelta(seconds=1))
            emulated.add_job(account, user, start, end, tres)
            say(
                f"   job: {user} on {account}, "
                f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC, {tres}"
            )
        check(run_agent_cycle("report", config))
        show_usage(standin)

        step("3. membership_sync: a pause in Waldur blocks the account; restore lifts it")
        flood = standin.state.resource_by_name("Flood model 2026")
        account = flood["backend_id"]
        say(f"   {account}: QoS {qos_of(account)}")
        standin.state.update_resource(flood["uuid"], paused=True)
        say("   Waldur: resource paused")
        check(run_agent_cycle("membership_sync", config))
        say(f"   {account}: QoS {qos_of(account)}")
        standin.state.update_resource(flood["uuid"], paused=False)
        say("   Waldur: resource restored")
        check(run_agent_cycle("membership_sync", config))
        say(f"   {account}: QoS {qos_of(account)}")

        step("4. waldur_site_diagnose_slurm_account: SLURM against Waldur for one account")
        say(diagnose_account(account, config).rstrip())

        writes = standin.state.writes()
        say()
        say(f"Done in {time.monotonic() - started:.0f}s: Waldur received {len(writes)} writes.")


def missing_requirement() -> str | None:
    """Why the demo cannot run in this installation, in one line; None when it can."""
    dev = (
        "the demo needs slurm-emulator, a development dependency that a production "
        "install leaves out: pip install 'waldur-site-agent-slurm[dev]' (from a clone: "
        "bash scripts/demo.sh)"
    )
    try:
        import emulator  # noqa: F401, PLC0415 - only to see whether it is installed
    except ImportError:
        return dev
    if not (emulated.BIN / "sacctmgr").exists():
        return dev
    if not (EXAMPLES / "standin-scenario.yaml").exists():
        return (
            f"the demo reads the examples of a clone of the repository, not found in "
            f"{EXAMPLES}: run it from a clone (bash scripts/demo.sh)"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the demo in a temporary directory (or ``--keep DIR`` to keep its files)."""
    parser = argparse.ArgumentParser(
        prog="python -m waldur_site_agent_slurm.devtools.demo",
        description=(
            "Run the real waldur_site_agent against a local Waldur stand-in and "
            "slurm-emulator: order_process, report and membership_sync, one cycle each, "
            "printing the SLURM account tree, the usage Waldur received and the QoS changes."
        ),
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep its files")
    args = parser.parse_args(argv)
    missing = missing_requirement()
    if missing:
        sys.stderr.write(f"{parser.prog}: {missing}\n")
        return 2
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run_demo(args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="slurm-demo-") as tmp:
            run_demo(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
