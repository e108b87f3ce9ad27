"""What operating the queue asks of any engine: counts, the failed table, paused queues,
batches, the workers table and the restart signal, in SQL both engines run as written
(`count(CASE ...)`, `ON CONFLICT`, named `:name` parameters).

`SqlOperations` is a base of each engine's backend (storage/sqlite.py, storage/postgres.py),
which gives it `execute`, `transaction` and `integrity_error`.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from . import rollup
from .base import JOB_COLUMNS, Job, RetriedFailed
from .sql import in_list as _in

RESTART_KEY = "restart"
OPEN = "status = 'failed' AND superseded_by IS NULL"  # failed, and not fixed since by a later success

# What `status` counts, each read through a partial index of its status (never the done rows).
_LIVE = {
    "pending": "SELECT queue, count(CASE WHEN available_at <= :now THEN 1 END) AS pending,"
               " count(CASE WHEN available_at > :now THEN 1 END) AS delayed,"
               " min(CASE WHEN available_at <= :now THEN available_at END) AS oldest_ready"
               " FROM jobs WHERE status = 'pending' GROUP BY queue",
    "reserved": "SELECT queue, count(*) AS reserved FROM jobs WHERE status = 'reserved' GROUP BY queue",
    "failed": "SELECT queue, count(*) AS failed, count(CASE WHEN finished_at >= :since THEN 1 END) AS failed_since"
              f" FROM jobs WHERE {OPEN} GROUP BY queue",
}
_QUEUE_NAMES = ("SELECT DISTINCT queue FROM jobs WHERE status = 'pending'"
                " UNION SELECT DISTINCT queue FROM jobs WHERE status = 'reserved'"
                " UNION SELECT DISTINCT queue FROM jobs WHERE status = 'failed'"
                f" UNION SELECT DISTINCT queue FROM {rollup.TABLE} UNION SELECT queue FROM paused_queues")
# Each status as SQL text, not a parameter: a partial index of one status is then usable
# whatever the engine plans for parameters (a prepared statement's generic plan cannot use it).
_STATUS = {status: f"status = '{status}'" for status in ("pending", "reserved", "done", "failed")}

_BATCH = """
SELECT b.id, b.name, b.total, b.created_at,
       count(j.id) AS present,
       count(CASE WHEN j.status = 'pending' THEN 1 END) AS pending,
       count(CASE WHEN j.status = 'reserved' THEN 1 END) AS reserved,
       count(CASE WHEN j.status = 'done' THEN 1 END) AS done,
       count(CASE WHEN j.status = 'failed' AND j.superseded_by IS NULL THEN 1 END) AS failed,
       max(j.finished_at) AS last_finished_at
FROM batches b LEFT JOIN jobs j ON j.batch_id = b.id
"""

_FAILED_COLUMNS = "id, name, queue, attempts, finished_at, last_error, batch_id"


class SqlOperations:
    """A base of every engine's backend: needs `execute`, `transaction` and `integrity_error`."""

    integrity_error: type[Exception]  # the engine's unique-key violation

    # -- counts -------------------------------------------------------------------------------

    def queue_stats(self, now: float, since: float) -> dict[str, dict]:
        """Per queue: pending (ready), delayed, reserved, failed, oldest_ready (a time),
        done_since and failed_since, mean_s and p95_s of the jobs done since `since`.
        Reads the live rows and the done jobs' minutes (rollup.py), not the done rows."""
        params = {"now": now, "since": since}
        stats: dict[str, dict] = {}
        for sql in _LIVE.values():
            for row in self.execute(sql, params).fetchall():
                stats.setdefault(row["queue"], {}).update({key: row[key] for key in row.keys() if key != "queue"})
        done = rollup.figures(self, since)
        for queue, tally in done.items():
            stats.setdefault(queue, {}).update(done_since=tally.done, mean_s=tally.mean(), p95_s=tally.p95())
        for queue in self.queue_names():
            stats.setdefault(queue, {})
        zero = {"pending": 0, "delayed": 0, "reserved": 0, "failed": 0, "oldest_ready": None, "done_since": 0,
                "failed_since": 0, "mean_s": None, "p95_s": None}
        return {queue: {**zero, **entry} for queue, entry in stats.items()}

    def count_jobs(self, queue: str | None, status: str, ready_at: float | None = None) -> int:
        """Jobs in `status` (of `queue`, if given; with `ready_at`: only those due by then)."""
        sql = f"SELECT count(*) FROM jobs WHERE {_STATUS[status]}" + (" AND queue = :queue" if queue else "")
        if ready_at is not None:
            sql += " AND available_at <= :ready_at"
        return self.execute(sql, {"queue": queue, "ready_at": ready_at}).fetchone()[0]

    def queue_names(self) -> list[str]:
        """Every queue a job row (of any status: a done one through its minute) or a pause names."""
        rows = self.execute(_QUEUE_NAMES).fetchall()
        return sorted(r[0] for r in rows)

    def job_status(self, job_id: int) -> str | None:
        row = self.execute("SELECT status FROM jobs WHERE id = :id", {"id": job_id}).fetchone()
        return row[0] if row else None

    def live_job(self, unique_key: str) -> int | None:
        row = self.execute("SELECT id FROM jobs WHERE unique_key = :key AND status IN ('pending', 'reserved')",
                           {"key": unique_key}).fetchone()
        return row[0] if row else None

    def jobs_by_unique_key(self, keys: Sequence[str], live_only: bool = False) -> dict[str, tuple[int, str]]:
        """unique key -> (id, status) of its newest job still on record (only pending or
        reserved ones with `live_only`)."""
        found: dict[str, tuple[int, str]] = {}
        live = " AND status IN ('pending', 'reserved')" if live_only else ""
        for start in range(0, len(keys), 500):  # a statement takes a bounded number of parameters
            marks, params = _in("key", list(keys[start:start + 500]))
            for row in self.execute(f"SELECT unique_key, id, status FROM jobs WHERE unique_key IN {marks}{live}"
                                    " ORDER BY id", params).fetchall():
                found[row[0]] = (row[1], row[2])  # ordered by id: the newest wins
        return found

    def due_times(self, name: str, after: float, limit: int) -> list[float]:
        rows = self.execute("SELECT available_at FROM jobs WHERE name = :name AND available_at > :after"
                            " ORDER BY available_at DESC LIMIT :limit",
                            {"name": name, "after": after, "limit": limit}).fetchall()
        return [r[0] for r in rows]

    # -- the failed table ---------------------------------------------------------------------

    def list_failed(self, queue: str | None = None, limit: int | None = None) -> list[Any]:
        """Failed jobs not superseded since, most recent first."""
        sql = f"SELECT {_FAILED_COLUMNS} FROM jobs WHERE {OPEN}"
        if queue is not None:
            sql += " AND queue = :queue"
        sql += " ORDER BY finished_at DESC, id DESC" + (" LIMIT :limit" if limit is not None else "")
        return self.execute(sql, {"queue": queue, "limit": limit}).fetchall()

    def failed_job(self, job_id: int) -> tuple[Any, list[Any]] | None:
        """A failed job's row and every attempt's error, oldest first."""
        row = self.execute("SELECT * FROM jobs WHERE id = :id AND status = 'failed'", {"id": job_id}).fetchone()
        if row is None:
            return None
        errors = self.execute("SELECT attempt, error_class, message, traceback, at FROM job_errors"
                              " WHERE job_id = :id ORDER BY at, id", {"id": job_id}).fetchall()
        return row, errors

    def retry_failed(self, ids: Sequence[int] | None = None, queue: str | None = None) -> RetriedFailed:
        """Put failed jobs (these ids, or of `queue`, or all not superseded) back as pending
        with fresh tries. Ids that are not failed jobs, or superseded ones, change nothing."""
        result = RetriedFailed([], [], [])
        with self.transaction() as tx:
            if ids is not None:
                targets = list(dict.fromkeys(ids))
                marks, params = _in("id", targets)
                found = {r[0]: r[1] for r in tx.execute(
                    f"SELECT id, superseded_by FROM jobs WHERE status = 'failed' AND id IN {marks}", params)}
                result.missing = [i for i in targets if i not in found]
                result.superseded = [(i, found[i]) for i in targets if i in found and found[i] is not None]
                if result.missing or result.superseded:
                    return result
            else:
                where = " AND queue = :queue" if queue is not None else ""
                targets = [r[0] for r in tx.execute(f"SELECT id FROM jobs WHERE {OPEN}{where} ORDER BY id",
                                                    {"queue": queue})]
            now = time.time()
            for job_id in targets:
                try:
                    with tx.savepoint():
                        tx.execute("UPDATE jobs SET status = 'pending', attempts = 0, available_at = :now,"
                                   " finished_at = NULL, started_at = NULL, duration = NULL, reserved_by = NULL,"
                                   " lease_until = NULL WHERE id = :id", {"now": now, "id": job_id})
                except self.integrity_error:  # a live job holds its unique key
                    key = tx.execute("SELECT unique_key FROM jobs WHERE id = :id", {"id": job_id}).fetchone()[0]
                    result.skipped.append((job_id, key))
                    continue
                result.retried.append(job_id)
        return result

    def discard(self, *, status: str, queue: str | None = None, ids: Sequence[int] | None = None,
                finished_before: float | None = None) -> int:
        where, params = [_STATUS[status]], {"queue": queue, "before": finished_before}
        if queue is not None:
            where.append("queue = :queue")
        if finished_before is not None:
            where.append("finished_at < :before")
        if ids is not None:
            if not ids:
                return 0
            marks, id_params = _in("id", list(ids))
            where.append(f"id IN {marks}")
            params.update(id_params)
        chosen = " AND ".join(where)
        with self.transaction() as tx:
            tx.execute(f"DELETE FROM job_errors WHERE job_id IN (SELECT id FROM jobs WHERE {chosen})", params)
            return tx.execute(f"DELETE FROM jobs WHERE {chosen}", params).rowcount

    # -- paused queues ------------------------------------------------------------------------

    def pause(self, queue: str) -> bool:
        """Pause `queue`; False if it was paused already."""
        with self.transaction() as tx:
            return tx.execute("INSERT INTO paused_queues (queue, paused_at) VALUES (:queue, :now)"
                              " ON CONFLICT (queue) DO NOTHING", {"queue": queue, "now": time.time()}).rowcount > 0

    def resume(self, queue: str) -> bool:
        with self.transaction() as tx:
            return tx.execute("DELETE FROM paused_queues WHERE queue = :queue", {"queue": queue}).rowcount > 0

    def paused(self) -> dict[str, float]:
        """Paused queue -> when it was paused."""
        return {r[0]: r[1] for r in self.execute("SELECT queue, paused_at FROM paused_queues").fetchall()}

    # -- batches ------------------------------------------------------------------------------

    def batches(self, limit: int, unfinished_only: bool = False) -> list[Any]:
        """The most recent batches first, with their jobs counted by status."""
        having = (" HAVING count(CASE WHEN j.status IN ('pending', 'reserved') THEN 1 END) > 0"
                  if unfinished_only else "")
        return self.execute(_BATCH + " GROUP BY b.id" + having + " ORDER BY b.id DESC LIMIT :limit",
                            {"limit": limit}).fetchall()

    def batch(self, batch_id: int) -> Any | None:
        return self.execute(_BATCH + " WHERE b.id = :id GROUP BY b.id", {"id": batch_id}).fetchone()

    def batch_failed_jobs(self, batch_id: int, limit: int) -> list[Any]:
        return self.execute(f"SELECT {_FAILED_COLUMNS} FROM jobs WHERE batch_id = :id AND {OPEN}"
                            " ORDER BY id LIMIT :limit", {"id": batch_id, "limit": limit}).fetchall()

    # -- workers and the restart signal -------------------------------------------------------

    def register_worker(self, worker_id: str, host: str, pid: int, queues: Sequence[str], concurrency: int, *,
                        boot_id: str | None = None, pid_ns: str | None = None, pid_start: int | None = None) -> None:
        """A worker's row, for `status`; boot id, pid namespace and start ticks say whether
        it is the same host and process (photojobs.liveness)."""
        now = time.time()
        with self.transaction() as tx:
            tx.execute("INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at,"
                       " boot_id, pid_ns, pid_start)"
                       " VALUES (:id, :host, :pid, :queues, :concurrency, :now, :now, :boot_id, :pid_ns, :pid_start)"
                       " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                       " queues = excluded.queues, concurrency = excluded.concurrency,"
                       " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
                       " current_jobs = NULL, boot_id = excluded.boot_id, pid_ns = excluded.pid_ns,"
                       " pid_start = excluded.pid_start",
                       {"id": worker_id, "host": host, "pid": pid, "queues": ",".join(queues),
                        "concurrency": concurrency, "now": now, "boot_id": boot_id, "pid_ns": pid_ns,
                        "pid_start": pid_start})

    def heartbeat(self, worker_id: str, current_jobs: Sequence[int]) -> None:
        with self.transaction() as tx:
            tx.execute("UPDATE workers SET heartbeat_at = :now, current_jobs = :jobs WHERE id = :id",
                       {"now": time.time(), "jobs": ",".join(str(j) for j in current_jobs if j), "id": worker_id})

    def unregister_worker(self, worker_id: str) -> None:
        with self.transaction() as tx:
            tx.execute("DELETE FROM workers WHERE id = :id", {"id": worker_id})

    def workers(self) -> list[Any]:
        """Every row of the workers table (live or stale), oldest first."""
        return self.execute("SELECT * FROM workers ORDER BY started_at").fetchall()

    def held_by_prefix(self, prefix: str) -> list[tuple[Any, str]]:
        """The reserved jobs whose holder's token starts with `prefix` (a worker's processes
        hold jobs as "<worker id>/<slot>.<n>"), each with that token."""
        rows = self.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'reserved'"
                            " AND substr(reserved_by, 1, :length) = :prefix",
                            {"length": len(prefix), "prefix": prefix}).fetchall()
        return [(Job.from_row(r), r["reserved_by"]) for r in rows]

    def reservations(self) -> list[tuple[int, str]]:
        """(job id, worker token) of every reserved job."""
        return [(r[0], r[1] or "") for r in self.execute("SELECT id, reserved_by FROM jobs WHERE status = 'reserved'")]

    def request_restart(self, at: float) -> None:
        with self.transaction() as tx:
            tx.execute("INSERT INTO control (key, value) VALUES (:key, :value)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value", {"key": RESTART_KEY, "value": repr(at)})

    def restart_requested_at(self) -> float | None:
        row = self.execute("SELECT value FROM control WHERE key = :key", {"key": RESTART_KEY}).fetchone()
        try:
            return float(row[0]) if row else None
        except (TypeError, ValueError):
            return None


__all__ = ["RESTART_KEY", "SqlOperations"]
