"""Opening the SQLite database: WAL, a busy timeout, a private file, errors a user can act on."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from ..errors import DatabaseLocked, DatabaseMissing, DatabaseUnusable, PhotojobsError, SchemaTooOld
from ..settings import Settings
from .netfs import refuse_network_filesystem


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
    if "no such table" in text:
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


def begin_immediate(conn: sqlite3.Connection, budget: float) -> None:
    """Take the write lock, retrying with jitter past SQLite's own busy handler.

    SQLite's busy handler can starve one of several processes in a tight claim loop past
    its timeout; a retry with random back-off gives the others a turn.
    """
    deadline = time.monotonic() + budget
    pause = 0.005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.25)
