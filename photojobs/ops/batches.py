"""Batches: jobs dispatched together under a name (`dispatch_many(..., batch="shoot 12")`).

A batch's total is what was dispatched; its jobs' rows say how many are pending, reserved,
done and failed. Rows can disappear (done rows are pruned after `keep_done_hours`, failed
ones can be forgotten, a duplicate skipped at dispatch never had one): those are counted
as `missing` and as finished, so progress still reaches 1.0.
A failed job superseded by a later success with its unique key is not counted as failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NotFound, UsageError
from .common import iso

if TYPE_CHECKING:
    from ..app import App


def _summary(row) -> dict:
    total = row["total"] or 0
    missing = max(0, total - row["present"])
    unfinished = row["pending"] + row["reserved"]
    finished = max(0, total - unfinished)
    return {"id": row["id"], "name": row["name"], "total": total, "pending": row["pending"],
            "reserved": row["reserved"], "done": row["done"], "failed": row["failed"], "missing": missing,
            "progress": round(finished / total, 4) if total else 1.0, "finished": unfinished == 0,
            "created_at": iso(row["created_at"]),
            "finished_at": iso(row["last_finished_at"]) if unfinished == 0 else None}


def list_batches(app: "App", limit: int = 50, unfinished_only: bool = False) -> list[dict]:
    """The most recent batches first, with their counts and progress."""
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    return [_summary(r) for r in app.backend.batches(limit, unfinished_only)]


def show_batch(app: "App", batch_id: int, failed_limit: int = 50) -> dict:
    """One batch: its counts and progress, and its failed jobs with their last error."""
    row = app.backend.batch(batch_id)
    if row is None:
        raise NotFound(f"no batch {batch_id}", hint="see `photojobs batch list`")
    result = _summary(row)
    failed = app.backend.batch_failed_jobs(batch_id, failed_limit)
    result["failed_jobs"] = [{"id": r["id"], "name": r["name"], "queue": r["queue"], "attempts": r["attempts"],
                              "failed_at": iso(r["finished_at"]), "error": r["last_error"]} for r in failed]
    return result
