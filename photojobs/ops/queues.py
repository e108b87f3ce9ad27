"""Pausing, resuming and clearing queues; asking every worker to restart.

A paused queue is skipped by the claim; its jobs are kept. A restart is a time the
storage keeps: a worker that started before it finishes its current job and exits
(checked every second).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .common import check_known_queues, check_queue_name, iso

if TYPE_CHECKING:
    from ..app import App
    from ..storage import Backend


def pause_queue(app: "App", queue: str) -> bool:
    """Pause `queue` (a known one); False if it was paused already."""
    return app.backend.pause(check_known_queues(app, [check_queue_name(queue)])[0])


def resume_queue(app: "App", queue: str) -> bool:
    """Resume `queue` (a known one); False if it was not paused."""
    return app.backend.resume(check_known_queues(app, [check_queue_name(queue)])[0])


def paused_queues(app: "App") -> dict[str, str | None]:
    """Paused queue -> when it was paused (ISO time)."""
    return {queue: iso(at) for queue, at in app.backend.paused().items()}


def pending_count(app: "App", queue: str, ready_only: bool = False) -> int:
    """The jobs of `queue` waiting to run: ready now or later, or only those ready now."""
    return app.backend.count_jobs(queue, "pending", ready_at=time.time() if ready_only else None)


def paused_backlog(app: "App", queue: str) -> int | None:
    """None if `queue` is not paused, else how many of its jobs wait."""
    if queue not in app.backend.paused():
        return None
    return pending_count(app, queue)


def count_clearable(app: "App", queue: str) -> int:
    """How many jobs `clear_queue` would delete: the pending (ready or delayed) jobs of `queue`."""
    return pending_count(app, check_known_queues(app, [check_queue_name(queue)])[0])


def clear_queue(app: "App", queue: str) -> int:
    """Delete the pending jobs (ready and delayed) of `queue`; running jobs finish, failed
    jobs stay in the failed table. Returns how many were deleted."""
    return app.backend.discard(status="pending", queue=check_known_queues(app, [check_queue_name(queue)])[0])


def request_restart(app: "App") -> float:
    """Ask every running worker to finish its current job and exit. Returns the timestamp."""
    now = time.time()
    app.backend.request_restart(now)
    return now


def restart_requested_after(backend: "Backend", started_at: float) -> bool:
    """Whether `queue restart` was run after `started_at` (a worker's start, Unix time)."""
    at = backend.restart_requested_at()
    return at is not None and at > started_at
