"""The PostgreSQL engine, for workers on several hosts.

Claims are `FOR UPDATE SKIP LOCKED`: many hosts claim at once, each job goes to one.
Leases are kept in the server's clock (hosts' clocks may differ; the server's is one).
A dispatch notifies its queue (a trigger, pg_notify, delivered at commit) and an idle
worker LISTENs instead of polling; its caller's slow poll stays as the safety net.
A statement outside a transaction is one autocommit round trip on a pooled connection.
"""

from __future__ import annotations

import contextlib
import json
import select
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import psycopg

from ..errors import DatabaseConnectionLost, DatabaseLocked, DuplicateJob, PhotojobsError, UsageError
from .base import JOB_COLUMNS, AttemptError, Enqueued, Job, NewJob, Params, error_summary
from . import rollup
from .pg_connect import connect, masked, pool_for
from .pg_lockwait import BEGIN_WAITING, holders, lock_timeout_ms, locked_error
from .pg_migrations import check_schema
from .pg_sql import Result, run, run_many, translated
from .operations import SqlOperations
from .transaction import OpenTransaction

_SERVER_NOW = "extract(epoch FROM clock_timestamp())::double precision"
_JOB_COLUMNS_OF_JOBS = ", ".join(f"jobs.{column.strip()}" for column in JOB_COLUMNS.split(","))
_INSERT_JOB = ("INSERT INTO jobs (name, queue, payload, available_at, created_at, unique_key, batch_id, tries, timeout)"
               " VALUES (:name, :queue, :payload, :available_at, :now, :unique_key, :batch_id, :tries, :timeout)")
_INSERT_JOBS = ("INSERT INTO jobs (name, queue, payload, available_at, created_at, unique_key, batch_id, tries, timeout)"
                " SELECT name, queue, payload::jsonb, available_at, :now, unique_key, batch_id, tries, timeout"
                " FROM unnest(:names::text[], :queues::text[], :payloads::text[], :available::double precision[],"
                " :keys::text[], :batches::bigint[], :tries::integer[], :timeouts::double precision[])"
                " WITH ORDINALITY AS j(name, queue, payload, available_at, unique_key, batch_id, tries, timeout, n)"
                " ORDER BY n")
_CLAIM = (f"UPDATE jobs SET status = 'reserved', reserved_by = :worker, lease_until = {_SERVER_NOW} + :lease,"
          " attempts = attempts + 1, started_at = :now"
          " WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' AND queue = :queue AND available_at <= :now"
          " AND NOT EXISTS (SELECT 1 FROM paused_queues WHERE queue = :queue)"
          " ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)"
          f" RETURNING {JOB_COLUMNS}")
# The holder check and the outcome in one statement: the row is locked while it is checked.
_OUTCOME = ("WITH held AS (SELECT id, attempts FROM jobs WHERE id = :id AND status = 'reserved' AND {holder}"
            " FOR UPDATE),"
            " noted AS (INSERT INTO job_errors (job_id, attempt, error_class, message, traceback, at)"
            " SELECT id, attempts, :error_class, :message, :traceback, :now FROM held)"
            " UPDATE jobs SET {changes}, reserved_by = NULL, lease_until = NULL, duration = :duration,"
            " last_error = :summary FROM held WHERE jobs.id = held.id RETURNING jobs.id")


class PostgresTransaction(OpenTransaction):
    """The open transaction on one pooled connection (storage/transaction.py)."""

    def __init__(self, connection: psycopg.Connection, url: str) -> None:
        super().__init__(connection)
        self.url = url

    def execute(self, sql: str, params: Params = ()) -> Result:
        return run(self.connection, self.url, sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> Result:
        return run_many(self.connection, self.url, sql, list(rows))


class PostgresBackend(SqlOperations):
    engine = "postgresql"
    integrity_error = psycopg.errors.UniqueViolation

    def __init__(self, settings: Any, *, check: bool = True) -> None:
        self.settings = settings
        self.url = settings.db
        self._pool = pool_for(self.url, settings.postgres)
        self._tx: PostgresTransaction | None = None
        self._listener: psycopg.Connection | None = None
        # LISTEN needs a session of its own: off behind a pooler in transaction mode (PgBouncer).
        self._listens = settings.postgres.listen
        # Set by a long-running worker: it waits out a lock held past lock_budget, trying in
        # slices, and this is called between tries (pg_lockwait.py).
        self.on_lock_wait: Callable[[float], None] | None = None
        if check and not getattr(self._pool, "schema_checked", False):
            with self._connection() as conn, translated(self.url):
                check_schema(conn, self.url)
            self._pool.schema_checked = True  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"PostgresBackend({masked(self.url)!r})"

    @property
    def conn(self) -> psycopg.Connection:
        """The open transaction's psycopg connection (`app.db`, `ctx.db`). Outside a
        transaction there is none: connections are lent per statement by the pool."""
        if self._tx is None:
            raise UsageError("on PostgreSQL the database connection is the open transaction's",
                             hint="use `with app.transaction() as tx: tx.execute(...)`")
        return self._tx.connection

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- connections and transactions --------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """The open transaction's connection, or one lent by the pool for this statement."""
        if self._tx is not None:
            yield self._tx.connection
            return
        conn = self._pool.getconn()
        lost = False
        try:
            self._set_lock_timeout(conn)
            yield conn
        except DatabaseConnectionLost:
            lost = True
            raise
        except psycopg.errors.LockNotAvailable:
            # A waiting worker tries again (no need to ask whom it waits for at each try).
            holder = None if self.on_lock_wait is not None or conn.info.transaction_status else holders(conn)
            raise locked_error(self.url, self.settings.lock_budget, holder) from None
        finally:
            self._pool.putconn(conn)
            if lost:
                self._pool.check()

    def _set_lock_timeout(self, conn: psycopg.Connection) -> None:
        """lock_budget for one wait, or a slice of it for a worker that waits and retries."""
        wanted = lock_timeout_ms(self.settings.lock_budget, self.on_lock_wait is not None)
        if getattr(conn, "_photojobs_lock_timeout", None) != wanted:
            with translated(self.url):
                conn.execute(f"SET lock_timeout = {wanted:d}")
            conn._photojobs_lock_timeout = wanted  # type: ignore[attr-defined]

    def _patiently(self, action: Callable[[psycopg.Connection], Any]) -> Any:
        """`action(conn)` on a lent connection, outside a transaction; a waiting worker tries
        again while a lock is held past each try's slice."""
        started = time.monotonic()
        while True:
            try:
                with self._connection() as conn:
                    return action(conn)
            except DatabaseLocked:
                if self.on_lock_wait is None:
                    raise
                self.on_lock_wait(time.monotonic() - started)

    def lock_holder(self) -> str | None:
        """Who holds the lock the writers wait for, as the server says (for the wait's log)."""
        with self._connection() as conn:
            return holders(conn)

    def execute(self, sql: str, params: Params = ()) -> Result:
        if self._tx is not None:
            return run(self._tx.connection, self.url, sql, params)
        return self._patiently(lambda conn: run(conn, self.url, sql, params))

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """A write transaction; nested uses join the outer one (dispatch with your own data)."""
        if self._tx is not None:
            yield self._tx
            return
        with self._connection() as conn:
            self._begin(conn)
            tx = self._tx = PostgresTransaction(conn, self.url)
            try:
                try:
                    yield tx
                except BaseException:
                    if not conn.broken:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("ROLLBACK")
                    raise
                with translated(self.url):
                    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                        conn.execute("ROLLBACK")
                        raise PhotojobsError("the transaction was rolled back: a statement in it failed")
                    conn.execute("COMMIT")
            finally:
                self._tx = None
        tx.run_after_commit()

    def _begin(self, conn: psycopg.Connection) -> None:
        """BEGIN; a waiting worker's transaction first takes the queue tables' locks, trying
        again (and calling on_lock_wait) while another session holds a stronger one."""
        if self.on_lock_wait is None:
            with translated(self.url):
                conn.execute("BEGIN")
            return
        started = time.monotonic()
        while True:
            try:
                with translated(self.url):
                    conn.execute(BEGIN_WAITING)
                return
            except psycopg.errors.LockNotAvailable:
                with translated(self.url):
                    conn.execute("ROLLBACK")
            self.on_lock_wait(time.monotonic() - started)

    # -- enqueue -----------------------------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob], *, batch: str | None = None,
                skip_duplicates: bool = False) -> Enqueued:
        now, nested = time.time(), self._tx is not None
        try:  # joining the caller's transaction: a savepoint, so a refused duplicate leaves it usable
            with self.transaction() as tx, (tx.savepoint() if nested else contextlib.nullcontext()):
                batch_id = None
                if batch is not None:
                    batch_id = tx.execute("INSERT INTO batches (name, total, created_at) VALUES (:name, :total, :now)"
                                          " RETURNING id", {"name": batch, "total": len(jobs), "now": now}).fetchone()[0]
                ids = self._insert_jobs(tx, jobs, now, batch_id, skip_duplicates)
                if batch_id is not None and None in ids:  # skipped duplicates are not the batch's
                    total = sum(i is not None for i in ids)
                    tx.execute("DELETE FROM batches WHERE id = :id" if not total else
                               "UPDATE batches SET total = :total WHERE id = :id", {"total": total, "id": batch_id})
                    batch_id = batch_id if total else None
        except psycopg.errors.UniqueViolation:
            raise self._duplicate(jobs) from None
        return Enqueued(ids, batch_id)

    @staticmethod
    def _insert_jobs(tx: PostgresTransaction, jobs: Sequence[NewJob], now: float, batch_id: int | None,
                     skip_duplicates: bool) -> list[int | None]:
        """All the jobs in one statement (arrays unnested in order). Ids are given in insert
        order, so the sorted ids belong, in order, to the rows that were not skipped."""
        if not jobs:
            return []
        params = {"now": now, "names": [j.name for j in jobs], "queues": [j.queue for j in jobs],
                  "payloads": [json.dumps(j.payload, separators=(",", ":")) for j in jobs],
                  "available": [j.available_at for j in jobs], "keys": [j.unique_key for j in jobs],
                  "batches": [batch_id if batch_id is not None else j.batch_id for j in jobs],
                  "tries": [j.tries for j in jobs], "timeouts": [j.timeout for j in jobs]}
        rows = tx.execute(_INSERT_JOBS + (" ON CONFLICT DO NOTHING" if skip_duplicates else "")
                          + " RETURNING id, unique_key", params).rows
        ids, inserted_keys = iter(sorted(r[0] for r in rows)), {r[1] for r in rows if r[1] is not None}
        placed: list[int | None] = []
        for job in jobs:
            kept = job.unique_key is None or job.unique_key in inserted_keys
            inserted_keys.discard(job.unique_key)  # a key repeated in one call: its first job only
            placed.append(next(ids) if kept else None)
        return placed

    def enqueue_one(self, job: NewJob) -> int:
        """One autocommit INSERT (one round trip), or part of the caller's open transaction."""
        try:
            if self._tx is not None:
                with self._tx.savepoint():
                    return self._tx.execute(_INSERT_JOB + " RETURNING id", _job_params(job, time.time())).fetchone()[0]
            return self.execute(_INSERT_JOB + " RETURNING id", _job_params(job, time.time())).fetchone()[0]
        except psycopg.errors.UniqueViolation:
            raise self._duplicate([job]) from None

    def _duplicate(self, jobs: Sequence[NewJob]) -> DuplicateJob:
        for job in jobs:
            if job.unique_key is not None:
                live = self.live_job(job.unique_key)
                if live is not None:
                    return DuplicateJob(f"a live job with unique key {job.unique_key!r} exists already (job {live})")
        return DuplicateJob("a live job with one of these unique keys exists already")

    # -- claim and leases ---------------------------------------------------------------------

    def has_ready(self, queues: Sequence[str]) -> bool:
        return bool(self.execute("SELECT 1 FROM jobs WHERE status = 'pending' AND queue = ANY(:queues)"
                                 " AND available_at <= :now AND queue NOT IN (SELECT queue FROM paused_queues)"
                                 " LIMIT 1", {"queues": list(queues), "now": time.time()}).rows)

    def claim(self, queues: Sequence[str], worker: str, limit: int = 1) -> list[Job]:
        """Reserve up to `limit` ready jobs of the first queue, in the order given, that has
        any. Each queue's try is one autocommit statement; locked rows are skipped, not waited for."""
        now = time.time()

        def claim(conn: psycopg.Connection) -> list[Job]:
            for queue in queues:
                rows = run(conn, self.url, _CLAIM, {"worker": worker, "lease": self.settings.lease, "now": now,
                                                    "queue": queue, "limit": limit}).rows
                if rows:
                    return sorted((Job.from_row(r) for r in rows), key=lambda j: j.id)
            return []

        if self._tx is not None:
            return claim(self._tx.connection)
        return self._patiently(claim)

    def claim_id(self, job_id: int, worker: str) -> Job | None:
        row = self.execute(f"UPDATE jobs SET status = 'reserved', reserved_by = :worker,"
                           f" lease_until = {_SERVER_NOW} + :lease, attempts = attempts + 1, started_at = :now"
                           f" WHERE id = :id AND status = 'pending' RETURNING {JOB_COLUMNS}",
                           {"worker": worker, "lease": self.settings.lease, "now": time.time(), "id": job_id}
                           ).fetchone()
        return Job.from_row(row) if row else None

    def renew(self, workers: Sequence[str]) -> None:
        if workers:
            self.execute(f"UPDATE jobs SET lease_until = {_SERVER_NOW} + :lease"
                         " WHERE status = 'reserved' AND reserved_by = ANY(:workers)",
                         {"lease": self.settings.lease, "workers": list(workers)})

    def holds(self, job_id: int, worker: str) -> bool:
        """Whether `worker` still holds the job. Inside a transaction the row stays locked
        until it commits, so a rescuer cannot take the job between this check and the result."""
        lock = " FOR UPDATE" if self._tx is not None else ""
        return self.execute("SELECT 1 FROM jobs WHERE id = :id AND status = 'reserved' AND reserved_by = :worker"
                            + lock, {"id": job_id, "worker": worker}).fetchone() is not None

    def lease_of(self, job_id: int) -> tuple[str, float] | None:
        row = self.execute(f"SELECT reserved_by, lease_until - {_SERVER_NOW} FROM jobs"
                           " WHERE id = :id AND status = 'reserved'", {"id": job_id}).fetchone()
        return (row[0], row[1] or 0.0) if row else None

    def rescue_expired(self, rescuer: str) -> list[tuple[Job, str]]:
        """Take over the jobs whose lease expired (by the server's clock), each with the
        worker that held it. A row its holder has locked (it is recording its result) is skipped."""
        rows = self.execute("WITH expired AS (SELECT id, reserved_by FROM jobs WHERE status = 'reserved'"
                            f" AND lease_until < {_SERVER_NOW} FOR UPDATE SKIP LOCKED)"
                            f" UPDATE jobs SET reserved_by = :rescuer, lease_until = {_SERVER_NOW} + :lease"
                            f" FROM expired WHERE jobs.id = expired.id RETURNING {_JOB_COLUMNS_OF_JOBS},"
                            " expired.reserved_by AS previous_holder",
                            {"rescuer": rescuer, "lease": self.settings.lease}).rows
        return sorted(((Job.from_row(r), r["previous_holder"] or "") for r in rows), key=lambda pair: pair[0].id)

    def holders(self) -> set[str]:
        """The workers that hold jobs now."""
        return {r[0] for r in self.execute("SELECT DISTINCT reserved_by FROM jobs WHERE status = 'reserved'").rows}

    def get(self, job_id: int) -> Any | None:
        return self.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = :id", {"id": job_id}).fetchone()

    def reserved_by(self, worker: str) -> list[Job]:
        rows = self.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'reserved' AND reserved_by = :worker"
                            " ORDER BY id", {"worker": worker}).rows
        return [Job.from_row(r) for r in rows]

    def release(self, worker: str, job_ids: Sequence[int] | None = None) -> int:
        """Give back jobs a worker holds without running them: pending again, attempt not counted."""
        if job_ids is not None and not job_ids:
            return 0
        only = " AND id = ANY(:ids)" if job_ids is not None else ""
        return self.execute("UPDATE jobs SET status = 'pending', reserved_by = NULL, lease_until = NULL,"
                            " attempts = greatest(attempts - 1, 0) WHERE status = 'reserved' AND reserved_by = :worker"
                            + only, {"worker": worker, "ids": list(job_ids or ())}).rowcount

    # -- outcomes ----------------------------------------------------------------------------

    def complete(self, done: Iterable[tuple[int, float]], worker: str) -> None:
        """Mark jobs done, (id, duration) pairs, in one statement; only those `worker` holds."""
        pairs = list(done)
        if not pairs:
            return
        now = time.time()
        with self.transaction() as tx:  # the rollup counts them in the same transaction
            rows = tx.execute("UPDATE jobs SET status = 'done', finished_at = :now, duration = d.duration,"
                              " reserved_by = NULL, lease_until = NULL"
                              " FROM unnest(:ids::bigint[], :durations::double precision[]) AS d(id, duration)"
                              " WHERE jobs.id = d.id AND jobs.status = 'reserved' AND jobs.reserved_by = :worker"
                              " RETURNING jobs.queue, d.duration",
                              {"now": now, "ids": [p[0] for p in pairs], "durations": [p[1] for p in pairs],
                               "worker": worker}).fetchall()
            rollup.record(tx, now, [(row[0], row[1]) for row in rows])

    def _outcome(self, job_id: int, worker: str | None, changes: str, error: AttemptError,
                 duration: float | None, extra: dict[str, Any]) -> bool:
        holder = "reserved_by = :worker" if worker is not None else f"lease_until < {_SERVER_NOW}"
        sql = _OUTCOME.format(holder=holder, changes=changes)
        params = {"id": job_id, "worker": worker, "error_class": error.error_class, "message": error.message,
                  "traceback": error.traceback, "now": time.time(), "duration": duration,
                  "summary": error_summary(error), **extra}
        return self.execute(sql, params).fetchone() is not None

    def retry_later(self, job_id: int, worker: str | None, delay: float, error: AttemptError,
                    duration: float | None = None) -> bool:
        """Pending again after `delay`; False if the worker no longer holds the job."""
        return self._outcome(job_id, worker, "status = 'pending', available_at = :available_at", error, duration,
                             {"available_at": time.time() + delay})

    def fail(self, job_id: int, worker: str | None, error: AttemptError, duration: float | None = None) -> bool:
        """To the failed table; False if the worker no longer holds the job."""
        return self._outcome(job_id, worker, "status = 'failed', finished_at = :now", error, duration, {})

    def prune(self, finished_before: float) -> int:
        with self.transaction() as tx:
            rollup.prune(tx, finished_before)
            return self.discard(status="done", finished_before=finished_before)

    # -- waiting for work ---------------------------------------------------------------------

    def wait_for_jobs(self, timeout: float, interrupted: Callable[[], bool] | None = None) -> bool:
        """Block until a dispatch notifies (True) or `timeout` passes (False). The LISTEN
        connection stays open between waits, so a notification between two waits is kept."""
        deadline = time.monotonic() + timeout
        if not self._listens:  # `[postgres] listen = false`: the caller's poll alone
            while time.monotonic() < deadline and not (interrupted and interrupted()):
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            return False
        if self._listener is None or self._listener.closed:
            self._listener = connect(self.url, self.settings.postgres)
            with translated(self.url):
                self._listener.execute("LISTEN photojobs")
            if self.execute("SELECT 1 FROM jobs WHERE status = 'pending' AND available_at <= :now LIMIT 1",
                            {"now": time.time()}).rows:
                return True  # dispatched before the LISTEN began
        listener = self._listener
        try:
            while not (interrupted and interrupted()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with translated(self.url):
                    if any(True for _ in listener.notifies(timeout=min(left, 0.25), stop_after=1)):
                        self._drain(listener)
                        return True
        except BaseException:
            self.close()  # the next wait listens on a new connection
            raise
        return False

    @staticmethod
    def _drain(listener: psycopg.Connection) -> None:
        """Read notifications already arrived (one wake-up for a burst of dispatches)."""
        while select.select([listener.fileno()], [], [], 0)[0]:
            if not any(True for _ in listener.notifies(timeout=0.001)):
                break


def _job_params(job: NewJob, now: float, batch_id: int | None = None) -> dict[str, Any]:
    return {"name": job.name, "queue": job.queue, "payload": json.dumps(job.payload, separators=(",", ":")),
            "available_at": job.available_at, "now": now, "unique_key": job.unique_key,
            "batch_id": batch_id if batch_id is not None else job.batch_id, "tries": job.tries,
            "timeout": job.timeout}


__all__ = ["PostgresBackend", "PostgresTransaction"]
