"""The queue's storage on SQLite, named after the job lifecycle.

enqueue -> claim -> complete | retry_later | fail | release; renew keeps a lease alive,
rescue_expired (storage/sqlite.py) takes back the jobs of workers that died.
A job row is never deleted before its handler returned: `done` rows stay for `status`
until `prune` removes them.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sqlite3
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import rollup
from .sqlite_connection import begin_immediate, is_locked, lock_holder, open_database, translate_errors
from ..errors import DuplicateJob
from ..settings import Settings
from .base import JOB_COLUMNS, AttemptError, Job, NewJob, error_summary

_INSERT_JOB = ("INSERT INTO jobs (name, queue, payload, available_at, created_at, unique_key, batch_id, tries,"
               " timeout) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


class SqliteBackend:
    def __init__(self, settings: Settings, conn: sqlite3.Connection | None = None):
        self.settings = settings
        self.path = settings.db_path  # resolved once: it costs a few system calls
        self.conn = conn or open_database(settings)
        self._depth = 0
        # Set by a long-running worker: it waits for the write lock without limit (a lock held
        # past lock_budget must not cost it its jobs), and this is called while it waits.
        self.on_lock_wait: Callable[[float], None] | None = None

    def close(self) -> None:
        self.conn.close()

    def lock_holder(self) -> str | None:
        """Who holds the write lock, as this system says (for a waiting worker's log)."""
        return lock_holder(self.path)

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one (dispatch with your own data)."""
        with translate_errors(self.path):
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            if self.on_lock_wait is None:
                begin_immediate(self.conn, self.settings.lock_budget)
            else:
                begin_immediate(self.conn, math.inf, on_wait=self.on_lock_wait)
            self._depth = 1
            try:
                yield self.conn
                self._depth = 0
                self.conn.execute("COMMIT")
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    self.conn.execute("ROLLBACK")
                raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with translate_errors(self.path):
            return self.conn.execute(sql, params).fetchall()

    # -- enqueue ---------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, skip_duplicates: bool = False) -> list[int | None]:
        """Insert jobs in one transaction. A live duplicate unique key raises DuplicateJob,
        or is skipped (its id None) with `skip_duplicates`."""
        now = time.time()
        # RETURNING, not lastrowid: a row skipped by OR IGNORE returns nothing.
        sql = (_INSERT_JOB.replace("INSERT", "INSERT OR IGNORE", 1) if skip_duplicates else _INSERT_JOB) + " RETURNING id"
        ids: list[int | None] = []
        with self.transaction() as conn:
            for job in jobs:
                params = (job.name, job.queue, json.dumps(job.payload, separators=(",", ":")),
                          job.available_at, now, job.unique_key, job.batch_id, job.tries, job.timeout)
                try:
                    row = conn.execute(sql, params).fetchone()
                except sqlite3.IntegrityError:
                    existing = conn.execute("SELECT id FROM jobs WHERE unique_key = ? AND status IN"
                                            " ('pending', 'reserved')", [job.unique_key]).fetchone()
                    raise DuplicateJob(f"a live job with unique key {job.unique_key!r} exists already"
                                       f" (job {existing[0] if existing else '?'})") from None
                ids.append(row[0] if row else None)
        return ids

    def enqueue_one(self, job: NewJob) -> int:
        """Insert one job: a single autocommit statement (one commit), or part of the caller's
        open transaction. The web request's path, so it does no more than it must."""
        params = (job.name, job.queue, json.dumps(job.payload, separators=(",", ":")), job.available_at,
                  time.time(), job.unique_key, job.batch_id, job.tries, job.timeout)
        deadline = None
        with translate_errors(self.path):
            while True:
                try:
                    return self.conn.execute(_INSERT_JOB, params).lastrowid
                except sqlite3.IntegrityError:
                    raise DuplicateJob(f"a live job with unique key {job.unique_key!r} exists already") from None
                except sqlite3.OperationalError as exc:
                    # Past SQLite's own busy wait: retry with jitter within the lock budget.
                    deadline = deadline or time.monotonic() + self.settings.lock_budget
                    if self._depth or not is_locked(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005 + random.random() * 0.02)

    # -- claim -----------------------------------------------------------------------------

    def has_ready(self, queues: Sequence[str]) -> bool:
        marks = ",".join("?" * len(queues))
        row = self.read(f"SELECT 1 FROM jobs WHERE status = 'pending' AND queue IN ({marks})"
                        " AND available_at <= ? AND queue NOT IN (SELECT queue FROM paused_queues) LIMIT 1",
                        [*queues, time.time()])
        return bool(row)

    def claim(self, queues: Sequence[str], worker: str, limit: int = 1) -> list[Job]:
        """Reserve up to `limit` ready jobs of the first queue, in the order given, that has any."""
        now = time.time()
        with self.transaction() as conn:
            paused = {r[0] for r in conn.execute("SELECT queue FROM paused_queues")}
            for queue in queues:
                if queue in paused:
                    continue
                rows = conn.execute(
                    f"UPDATE jobs SET status = 'reserved', reserved_by = ?, lease_until = ?,"
                    " attempts = attempts + 1, started_at = ?"
                    " WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' AND queue = ?"
                    " AND available_at <= ? ORDER BY id LIMIT ?)"
                    f" RETURNING {JOB_COLUMNS}",
                    [worker, now + self.settings.lease, now, queue, now, limit],
                ).fetchall()
                if rows:
                    return sorted((Job.from_row(r) for r in rows), key=lambda j: j.id)
        return []

    def claim_id(self, job_id: int, worker: str) -> Job | None:
        """Reserve one pending job by id (the sync mode's path into the worker's code)."""
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute(
                "UPDATE jobs SET status = 'reserved', reserved_by = ?, lease_until = ?,"
                f" attempts = attempts + 1, started_at = ? WHERE id = ? AND status = 'pending' RETURNING {JOB_COLUMNS}",
                [worker, now + self.settings.lease, now, job_id]).fetchone()
        return Job.from_row(row) if row else None

    def renew(self, workers: Sequence[str]) -> None:
        if not workers:
            return
        marks = ",".join("?" * len(workers))
        with self.transaction() as conn:
            conn.execute(f"UPDATE jobs SET lease_until = ? WHERE status = 'reserved' AND reserved_by IN ({marks})",
                         [time.time() + self.settings.lease, *workers])

    # -- outcomes --------------------------------------------------------------------------

    def complete(self, done: Iterable[tuple[int, float]], worker: str) -> None:
        """Mark jobs done: (id, duration in seconds) pairs, all in one transaction, and count
        them in the queue's minute (storage/rollup.py). A job `worker` no longer holds is
        left alone, and not counted."""
        now = time.time()
        with self.transaction() as conn:
            finished = []
            for job_id, duration in done:
                row = conn.execute("UPDATE jobs SET status = 'done', finished_at = ?, duration = ?, reserved_by = NULL,"
                                   " lease_until = NULL WHERE id = ? AND reserved_by = ? RETURNING queue",
                                   [now, duration, job_id, worker]).fetchone()
                if row is not None:
                    finished.append((row[0], duration))
            rollup.record(conn, now, finished)

    def _record_error(self, conn: sqlite3.Connection, job_id: int, error: AttemptError) -> None:
        conn.execute("INSERT INTO job_errors (job_id, attempt, error_class, message, traceback, at)"
                     " SELECT id, attempts, ?, ?, ?, ? FROM jobs WHERE id = ?",
                     [error.error_class, error.message, error.traceback, time.time(), job_id])

    def retry_later(self, job_id: int, worker: str, delay: float, error: AttemptError,
                    duration: float | None = None) -> bool:
        """Put a job back as pending after `delay`; False if the worker no longer holds it."""
        with self.transaction() as conn:
            if not self._held(conn, job_id, worker):
                return False
            self._record_error(conn, job_id, error)
            conn.execute("UPDATE jobs SET status = 'pending', available_at = ?, reserved_by = NULL,"
                         " lease_until = NULL, duration = ?, last_error = ? WHERE id = ?",
                         [time.time() + delay, duration, error_summary(error), job_id])
        return True

    def fail(self, job_id: int, worker: str, error: AttemptError, duration: float | None = None) -> bool:
        """Move a job to the failed table; False if the worker no longer holds it."""
        with self.transaction() as conn:
            if not self._held(conn, job_id, worker):
                return False
            self._record_error(conn, job_id, error)
            conn.execute("UPDATE jobs SET status = 'failed', finished_at = ?, reserved_by = NULL,"
                         " lease_until = NULL, duration = ?, last_error = ? WHERE id = ?",
                         [time.time(), duration, error_summary(error), job_id])
        return True

    def holds(self, job_id: int, worker: str) -> bool:
        """Whether `worker` still holds job `job_id`. Asked inside the transaction that makes
        an attempt's result visible, so a worker that lost its lease cannot apply it."""
        return self._held(self.conn, job_id, worker)

    def lease_of(self, job_id: int) -> tuple[str, float] | None:
        row = self.conn.execute("SELECT reserved_by, lease_until FROM jobs WHERE id = ? AND status = 'reserved'",
                                [job_id]).fetchone()
        return (row[0], (row[1] or 0.0) - time.time()) if row else None

    @staticmethod
    def _held(conn: sqlite3.Connection, job_id: int, worker: str) -> bool:
        """Whether `worker` still holds the job (a rescue takes a job over before it records
        the lost attempt, so there is always a holder to ask about)."""
        row = conn.execute("SELECT reserved_by FROM jobs WHERE id = ? AND status = 'reserved'", [job_id]).fetchone()
        return row is not None and row[0] == worker

    def release(self, worker: str, job_ids: Sequence[int] | None = None) -> int:
        """Give back jobs a worker holds without running them: pending again, attempt not counted."""
        sql = ("UPDATE jobs SET status = 'pending', reserved_by = NULL, lease_until = NULL,"
               " attempts = max(attempts - 1, 0) WHERE status = 'reserved' AND reserved_by = ?")
        params: list[Any] = [worker]
        if job_ids is not None:
            if not job_ids:
                return 0
            sql += f" AND id IN ({','.join('?' * len(job_ids))})"
            params += list(job_ids)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def holders(self) -> set[str]:
        """The workers that hold jobs now."""
        return {r[0] for r in self.read("SELECT DISTINCT reserved_by FROM jobs WHERE status = 'reserved'")}

    def reserved_by(self, worker: str) -> list[Job]:
        rows = self.read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'reserved' AND reserved_by = ?", [worker])
        return [Job.from_row(r) for r in rows]

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap "anything new?" poll."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def get(self, job_id: int) -> sqlite3.Row | None:
        rows = self.read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", [job_id])
        return rows[0] if rows else None
