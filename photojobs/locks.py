"""Cron mode's lock: one run of a drain command at a time per installation.

cron starts `photojobs send-mail` every minute whether or not the last run finished. The
run holds `flock` on `<storage>/locks/<name>.lock` (0600) for its whole life; a second run
finds it held, says who holds it, and exits at once. The kernel drops the lock when its
holder exits, even on SIGKILL, so no stale lock ever needs clearing; the file is kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from typing import Iterator

from .errors import PhotojobsError
from .settings import Settings


class AlreadyRunning(PhotojobsError):
    """Another run of this command holds its lock."""

    exit_code = 0  # not a failure: the other run is doing the work


def lock_path(settings: Settings, name: str):
    safe = re.sub(r"[^A-Za-z0-9_.,-]", "_", name).lstrip(".") or "lock"
    return settings.storage_path / "locks" / f"{safe}.lock"


@contextlib.contextmanager
def cron_lock(settings: Settings, name: str, command: str | None = None) -> Iterator[None]:
    """Hold the lock `name` for the block, or raise AlreadyRunning at once if another process does
    (on PostgreSQL: another process on any host)."""
    from .storage import engine_of

    if engine_of(settings.db) == "postgresql":
        from .storage.pg_locks import advisory_lock

        with advisory_lock(settings, name, command, AlreadyRunning):
            yield
        return
    path = lock_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"{command or name} is already running ({_holder(fd)});"
                                 " this run exits without working") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _holder(fd: int) -> str:
    """'pid 123, since 12:00:03 UTC' from the lock file, as far as it can be read."""
    try:
        pid, started = os.pread(fd, 64, 0).decode().split()[:2]
        since = time.strftime("%H:%M:%S UTC", time.gmtime(float(started)))
        return f"pid {int(pid)}, since {since}"
    except (OSError, ValueError, UnicodeDecodeError):
        return "another process"
