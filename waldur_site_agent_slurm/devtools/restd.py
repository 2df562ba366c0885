"""slurm-emulator's slurmrestd on a local port of its own, for tests and benchmarks.

``slurmrestd-emulator`` itself always listens on 0.0.0.0:6820; ``RestdEmulator`` runs
the same application through uvicorn on a socket it binds first (127.0.0.1, a free
port, handed over by file descriptor so no other process can take the port), with its
own state and clock files and the SLURM release whose data parser it serves
(``SLURM_EMULATOR_SLURM_VERSION``: 24.11 serves v0.0.42, 25.05 v0.0.43). The emulator
serves one data-parser version per release; it has no SLURM 24.05, so v0.0.40 and
v0.0.41 are only on a real slurmrestd.

    with RestdEmulator("25.05", state_dir) as restd:
        restd.url, restd.api_version, restd.env   # the env points the emulator's CLI
                                                  # tools and seeding helpers at its state
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

# The data parser each SLURM release's slurmrestd serves in slurm-emulator.
API_VERSIONS = {"24.11": "v0.0.42", "25.05": "v0.0.43"}
_START_TIMEOUT = 30.0


class RestdEmulator:
    """One slurmrestd emulator process; a context manager that starts and stops it."""

    def __init__(
        self, release: str, state_dir: Path, *, extra_env: dict[str, str] | None = None
    ) -> None:
        """Describe the process: ``release`` picks the data parser, ``state_dir`` its files."""
        if release not in API_VERSIONS:
            raise ValueError(f"release {release!r}: expected one of {', '.join(API_VERSIONS)}")
        self.release = release
        self.api_version = API_VERSIONS[release]
        self.env = {
            "SLURM_EMULATOR_SLURM_VERSION": release,
            "SLURM_EMULATOR_STATE_FILE": str(state_dir / "emulator-state.json"),
            "SLURM_EMULATOR_TIME_FILE": str(state_dir / "emulator-time.json"),
            **(extra_env or {}),
        }
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = state_dir / f"restd-{release}.log"

    def start(self) -> RestdEmulator:
        """Start the process and wait until it answers."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        fd = listener.fileno()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "emulator.api.slurmrestd.app:app",
            "--fd",
            str(fd),
            "--log-level",
            "warning",
        ]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, this interpreter
                argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
            )
        listener.close()
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        ping = f"{self.url}/slurmdb/{self.api_version}/ping/"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                httpx.get(ping, timeout=2)  # any answer (a 401 without a token) means it is up
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return
        self.stop()
        raise RuntimeError(f"slurmrestd emulator did not start: {self._log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop the process (the way a crash or ``kill`` ends slurmrestd)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> RestdEmulator:
        """Start the process."""
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop the process."""
        self.stop()
