"""A resource found by a membership pull: its usage is read only when it is asked for.

The framework's membership cycle (``pull_resources``, then each resource's users) reads
``users`` and never ``usage``; only the report cycle, which pulls one resource at a
time, reports it. So a pull of many resources leaves the month's jobs unread, and the
first resource whose ``usage`` is asked for reads them for every resource of the pull
(one ``sacct``, or one ``/jobs/`` request in REST mode, per month); the others are
answered from that read. The month is the one the pull was made in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waldur_site_agent.backend.structures import BackendResourceInfo


class PulledResource(BackendResourceInfo):
    """``BackendResourceInfo`` whose ``usage`` is read on first access, then kept."""

    def __init__(self, users: list[str], read_usage: Callable[[], dict[str, Any]]) -> None:
        """``read_usage`` gives the resource's usage report when it is first asked for."""
        super().__init__(users=users)
        self._read_usage: Callable[[], dict[str, Any]] | None = read_usage

    @property
    def usage(self) -> dict[str, Any]:
        """The resource's usage of the pull's month (read now if not yet read)."""
        if self._read_usage is not None:
            self._usage = self._read_usage()
            self._read_usage = None
        return self._usage

    @usage.setter
    def usage(self, value: dict[str, Any]) -> None:
        self._usage = value
        self._read_usage = None

    def __repr__(self) -> str:
        """Like the framework's, without reading the usage just to show it."""
        usage = "<not read>" if self._read_usage is not None else repr(self._usage)
        return f"PulledResource(users={self.users!r}, usage={usage})"
