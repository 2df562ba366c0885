"""What periodic limits must remember between messages, one JSON file per allocation.

The agent builds a new backend for every message and every cycle, so three facts live
on disk under ``periodic_limits.state_dir``: the periods whose RawUsage reset already
ran (a reset happens at most once per allocation and period, whatever Waldur re-sends),
the QoS level the last periodic thresholds asked for, and the level Waldur's flags last
asked for. Files are ``<state_dir>/<cluster>/<account>.json``, replaced atomically
(temporary file, fsync, ``os.replace``); a ``.lock`` file next to each one serialises
the event process and membership sync.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from waldur_site_agent_slurm.allocation.qos import QosLevel
from waldur_site_agent_slurm.errors import SlurmError
from waldur_site_agent_slurm.slurm import validation

VERSION = 1
KEEP_RESETS = 12  # reset markers kept per allocation (three years of quarters)
DEFAULT_CLUSTER_DIR = "default"


class PeriodicStateError(SlurmError):
    """The state directory or a state file cannot be used."""


@dataclass(frozen=True)
class ThresholdState:
    """The QoS level the last thresholds asked for, and what it was computed from."""

    period: str
    level: QosLevel
    usage_minutes: str
    qos_threshold: str | None = None
    grace_limit: str | None = None


@dataclass(frozen=True)
class AccountState:
    """Everything remembered about one allocation."""

    resets: tuple[str, ...] = ()
    flags: QosLevel | None = None
    threshold: ThresholdState | None = None

    def reset_done(self, period_id: str) -> bool:
        """True when RawUsage was already reset for ``period_id``."""
        return period_id in self.resets

    def with_reset(self, period_id: str) -> AccountState:
        """This state with ``period_id`` recorded as reset (oldest markers dropped)."""
        resets = (*[p for p in self.resets if p != period_id], period_id)[-KEEP_RESETS:]
        return replace(self, resets=resets)

    def to_json(self) -> dict[str, Any]:
        """The file content."""
        threshold = None
        if self.threshold is not None:
            threshold = {
                "period": self.threshold.period,
                "level": self.threshold.level.name,
                "usage_minutes": self.threshold.usage_minutes,
                "qos_threshold": self.threshold.qos_threshold,
                "grace_limit": self.threshold.grace_limit,
            }
        return {
            "version": VERSION,
            "raw_usage_resets": list(self.resets),
            "flags_level": self.flags.name if self.flags is not None else None,
            "threshold": threshold,
        }

    @classmethod
    def from_json(cls, data: object) -> AccountState:
        """Read the file content; raises ``ValueError``/``KeyError``/``TypeError`` if bad."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"expected a version {VERSION} state object")
        resets = data.get("raw_usage_resets") or []
        if not isinstance(resets, list) or not all(isinstance(p, str) for p in resets):
            raise TypeError("raw_usage_resets must be a list of period names")
        flags = data.get("flags_level")
        raw = data.get("threshold")
        threshold = None
        if raw is not None:
            threshold = ThresholdState(
                period=str(raw["period"]),
                level=QosLevel[raw["level"]],
                usage_minutes=str(raw["usage_minutes"]),
                qos_threshold=raw.get("qos_threshold"),
                grace_limit=raw.get("grace_limit"),
            )
        return cls(
            resets=tuple(resets),
            flags=QosLevel[flags] if flags is not None else None,
            threshold=threshold,
        )


class LockedState:
    """One allocation's state while its lock is held; ``save`` writes at once."""

    def __init__(self, store: StateStore, account: str, state: AccountState) -> None:
        """Hold the state read under the lock."""
        self._store = store
        self._account = account
        self.state = state

    def save(self, state: AccountState) -> None:
        """Replace the file with ``state`` (no write when nothing changed)."""
        if state != self.state:
            self._store.write(self._account, state)
            self.state = state


class StateStore:
    """The state files of one cluster under one directory."""

    def __init__(self, directory: Path, cluster: str | None = None) -> None:
        """Use ``directory``/``cluster`` (``default`` when no cluster is configured)."""
        self.directory = directory / (cluster or DEFAULT_CLUSTER_DIR)

    def path(self, account: str) -> Path:
        """The state file of ``account``."""
        return self.directory / f"{validation.account_name(account)}.json"

    def ensure_writable(self) -> None:
        """Create the directory if needed and check the agent may write there."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise PeriodicStateError(
                f"Cannot create periodic_limits.state_dir {self.directory}: {err}; create it "
                "writable by the agent or point state_dir elsewhere"
            ) from err
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PeriodicStateError(
                f"periodic_limits.state_dir {self.directory} is not writable by the agent"
            )

    def read(self, account: str) -> AccountState:
        """The remembered state (empty when nothing was remembered yet)."""
        path = self.path(account)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return AccountState()
        except OSError as err:
            raise PeriodicStateError(f"Cannot read {path}: {err}") from err
        try:
            return AccountState.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as err:
            raise PeriodicStateError(
                f"State file {path} is unreadable ({err}); fix or remove it (removing it "
                "forgets which periods' RawUsage was already reset)"
            ) from err

    def write(self, account: str, state: AccountState) -> None:
        """Replace the state file atomically."""
        path = self.path(account)
        text = json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n"
        tmp_name = ""
        try:
            with tempfile.NamedTemporaryFile(
                "w", dir=self.directory, prefix=f".{path.name}.", delete=False, encoding="utf-8"
            ) as tmp:
                tmp_name = tmp.name
                tmp.write(text)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except OSError as err:
            if tmp_name:
                with suppress(OSError):
                    os.unlink(tmp_name)
            raise PeriodicStateError(f"Cannot write {path}: {err}") from err

    @contextmanager
    def locked(self, account: str) -> Iterator[LockedState]:
        """Hold ``account``'s lock; yield its state for reading and saving."""
        self.ensure_writable()
        lock_path = self.path(account).with_suffix(".lock")
        try:
            handle = lock_path.open("a")
        except OSError as err:
            raise PeriodicStateError(f"Cannot open {lock_path}: {err}") from err
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield LockedState(self, account, self.read(account))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
