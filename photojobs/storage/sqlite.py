"""The SQLite engine: one file, WAL, `BEGIN IMMEDIATE` claims, `PRAGMA data_version` wake-ups.

The job lifecycle's statements are in sqlite_queue.py, opening the file in
sqlite_connection.py; this module adds the transaction object the domain uses and the operations of `Backend`
that were spread over ops/, worker.py and the domain modules.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import rollup
from .sqlite_connection import translate_errors
from .sqlite_queue import SqliteBackend as _QueueBackend
from .base import JOB_COLUMNS, Enqueued, Job, NewJob, Params
from .sql import in_list
from .operations import SqlOperations
from .transaction import OpenTransaction, Result


class SqliteTransaction(OpenTransaction):
    """The open write transaction (storage/transaction.py); `connection` is the sqlite3 connection."""

    def execute(self, sql: str, params: Params = ()) -> Result:
        return Result.read(self.connection.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Params]) -> Result:
        return Result.read(self.connection.executemany(sql, rows))

    def __getattr__(self, name: str) -> Any:  # fetchone-style code written for sqlite3
        return getattr(self.connection, name)


class SqliteBackend(SqlOperations, _QueueBackend):
    engine = "sqlite"
    integrity_error = sqlite3.IntegrityError

    def __init__(self, settings: Any, conn: sqlite3.Connection | None = None) -> None:
        super().__init__(settings, conn)
        self._tx: SqliteTransaction | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:  # type: ignore[override]
        """A write transaction; nested uses join the outer one (dispatch with your own data)."""
        if self._tx is not None:
            with super().transaction():
                yield self._tx
            return
        tx = self._tx = SqliteTransaction(self.conn)
        try:
            with super().transaction():
                yield tx
        finally:
            self._tx = None
        tx.run_after_commit()

    def execute(self, sql: str, params: Params = ()) -> Result:
        with translate_errors(self.path):
            return Result.read(self.conn.execute(sql, params))

    def enqueue(self, jobs: Sequence[NewJob], *, batch: str | None = None,  # type: ignore[override]
                skip_duplicates: bool = False) -> Enqueued:
        with self.transaction() as tx:
            batch_id = None
            if batch is not None:
                batch_id = tx.execute("INSERT INTO batches (name, total, created_at) VALUES (:name, :total, :now)"
                                      " RETURNING id", {"name": batch, "total": len(jobs), "now": time.time()}
                                      ).fetchone()[0]
                for job in jobs:
                    job.batch_id = batch_id
            ids = super().enqueue(jobs, skip_duplicates=skip_duplicates)
            if batch_id is not None and None in ids:  # skipped duplicates are not the batch's
                total = sum(i is not None for i in ids)
                tx.execute("DELETE FROM batches WHERE id = :id" if not total else
                           "UPDATE batches SET total = :total WHERE id = :id", {"total": total, "id": batch_id})
                batch_id = batch_id if total else None
        return Enqueued(ids, batch_id)

    def rescue_expired(self, rescuer: str) -> list[tuple[Job, str]]:
        now = time.time()
        if not self.execute("SELECT 1 FROM jobs WHERE status = 'reserved' AND lease_until < :now LIMIT 1",
                            {"now": now}).fetchone():
            return []  # the usual answer, without taking the write lock
        with self.transaction() as tx:  # the write lock: what is read is what is taken over
            expired = {r[0]: r[1] for r in tx.execute(
                "SELECT id, reserved_by FROM jobs WHERE status = 'reserved' AND lease_until < :now",
                {"now": now}).fetchall()}
            if not expired:
                return []
            marks, params = in_list("id", list(expired))
            rows = tx.execute(f"UPDATE jobs SET reserved_by = :rescuer, lease_until = :lease WHERE id IN {marks}"
                              f" RETURNING {JOB_COLUMNS}",
                              {**params, "rescuer": rescuer, "lease": now + self.settings.lease}).fetchall()
        return sorted(((Job.from_row(r), expired[r["id"]]) for r in rows), key=lambda pair: pair[0].id)

    def prune(self, finished_before: float) -> int:
        with self.transaction() as tx:
            rollup.prune(tx, finished_before)
            return self.discard(status="done", finished_before=finished_before)

    def wait_for_jobs(self, timeout: float, interrupted: Callable[[], bool] | None = None) -> bool:
        """Polls `PRAGMA data_version` (it changes when another connection commits) every
        50 ms: ~20-30 ms from a dispatch's commit to a wake-up, no system call between."""
        deadline = time.monotonic() + timeout
        version = self.data_version()
        while time.monotonic() < deadline and not (interrupted and interrupted()):
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            if self.data_version() != version:
                return True
        return False


__all__ = ["Result", "SqliteBackend", "SqliteTransaction"]
