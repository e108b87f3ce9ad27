"""The schedule_runs table: one row per (task, scheduled time), so two schedulers never
enqueue the same run twice."""

from __future__ import annotations

from typing import Any

from .base import Executor, Transaction


def record(tx: Transaction, task: str, run_at: str, now: float) -> bool:
    """Claim the run; False if another scheduler recorded it already."""
    return tx.execute("INSERT INTO schedule_runs (task, run_at, enqueued_at) VALUES (:task, :run_at, :now)"
                      " ON CONFLICT (task, run_at) DO NOTHING", {"task": task, "run_at": run_at, "now": now}
                      ).rowcount > 0


def set_job(tx: Transaction, task: str, run_at: str, job_id: int | None) -> None:
    tx.execute("UPDATE schedule_runs SET job_id = :job WHERE task = :task AND run_at = :run_at",
               {"job": job_id, "task": task, "run_at": run_at})


def latest(db: Executor) -> dict[str, Any]:
    """Each task's latest recorded run (task, run_at, enqueued_at, job_id)."""
    rows = db.execute("SELECT task, run_at, enqueued_at, job_id FROM schedule_runs AS s"
                      " WHERE run_at = (SELECT max(run_at) FROM schedule_runs WHERE task = s.task)").fetchall()
    return {row["task"]: row for row in rows}
