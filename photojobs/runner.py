"""Running one claimed job and recording its outcome: the code path shared by worker
processes and the sync mode."""

from __future__ import annotations

import logging
import signal
import time
import traceback
from typing import TYPE_CHECKING

from .context import JobContext
from .errors import JobTimeout, LeaseLost, PermanentFailure, RetryLater, UnknownJob, UsageError, WorkerLost
from .storage import AttemptError, Job
from .retry import DEFAULT_BACKOFF

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("photojobs.worker")

DEFAULT_TRIES = 3
DEFAULT_TIMEOUT = 60.0

# LOST: the attempt no longer held its job (its lease ran out and another took it), so
# nothing of it was recorded; the job's new holder decides its outcome.
DONE, RETRY, FAILED, LOST = "done", "retry", "failed", "lost"


def limits(app: "App", job: Job, tries: int | None = None, timeout: float | None = None) -> tuple[int, float]:
    """A job's tries and timeout: dispatch's override, else the job type's, else the worker's."""
    try:
        spec = app.registry.get(job.name)
        spec_tries, spec_timeout = spec.tries, spec.timeout
    except UnknownJob:
        spec_tries = spec_timeout = None
    return (job.tries or spec_tries or tries or DEFAULT_TRIES,
            job.timeout or spec_timeout or timeout or DEFAULT_TIMEOUT)


def _alarm(signum: int, frame: object) -> None:
    raise JobTimeout("the job ran past its timeout")


def call_handler(app: "App", job: Job, timeout: float | None) -> None:
    """Validate and run the handler; a soft timeout (SIGALRM) interrupts Python code and
    sleeps, while the worker's supervisor kills a job stuck in C code."""
    spec = app.registry.get(job.name)
    payload = spec.validate(job.payload)
    use_alarm = bool(timeout) and signal.getsignal(signal.SIGALRM) is _alarm
    if use_alarm:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        if spec.context:
            spec.func(JobContext(app, job), **payload)
        else:
            spec.func(**payload)
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)


def install_alarm() -> None:
    signal.signal(signal.SIGALRM, _alarm)


def error_of(exc: BaseException) -> AttemptError:
    return AttemptError(type(exc).__name__, str(exc),
                        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def execute(app: "App", job: Job, worker: str, *, job_limits: tuple[int, float] | None = None,
            errors: list[BaseException] | None = None) -> tuple[str, float]:
    """Run one job with its (tries, timeout) from `limits`. Returns (outcome, duration).
    Retries and failures are recorded here (the exception also appended to `errors`, if
    given); a success is left to the caller, who may record several in one transaction."""
    job_tries, job_timeout = job_limits or limits(app, job)
    started = time.monotonic()
    log.info("job started", extra={"event": "started", "job": _fields(job)})
    try:
        call_handler(app, job, job_timeout)
    except LeaseLost as exc:  # another attempt owns the job now: record nothing, it is theirs
        duration = time.monotonic() - started
        log.warning("job result discarded: lease lost", extra={"event": "lease_lost", "job": _fields(job),
                                                               "duration": duration, "error": str(exc)})
        return LOST, duration
    except (UsageError, PermanentFailure) as exc:  # unknown job, invalid payload, or the job said so
        duration = time.monotonic() - started
        if errors is not None:
            errors.append(exc)
        return record_failure(app, job, worker, exc, duration, permanent=True, tries=job_tries), duration
    except Exception as exc:
        duration = time.monotonic() - started
        if errors is not None:
            errors.append(exc)
        outcome = record_failure(app, job, worker, exc, duration, tries=job_tries)
        return outcome, duration
    duration = time.monotonic() - started
    log.info("job done", extra={"event": "done", "job": _fields(job), "duration": round(duration, 6)})
    return DONE, duration


def record_failure(app: "App", job: Job, worker: str, exc: BaseException, duration: float | None,
                   *, permanent: bool = False, tries: int | None = None) -> str:
    """Record a failed attempt: retry later if tries remain, else the failed table.
    Returns RETRY or FAILED as recorded, or LOST if `worker` no longer held the job."""
    if tries is None:
        tries = limits(app, job)[0]
    error = error_of(exc)
    if not permanent and job.attempts < tries:
        if isinstance(exc, WorkerLost):
            delay = 0.0  # the lease already made it wait; the crash may not be the job's fault
        elif isinstance(exc, RetryLater) and exc.delay is not None:
            delay = exc.delay
        else:
            delay = _backoff(app, job)
        if not app.backend.retry_later(job.id, worker, delay, error, duration):
            return LOST
        log.warning("job retry", extra={"event": "retry", "job": _fields(job), "duration": duration,
                                        "error": f"{error.error_class}: {error.message}", "delay": delay})
        return RETRY
    if not app.backend.fail(job.id, worker, error, duration):
        return LOST
    event = "timeout" if isinstance(exc, JobTimeout) else "failed"
    log.error("job failed", extra={"event": event, "job": _fields(job), "duration": duration,
                                   "error": f"{error.error_class}: {error.message}"})
    run_failure_handler(app, job, exc)
    return FAILED


def _backoff(app: "App", job: Job) -> float:
    try:
        backoff = app.registry.get(job.name).backoff or DEFAULT_BACKOFF
    except UnknownJob:
        backoff = DEFAULT_BACKOFF
    return backoff.delay(job.attempts)


def run_failure_handler(app: "App", job: Job, exc: BaseException) -> None:
    """Run the job type's `failed` handler once; if it raises, log it and keep the record."""
    try:
        spec = app.registry.get(job.name)
    except UnknownJob:
        return
    if spec.on_failure is None:
        return
    try:
        payload = job.payload if isinstance(job.payload, dict) else {}
        spec.on_failure(JobContext(app, job), exc, **payload)
    except Exception as handler_exc:
        log.error("failure handler raised", extra={"event": "handler_error", "job": _fields(job),
                                                   "error": f"{type(handler_exc).__name__}: {handler_exc}"})


def run_inline(app: "App", job_id: int) -> str:
    """The sync mode: run a just-dispatched job now, through the worker's code path.

    Sync mode has no later: a retry runs again at once (claim_id ignores the delay) until
    the job's tries are spent. A job that ends in the failed table is recorded as a worker
    would record it, then its exception is raised, so the caller (a test) sees it."""
    worker = f"sync:{job_id}"
    while True:
        job = app.backend.claim_id(job_id, worker)
        if job is None:  # not pending: run by someone else meanwhile
            return FAILED
        errors: list[BaseException] = []
        outcome, duration = execute(app, job, worker, errors=errors)
        if outcome == DONE:
            app.backend.complete([(job.id, duration)], worker)
            return DONE
        if outcome == FAILED and errors:
            raise errors[-1]
        if outcome in (FAILED, LOST):
            return outcome


def _fields(job: Job) -> dict:
    return {"id": job.id, "name": job.name, "queue": job.queue, "attempt": job.attempts}


__all__ = ["DONE", "FAILED", "LOST", "RETRY", "execute", "record_failure", "run_inline"]
