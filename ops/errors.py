"""One error hierarchy for every expected failure.

Each class carries the exit code of DESIGN.md's contract, so the task layer needs exactly one
``except OpsError`` to turn any of them into a one-line message and the right status. Messages are
what a person reads: they say what is wrong and, through ``hint``, what to do next. They never
contain a secret value.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes every task keeps (DESIGN.md, "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    INTERRUPTED = 130


class OpsError(Exception):
    """Base of every failure tminus expects and explains."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The single line shown on stderr: the message, then the hint when there is one."""
        text = " ".join(self.message.split())
        return f"{text} (hint: {self.hint})" if self.hint else text


class UsageError(OpsError):
    """The command line or its input is wrong: a bad version, an unknown environment."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The ``ops:`` configuration does not validate; the message names the path."""


class UnavailableError(OpsError):
    """A component the task cannot do without does not answer."""

    exit_code = ExitCode.UNAVAILABLE


class DockerUnavailable(UnavailableError):
    """No Docker engine answers on the configured socket."""


class DatabaseUnavailable(UnavailableError):
    """Postgres or Redis does not answer, or refuses the credentials."""


class ChecksFailed(OpsError):
    """A report's result is ``failed`` (after ``--strict`` has been applied)."""


class BuildFailed(OpsError):
    """The engine refused or failed an image build (exit 1)."""


class DeployFailed(OpsError):
    """A deploy, rollback, scale, backup or restore did not reach its goal."""


class Interrupted(OpsError):
    """SIGINT or SIGTERM arrived; the step in hand was finished or undone first (exit 130)."""

    exit_code = ExitCode.INTERRUPTED


class LockHeld(OpsError):
    """Another live process holds the environment's deploy lock."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The one place that decides the process status for an exception."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, OpsError):
        return exc.exit_code
    return ExitCode.FAILED
