"""A seeded soak under faults: the real agent on a real SLURM, then a full consistency check.

Four real ``waldur_site_agent`` processes work at once against the Waldur stand-in, a
real SLURM of scripts/real-slurm.sh and a real RabbitMQ of scripts/rabbitmq.sh:
``event_process`` runs all along (it consumes the periodic messages), and
``order_process``, ``membership_sync`` and ``report`` run cycle after cycle (one
process per cycle, back to back: the agent's own loop with no pause between cycles).
A seeded schedule plays Waldur's side (create, update and terminate orders, team
changes, pause and restore, downscale, periodic messages including re-sent and
out-of-order ones and RawUsage resets across a period boundary, jobs submitted under
the allocations) and injects faults (slurmdbd SIGKILLed, slurmctld restarted, a SLURM
command hanging past ``command_timeout``, the stand-in answering 502 or dropping
connections, RabbitMQ restarted, an agent process SIGKILLed mid-cycle, ``state_dir``
read-only). Then, faults off, it lets the agent converge and checks SLURM and the
stand-in (see ``check``); it prints the figures and exits 1 on any divergence.

    python bench/soak.py --seed 17 --duration 600          # own SLURM 24.11 and broker
    python bench/soak.py --version 22.05 --duration 1800
    python bench/soak.py --shared --duration 150           # CI: the suite's stacks

Without ``--shared`` it starts (and afterwards stops) a SLURM and a broker of its own
(``REAL_SLURM_INSTANCE=soak``, ``RMQ_INSTANCE=soak``), never the ones other runs use:
it kills their daemons. ``--shared`` uses the default stacks, for CI after pytest.
Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.exports import exports  # noqa: E402
from waldur_site_agent_slurm.devtools.demo.agentrun import (  # noqa: E402
    AGENT,
    HOOK_DIR,
    AgentProcess,
    start_agent,
)
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario  # noqa: E402
from waldur_site_agent_slurm.slurm.parser import parse_tres  # noqa: E402

UTC = timezone.utc
SLURM_SCRIPT = ROOT / "scripts" / "real-slurm.sh"
BROKER_SCRIPT = ROOT / "scripts" / "rabbitmq.sh"
TIME_BIN = Path("/usr/bin/time")  # GNU time, for the SLURM commands' own peak RSS
INSTANCE = "soak"
USERS = ("slurmtest1", "slurmtest2", "slurmtest3")
DEMO_USERS = {"alice": USERS[0], "bob": USERS[1], "carol": USERS[2]}
TOKEN = "demo-offering-token"  # noqa: S105 - the stand-in's offering token: must never be logged
COMMAND_TIMEOUT = 6  # seconds: backend_settings.command_timeout of the soak's agent
WRAPPED = ("sacctmgr", "sacct", "scancel", "sshare", "scontrol", "squeue", "sinfo")
CYCLE_MODES = ("order_process", "membership_sync", "report")
FACTORS = {"cpu": 1, "mem": 61440, "gpu": 60}  # the agent's unit factors (cpu in minutes)
TRES = {"cpu": "cpu", "mem": "mem", "gpu": "gres/gpu"}
FAULTS = (
    "slurmdbd_kill",
    "slurmctld_restart",
    "command_hang",
    "standin_5xx",
    "standin_drop",
    "rabbitmq_restart",
    "agent_kill",
    "state_dir_readonly",
)
# Faults that start, stop or reconfigure the same thing wait for each other: two broker
# restarts at once left a broker running without its PID file, which no later restart
# could stop; two SLURM `up`s, or two stand-in faults (one clearing the other's), likewise.
FAULT_TARGET = {
    "slurmdbd_kill": "slurm",
    "slurmctld_restart": "slurm",
    "rabbitmq_restart": "broker",
    "standin_5xx": "standin",
    "standin_drop": "standin",
}
CONVERGE_TIMEOUT = 240  # seconds after the last fault
SUBSCRIBED = "Started unified STOMP connection for queue"  # event_process consumes
SUBSCRIBE_FAILURES = (  # the framework's words when the subscription at start-up failed
    "Failed to register identity",
    "Unable to register unified event queue",
    "Failed to start unified STOMP connection",
)
START_TIMEOUT = 600  # seconds for event_process's start-up cycles and subscription
# Agent processes write their log unbuffered: a SIGKILLed process loses no line it logged.
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}
# A resource whose terminate order is done, marked Erred afterwards by a membership pass
# that failed because SLURM could not be reached (waldur-site-agent 1.0.7 marks the copy
# it listed before the terminate): counted, not a divergence, when its account is gone.
SLURM_UNAVAILABLE = (
    "failed to open persistent connection",
    "Timed out after",
    "Connection refused",
)


def log(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


def script(path: Path, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", str(path), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{path.name} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


# ----------------------------------------------------------------------------- SLURM


@dataclass
class Slurm:
    """The soak's SLURM stack: its commands, cluster and daemons."""

    version: str
    env: dict[str, str]  # REAL_SLURM_INSTANCE or nothing (the shared stack)
    bin: str = ""
    cluster: str = ""
    root: str = ""

    def up(self) -> None:
        script(SLURM_SCRIPT, "up", self.version, env=self.env)
        found = exports(script(SLURM_SCRIPT, "env", self.version, env=self.env))
        self.bin, self.cluster = found["REAL_SLURM_BIN"], found["REAL_SLURM_CLUSTER"]
        self.root = found["REAL_SLURM_ROOT"]

    def down(self) -> None:
        script(SLURM_SCRIPT, "down", self.version, env=self.env)

    def run(self, *argv: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        full = [f"{self.bin}/{argv[0]}", *argv[1:]]
        if user:
            full = ["runuser", "-u", user, "--", *full]
        return subprocess.run(
            full, capture_output=True, text=True, cwd="/tmp", timeout=120, check=False,  # noqa: S108 - jobs run where submitted: a directory any user may enter
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def peak_rss_kb(self, *argv: str) -> int | None:
        """The peak RSS of one SLURM command itself, through GNU time (None without it).

        time forks the command, so its high-water mark starts from time's few MB, not
        from the soak's hundreds (see ``vm_hwm_kb``).
        """
        if not TIME_BIN.exists():
            return None
        with tempfile.NamedTemporaryFile("r") as out:
            done = subprocess.run(
                [str(TIME_BIN), "-f", "%M", "-o", out.name, f"{self.bin}/{argv[0]}", *argv[1:]],
                capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            lines = out.read().split()
        return int(lines[-1]) if done.returncode == 0 and lines else None

    def pid(self, daemon: str) -> int | None:
        try:
            return int(Path(f"{self.root}/run/slurm/{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self, daemon: str, sig: signal.Signals) -> None:
        pid = self.pid(daemon)
        exe = os.readlink(f"/proc/{pid}/exe") if pid else ""
        if pid and exe.startswith(self.root):  # this stack's daemon, never another's
            os.kill(pid, sig)

    def associations(self, tag: str) -> list[list[str]]:
        out = self.run(
            "sacctmgr", "-P", "-n", "show", "assoc", f"cluster={self.cluster}",
            "format=Account,User,ParentName,GrpTRESMins,QOS,DefaultQOS,Fairshare",
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        rows = [line.split("|") for line in out.stdout.splitlines() if line]
        return [r for r in rows if r[0][1:].startswith(tag + "_")]

    def remove_tagged(self, tag: str) -> None:
        accounts = sorted({r[0] for r in self.associations(tag)}, key=lambda a: "apc".index(a[0]))
        if accounts:
            self.run("scancel", "--account=" + ",".join(accounts))
            for name in accounts:
                self.run("sacctmgr", "-i", "delete", "user", "where", f"account={name}")
                self.run("sacctmgr", "-i", "delete", "account", "where", f"name={name}")


# ----------------------------------------------------------------------------- agents


@dataclass
class Figures:
    operations: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    errors_by_fault: Counter[str] = field(default_factory=Counter)
    cycles: Counter[str] = field(default_factory=Counter)
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # fault, start, end
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rss(self, mode: str, kb: int) -> None:
        with self.lock:
            self.peak_rss_kb[mode] = max(self.peak_rss_kb.get(mode, 0), kb)

    def errors(self, count: int, start: float, end: float) -> None:
        """``count`` ERROR lines of a run between ``start`` and ``end``: per active fault."""
        if not count:
            return
        with self.lock:
            kinds = {k for k, s, e in self.windows if s <= end and e >= start}
            for kind in kinds or {"none"}:
                self.errors_by_fault[kind] += count


def vm_hwm_kb(pid: int) -> int:
    """The peak RSS of process ``pid`` itself so far, in kB (0 once it is gone).

    Not ``wait4``'s ``ru_maxrss``: a process that Python starts (with vfork) takes its
    starter's high-water RSS as its own at exec, so every agent cycle would report the
    soak's own peak (the stand-in runs inside it). The hour run's 438.7 MB for all three
    polling modes was the soak's; the children's (sacctmgr, sacct) carry the agent's the
    same way. ``VmHWM`` is the process's own, polled while it runs.
    """
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path(f"/proc/{pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1])
    return 0


def erred_in_outages_after_terminate(dump: dict[str, Any]) -> list[str]:
    """Accounts of resources Erred for SLURM being unreachable after their terminate was done."""
    done = [o for o in dump["orders"] if o["state"] == "done"]
    terminated = {o["resource_uuid"] for o in done if o["type"] == "Terminate"}
    return [
        res["backend_id"]
        for res in dump["resources"]
        if res["state"] == "Erred"
        and res["uuid"] in terminated
        and any(text in res["error_message"] for text in SLURM_UNAVAILABLE)
    ]


def error_lines(text: str) -> int:
    count = 0
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                if json.loads(line).get("level") == "error":
                    count += 1
        elif " ERROR " in line or line.startswith("ERROR"):
            count += 1
    return count


class Cycler(threading.Thread):
    """One polling mode, cycle after cycle, each a real agent process."""

    def __init__(self, mode: str, config: Path, logs: Path, figures: Figures) -> None:
        super().__init__(daemon=True, name=mode)
        self.mode, self.config, self.figures = mode, config, figures
        self.log = logs / f"{mode}.log"
        self.stop = threading.Event()
        self.current: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def once(self) -> int:
        """Run one cycle; its exit status (negative: killed by that signal)."""
        env = {**os.environ, **UNBUFFERED, "PYTHONPATH": str(HOOK_DIR),
               "WALDUR_SLURM_ONE_CYCLE": "1", "WALDUR_SLURM_SLEEP_SCALE": "0.05",
               "WALDUR_SLURM_HTTP_TIMEOUT": "10"}  # fmt: skip
        start = time.monotonic()
        with tempfile.TemporaryFile() as out:
            with self.lock:
                self.current = subprocess.Popen(
                    [str(AGENT), "-m", self.mode, "-c", str(self.config)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    start_new_session=True,
                )  # fmt: skip
                pid = self.current.pid
            deadline = start + 600
            status, peak = 0, 0
            while True:
                peak = max(peak, vm_hwm_kb(pid))
                got, status, _ = os.wait4(pid, os.WNOHANG)
                if got:
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                time.sleep(0.1)
            self.current.returncode = os.waitstatus_to_exitcode(status)
            with self.lock:
                self.current = None
            self.figures.rss(self.mode, peak)
            out.seek(0)
            text = out.read().decode(errors="replace")
        with self.log.open("a") as f:
            f.write(text)
        self.figures.errors(error_lines(text), start, time.monotonic())
        self.figures.cycles[self.mode] += 1
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> bool:
        """SIGKILL the running cycle's process group; False when none ran."""
        with self.lock:
            if self.current is None:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.current.pid, signal.SIGKILL)
            return True

    def run(self) -> None:
        while not self.stop.is_set():
            self.once()
            self.stop.wait(0.5)


class Events:
    """The long-running ``event_process``, restarted when killed; its RSS watched."""

    def __init__(self, config: Path, logs: Path, figures: Figures) -> None:
        self.config, self.figures = config, figures
        self.log = logs / "event_process.log"
        self.agent: AgentProcess | None = None
        self.started = 0.0
        self.stop_watch = threading.Event()
        self.lock = threading.Lock()
        self.restarting = threading.Lock()  # one restart at a time: never two consumers
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Start it and wait until it consumes the queue.

        The framework (1.0.7) subscribes once, at start-up: when Waldur fails that
        start (a 5xx on registering the agent's identity or queue), the process stays up
        and never consumes a message. A site's supervisor must restart it then; the soak
        does, and counts it (``event_process_unsubscribed_restarts``).
        """
        while True:
            with self.lock:
                self.agent = start_agent("event_process", self.config, env=UNBUFFERED)
                self.started = time.monotonic()
                agent = self.agent
            if not self.watcher.is_alive():
                self.watcher.start()
            if self._subscribes(agent):
                return
            log("event_process did not subscribe to its queue: restarting it")
            self.figures.operations["event_process_unsubscribed_restarts"] += 1
            agent.kill()
            self._save(agent)

    @staticmethod
    def _subscribes(agent: AgentProcess) -> bool:
        """True once it consumes; False when it failed to subscribe or exited.

        Its start-up cycles (every order and allocation) come first and take a while.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and agent.process.poll() is None:
            events = [str(r.get("event", "")) for r in agent.snapshot().records]
            if any(SUBSCRIBED in e for e in events):
                return True
            if any(e.startswith(SUBSCRIBE_FAILURES) for e in events):
                return False
            time.sleep(0.5)
        return False

    def _watch(self) -> None:
        while not self.stop_watch.wait(0.5):
            with self.lock:
                pid = self.agent.process.pid if self.agent else None
            if pid is not None:
                self.figures.rss("event_process", vm_hwm_kb(pid))

    def _save(self, agent: AgentProcess) -> None:
        run = agent.snapshot()
        with self.log.open("a") as f:
            f.write(run.output)
        self.figures.errors(error_lines(run.output), self.started, time.monotonic())

    def text(self) -> str:
        """Everything every event_process printed so far, in order."""
        saved = self.log.read_text() if self.log.exists() else ""
        with self.lock:
            agent = self.agent
        return saved + (agent.snapshot().output if agent is not None else "")

    def kill_and_restart(self) -> None:
        with self.restarting:
            with self.lock:
                old = self.agent
            if old is not None:
                old.kill()
                self._save(old)
            self.start()

    def stop(self) -> None:
        self.stop_watch.set()
        with self.lock:
            agent, self.agent = self.agent, None
        if agent is not None:
            agent.stop()
            self._save(agent)


# ----------------------------------------------------------------------------- the soak


@dataclass
class World:
    """What the soak drives: the stand-in, SLURM, the broker, the agents."""

    rng: random.Random
    standin: StandIn
    slurm: Slurm
    tag: str
    work: Path
    broker_env: dict[str, str]
    figures: Figures
    cyclers: dict[str, Cycler]
    events: Events
    jobs: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    period_index: int = 0  # the emulated clock's month: 0 is 2026-01
    checked: Counter[str] = field(default_factory=Counter)  # what the last check compared
    erred_after_terminate: list[str] = field(default_factory=list)  # see SLURM_UNAVAILABLE
    names: int = 0
    fault_locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {FAULT_TARGET.get(k, k): threading.Lock() for k in FAULTS}
    )

    # ---------------------------------------------------------------- Waldur's side
    def live(self) -> list[dict[str, Any]]:
        return [r for r in self.standin.state.resources() if r["state"] == "OK" and r["backend_id"]]

    def projects(self) -> list[dict[str, Any]]:
        return list(self.standin.state.dump()["projects"])

    def operate(self) -> None:
        """One Waldur-side change, chosen by the seed."""
        kind = self.rng.choices(
            ["create", "update", "terminate", "team", "pause", "downscale", "message", "job"],
            weights=[5, 8, 3, 6, 5, 3, 16, 16],
        )[0]
        state = self.standin.state
        live = self.live()
        if kind == "create" or (not live and kind != "team"):
            self.names += 1
            project = self.rng.choice(self.projects())
            name = f"soak {self.tag} {self.names}"
            state.add_order("Create", project_uuid=project["uuid"], name=name, limits=self.limits())
            kind = "create"
        elif kind == "update":
            state.add_order(
                "Update", resource_uuid=self.rng.choice(live)["uuid"], limits=self.limits()
            )
        elif kind == "terminate":
            if len(live) < 3:
                return
            state.add_order("Terminate", resource_uuid=self.rng.choice(live)["uuid"])
        elif kind == "team":
            project = self.rng.choice(self.projects())
            user = self.rng.choice(list(DEMO_USERS.values()))
            members = {m["username"] for m in project["team"]}
            if user in members:
                state.remove_team_member(project["uuid"], user)
            else:
                state.add_team_member(project["uuid"], user)
        elif kind == "pause":
            res = self.rng.choice(live)
            state.update_resource(res["uuid"], paused=not res.get("paused", False))
        elif kind == "downscale":
            res = self.rng.choice(live)
            state.update_resource(res["uuid"], downscaled=not res.get("downscaled", False))
        elif kind == "message":
            kind = self.message(self.rng.choice(live))
        elif kind == "job":
            kind = self.job(self.rng.choice(live))
        self.figures.operations[kind] += 1

    def limits(self) -> dict[str, int]:
        return {"cpu": self.rng.randint(50, 500), "mem": self.rng.randint(50, 300),
                "gpu": self.rng.randint(1, 10)}  # fmt: skip

    def period(self, index: int) -> str:
        return f"{2026 + index // 12}-{index % 12 + 1:02d}"

    def message(self, res: dict[str, Any]) -> str:
        """A periodic-settings message: new, re-sent, or out of order (an older one)."""
        from tests.broker import publish

        roll = self.rng.random()
        if roll < 0.15 and self.messages:
            body, kind = self.rng.choice(self.messages), "message_resent"
        elif roll < 0.3 and self.messages:
            old = self.rng.choice(self.messages)
            body = {**old, "timestamp": datetime(2025, 1, 1).isoformat()}
            kind = "message_out_of_order"
        else:
            if self.rng.random() < 0.25:
                self.period_index += 1  # the emulated clock crosses a month boundary
                kind = "message_period_boundary"
            else:
                kind = "message"
            previous = self.period(self.period_index)  # the message's period follows it
            body = {
                "resource_uuid": str(uuid.UUID(res["uuid"])),
                "backend_id": res["backend_id"],
                "offering_uuid": "d0e1f2a3-b4c5-4d6e-8f9a-0b1c2d3e4f50",
                "policy_uuid": "11111111-2222-3333-4444-555555555555",
                "action": "apply_periodic_settings",
                "timestamp": datetime.now().isoformat(),
                "object_type": "resource_periodic_limits",
                "settings": {
                    "fairshare": self.rng.randint(1, 500),
                    "reset_raw_usage": True,
                    "carryover_details": {"previous_period": previous},
                },
            }
            self.messages.append(body)
        try:
            publish(body)
        except Exception as err:  # the broker may be down: a fault, not a soak error
            return f"{kind}_unsent ({type(err).__name__})"
        return kind

    def job(self, res: dict[str, Any]) -> str:
        project = next(p for p in self.projects() if p["uuid"] == res["project_uuid"])
        users = [m["username"] for m in project["team"] if m["username"] in USERS]
        if not users:
            return "job_no_user"
        proc = self.slurm.run(
            "sbatch", "--parsable", "-A", res["backend_id"], "-n", str(self.rng.randint(1, 2)),
            "--time=2", "--output=/dev/null", "--wrap", f"sleep {self.rng.randint(1, 4)}",
            user=self.rng.choice(users),
        )  # fmt: skip
        if proc.returncode != 0:
            return "job_refused"
        self.jobs.append(proc.stdout.strip().split(";")[0])
        return "job"

    # ---------------------------------------------------------------- faults
    def fault(self, kind: str, seconds: float) -> None:
        """Inject one fault for about ``seconds``, then undo it.

        After any fault on the same target (``FAULT_TARGET``) has been undone.
        """
        with self.fault_locks[FAULT_TARGET.get(kind, kind)]:
            start = time.monotonic()
            self.figures.faults[kind] += 1
            state_dir = self.work / "state"
            try:
                self._fault(kind, seconds, state_dir)
            except Exception as err:  # reported; the soak goes on and the checks judge
                log(f"fault {kind} could not be injected or undone: {err}")
                self.figures.operations[f"fault error {kind}"] += 1
            finally:
                with self.figures.lock:
                    self.figures.windows.append((kind, start, time.monotonic()))

    def _fault(self, kind: str, seconds: float, state_dir: Path) -> None:
        if kind == "slurmdbd_kill":
            self.slurm.kill("slurmdbd", signal.SIGKILL)
            time.sleep(seconds)
            self.slurm.up()
        elif kind == "slurmctld_restart":
            self.slurm.kill("slurmctld", signal.SIGTERM)
            time.sleep(min(seconds, 3))
            self.slurm.up()
        elif kind == "command_hang":
            flag = self.work / "hang" / self.rng.choice(["sacctmgr", "sacct"])
            flag.touch()
            time.sleep(max(seconds, COMMAND_TIMEOUT * 2))
            flag.unlink()
        elif kind in ("standin_5xx", "standin_drop"):
            drop = kind == "standin_drop"
            self.standin.state.add_fault(r"^/api/", status=None if drop else 502,
                                         drop=drop, times=None)  # fmt: skip
            time.sleep(seconds)
            self.standin.state.clear_faults()
        elif kind == "rabbitmq_restart":
            script(BROKER_SCRIPT, "down", env=self.broker_env)
            time.sleep(min(seconds, 3))
            try:
                script(BROKER_SCRIPT, "up", env=self.broker_env)
            except RuntimeError as err:  # seen once: a boot right after a stop; once more
                log(f"broker did not come back at once, starting it again: {str(err)[:200]}")
                script(BROKER_SCRIPT, "up", env=self.broker_env)
        elif kind == "agent_kill":
            mode = self.rng.choice(["event_process", *CYCLE_MODES])
            if mode == "event_process":
                self.events.kill_and_restart()
            else:
                deadline = time.monotonic() + 30  # wait for a cycle to be running
                while not self.cyclers[mode].kill() and time.monotonic() < deadline:
                    time.sleep(0.2)
            self.figures.restarts += 1
        elif kind == "state_dir_readonly":
            subprocess.run(["mount", "--bind", str(state_dir), str(state_dir)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(state_dir)], check=True)
            try:
                time.sleep(seconds)
            finally:
                subprocess.run(["umount", str(state_dir)], check=True)

    # ---------------------------------------------------------------- checks
    def expected_qos(self, res: dict[str, Any]) -> str:
        if res.get("paused"):
            return "blocked"
        return "slowdown" if res.get("downscaled") else "normal"

    def check(self) -> list[str]:  # noqa: PLR0912, PLR0915 - one check after another
        """Divergences between Waldur's state, SLURM and the agent's reports."""
        found: list[str] = []
        self.checked.clear()
        dump = self.standin.state.dump()
        projects = {p["uuid"]: p for p in dump["projects"]}
        ok_users = {u["username"] for u in dump["offering_users"] if u["state"] == "OK"}
        rows = self.slurm.associations(self.tag)
        accounts = Counter(r[0] for r in rows if not r[1])
        expected: set[str] = set()
        self.erred_after_terminate = erred = erred_in_outages_after_terminate(dump)
        for res in dump["resources"]:
            name = res["backend_id"]
            gone = res["state"] == "Erred" and (not name or name in erred)
            if res["state"] == "Terminated" or gone:
                if name and name in accounts:
                    found.append(f"{name}: account of a {res['state']} resource still exists")
                continue
            if res["state"] != "OK":
                found.append(f"{res['name']}: resource left in state {res['state']}")
                continue
            project = projects[res["project_uuid"]]
            parent = f"p{self.tag}_{res['project_slug']}"
            expected |= {name, parent, f"c{self.tag}_{res['customer_slug']}"}
            own = [r for r in rows if r[0] == name and not r[1]]
            self.checked["allocations"] += 1
            self.checked["user associations"] += len(project["team"])
            if len(own) != 1:
                found.append(f"{name}: {len(own)} accounts, not 1")
                continue
            _, _, got_parent, tres, qos, _, _ = own[0]
            if got_parent != parent:
                found.append(f"{name}: parent {got_parent}, not {parent}")
            want = {TRES[k]: v * FACTORS[k] for k, v in res["limits"].items()}
            if parse_tres(tres) != want:
                found.append(f"{name}: GrpTRESMins {tres}, not {want}")
            if set(filter(None, qos.split(","))) != {self.expected_qos(res)}:
                found.append(f"{name}: QoS {qos}, not {self.expected_qos(res)}")
            team = {m["username"] for m in project["team"]} & ok_users
            users = {r[1] for r in rows if r[0] == name and r[1]}
            if users != team:
                found.append(f"{name}: users {sorted(users)}, not {sorted(team)}")
        for extra in sorted(set(accounts) - expected):
            found.append(f"{extra}: account without a resource")
        for name, count in accounts.items():
            if count > 1:
                found.append(f"{name}: {count} account associations")
        self.checked["orders"] = len(dump["orders"])
        self.checked["accounts"] = len(accounts)
        for order in dump["orders"]:
            if order["state"] not in ("done", "erred"):
                found.append(f"order {order['uuid'][:8]} ({order['type']}) {order['state']}")
            elif order["state"] == "erred" and not order["error_message"]:
                found.append(f"order {order['uuid'][:8]} erred without a reason")
        found += self.check_usage(dump)
        found += self.check_messages({r[0]: r[6] for r in rows if not r[1]})
        return found

    def check_usage(self, dump: dict[str, Any]) -> list[str]:
        """CPU minutes posted per month and user equal sacct's, for every live allocation."""
        found = []
        for res in dump["resources"]:
            if res["state"] != "OK":
                continue
            out = self.slurm.run(
                "sacct", "-X", "-n", "-P", "-a", "-A", res["backend_id"], "--noconvert",
                "--starttime=2026-01-01", "--endtime=now",
                "--format=JobID,User,Start,ElapsedRaw,AllocTRES,State",
            )  # fmt: skip
            if out.returncode != 0:
                found.append(f"{res['backend_id']}: sacct failed: {out.stderr.strip()}")
                continue
            want: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
            jobs: Counter[tuple[str, str]] = Counter()
            for line in out.stdout.splitlines():
                _, user, start, elapsed, tres, _ = line.split("|")
                if not tres or start in ("", "None", "Unknown"):
                    continue
                cpu = parse_tres(tres).get("cpu", 0)
                key = (start[:7], user)
                want[key] += Decimal(cpu) * Decimal(int(elapsed)) / 60
                jobs[key] += 1
            got: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
            for u in dump["user_usages"]:
                if u["component_type"] == "cpu" and u["resource_uuid"] == res["uuid"]:
                    got[(u["billing_period"][:7], u["username"])] += Decimal(str(u["usage"]))
            self.checked["jobs in sacct"] += sum(jobs.values())
            self.checked["usage records (month, user)"] += len(set(want) | set(got))
            for key in set(want) | set(got):
                slack = Decimal("0.01") * max(jobs[key], 1)  # each job rounded to 0.01
                if want[key] and abs(want[key] - got[key]) > slack:
                    found.append(f"{res['backend_id']} {key}: posted {got[key]}, sacct {want[key]}")
                elif not want[key] and got[key]:
                    found.append(f"{res['backend_id']} {key}: posted {got[key]} without jobs")
        return found

    def check_messages(self, fairshares: dict[str, str]) -> list[str]:
        """Every message consumed; SLURM holds the last Fairshare written; RawUsage reset once.

        The event consumer's log is the record (see ``replay_periodic_log``).
        """
        from tests.broker import queue_depth

        found = []
        left = queue_depth()
        if left:
            found.append(f"{left} periodic messages never consumed")
        applied, resets, done = replay_periodic_log(self.events.text())
        for account, share in sorted(applied.items()):
            if account in fairshares and fairshares[account] != share:
                found.append(f"{account}: Fairshare {fairshares[account]}, last written {share}")
        for key, count in sorted(resets.items()):
            if count != 1:
                found.append(f"{key[0]}: RawUsage reset {count} times in {key[1]}")
        found += [f"{a}: no RawUsage reset in {p}" for a, p in sorted(done - set(resets))]
        self.checked["periodic messages applied (accounts)"] = len(applied)
        self.checked["RawUsage resets (account, period)"] = len(resets)
        return found


def replay_periodic_log(
    text: str,
) -> tuple[dict[str, str], Counter[tuple[str, str]], set[tuple[str, str]]]:
    """What the event consumer's log says it left in SLURM, replayed in log order.

    Returns the Fairshare SLURM must hold per account, the RawUsage resets run per
    (account, period) and the (account, period) pairs of messages applied in full. The
    Fairshare is the last one written: a message that failed after its ``set Fairshare``
    ran (a RawUsage reset timing out, the read-back meeting slurmdbd down) left it in
    SLURM, and its command result tells Waldur so (``commands_executed``). A message
    applied with nothing to write (the Fairshare already there) confirms its value.
    """
    received: dict[str, str] = {}  # account → Fairshare of the message being applied
    applied: dict[str, str] = {}  # account → Fairshare SLURM must hold
    period: dict[str, str] = {}  # account → period of the message being applied
    resets: Counter[tuple[str, str]] = Counter()
    done: set[tuple[str, str]] = set()
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = str(json.loads(line).get("event", ""))
        except ValueError:
            continue
        if got := re.match(
            r"Received a message .*'backend_id': '([^']+)'.*'fairshare': (\d+)", event
        ):
            received[got[1]] = got[2]
        elif got := re.match(r"Periodic settings for (\S+) \((\S+)\): ", event):
            period[got[1]] = got[2]
        elif got := re.match(r"Executed: sacctmgr .* name=(\S+) .*set RawUsage=0$", event):
            resets[(got[1], period.get(got[1], "?"))] += 1
        elif got := re.match(r"Executed: sacctmgr .* name=(\S+) .*set Fairshare=(\d+)$", event):
            applied[got[1]] = got[2]
        elif got := re.match(r"Successfully applied periodic settings for resource (\S+)", event):
            applied[got[1]] = received.get(got[1], "?")
            done.add((got[1], period.get(got[1], "?")))
    return applied, resets, done


def secrets_in_logs(logs: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in sorted(logs.glob("*.log")):
        text = path.read_text(errors="replace")
        found += [f"{path.name} holds a secret ({s[:3]}…)" for s in secrets if s and s in text]
    return found


def wait_jobs(slurm: Slurm, tag: str, timeout: float = 120) -> int:
    """Let the soak's running jobs end; cancel its pending ones (they never ran, so no
    usage: a QoS changed under them, e.g. InvalidQOS after a pause). Returns how many."""
    deadline = time.monotonic() + timeout
    cancelled = 0
    while time.monotonic() < deadline:
        out = slurm.run("squeue", "-h", "-o", "%A|%a|%T")
        if out.returncode != 0:
            time.sleep(1)
            continue
        ours = [r.split("|") for r in out.stdout.split() if r.split("|")[1][1:].startswith(tag)]
        if not ours:
            return cancelled
        pending = [job for job, _, state in ours if state == "PENDING"]
        if pending and len(pending) == len(ours):
            slurm.run("scancel", *pending)
            cancelled += len(pending)
        time.sleep(1)
    return cancelled


def schedule(rng: random.Random, duration: float) -> list[tuple[float, str, float]]:
    """The faults: (seconds from start, kind, seconds it lasts); every kind at least once."""
    count = max(len(FAULTS), int(duration / 20))
    kinds = list(FAULTS) + [rng.choice(FAULTS) for _ in range(count - len(FAULTS))]
    rng.shuffle(kinds)
    step = duration * 0.85 / len(kinds)
    return [
        (10 + i * step + rng.uniform(0, step / 3), k, rng.uniform(4, 15))
        for i, k in enumerate(kinds)
    ]


def main() -> int:  # noqa: PLR0912, PLR0915 - one linear story
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--duration", type=float, default=150, help="seconds of work under faults")
    parser.add_argument("--version", choices=("24.11", "22.05"), default="24.11")
    parser.add_argument(
        "--shared", action="store_true", help="use the default stacks (CI, after pytest)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the own SLURM and broker running"
    )
    parser.add_argument(
        "--converge-timeout", type=float, default=CONVERGE_TIMEOUT,
        help="seconds after the last fault the agent has to converge",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the soak needs root (it starts SLURM and RabbitMQ and kills their daemons)")
    began = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the agents are stopped on the way out
    slurm_env = {} if args.shared else {"REAL_SLURM_INSTANCE": INSTANCE}
    broker_env = {} if args.shared else {"RMQ_INSTANCE": INSTANCE}
    os.environ.update(broker_env)
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible schedule, not a secret
    tag = f"s{args.seed % 1000:03d}{uuid.uuid4().hex[:3]}"
    work = Path(tempfile.mkdtemp(prefix="waldur-soak-"))
    (work / "state").mkdir()
    (work / "hang").mkdir()
    logs = work / "logs"
    logs.mkdir()
    where = "shared stacks" if args.shared else f"instance {INSTANCE}"
    log(f"seed {args.seed}, {args.duration:.0f} s under faults, SLURM {args.version} ({where})")
    log(f"work directory (logs, configuration, state): {work}")
    slurm = Slurm(args.version, slurm_env)
    slurm.up()
    script(BROKER_SCRIPT, "up", env=broker_env)
    from tests.broker import broker_env as read_broker_env
    from tests.broker import purge
    from tests.e2e.events import event_config, policy_scenario

    purge()
    # The commands the agent runs: the stack's, except while a hang fault names one.
    wrappers = work / "bin"
    wrappers.mkdir()
    for cmd in WRAPPED:
        path = wrappers / cmd
        path.write_text(
            f'#!/bin/sh\n[ -e {work}/hang/{cmd} ] && exec sleep 600\nexec {slurm.bin}/{cmd} "$@"\n'
        )
        path.chmod(0o755)
    scenario = load_scenario(policy_scenario(work / "scenario.yaml", DEMO_USERS))
    figures = Figures()
    status, cancelled = 1, 0
    with StandIn(scenario) as standin:
        config = event_config(
            work / "agent.yaml", standin.api_url,
            {"state_dir": str(work / "state"), "period": "month"}, cpu_minutes=True,
            emulator_mode=False, slurm_bin_path=str(wrappers), cluster_name=slurm.cluster,
            customer_prefix=f"c{tag}_", project_prefix=f"p{tag}_", allocation_prefix=f"a{tag}_",
            command_timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
        # The polling modes skip an offering with STOMP on (its orders and team changes
        # would come as events, which the stand-in does not publish): they get the same
        # offering without STOMP, as a site running both kinds of processes has.
        polling = yaml.safe_load(config.read_text())
        polling["offerings"][0]["stomp_enabled"] = False
        polling_config = work / "agent-polling.yaml"
        polling_config.write_text(yaml.safe_dump(polling, sort_keys=False))
        cyclers = {m: Cycler(m, polling_config, logs, figures) for m in CYCLE_MODES}
        events = Events(config, logs, figures)
        world = World(rng, standin, slurm, tag, work, broker_env, figures, cyclers, events)
        try:
            events.start()
            for cycler in cyclers.values():
                cycler.start()
            plan = schedule(rng, args.duration)
            start = time.monotonic()
            fault_threads: list[threading.Thread] = []
            while time.monotonic() - start < args.duration:
                now = time.monotonic() - start
                while plan and plan[0][0] <= now:
                    _, kind, seconds = plan.pop(0)
                    log(f"fault {kind} for {seconds:.0f} s")
                    thread = threading.Thread(target=world.fault, args=(kind, seconds), daemon=True)
                    thread.start()
                    fault_threads.append(thread)
                try:
                    world.operate()
                except Exception as err:  # a Waldur-side change refused: counted, not fatal
                    figures.operations[f"refused {type(err).__name__}"] += 1
                time.sleep(rng.uniform(0.3, 1.5))
            log("faults off: waiting for the last fault to end")
            for thread in fault_threads:
                thread.join()
            last_fault = time.monotonic()
            for cycler in cyclers.values():
                cycler.stop.set()
            for cycler in cyclers.values():
                cycler.join()
            cancelled = wait_jobs(slurm, tag)
            divergences: list[str] = []
            converged = None
            while time.monotonic() - last_fault < args.converge_timeout:
                for mode in CYCLE_MODES:
                    cyclers[mode].once()
                time.sleep(2)  # the event consumer's last reports
                divergences = world.check()
                if not divergences:
                    converged = time.monotonic() - last_fault
                    break
                log(f"{len(divergences)} divergences, e.g. {divergences[:3]}")
        finally:
            events.stop()
            for cycler in cyclers.values():
                cycler.stop.set()
                cycler.kill()
        lost = sum(
            "Failed to report command result" in line or "Error reporting command result" in line
            for line in (logs / "event_process.log").read_text().splitlines()
        )
        secrets = [TOKEN, Path(read_broker_env()["RMQ_ADMIN_PASSWORD_FILE"]).read_text()]
        divergences += secrets_in_logs(logs, secrets)
        # The agent's largest reads, on the final database: the cluster's associations
        # and a month of every account's jobs.
        month = datetime.now(UTC).strftime("%Y-%m-01T00:00:00")
        commands = {
            "sacctmgr show assoc": slurm.peak_rss_kb(
                "sacctmgr", "--parsable2", "--noheader", "show", "assoc",
                f"where cluster={slurm.cluster}", "format=Account,User,Partition,ParentName,"
                "Fairshare,GrpTRESMins,MaxTRESMins,GrpTRES,QOS,DefaultQOS",
            ),
            "sacct month": slurm.peak_rss_kb(
                "sacct", "--parsable2", "--noheader", "--allusers", "--allocations",
                "--noconvert", f"--starttime={month}", "--endtime=now",
                "--format=JobID,Account,User,State,Start,End,AllocTRES",
            ),
        }  # fmt: skip
        results = {
            "seed": args.seed,
            "slurm": f"{args.version} ({slurm.cluster})",
            "duration_under_faults_s": args.duration,
            "wall_time_s": round(time.monotonic() - began),
            "operations": dict(figures.operations),
            "operations_total": sum(
                v for k, v in figures.operations.items() if not k.startswith("refused")
            ),
            "faults": dict(figures.faults),
            "convergence_after_last_fault_s": None if converged is None else round(converged, 1),
            "divergences": divergences,
            "agent_restarts_survived": figures.restarts,
            "agent_cycles": dict(figures.cycles),
            "peak_rss_mb": {k: round(v / 1024, 1) for k, v in figures.peak_rss_kb.items()},
            "soak_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "slurm_command_peak_rss_mb": {
                k: None if v is None else round(v / 1024, 1) for k, v in commands.items()
            },
            "error_lines_by_active_fault": dict(figures.errors_by_fault),
            "error_lines_per_fault": {
                kind: round(figures.errors_by_fault[kind] / count, 1)
                for kind, count in figures.faults.items()
            },
            "command_results_lost_to_waldur_errors": lost,
            "terminated_resources_marked_erred_in_slurm_outages": world.erred_after_terminate,
            "jobs_submitted": len(world.jobs),
            "jobs_never_started_cancelled": cancelled,
            "checked": dict(world.checked),
            "orders": dict(Counter(o["state"] for o in standin.state.orders())),
            "logs": str(logs),
        }
        status = 1 if divergences or converged is None else 0
    slurm.remove_tagged(tag)
    if not args.shared and not args.keep:
        slurm.down()
        script(BROKER_SCRIPT, "down", env=broker_env)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    log(f"{'PASSED' if status == 0 else 'FAILED'}: {len(divergences)} divergences")
    return status


if __name__ == "__main__":
    sys.exit(main())
