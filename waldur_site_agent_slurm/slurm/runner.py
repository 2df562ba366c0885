"""The one place where a process is started.

Every SLURM command goes through ``CommandRunner``: an argv list (never a shell), an
explicit timeout, stdin closed, stdout and stderr captured, the exit status checked.
It resolves the binaries (``slurm_bin_path``, slurm-emulator's look-alike commands in
emulator mode, otherwise ``PATH``), and in dry-run mode it fakes writes, never reads.
Tests replace it with a fake that records the exact argv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import (
    SlurmCommandError,
    SlurmTimeoutError,
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.slurm.answers import NOTHING_TO_DO, Answer, classify
from waldur_site_agent_slurm.slurm.write_lock import WriteLock, holding


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed and how it exited."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def answer(self) -> Answer:
        """What the exit status and the output mean (``answers.classify``)."""
        return classify(self.argv, self.returncode, self.stdout, self.stderr)

    @property
    def nothing_to_do(self) -> bool:
        """True when sacctmgr reported that the request changed nothing.

        An add that found everything there, a delete that found nothing, a modify that
        matched nothing: in 22.05's words and in 24.11's.
        """
        return self.answer in NOTHING_TO_DO


class Runner(Protocol):
    """What the client needs from a runner; the fake in the tests implements it too."""

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        """Run a command to completion."""

    def stream(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
        """Run a read-only command (with extra environment) and yield its stdout lines."""

    def display(self, argv: Sequence[str]) -> str:
        """The command line as a site admin would type it."""

    def release(self) -> tuple[int, int] | None:
        """The SLURM release (major, minor) of the commands run; None when not known."""


# ``sacctmgr --version`` of each binary, asked once per process: (path, inode, mtime) → release.
_RELEASES: dict[tuple[str, int, int], tuple[int, int] | None] = {}
_RELEASE_RE = re.compile(r"\bslurm(?:-wlm)? (\d+)\.(\d+)\.")


def parse_release(text: str) -> tuple[int, int] | None:
    """``slurm-wlm 22.05.8`` (what ``sacctmgr --version`` prints) → (22, 5); else None."""
    match = _RELEASE_RE.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


class CommandRunner:
    """Runs SLURM commands as subprocesses."""

    def __init__(
        self,
        *,
        bin_path: str | None = None,
        emulator: bool = False,
        timeout: float = 120.0,
        dry_run: bool = False,
        env: Mapping[str, str] | None = None,
        kind: str = "SLURM",
        write_lock: WriteLock | None = None,
    ) -> None:
        """Set where binaries come from, how long they may run and whether writes happen.

        ``kind`` names the commands in errors: ``SLURM``, or ``Host`` for the file-system
        tools of the site features (found on ``PATH``). ``write_lock``, when given, is
        held around each mutating command (see ``slurm.write_lock``).
        """
        self.write_lock = write_lock
        self.kind = kind
        self.bin_path = bin_path
        self.emulator = emulator
        self.timeout = timeout
        self.dry_run = dry_run
        self.env = dict(env) if env is not None else None
        self.calls = 0
        self._resolved: dict[str, str] = {}

    def display(self, argv: Sequence[str]) -> str:
        """Show a command as a site admin would type it (binary by name, not path)."""
        return " ".join([Path(argv[0]).name, *argv[1:]])

    def resolve(self, command: str) -> str:
        """Return the absolute path of ``command`` or raise a clear error."""
        if command in self._resolved:
            return self._resolved[command]
        if self.bin_path:
            candidate = Path(self.bin_path) / command
            found = str(candidate) if os.access(candidate, os.X_OK) else None
            where = f"slurm_bin_path {self.bin_path}"
        elif self.emulator:
            # slurm-emulator installs its commands next to the Python interpreter.
            candidate = Path(sys.executable).parent / command
            found = str(candidate) if os.access(candidate, os.X_OK) else None
            where = f"{candidate.parent} (slurm-emulator; is it installed?)"
        else:
            found = shutil.which(command, path=_path_without_python_env())
            where = "PATH"
            if self.kind == "SLURM":
                where += " (set slurm_bin_path if SLURM lives elsewhere)"
        if found is None:
            raise SlurmCommandError(
                [command], None, "", "", f"{self.kind} command {command!r} not found in {where}"
            )
        self._resolved[command] = found
        return found

    def release(self) -> tuple[int, int] | None:
        """The SLURM release of this runner's sacctmgr (``sacctmgr --version``).

        Asked once per process and binary (a binary an upgrade replaced is asked again),
        and not counted in ``calls``: it does not reach slurmdbd, and a cycle's count of
        commands stays the same whichever cycle of the process asked.
        """
        path = self.resolve("sacctmgr")
        status = os.stat(path)
        key = (path, status.st_ino, status.st_mtime_ns)
        if key not in _RELEASES:
            answer = checked(self._execute(["sacctmgr", "--version"]))
            _RELEASES[key] = parse_release(answer.stdout)
        return _RELEASES[key]

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return [self.resolve(argv[0]), *argv[1:]]

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        """Run ``argv`` and return its result; raise on failure or timeout.

        Args:
            argv: command name and arguments.
            mutating: the command changes SLURM; in dry-run mode it is only logged.
            accept_nothing: sacctmgr's "nothing changed" answers (exit 1) are a success.

        A sacctmgr change that exits 0 but reports ``error:`` on stderr is a failure.
        """
        shown = self.display(argv)
        if mutating and self.dry_run:
            logger.info("Dry run, not executing: %s", shown)
            return CommandResult(tuple(argv), 0, "", "")
        logger.debug("Executing: %s", shown)
        self.calls += 1
        with holding(self.write_lock if mutating else None, argv):
            result = self._execute(argv)
        return checked(result, accept_nothing=accept_nothing)

    def _execute(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv`` to completion (stdin closed, output captured, ``timeout``)."""
        full = self._argv(argv)
        try:
            proc = subprocess.run(  # noqa: S603 - argv list, no shell
                full,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=self.env,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise SlurmTimeoutError(
                argv,
                None,
                _text(err.stdout),
                _text(err.stderr),
                f"Timed out after {self.timeout:g}s",
            ) from err
        except OSError as err:
            raise SlurmCommandError(argv, None, "", str(err), f"Could not start ({err})") from err
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def stream(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
        """Run a read-only command, yielding stdout lines as they arrive.

        ``env`` adds variables to the command's environment (sacct gets ``TZ=UTC``).

        Memory stays bounded by one line; stderr goes to a temporary file so a chatty
        command cannot block. The whole command is killed after ``timeout`` seconds.
        """
        full = self._argv(argv)
        logger.debug("Executing: %s", self.display(argv))
        self.calls += 1
        with tempfile.TemporaryFile(mode="w+") as err_file:
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                full,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
                env={**(self.env if self.env is not None else os.environ), **(env or {})},
            )
            timed_out = threading.Event()

            def _kill() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(self.timeout, _kill)
            timer.start()
            try:
                assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
                yield from (line.rstrip("\n") for line in proc.stdout)
                returncode = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err_file.seek(0)
            stderr = err_file.read()
        if timed_out.is_set():
            raise SlurmTimeoutError(argv, None, "", stderr, f"Timed out after {self.timeout:g}s")
        if returncode != 0:
            raise command_error(CommandResult(tuple(argv), returncode, "", stderr))


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def checked(result: CommandResult, *, accept_nothing: bool = False) -> CommandResult:
    """``result`` when the command did what was asked, else the error saying what SLURM meant.

    ``accept_nothing`` also lets a request that changed nothing through.
    """
    answer = result.answer
    if answer is Answer.DONE or (accept_nothing and answer in NOTHING_TO_DO):
        return result
    raise command_error(result)


def command_error(result: CommandResult) -> SlurmCommandError:
    """The error for a failed command: SLURM unreachable, or the command refused."""
    answer = result.answer
    cls = SlurmUnavailableError if answer is Answer.UNAVAILABLE else SlurmCommandError
    return cls(
        result.argv,
        result.returncode,
        result.stdout,
        result.stderr,
        _failure_reason(result, answer),
        answer=answer,
    )


def _failure_reason(result: CommandResult, answer: Answer) -> str:
    message = (result.stderr.strip() or result.stdout.strip()).splitlines()
    detail = " ".join(line.strip() for line in message[:3]) or "no output"
    if result.returncode == 0:
        return f"Reported an error although it exited 0 ({detail})"
    status = f"Exit status {result.returncode} ({detail})"
    if answer in (Answer.FAILED, Answer.UNAVAILABLE):
        return status
    return f"SLURM refused ({answer.value}); {status[0].lower()}{status[1:]}"


def _path_without_python_env() -> str:
    """PATH without the Python environment's bin directory.

    slurm-emulator installs commands named ``sacctmgr``, ``sacct`` … there; outside
    emulator mode the agent must never pick those up by accident.
    """
    env_bin = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return os.pathsep.join(p for p in parts if p and str(Path(p)) != env_bin)
