"""The failed table: jobs whose tries are spent, or that failed permanently.

Failed jobs are rows of `jobs` with status 'failed'; every attempt's error is a row of
`job_errors`. Retrying puts a job back as pending with fresh tries and keeps its error
history; forgetting, flushing and pruning delete the rows and their errors.

A failed job is superseded when a later job with its unique key succeeds (a photo fixed and
added again): `superseded_by` names that job. It leaves the list, the counts and `--all`;
`failed show` still shows it, and forget, flush and prune delete it like any failed job.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Sequence

from ..errors import NotFound, UsageError
from .common import check_known_queues, check_queue_name, delete_jobs, iso

if TYPE_CHECKING:
    from ..app import App

_LIST_COLUMNS = "id, name, queue, attempts, finished_at, last_error, batch_id"
OPEN = "status = 'failed' AND superseded_by IS NULL"  # failed and not fixed since


def _row_summary(row: sqlite3.Row) -> dict:
    return {"id": row["id"], "name": row["name"], "queue": row["queue"], "attempts": row["attempts"],
            "failed_at": iso(row["finished_at"]), "error": row["last_error"], "batch_id": row["batch_id"]}


def _known(app: "App", queue: str) -> str:
    return check_known_queues(app, [check_queue_name(queue)])[0]


def list_failed(app: "App", queue: str | None = None, limit: int | None = None) -> list[dict]:
    """Failed jobs, most recent first."""
    sql = f"SELECT {_LIST_COLUMNS} FROM jobs WHERE {OPEN}"
    params: list = []
    if queue:
        sql += " AND queue = ?"
        params.append(_known(app, queue))
    sql += " ORDER BY finished_at DESC, id DESC"
    if limit is not None:
        if limit < 1:
            raise UsageError("--limit must be at least 1")
        sql += " LIMIT ?"
        params.append(limit)
    return [_row_summary(r) for r in app.backend.read(sql, params)]


def _status_of(app: "App", job_id: int) -> str | None:
    rows = app.backend.read("SELECT status FROM jobs WHERE id = ?", [job_id])
    return rows[0]["status"] if rows else None


def _not_failed(app: "App", job_id: int) -> NotFound:
    status = _status_of(app, job_id)
    if status is None:
        return NotFound(f"no job {job_id}", hint="see `photojobs failed list`")
    return NotFound(f"job {job_id} is {status}, not failed")


def show_failed(app: "App", job_id: int) -> dict:
    """A failed job: its payload, and every attempt's error with its traceback."""
    rows = app.backend.read("SELECT * FROM jobs WHERE id = ? AND status = 'failed'", [job_id])
    if not rows:
        raise _not_failed(app, job_id)
    row = rows[0]
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        payload = row["payload"]
    errors = app.backend.read("SELECT attempt, error_class, message, traceback, at FROM job_errors"
                              " WHERE job_id = ? ORDER BY at, id", [job_id])
    return {**_row_summary(row), "superseded_by": row["superseded_by"], "payload": payload, "tries": row["tries"],
            "unique_key": row["unique_key"],
            "created_at": iso(row["created_at"]), "duration": round(row["duration"], 6) if row["duration"] is not None else None,
            "errors": [{"attempt": e["attempt"], "error_class": e["error_class"], "message": e["message"],
                        "at": iso(e["at"]), "traceback": e["traceback"]} for e in errors]}


def retry_failed(app: "App", ids: Sequence[int] = (), *, all_jobs: bool = False, queue: str | None = None) -> dict:
    """Put failed jobs back as pending with fresh tries, in one transaction.

    Either `ids` (each must be a failed job, or nothing changes), `all_jobs`, or `queue`.
    A job whose unique key is held by a live job again is skipped and reported; a
    superseded job is not retried (a later job with its key succeeded).
    """
    chosen = sum([bool(ids), all_jobs, queue is not None])
    if chosen != 1:
        raise UsageError("give job ids, --all, or --queue Q (one of them)")
    now = time.time()
    retried: list[int] = []
    skipped: list[dict] = []
    with app.transaction() as conn:
        if ids:
            targets = list(dict.fromkeys(int(i) for i in ids))
            marks = ",".join("?" * len(targets))
            found = {r[0]: r[1] for r in conn.execute(
                f"SELECT id, superseded_by FROM jobs WHERE status = 'failed' AND id IN ({marks})", targets)}
            missing = [i for i in targets if i not in found]
            if missing:
                raise _not_failed(app, missing[0])
            fixed = [i for i in targets if found[i] is not None]
            if fixed:
                raise UsageError(f"job {fixed[0]} was superseded by job {found[fixed[0]]}, which succeeded:"
                                 " nothing to retry")
        elif queue is not None:
            targets = [r[0] for r in conn.execute(f"SELECT id FROM jobs WHERE {OPEN} AND queue = ?"
                                                  " ORDER BY id", [_known(app, queue)])]
        else:
            targets = [r[0] for r in conn.execute(f"SELECT id FROM jobs WHERE {OPEN} ORDER BY id")]
        for job_id in targets:
            try:
                conn.execute("UPDATE jobs SET status = 'pending', attempts = 0, available_at = ?, finished_at = NULL,"
                             " started_at = NULL, duration = NULL, reserved_by = NULL, lease_until = NULL"
                             " WHERE id = ?", [now, job_id])
            except sqlite3.IntegrityError:  # a live job holds its unique key
                key = conn.execute("SELECT unique_key FROM jobs WHERE id = ?", [job_id]).fetchone()[0]
                skipped.append({"id": job_id, "reason": f"a live job holds its unique key {key!r}"})
                continue
            retried.append(job_id)
    return {"retried": retried, "skipped": skipped}


def forget_failed(app: "App", job_id: int) -> None:
    """Delete one failed job and its error records."""
    with app.transaction() as conn:
        if not delete_jobs(conn, "id = ? AND status = 'failed'", [job_id]):
            raise _not_failed(app, job_id)


def count_flushable(app: "App", queue: str | None = None) -> int:
    """How many jobs `flush_failed` would delete (superseded ones included)."""
    if queue:
        return app.backend.read("SELECT count(*) FROM jobs WHERE status = 'failed' AND queue = ?",
                                [_known(app, queue)])[0][0]
    return app.backend.read("SELECT count(*) FROM jobs WHERE status = 'failed'")[0][0]


def flush_failed(app: "App", queue: str | None = None) -> int:
    """Delete every failed job (of `queue`, if given); returns how many."""
    with app.transaction() as conn:
        if queue:
            return delete_jobs(conn, "status = 'failed' AND queue = ?", [_known(app, queue)])
        return delete_jobs(conn, "status = 'failed'", [])


def prune_failed(app: "App", hours: float) -> int:
    """Delete failed jobs that failed more than `hours` ago; returns how many."""
    if hours is None or hours < 0:
        raise UsageError("--hours must be zero or more")
    cutoff = time.time() - hours * 3600
    with app.transaction() as conn:
        return delete_jobs(conn, "status = 'failed' AND finished_at < ?", [cutoff])
