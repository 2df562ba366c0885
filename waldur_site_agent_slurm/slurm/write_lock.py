"""One SLURM write at a time across the agent's processes on this host.

A site runs ``order_process``, ``membership_sync``, ``report`` and ``event_process`` as
processes of their own. Two accounting writes racing in slurmdbd can leave a row without
its parent: ``add user U account=A`` beside ``delete account A`` leaves U's association
with no account, ``add account X parent=A`` beside ``delete account A`` leaves X without
a parent (seen on 22.05 and 24.11; see the README's "SLURM 22.05's slurmdbd and orphaned
associations"). On 22.05 later reads of such a row crash slurmdbd; on 24.11 an ``add
user`` to such an account never returns. Taken one after the other, the second write
simply finds the account gone, which the backend handles.

So every write (a ``sacctmgr`` change, a slurmrestd POST or DELETE) holds an exclusive
``flock`` on ``slurm-writes.lock`` in ``periodic_limits.state_dir``, which every process
of one configuration shares, when that directory exists (periodic limits make it at
their first message; a site creates it to have every write serialised from the start).
A lock file that cannot be opened there leaves the writes unserialised, with one warning
per process; a lock held past the timeout is "SLURM unavailable", so the work waits for
the next cycle.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import SlurmTimeoutError
from waldur_site_agent_slurm.slurm.answers import Answer

LOCK_NAME = "slurm-writes.lock"
_POLL = 0.05  # seconds between attempts while another process writes


class WriteLock:
    """An exclusive ``flock`` on one file, taken around each SLURM write."""

    def __init__(self, path: Path, timeout: float) -> None:
        """Lock ``path`` (made on first use), waiting at most ``timeout`` seconds."""
        self.path = path
        self.timeout = timeout
        self._warned = False

    def _open(self) -> int | None:
        if not self.path.parent.is_dir():
            return None
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Cannot open the SLURM write lock %s (%s): this process's SLURM writes "
                    "are not serialised with the agent's other processes",
                    self.path,
                    err.strerror or err,
                )
            return None

    @contextmanager
    def held(self, what: Sequence[str]) -> Iterator[None]:
        """Hold the lock while the write ``what`` (its argv or request) runs."""
        fd = self._open()
        if fd is None:
            yield
            return
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise SlurmTimeoutError(
                            list(what),
                            None,
                            "",
                            "",
                            f"another agent process held the SLURM write lock {self.path} "
                            f"for over {self.timeout:g}s",
                            answer=Answer.UNAVAILABLE,
                        ) from None
                    time.sleep(_POLL)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def holding(lock: WriteLock | None, what: Sequence[str]) -> AbstractContextManager[None]:
    """``lock`` held around the write ``what``; nothing to hold without a lock (a read)."""
    return nullcontext() if lock is None else lock.held(what)
