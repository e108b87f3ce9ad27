"""Small helpers shared by the ops modules."""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    from ..app import App

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


def known_queues(app: "App") -> list[str]:
    """The standard queues, the queues of registered job types, and every queue a job row
    (pending, running, done or failed) or a pause names."""
    from ..worker import DEFAULT_QUEUES

    app.registry.load(app.settings.imports, str(app.settings.root))
    names = set(DEFAULT_QUEUES) | {app.registry.get(n).queue for n in app.registry.names()}
    return sorted(names | set(app.backend.queue_names()))


def check_known_queues(app: "App", names: Sequence[str]) -> list[str]:
    """`names` if every one is a known queue, else a UsageError naming the known ones."""
    known = known_queues(app)
    for name in names:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"no queue named {name!r}: {guess}(known: {', '.join(known)})")
    return list(names)
