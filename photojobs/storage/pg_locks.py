"""Cron mode's no-overlap lock across hosts: a PostgreSQL advisory lock held by a session
of its own for the run's life. The server drops it when that session ends: the run
exits, is killed, or its host is cut off (keepalives end the session within seconds).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from typing import Any, Iterator

from .pg_connect import connect


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for the lock `name`."""
    return int.from_bytes(hashlib.sha256(f"photojobs:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(settings: Any, name: str, command: str | None, already_running: type[Exception]) -> Iterator[None]:
    """Hold the lock `name` for the block, or raise `already_running` at once if any host does."""
    key = lock_key(name)
    conn = connect(settings.db, settings.postgres)
    try:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            raise already_running(f"{command or name} is already running ({_holder(conn, key)});"
                                 " this run exits without working")
        conn.execute("SELECT set_config('application_name', %s, false)",
                     [f"photojobs {name} on {socket.gethostname()} pid {os.getpid()}"[:63]])
        yield
    finally:
        conn.close()  # ending the session drops the lock


def _holder(conn: Any, key: int) -> str:
    """'photojobs work-default on web1 pid 123', from the holder's session, as far as it is known."""
    row = conn.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                       " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
                       " AND l.objsubid = 1", [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF]).fetchone()
    return f"held by {row[0]}" if row and row[0] else "held by another host or process"


__all__ = ["advisory_lock", "lock_key"]
