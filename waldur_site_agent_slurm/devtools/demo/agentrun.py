"""Run the real ``waldur_site_agent`` command for one polling cycle, or until stopped.

The agent runs exactly as a site admin starts it (``waldur_site_agent -m MODE -c
CONFIG``), in its own process. ``run_agent_cycle``: a start-up hook (see
``hook/sitecustomize.py``) ends the process when the first cycle is over instead of
sleeping until the next one. ``start_agent``: no hook; the process keeps running (as
``event_process`` must, to consume messages) until the caller stops it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

HOOK_DIR = Path(__file__).resolve().parent / "hook"
AGENT = Path(sys.executable).parent / "waldur_site_agent"


def _record(line: str) -> dict[str, Any] | None:
    """The agent's JSON log record on ``line``; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class AgentRun:
    """What one agent process did: exit status, its log records and raw output."""

    mode: str
    returncode: int
    stdout: str
    stderr: str

    @cached_property
    def records(self) -> list[dict[str, Any]]:
        """The agent's JSON log lines, parsed; other lines are skipped."""
        return [r for r in map(_record, self.stdout.splitlines()) if r is not None]

    def messages(self, level: str | None = None) -> list[str]:
        """Log messages, optionally only those of one level (``error``, ``warning``...)."""
        return [
            str(record.get("event", ""))
            for record in self.records
            if level is None or record.get("level") == level
        ]

    @property
    def output(self) -> str:
        """Everything the process printed."""
        return self.stdout + self.stderr


def run_agent_cycle(
    mode: str,
    config: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    sleep_scale: float = 1.0,
    http_timeout: float | None = None,
) -> AgentRun:
    """Run ``waldur_site_agent -m mode -c config`` until its first cycle ends.

    Args:
        mode: ``order_process``, ``membership_sync`` or ``report``.
        config: The agent configuration file.
        env: Extra environment variables (e.g. the emulator's state file).
        timeout: Seconds before the process is killed and ``TimeoutError`` raised.
        sleep_scale: Factor applied to the agent's retry pauses.
        http_timeout: Seconds the agent waits for Waldur before giving up on a
            request (the framework's own is 600 s), for tests of a hanging Waldur.

    Returns:
        The finished run.
    """
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HOOK_DIR), full_env.get("PYTHONPATH", "")) if p
    )
    full_env["WALDUR_SLURM_ONE_CYCLE"] = "1"
    full_env["WALDUR_SLURM_SLEEP_SCALE"] = str(sleep_scale)
    if http_timeout is not None:
        full_env["WALDUR_SLURM_HTTP_TIMEOUT"] = str(http_timeout)
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv: the agent's own console script
            [str(AGENT), "-m", mode, "-c", str(config)],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise TimeoutError(
            f"waldur_site_agent -m {mode} did not finish a cycle in {timeout}s"
        ) from err
    return AgentRun(mode, proc.returncode, proc.stdout, proc.stderr)


class AgentProcess:
    """A ``waldur_site_agent`` process that runs until stopped (``event_process``).

    Its output is read on two background threads while it runs, so a test can wait for
    a log record and still inspect everything once the process is gone. ``stop`` sends
    SIGTERM (the agent's own shutdown path), then SIGKILL to the whole process group if
    it lingers; using the object as a context manager guarantees that stop.
    """

    def __init__(self, mode: str, process: subprocess.Popen[str]) -> None:
        """Start reading ``process``'s stdout and stderr."""
        self.mode = mode
        self.process = process
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._records: list[dict[str, Any]] = []  # stdout's log records, parsed as they come
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", process.stdout), ("stderr", process.stderr))
        ]
        for reader in self._readers:
            reader.start()
        _LIVE.add(self)

    def _read(self, name: str, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            record = _record(line) if name == "stdout" else None
            with self._changed:
                self._lines[name].append(line)
                if record is not None:
                    self._records.append(record)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def snapshot(self) -> AgentRun:
        """Everything the process printed so far (returncode -1 while it runs)."""
        with self._changed:
            stdout = "".join(self._lines["stdout"])
            stderr = "".join(self._lines["stderr"])
        code = self.process.poll()
        return AgentRun(self.mode, -1 if code is None else code, stdout, stderr)

    def wait_for_log(self, text: str, *, after: int = 0, timeout: float = 120) -> dict[str, Any]:
        """Wait for a log record whose message contains ``text``; return the record.

        Args:
            text: Part of the message (the ``event`` of the agent's JSON log lines).
            after: Skip this many records first (``len(snapshot().records)`` taken
                earlier), to wait for a new occurrence.
            timeout: Seconds before ``TimeoutError``.

        Raises:
            TimeoutError: no such record in time.
            RuntimeError: the process ended without printing one.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                records = self._records[after:]
                found = next((r for r in records if text in str(r.get("event", ""))), None)
                if found is not None:
                    return found
                if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                    tail = self.snapshot().output[-3000:]
                    raise RuntimeError(
                        f"waldur_site_agent -m {self.mode} exited with "
                        f"{self.process.returncode} before logging {text!r}:\n{tail}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"waldur_site_agent -m {self.mode} logged no {text!r} in {timeout}s"
                    )
                self._changed.wait(min(left, 0.5))

    def stop(self, timeout: float = 30) -> AgentRun:
        """End the process (SIGTERM, then SIGKILL after ``timeout``); return its run."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()  # the group: anything the agent started and left behind
        for reader in self._readers:
            reader.join(timeout)
        _LIVE.discard(self)
        return self.snapshot()

    def kill(self) -> None:
        """SIGKILL the process and its group (the agent runs in its own session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> AgentProcess:
        """The process itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the process whatever happened inside the block."""
        self.stop()


# Processes started and not yet stopped: killed when the interpreter exits, so an
# interrupted test run leaves no agent behind.
_LIVE: set[AgentProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for agent in list(_LIVE):
        agent.kill()


def start_agent(
    mode: str,
    config: Path,
    *,
    env: dict[str, str] | None = None,
) -> AgentProcess:
    """Start ``waldur_site_agent -m mode -c config`` and leave it running.

    Unlike ``run_agent_cycle`` the process is not stopped at its first 60-second tick:
    ``event_process`` only starts consuming messages after its start-up cycles, and
    then sleeps in such ticks between its periodic checks. Stop it with ``stop()`` or
    use the returned object in a ``with`` block.

    Args:
        mode: Usually ``event_process``.
        config: The agent configuration file.
        env: Extra environment variables (e.g. the emulator's state file).

    Returns:
        The running process.
    """
    full_env = {**os.environ, **(env or {})}
    full_env.pop("WALDUR_SLURM_ONE_CYCLE", None)  # no start-up hook: it must keep running
    process = subprocess.Popen(  # noqa: S603 - fixed argv: the agent's own console script
        [str(AGENT), "-m", mode, "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    return AgentProcess(mode, process)
