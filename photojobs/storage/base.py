"""The storage seam: what the rest of photojobs may ask of a database.

`Backend` is named after a job's life: enqueue -> claim -> complete | retry_later | fail
| release; renew keeps a lease alive, rescue_expired takes over the jobs of workers that
died, prune and discard remove rows for good. The operations `photojobs status`,
`failed`, `queue` and `batch` need are here too, so nothing outside storage writes SQL.

`Executor` is what the domain repositories (storage/photos.py, orders.py, ...) run their
statements on: a `Transaction` for writes, the backend itself for reads. Statements use
named `:name` parameters, the one placeholder style every engine is given.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, ContextManager, Iterable, Mapping, Protocol, Sequence

Params = Mapping[str, Any] | Sequence[Any]

JOB_COLUMNS = ("id, name, queue, payload, status, attempts, tries, timeout, available_at, created_at,"
               " reserved_by, lease_until, started_at, finished_at, duration, unique_key, batch_id, last_error")


@dataclasses.dataclass
class NewJob:
    name: str
    payload: dict
    queue: str
    available_at: float
    unique_key: str | None = None
    batch_id: int | None = None
    tries: int | None = None
    timeout: float | None = None


@dataclasses.dataclass
class Job:
    """A job row as the worker sees it."""

    id: int
    name: str
    queue: str
    payload: dict
    attempts: int
    tries: int | None
    timeout: float | None
    unique_key: str | None = None
    batch_id: int | None = None
    worker: str | None = None  # the token that reserved it: the attempt's fence

    @classmethod
    def from_row(cls, row: Any) -> "Job":
        try:
            payload = json.loads(row["payload"])
        except (TypeError, ValueError):
            payload = row["payload"]  # refused as invalid by the worker, without retry
        return cls(row["id"], row["name"], row["queue"], payload, row["attempts"], row["tries"],
                   row["timeout"], row["unique_key"], row["batch_id"], row["reserved_by"])


@dataclasses.dataclass
class AttemptError:
    error_class: str
    message: str
    traceback: str = ""


def error_summary(error: AttemptError) -> str:
    """The failed attempt in one line, as a job row's `last_error` keeps it."""
    return f"{error.error_class}: {error.message}" if error.message else error.error_class


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executor(Protocol):
    """Runs one statement. Rows read by column name (`row["id"]`)."""

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...


class Transaction(Executor, Protocol):
    """One write transaction; nested `transaction()` blocks join the outermost one."""

    connection: Any  # the engine's own DB-API connection, for code that needs it

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor: ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the outermost transaction has committed; never if it rolls back."""

    def savepoint(self) -> ContextManager[None]:
        """A block whose writes are undone if it raises (the exception goes on)."""


@dataclasses.dataclass
class Enqueued:
    """What a dispatch made: the jobs' ids (None: a duplicate skipped) and the batch's id."""

    ids: list[int | None]
    batch_id: int | None = None


@dataclasses.dataclass
class RetriedFailed:
    """`retry_failed`'s answer: ids put back, ids skipped for a unique key held by a live
    job (with that key), ids asked for that are not failed jobs, and ids superseded by a
    later success (with its id); with missing or superseded ones, nothing changed."""

    retried: list[int]
    skipped: list[tuple[int, str]]
    missing: list[int]
    superseded: list[tuple[int, int]] = dataclasses.field(default_factory=list)


class Backend(Protocol):
    """A job queue and the domain's tables on one database engine."""

    engine: str  # "sqlite" or "postgresql"

    def close(self) -> None: ...

    def lock_holder(self) -> str | None:
        """Who holds the lock writers wait for ("pid 123 (...)"), if the system says."""

    def transaction(self) -> ContextManager[Transaction]: ...

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        """One statement outside any explicit transaction (a read, or a single write)."""

    # -- the job's life ---------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], *, batch: str | None = None,
                skip_duplicates: bool = False) -> Enqueued:
        """Insert jobs in one transaction, as a named batch if `batch`. A live duplicate
        unique key raises DuplicateJob, or is skipped (id None) with `skip_duplicates`."""

    def enqueue_one(self, job: NewJob) -> int: ...

    def claim(self, queues: Sequence[str], worker: str, limit: int = 1) -> list[Job]:
        """Reserve up to `limit` ready jobs of the first queue, in the order given, that has any."""

    def claim_id(self, job_id: int, worker: str) -> Job | None: ...

    def renew(self, workers: Sequence[str]) -> None: ...

    def holds(self, job_id: int, worker: str) -> bool: ...

    def lease_of(self, job_id: int) -> tuple[str, float] | None:
        """(holder, seconds left on its lease, by the database's clock) of a reserved job;
        None if it is not reserved. A read: it passes a held write lock."""

    def complete(self, done: Iterable[tuple[int, float]], worker: str) -> None: ...

    def retry_later(self, job_id: int, worker: str, delay: float, error: AttemptError,
                    duration: float | None = None) -> bool: ...

    def fail(self, job_id: int, worker: str, error: AttemptError, duration: float | None = None) -> bool: ...

    def release(self, worker: str, job_ids: Sequence[int] | None = None) -> int: ...

    def rescue_expired(self, rescuer: str) -> list[tuple[Job, str]]:
        """Take over the jobs whose lease expired, for `rescuer` to record their lost
        attempt; each with the worker that held it (whose record may say what it did)."""

    def reserved_by(self, worker: str) -> list[Job]: ...

    def prune(self, finished_before: float) -> int:
        """Delete done jobs that finished before this time, and the minutes that count
        them (storage/rollup.py), in one transaction."""

    def discard(self, *, status: str, queue: str | None = None, ids: Sequence[int] | None = None,
                finished_before: float | None = None) -> int:
        """Delete jobs in `status` (and their error records) for good; returns how many."""

    def wait_for_jobs(self, timeout: float, interrupted: Callable[[], bool] | None = None) -> bool:
        """Block until another process may have queued work (True) or `timeout` passed."""

    def has_ready(self, queues: Sequence[str]) -> bool: ...

    def live_job(self, unique_key: str) -> int | None: ...

    def jobs_by_unique_key(self, keys: Sequence[str], live_only: bool = False) -> dict[str, tuple[int, str]]: ...

    def due_times(self, name: str, after: float, limit: int) -> list[float]:
        """The latest `available_at` of jobs named `name` due after `after`, newest first."""

    # -- operating the queue ----------------------------------------------------------------
    def queue_stats(self, now: float, since: float) -> dict[str, dict]: ...

    def count_jobs(self, queue: str | None, status: str, ready_at: float | None = None) -> int: ...

    def queue_names(self) -> list[str]: ...

    def job_status(self, job_id: int) -> str | None: ...

    def list_failed(self, queue: str | None = None, limit: int | None = None) -> list[Any]: ...

    def failed_job(self, job_id: int) -> tuple[Any, list[Any]] | None: ...

    def retry_failed(self, ids: Sequence[int] | None = None, queue: str | None = None) -> RetriedFailed: ...

    def pause(self, queue: str) -> bool: ...

    def resume(self, queue: str) -> bool: ...

    def paused(self) -> dict[str, float]: ...

    def batches(self, limit: int, unfinished_only: bool = False) -> list[Any]: ...

    def batch(self, batch_id: int) -> Any | None: ...

    def batch_failed_jobs(self, batch_id: int, limit: int) -> list[Any]: ...

    def register_worker(self, worker_id: str, host: str, pid: int, queues: Sequence[str], concurrency: int, *,
                        boot_id: str | None = None, pid_ns: str | None = None, pid_start: int | None = None) -> None: ...

    def heartbeat(self, worker_id: str, current_jobs: Sequence[int]) -> None: ...

    def unregister_worker(self, worker_id: str) -> None: ...

    def workers(self) -> list[Any]: ...

    def reservations(self) -> list[tuple[int, str]]: ...

    def held_by_prefix(self, prefix: str) -> list[tuple[Job, str]]: ...

    def request_restart(self, at: float) -> None: ...

    def restart_requested_at(self) -> float | None: ...


__all__ = ["JOB_COLUMNS", "AttemptError", "Backend", "Cursor", "Enqueued", "Executor", "Job", "NewJob", "Params",
           "RetriedFailed", "Transaction", "error_summary"]
