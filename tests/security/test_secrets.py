"""Secrets never show: not in logs, command lines, diagnostics, exceptions or process lists.

The secrets are the offering's Waldur API token (also its STOMP password), the RabbitMQ
administrator password and the MariaDB password of ``scripts/real-slurm.sh``. Each test
runs the real programs, captures everything they print (stdout, stderr, the agent's
JSON log records with their exception texts and the "Executed: …" command lines) and
greps it for the secret values. The scripts' tests also watch every process's command
line while the script runs, since a password passed as an argument shows in ``ps``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import FLOOD, SCENARIO, agent_config
from tests.e2e.events import event_config
from tests.e2e.test_failures import failing_slurm
from tests.emulator.conftest import emulator  # noqa: F401 - the per-test emulator fixture
from tests.real.conftest import real_slurm, stack  # noqa: F401 - the real SLURM, per version
from tests.services import unavailable
from waldur_site_agent_slurm.devtools.demo.agentrun import (
    AGENT,
    AgentRun,
    run_agent_cycle,
    start_agent,
)
from waldur_site_agent_slurm.devtools.standin import StandIn, load_scenario

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOKEN = "demo-offering-token"  # noqa: S105 - the public demo token
SUBSCRIBED = "Started unified STOMP connection for queue"
FAST = 0.01  # the agent's 5-second pauses between Waldur retries, 100× shorter


def assert_absent(secrets: list[str], *texts: str) -> None:
    """No secret in any text; the failure names where, never the secret itself."""
    for secret in secrets:
        assert len(secret) >= 8, "a secret this short would match by accident"
        for n, text in enumerate(texts):
            if secret in text:
                where = text.index(secret)
                context = text[max(0, where - 80) : where].replace(secret, "<secret>")
                pytest.fail(f"secret found in output #{n} after: …{context}")


@pytest.fixture
def token() -> str:
    return f"tok-{uuid.uuid4().hex}"


@pytest.fixture
def secret_standin(tmp_path: Path, token: str) -> Iterator[StandIn]:
    """The demo stand-in whose offering token is ``token``."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.read_text().replace(DEMO_TOKEN, token))
    with StandIn(load_scenario(scenario)) as server:
        yield server


def config_with_token(path: Path, api_url: str, token: str, **backend_settings: object) -> Path:
    agent_config(path, api_url, **backend_settings)
    config = yaml.safe_load(path.read_text())
    config["offerings"][0]["waldur_api_token"] = token
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def agent_runs(mode: str, config: Path, *, ok: bool = True) -> AgentRun:
    run = run_agent_cycle(mode, config, sleep_scale=FAST)
    if ok:
        assert run.returncode == 0, run.output[-3000:]
    return run


@pytest.mark.e2e
@pytest.mark.usefixtures("emulator")
def test_the_api_token_shows_in_no_agent_output_even_when_things_fail(
    secret_standin: StandIn, tmp_path: Path, token: str
) -> None:
    standin = secret_standin
    good = config_with_token(tmp_path / "agent.yaml", standin.api_url, token)
    outputs: list[str] = []

    # Failures whose messages travel through logs and exceptions: a bad account name,
    # Waldur answering 500 and dropping a connection, SLURM unreachable.
    flood = standin.state.resource_by_name(FLOOD)
    standin.state.update_resource(flood["uuid"], slug="flood;touch /tmp/x")
    standin.state.add_fault(method="POST", path="set_limits", status=500, times=1)
    standin.state.add_fault(path="/team/", drop=True, times=1)
    down = config_with_token(
        tmp_path / "down.yaml",
        standin.api_url,
        token,
        emulator_mode=False,
        slurm_bin_path=str(failing_slurm(tmp_path)),
    )
    outputs.append(agent_runs("order_process", down).output)
    outputs.append(agent_runs("order_process", good).output)
    assert {o["state"] for o in standin.state.orders()} == {"done", "erred"}
    for mode in ("membership_sync", "report"):
        outputs.append(agent_runs(mode, good).output)
    outputs.append(agent_runs("report", down).output)

    # A wrong token (401) and an unreachable Waldur.
    wrong = config_with_token(tmp_path / "wrong.yaml", standin.api_url, f"wrong-{token}")
    outputs.append(agent_runs("membership_sync", wrong, ok=False).output)
    gone = config_with_token(tmp_path / "gone.yaml", "http://127.0.0.1:9/api/", token)
    outputs.append(agent_runs("report", gone, ok=False).output)

    # The framework's diagnostics, which also run the backend's own.
    diagnostics = subprocess.run(
        [str(AGENT.parent / "waldur_site_diagnostics"), "-c", str(good)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    outputs.append(diagnostics.stdout + diagnostics.stderr)
    assert "Diagnostics" in outputs[-1] or "DIAGNOSTICS" in outputs[-1], outputs[-1][-2000:]

    # The runs did fail where they should, so error paths were exercised.
    every = "\n".join(outputs)
    assert "Invalid allocation account" in every
    assert "Problem talking to the database" in every
    assert "Injected fault" in every or "500" in every
    assert_absent([token, f"wrong-{token}"], *outputs)


# ---- STOMP ---------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.broker
@pytest.mark.usefixtures("emulator")
def test_stomp_passwords_show_in_no_event_process_output(tmp_path: Path) -> None:
    from tests.broker import broker_env
    from tests.broker.conftest import _broker_status

    needs_root("the broker")
    problem = _broker_status()
    if problem is not None:
        unavailable(problem)
    env = broker_env()
    password = Path(env["RMQ_PASSWORD_FILE"]).read_text()  # the offering token, as STOMP's
    admin = Path(env["RMQ_ADMIN_PASSWORD_FILE"]).read_text()
    refused = f"tok-{uuid.uuid4().hex}"  # Waldur knows it, the broker does not
    data = yaml.safe_load(SCENARIO.read_text().replace(DEMO_TOKEN, password))
    data["tokens"].append({**data["tokens"][0], "token": refused})
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    outputs = []
    periodic = {"state_dir": str(tmp_path / "s")}
    with StandIn(load_scenario(scenario)) as standin:
        config = event_config(tmp_path / "ok.yaml", standin.api_url, periodic, token=password)
        with start_agent("event_process", config) as agent:
            agent.wait_for_log(SUBSCRIBED)
            outputs.append(agent.stop().output)
        config = event_config(tmp_path / "no.yaml", standin.api_url, periodic, token=refused)
        with start_agent("event_process", config) as agent:
            agent.wait_for_log("Failed to connect to STOMP server", timeout=120)
            outputs.append(agent.stop().output)
    assert_absent([password, admin, refused], *outputs)


# ---- the test scripts --------------------------------------------------------------------


class CommandLineWatch:
    """Reads every process's command line, over and over, while a script runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    raw = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))

    def __enter__(self) -> CommandLineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_script(
    script: str, *commands: str, args: tuple[str, ...] = ()
) -> tuple[list[str], set[str]]:
    """Run ``scripts/<script> COMMAND ARGS…`` for each command; return outputs and command lines."""
    outputs = []
    with CommandLineWatch() as watch:
        for command in commands:
            proc = subprocess.run(
                ["bash", str(ROOT / "scripts" / script), command, *args],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            outputs.append(proc.stdout + proc.stderr)
    assert len(watch.seen) > 1
    return outputs, watch.seen


def needs_root(what: str) -> None:
    if os.geteuid() == 0:
        return
    message = f"{what} needs root"
    unavailable(message)


@pytest.mark.real_slurm
@pytest.mark.usefixtures("real_slurm")
def test_the_database_password_of_real_slurm_sh_is_never_printed_or_passed_as_argument() -> None:
    needs_root("scripts/real-slurm.sh")
    current = stack()
    outputs, command_lines = run_script(
        "real-slurm.sh", "status", "env", "up", "status", args=(current.version,)
    )

    root = current.slurmdbd_pid_file.parents[2]  # <root>/run/slurm/slurmdbd.pid
    dbpass = root / "var/lib/slurm/.dbpass"
    password = dbpass.read_text().strip()
    assert_absent([password], *outputs, *command_lines)
    for path in (dbpass, root / "etc/slurm/slurmdbd.conf"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert f"up: SLURM {current.version}, cluster" in outputs[2]


@pytest.mark.broker
def test_the_broker_passwords_of_rabbitmq_sh_are_never_printed_or_passed_as_argument() -> None:
    from tests.broker import broker_env
    from tests.broker.conftest import _broker_status

    needs_root("scripts/rabbitmq.sh")
    problem = _broker_status()
    if problem is not None:
        unavailable(problem)
    outputs, command_lines = run_script("rabbitmq.sh", "status", "env", "up", "status")

    env = broker_env()
    secrets = [Path(env[k]).read_text() for k in ("RMQ_PASSWORD_FILE", "RMQ_ADMIN_PASSWORD_FILE")]
    assert_absent(secrets, *outputs, *command_lines)
    for key in ("RMQ_PASSWORD_FILE", "RMQ_ADMIN_PASSWORD_FILE"):
        assert Path(env[key]).stat().st_mode & 0o077 == 0
    assert "RMQ_ADMIN_PASSWORD_FILE" in outputs[1]  # paths are printed instead
