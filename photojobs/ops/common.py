"""Small helpers shared by the ops modules."""

from __future__ import annotations

import datetime
import re

from ..errors import UsageError

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC, to the second (None stays None)."""
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")


def check_queue_name(queue: str) -> str:
    queue = queue.strip()
    if not _QUEUE_NAME.match(queue):
        raise UsageError(f"{queue!r} is not a queue name (letters, digits, '_', '-', '.', ':')")
    return queue


def parse_queue_list(text: str) -> list[str]:
    """'emails,photos' -> ['emails', 'photos'], each checked; at least one."""
    names = [check_queue_name(q) for q in text.split(",") if q.strip()]
    if not names:
        raise UsageError("name at least one queue")
    return list(dict.fromkeys(names))

