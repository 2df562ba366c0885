"""The plugin's exception family.

Every error is a ``BackendError`` so the framework handles it the way it handles any
backend failure (an erred order, an erred resource, a skipped user) and its text,
written for a site admin, reaches Waldur.
"""

from __future__ import annotations

from collections.abc import Sequence

from waldur_site_agent.backend.exceptions import BackendError, BackendNotReadyError

from waldur_site_agent_slurm.slurm.answers import Answer


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
    """A SLURM command could not be run or exited with an error.

    ``answer`` says what SLURM meant (``Answer.JOBS_ACTIVE``, ``Answer.MISSING_PARENT`` …),
    recognised the same way whatever release worded it; ``Answer.FAILED`` otherwise.
    """

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str,
        stderr: str,
        reason: str,
        *,
        answer: Answer = Answer.FAILED,
    ) -> None:
        """Keep the command, its exit status, its output and its meaning."""
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.answer = answer
        super().__init__(f"{reason}: {' '.join(self.argv)}")


class SlurmUnavailableError(SlurmCommandError, BackendNotReadyError):
    """SLURM could not be reached (slurmdbd or slurmctld down or not answering).

    Also a ``BackendNotReadyError``: the framework then leaves an order as it is instead
    of marking it erred, and the next cycle picks it up again once SLURM is back.
    """


class SlurmTimeoutError(SlurmUnavailableError):
    """A SLURM command did not finish within its timeout and was killed."""


class SlurmParseError(SlurmError):
    """SLURM printed something the parser does not understand."""


class UsagePeriodError(SlurmError):
    """A usage month that cannot be reported: invalid, or not begun yet."""


class UnknownAllocationError(SlurmError):
    """Usage was asked for allocation accounts that do not exist in SLURM."""


class LdapError(SlurmError):
    """The LDAP directory refused or failed a project-group change."""


class LdapUnavailableError(LdapError, BackendNotReadyError):
    """The LDAP directory could not be reached or is not answering.

    Like ``SlurmUnavailableError``, the framework then leaves the order as it is and
    the next cycle tries again.
    """


class HistoricalLoadStopped(SystemExit):
    """Stops ``waldur_site_load_historical_usage`` with exit status 1.

    The loader catches every ``Exception`` of a month, logs it and goes on with the next
    month, finally exiting 0. A request the plugin cannot answer (an unknown allocation,
    a month that has not begun, SLURM failing) must instead end the run before anything
    of that month is posted, so this one derives from ``SystemExit``: it passes the
    loader's handlers and the interpreter prints its one-line message and exits 1. It
    is raised only on the loader's call path, never in the agent's own loops.
    """
