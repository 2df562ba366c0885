"""The plugin's exception family.

Every error is a ``BackendError`` so the framework handles it the way it handles any
backend failure (an erred order, an erred resource, a skipped user) and its text,
written for a site admin, reaches Waldur.
"""

from __future__ import annotations

from collections.abc import Sequence

from waldur_site_agent.backend.exceptions import BackendError


class SlurmError(BackendError):
    """Base class of everything this plugin raises."""


class SlurmConfigError(SlurmError):
    """The offering's backend settings or components are invalid."""


class InvalidValueError(SlurmError):
    """A value from Waldur, STOMP or the config cannot be put on a SLURM command line."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        """Name the field, show the rejected value and say what is allowed."""
        self.field = field
        self.value = value
        super().__init__(f"Invalid {field} {value!r}: {reason}")


class SlurmCommandError(SlurmError):
    """A SLURM command could not be run or exited with an error."""

    def __init__(
        self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str, reason: str
    ) -> None:
        """Keep the command, its exit status and its output for the caller and the log."""
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{reason}: {' '.join(self.argv)}")


class SlurmTimeoutError(SlurmCommandError):
    """A SLURM command did not finish within its timeout and was killed."""


class SlurmParseError(SlurmError):
    """SLURM printed something the parser does not understand."""
