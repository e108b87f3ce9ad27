"""Pausing, resuming and clearing queues; asking every worker to restart.

A paused queue is a row of `paused_queues`: the claim skips it, its jobs are kept.
A restart is a timestamp in `control` under the key 'restart': a worker that started
before it finishes its current job and exits (checked at each heartbeat).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .common import check_known_queues, check_queue_name, delete_jobs, iso

if TYPE_CHECKING:
    from ..app import App
    from ..backend import SqliteBackend

RESTART_KEY = "restart"


def pause_queue(app: "App", queue: str) -> bool:
    """Pause `queue` (a known one); False if it was paused already."""
    queue = check_known_queues(app, [check_queue_name(queue)])[0]
    with app.transaction() as conn:
        return conn.execute("INSERT OR IGNORE INTO paused_queues (queue, paused_at) VALUES (?, ?)",
                            [queue, time.time()]).rowcount > 0


def resume_queue(app: "App", queue: str) -> bool:
    """Resume `queue` (a known one); False if it was not paused."""
    queue = check_known_queues(app, [check_queue_name(queue)])[0]
    with app.transaction() as conn:
        return conn.execute("DELETE FROM paused_queues WHERE queue = ?", [queue]).rowcount > 0


def paused_queues(app: "App") -> dict[str, str | None]:
    """Paused queue -> when it was paused (ISO time)."""
    return {r["queue"]: iso(r["paused_at"]) for r in app.backend.read("SELECT queue, paused_at FROM paused_queues")}


def pending_count(app: "App", queue: str, ready_only: bool = False) -> int:
    """The jobs of `queue` waiting to run: ready now or later, or only those ready now."""
    sql = "SELECT count(*) FROM jobs WHERE queue = ? AND status = 'pending'"
    if ready_only:
        return app.backend.read(sql + " AND available_at <= ?", [queue, time.time()])[0][0]
    return app.backend.read(sql, [queue])[0][0]


def paused_backlog(app: "App", queue: str) -> int | None:
    """None if `queue` is not paused, else how many of its jobs wait."""
    if not app.backend.read("SELECT 1 FROM paused_queues WHERE queue = ?", [queue]):
        return None
    return pending_count(app, queue)


def count_clearable(app: "App", queue: str) -> int:
    """How many jobs `clear_queue` would delete: the pending (ready or delayed) jobs of `queue`."""
    return pending_count(app, check_known_queues(app, [check_queue_name(queue)])[0])


def clear_queue(app: "App", queue: str) -> int:
    """Delete the pending jobs (ready and delayed) of `queue`; running jobs finish, failed
    jobs stay in the failed table. Returns how many were deleted."""
    queue = check_known_queues(app, [check_queue_name(queue)])[0]
    with app.transaction() as conn:
        return delete_jobs(conn, "queue = ? AND status = 'pending'", [queue])


def request_restart(app: "App") -> float:
    """Ask every running worker to finish its current job and exit. Returns the timestamp."""
    now = time.time()
    with app.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO control (key, value) VALUES (?, ?)", [RESTART_KEY, repr(now)])
    return now


def restart_requested_after(backend: "SqliteBackend", started_at: float) -> bool:
    """Whether `queue restart` was run after `started_at` (a worker's start, Unix time)."""
    rows = backend.read("SELECT value FROM control WHERE key = ?", [RESTART_KEY])
    if not rows:
        return False
    try:
        return float(rows[0][0]) > started_at
    except (TypeError, ValueError):
        return False
