"""Opening the SQLite database: WAL, a busy timeout, a private file, errors a user can act on."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import DatabaseLocked, DatabaseMissing, DatabaseUnusable, DiskFull, PhotojobsError, SchemaTooOld
from ..settings import Settings
from .netfs import refuse_network_filesystem
from .tables import is_own_table


def create_private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by its owner only, if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def open_database(settings: Settings, *, create: bool = False, check_schema: bool = True) -> sqlite3.Connection:
    """Open the configured database. Never creates one unless `create` (that is `init`'s job)."""
    path = settings.db_path
    refuse_network_filesystem(path)
    if not path.exists():
        if not create:
            raise DatabaseMissing(f"database {path} does not exist", hint="run `photojobs init` to create it")
        create_private_file(path)
    with translate_errors(path):
        conn = sqlite3.connect(path, isolation_level=None, timeout=settings.busy_timeout, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if settings.durability == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        if check_schema:
            from ..migrations import check_schema as check

            check(conn, path)
    return conn


def _classify(exc: sqlite3.Error, path: Path) -> PhotojobsError | None:
    text = str(exc).lower()
    if "disk is full" in text or "database or disk is full" in text:
        return DiskFull(f"database {path}: the disk is full", hint="free space on its disk, then try again")
    if "locked" in text or "busy" in text:
        return DatabaseLocked(f"database {path} stayed locked by another process",
                              hint="try again, or raise lock_budget (seconds, in photojobs.toml or"
                                   " PHOTOJOBS_LOCK_BUDGET) if this happens under normal load")
    if "readonly" in text or "read-only" in text:
        return DatabaseUnusable(f"database {path} is read-only", hint="check the file's owner and permissions")
    if "not a database" in text or "malformed" in text or "disk image" in text:
        return DatabaseUnusable(f"database {path} is corrupt or not an SQLite database")
    if "unable to open" in text:
        return DatabaseUnusable(f"cannot open database {path}", hint="check the folder exists and is writable")
    if "no such table" in text and is_own_table(text.split("no such table:")[-1]):  # not a table of the caller's SQL
        return SchemaTooOld(f"database {path} has no photojobs schema", hint="run `photojobs init` or `photojobs migrate`")
    return None


@contextlib.contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's environment errors into PhotojobsErrors; let programming errors through."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise (_classify(exc, path) or exc) from exc
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.IntegrityError):
            raise
        raise (_classify(exc, path) or DatabaseUnusable(f"database {path}: {exc}")) from exc


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def begin_immediate(conn: sqlite3.Connection, budget: float,
                    on_wait: Callable[[float], None] | None = None) -> None:
    """Take the write lock, retrying with jitter past SQLite's own busy handler.

    SQLite's busy handler can starve one of several processes in a tight claim loop past
    its timeout; a retry with random back-off gives the others a turn. `on_wait(seconds)`,
    if given, is called between tries (a long-running worker logs and tends its children).
    """
    started = time.monotonic()
    deadline = started + budget
    pause = 0.005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                raise
        if on_wait is not None:
            on_wait(time.monotonic() - started)
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.25)


def lock_holder(db_path: Path) -> str | None:
    """Who holds the database's write lock, if this system says: "pid 123 (command)".

    SQLite in WAL mode takes the write lock as a POSIX lock on byte 120 of the -shm file;
    Linux lists it in /proc/locks. (Reading the list opens no file of the database: opening
    and closing one would drop this process's own SQLite locks.)"""
    try:
        shm = os.stat(f"{db_path}-shm")
        with open("/proc/locks") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # e.g. "3: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120"
        if len(fields) >= 8 and fields[1] == "POSIX" and fields[3] == "WRITE":
            try:
                inode = int(fields[5].rsplit(":", 1)[1])
                start, end = int(fields[6]), (-1 if fields[7] == "EOF" else int(fields[7]))
            except (IndexError, ValueError):
                continue
            if inode == shm.st_ino and start <= 120 and (end == -1 or end >= 120):
                return _describe_pid(int(fields[4]))
    return None


def _describe_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            command = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        command = ""
    return f"pid {pid} ({command[:80]})" if command else f"pid {pid}"
