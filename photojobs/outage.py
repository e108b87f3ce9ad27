"""A long-running worker rides out a lost database server (PostgreSQL restarting, a
network cut) or a full disk under the database: it logs the outage once, backs off with
jitter, and goes on when the server is back. What its jobs become is decided by their
leases, as after a crash. Short CLI commands do not wait: they exit 3 with the one-line reason.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from .errors import DatabaseConnectionLost, DatabaseUnreachable, DiskFull

log = logging.getLogger("photojobs.worker")
# A full disk under the database refuses every write until someone frees space: an outage too.
SERVER_GONE = (DatabaseConnectionLost, DatabaseUnreachable, DiskFull)
FIRST_DELAY, MAX_DELAY = 0.2, 5.0
FLICKER = 30.0  # seconds
T = TypeVar("T")


class Outage:
    """Back-off while the server is gone: its first failure and its recovery are logged
    (warnings: an on-call person wants both), the failures between are quiet. A server
    that fails again within FLICKER seconds of coming back (a nearly full disk lets some
    writes through) is the same outage: its back-off goes on, without new lines."""

    def __init__(self, who: str) -> None:
        self.who, self.failures, self.until = who, 0, 0.0
        self.level, self.back_at, self.announced = 0, -FLICKER, False

    def failed(self, exc: Exception) -> float:
        """Note a failure; returns how long to wait before the next try."""
        if not self.failures and time.monotonic() - self.back_at < FLICKER:
            self.failures = self.level
        self.failures += 1
        self.level = self.failures
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (self.failures - 1)) * (0.5 + random.random())
        self.until = time.monotonic() + delay
        if self.failures == 1:
            self.announced = True
            log.warning(f"database unavailable, {self.who} waits and retries: {exc}",
                        extra={"event": "db_unavailable"})
        return delay

    def recovered(self) -> None:
        if self.failures:
            if self.announced:
                log.warning(f"database back after {self.failures} failed tries", extra={"event": "db_back"})
            self.announced, self.back_at = False, time.monotonic()
        self.failures, self.until = 0, 0.0

    def waiting(self) -> bool:
        return time.monotonic() < self.until

    def attempt(self, action: Callable[[], T], default: T) -> T:
        """`action()`, or `default` while the server is gone (skipped until the back-off ends)."""
        if self.waiting():
            return default
        try:
            result = action()
        except SERVER_GONE as exc:
            self.failed(exc)
            return default
        self.recovered()
        return result


__all__ = ["Outage", "SERVER_GONE"]
