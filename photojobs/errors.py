"""The one error boundary: every error a user can act on is a PhotojobsError.

A subclass's docstring is its default message; `exit_code` is what the CLI exits with
(2 a usage error, 3 an environment error, as in the CLI contract).
"""

from __future__ import annotations


class PhotojobsError(Exception):
    """photojobs failed."""

    exit_code = 1

    def __init__(self, message: str | None = None, *, hint: str | None = None):
        self.message = message or (self.__doc__ or "").strip()
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(PhotojobsError):
    """Invalid input."""

    exit_code = 2


class EnvironmentProblem(PhotojobsError):
    """The environment is not usable."""

    exit_code = 3


class ConfigError(EnvironmentProblem):
    """The configuration is invalid."""


class DatabaseMissing(EnvironmentProblem):
    """The database does not exist."""


class DatabaseUnusable(EnvironmentProblem):
    """The database cannot be used (read-only, corrupt or not a photojobs database)."""


class DatabaseLocked(EnvironmentProblem):
    """The database stayed locked past its busy budget."""


class DiskFull(EnvironmentProblem):
    """The disk is full."""


class SchemaTooOld(EnvironmentProblem):
    """The database schema is older than this version of photojobs."""


class NotFound(UsageError):
    """No such record."""


class UnknownJob(UsageError):
    """No job is registered under that name."""


class InvalidPayload(UsageError):
    """The payload does not fit the job."""


class DuplicateJob(UsageError):
    """A live job with this unique key already exists."""


# --- raised by job code to steer the worker -------------------------------------------

class JobControl(PhotojobsError):
    """A job asked the worker for something."""


class RetryLater(JobControl):
    """The job asked to be retried later."""

    def __init__(self, message: str | None = None, *, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class PermanentFailure(JobControl):
    """The job failed for a reason that no retry can fix."""


class JobTimeout(JobControl):
    """The job ran past its timeout."""


class WorkerLost(JobControl):
    """The worker process running the job died."""


class LeaseLost(JobControl):
    """This worker lost its lease on the job (stopped or cut off too long): its result was discarded."""
