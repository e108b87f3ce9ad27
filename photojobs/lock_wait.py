"""A long-running worker's patience with a held write lock: wait, say so, keep supervising.

Another process may hold the database's write lock (SQLite), or a lock on the queue's
tables (PostgreSQL), for longer than `lock_budget` (a backup, a long migration, a stuck
script, a `VACUUM FULL`). A short command gives up (exit 3); a worker
holding jobs must not: it would leave them reserved until their leases run out.
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger("photojobs.worker")


class LockWaiter:
    """`on_lock_wait` for a backend: a warning once the wait passes `lock_budget`, then
    every `lock_budget` seconds, naming the holder when the system says; `tend(waited)` runs
    between tries (the supervisor enforces timeouts and signals meanwhile; it may raise to
    stop waiting)."""

    def __init__(self, holder: Callable[[], str | None], budget: float, who: str,
                 tend: Callable[[float], None] | None = None):
        self.holder, self.budget, self.who, self.tend = holder, budget, who, tend
        self._next_log = budget

    def __call__(self, waited: float) -> None:
        if waited < self._next_log - self.budget:  # a new wait
            self._next_log = self.budget
        if waited >= self._next_log:
            self._next_log = waited + self.budget
            holder = self.holder()
            log.warning("waiting for the database's write lock", extra={
                "event": "lock_wait", "waited": round(waited, 1), "holder": holder or "unknown",
                "error": f"{self.who} has waited {waited:.0f}s (past lock_budget) for the write lock"
                         + (f" held by {holder}" if holder else "") + "; it keeps waiting"})
        if self.tend is not None:
            self.tend(waited)
