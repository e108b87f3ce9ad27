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
import time
from typing import TYPE_CHECKING, Sequence

from ..errors import NotFound, UsageError
from .common import check_known_queues, check_queue_name, iso

if TYPE_CHECKING:
    from ..app import App


def _row_summary(row) -> dict:
    return {"id": row["id"], "name": row["name"], "queue": row["queue"], "attempts": row["attempts"],
            "failed_at": iso(row["finished_at"]), "error": row["last_error"], "batch_id": row["batch_id"]}


def _known(app: "App", queue: str) -> str:
    return check_known_queues(app, [check_queue_name(queue)])[0]


def list_failed(app: "App", queue: str | None = None, limit: int | None = None) -> list[dict]:
    """Failed jobs (not superseded), most recent first."""
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    return [_row_summary(r) for r in app.backend.list_failed(_known(app, queue) if queue else None, limit)]


def _not_failed(app: "App", job_id: int) -> NotFound:
    status = app.backend.job_status(job_id)
    if status is None:
        return NotFound(f"no job {job_id}", hint="see `photojobs failed list`")
    return NotFound(f"job {job_id} is {status}, not failed")


def show_failed(app: "App", job_id: int) -> dict:
    """A failed job: its payload, and every attempt's error with its traceback."""
    found = app.backend.failed_job(job_id)
    if found is None:
        raise _not_failed(app, job_id)
    row, errors = found
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        payload = row["payload"]
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
    result = app.backend.retry_failed(ids=[int(i) for i in ids] if ids else None,
                                      queue=_known(app, queue) if queue is not None else None)
    if result.missing:
        raise _not_failed(app, result.missing[0])
    if result.superseded:
        job_id, by = result.superseded[0]
        raise UsageError(f"job {job_id} was superseded by job {by}, which succeeded: nothing to retry")
    return {"retried": result.retried,
            "skipped": [{"id": job_id, "reason": f"a live job holds its unique key {key!r}"}
                        for job_id, key in result.skipped]}


def forget_failed(app: "App", job_id: int) -> None:
    """Delete one failed job and its error records."""
    if not app.backend.discard(status="failed", ids=[job_id]):
        raise _not_failed(app, job_id)


def count_flushable(app: "App", queue: str | None = None) -> int:
    """How many jobs `flush_failed` would delete (superseded ones included)."""
    return app.backend.count_jobs(_known(app, queue) if queue else None, "failed")


def flush_failed(app: "App", queue: str | None = None) -> int:
    """Delete every failed job (of `queue`, if given); returns how many."""
    return app.backend.discard(status="failed", queue=_known(app, queue) if queue else None)


def prune_failed(app: "App", hours: float) -> int:
    """Delete failed jobs that failed more than `hours` ago; returns how many."""
    if hours is None or hours < 0:
        raise UsageError("--hours must be zero or more")
    return app.backend.discard(status="failed", finished_before=time.time() - hours * 3600)
