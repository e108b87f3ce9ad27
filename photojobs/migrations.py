"""The schema, as an ordered list of migrations. Each runs once, in its own transaction.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:  # sqlite-utils costs ~70 ms to import: only `migrate` needs it
    import sqlite_utils

from .errors import DatabaseUnusable, SchemaTooOld

Migration = Callable[["sqlite_utils.Database"], None]


def _table(db: "sqlite_utils.Database", name: str, columns: dict, pk="id", **kw) -> str:
    # create_table_sql, not Table.create: the latter commits, and a migration is one transaction.
    return db.create_table_sql(name, columns, pk=pk, **kw)


def _run(db: "sqlite_utils.Database", statements: list) -> None:
    for statement in statements:
        db.execute(statement() if callable(statement) else statement)


# m001's indexes of jobs, the same text on both engines (storage/pg_migrations.py uses it).
M001_JOB_INDEXES = [
    # The claim reads only this partial index: pending rows of one queue in id order.
    "CREATE INDEX jobs_ready ON jobs(queue, id) WHERE status = 'pending'",
    "CREATE INDEX jobs_leased ON jobs(lease_until) WHERE status = 'reserved'",
    "CREATE INDEX jobs_reserved_by ON jobs(reserved_by) WHERE status = 'reserved'",
    "CREATE INDEX jobs_finished ON jobs(status, finished_at) WHERE status IN ('done', 'failed')",
    "CREATE INDEX jobs_batch ON jobs(batch_id) WHERE batch_id IS NOT NULL",
    "CREATE UNIQUE INDEX jobs_unique_live ON jobs(unique_key)"
    " WHERE unique_key IS NOT NULL AND status IN ('pending', 'reserved')",
]


def m001_queue(db: "sqlite_utils.Database") -> None:
    _run(db, [
        _table(db, "jobs", {
            "id": int, "name": str, "queue": str, "payload": str, "status": str,
            "attempts": int, "tries": int, "timeout": float, "available_at": float,
            "created_at": float, "reserved_by": str, "lease_until": float,
            "started_at": float, "finished_at": float, "duration": float,
            "unique_key": str, "batch_id": int, "last_error": str,
        }, not_null={"name", "queue", "payload", "status", "attempts", "available_at", "created_at"},
           defaults={"status": "pending", "attempts": 0}),
        *M001_JOB_INDEXES,
        lambda: _table(db, "job_errors", {
            "id": int, "job_id": int, "attempt": int, "error_class": str, "message": str,
            "traceback": str, "at": float,
        }, foreign_keys=[("job_id", "jobs", "id")]),
        "CREATE INDEX job_errors_job ON job_errors(job_id)",
        _table(db, "batches", {"id": int, "name": str, "total": int, "created_at": float}),
        _table(db, "paused_queues", {"queue": str, "paused_at": float}, pk="queue"),
        _table(db, "workers", {
            "id": str, "host": str, "pid": int, "queues": str, "concurrency": int,
            "started_at": float, "heartbeat_at": float, "current_jobs": str,
        }),
        _table(db, "control", {"key": str, "value": str}, pk="key"),
    ])


def m002_domain(db: "sqlite_utils.Database") -> None:
    _run(db, [
        _table(db, "photos", {
            "id": int, "path": str, "album": str, "status": str, "width": int, "height": int,
            "orientation": int, "size_bytes": int, "mtime_ns": int, "sha256": str, "mime": str,
            "camera_make": str, "camera_model": str, "lens": str, "iso": int,
            "exposure_time": str, "f_number": float, "focal_length": float, "taken_at": str,
            "gps_lat": float, "gps_lon": float, "exif": str, "thumbnails": str,
            "fingerprint": str, "warnings": str, "created_at": float, "processed_at": float,
            "error": str, "batch_id": int,
        }, not_null={"path", "status", "created_at"}, defaults={"status": "pending"}),
        "CREATE UNIQUE INDEX photos_path ON photos(path)",
        "CREATE INDEX photos_album ON photos(album)",
        _table(db, "orders", {"id": int, "email": str, "name": str, "created_at": float},
               not_null={"email", "created_at"}),
        lambda: _table(db, "order_photos", {"order_id": int, "position": int, "photo_id": int},
               pk=("order_id", "position"),
               foreign_keys=[("order_id", "orders", "id"), ("photo_id", "photos", "id")]),
        lambda: _table(db, "downloads", {
            "id": int, "order_id": int, "token": str, "status": str, "conversion": str,
            "path": str, "size_bytes": int, "file_count": int, "sha256": str,
            "expires_at": float, "created_at": float, "ready_at": float, "error": str,
            "notify": int,
        }, not_null={"order_id", "token", "status", "created_at"},
           defaults={"status": "pending", "notify": 0},
           foreign_keys=[("order_id", "orders", "id")]),
        "CREATE UNIQUE INDEX downloads_token ON downloads(token)",
        _table(db, "outbox", {
            "id": int, "template": str, "to_addr": str, "subject": str, "context": str,
            "message_id": str, "status": str, "created_at": float, "sent_at": float,
            "error": str, "job_id": int,
        }, not_null={"template", "to_addr", "status", "created_at"}, defaults={"status": "pending"}),
        _table(db, "schedule_runs", {"task": str, "run_at": str, "enqueued_at": float, "job_id": int},
               pk=("task", "run_at")),
    ])


def m003_job_superseded(db: "sqlite_utils.Database") -> None:
    """A failed job whose unique key a later job completed (a photo fixed and re-added)
    names that job: it leaves `failed list` and the failed counts, `failed show` keeps it."""
    _run(db, [
        "ALTER TABLE jobs ADD COLUMN superseded_by INTEGER",
        "CREATE INDEX jobs_unique_key ON jobs(unique_key) WHERE unique_key IS NOT NULL",
        # A trigger, so every path that marks a job done supersedes (worker, sync mode, a
        # rescue), and a job without a unique key costs only the WHEN test.
        "CREATE TRIGGER jobs_supersede AFTER UPDATE OF status ON jobs"
        " WHEN NEW.unique_key IS NOT NULL AND NEW.status = 'done' AND OLD.status != 'done' BEGIN"
        " UPDATE jobs SET superseded_by = NEW.id WHERE unique_key = NEW.unique_key AND status = 'failed'"
        " AND superseded_by IS NULL AND id < NEW.id; END",
        # Failures already fixed before the upgrade: the newest done job with the same key.
        "UPDATE jobs SET superseded_by = (SELECT max(d.id) FROM jobs d WHERE d.unique_key = jobs.unique_key"
        " AND d.status = 'done' AND d.id > jobs.id)"
        " WHERE status = 'failed' AND unique_key IS NOT NULL",
    ])


def m004_worker_identity(db: "sqlite_utils.Database") -> None:
    """What makes "the same host" certain: the kernel's boot id and the pid namespace, so
    `status` can tell a worker whose pid is gone from one on another machine or container."""
    _run(db, [
        "ALTER TABLE workers ADD COLUMN boot_id TEXT",
        "ALTER TABLE workers ADD COLUMN pid_ns TEXT",
        "ALTER TABLE workers ADD COLUMN pid_start INTEGER",  # clock ticks since boot: a reused pid differs
    ])


def m005_outbox_resends(db: "sqlite_utils.Database") -> None:
    """How many times `mail resend` sent a row again: each resend is its own .eml file."""
    _run(db, ["ALTER TABLE outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0"])


def m006_queue_minutes(db: "sqlite_utils.Database") -> None:
    """`status` and `monitor` without reading the finished rows: done jobs counted per queue
    and minute (storage/rollup.py), and indexes that reach done and failed rows by status.
    (jobs_finished, on `status IN ('done', 'failed')`, was of no use to SQLite's planner for
    `status = 'done'`: the prune read every row.) Backfilled from the done rows kept."""
    from .storage.rollup import backfill_sql, create_table_sql  # the module alone: it imports nothing

    _run(db, [
        create_table_sql("REAL"),
        "DROP INDEX jobs_finished",
        "CREATE INDEX jobs_done ON jobs(finished_at) WHERE status = 'done'",
        "CREATE INDEX jobs_failed ON jobs(queue, finished_at) WHERE status = 'failed'",
        backfill_sql("CAST(finished_at / 60 AS INTEGER)"),  # times are positive: the cast floors
    ])


def m007_photos_by_status(db: "sqlite_utils.Database") -> None:
    """`photos list --status` reads the photos of one status through an index."""
    _run(db, ["CREATE INDEX photos_status ON photos(status)"])


DEFAULT_LIBRARY = "default"  # m008 files the absolute paths it finds under this library


def stored(raw: str | bytes) -> str | bytes:
    """How a path (or a library folder) is stored: text when valid UTF-8, else its bytes."""
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
            return raw
        except UnicodeEncodeError:
            return os.fsencode(raw)
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def default_library_plan(rows: Iterable[tuple[int, str | bytes]]) -> tuple[str | bytes, list[tuple[int, str | bytes]]] | None:
    """For (id, absolute path) rows: the longest common folder (stored form) and each
    row's new relative path; None when there is no absolute path (nothing to move)."""
    absolute = {pid: os.fsencode(v) if isinstance(v, str) else bytes(v) for pid, v in rows}
    absolute = {pid: p for pid, p in absolute.items() if p.startswith(b"/")}
    if not absolute:
        return None
    folder = os.path.commonpath([os.path.dirname(p) for p in absolute.values()])
    cut = len(folder) if folder != b"/" else 0
    return stored(folder), [(pid, stored(p[cut:].lstrip(b"/"))) for pid, p in absolute.items()]


def relative_archive_path(path: str) -> str | None:
    """An archive's absolute path as stored before m008, relative to the storage root:
    archives are always written to <storage>/downloads/<name>. None: leave it as it is
    (the readers take an absolute path as it stands)."""
    parent, name = os.path.split(path)
    if not os.path.isabs(path) or os.path.basename(parent) != "downloads" or not name:
        return None
    return f"downloads/{name}"


def m008_photo_libraries(db: "sqlite_utils.Database") -> None:
    """Photos as (library, path relative to its folder), the folders in `libraries` (and
    in photojobs.toml's [libraries]); archives relative to the storage root. Today's
    absolute paths: their longest common folder becomes library "default"."""
    _run(db, [
        _table(db, "libraries", {"name": str, "folder": str, "created_at": float}, pk="name",
               not_null={"folder", "created_at"}),
        f"ALTER TABLE photos ADD COLUMN library TEXT NOT NULL DEFAULT '{DEFAULT_LIBRARY}'",
        "DROP INDEX photos_path",
        "CREATE UNIQUE INDEX photos_path ON photos(library, path)",
    ])
    plan = default_library_plan(db.execute("SELECT id, path FROM photos").fetchall())
    if plan is not None:
        folder, moves = plan
        db.execute("INSERT INTO libraries (name, folder, created_at) VALUES (?, ?, ?)", [DEFAULT_LIBRARY, folder, time.time()])
        db.conn.executemany("UPDATE photos SET path = ? WHERE id = ?", [(rel, pid) for pid, rel in moves])
    archives = [(relative_archive_path(path), did) for did, path in
                db.execute("SELECT id, path FROM downloads WHERE path IS NOT NULL").fetchall()]
    db.conn.executemany("UPDATE downloads SET path = ? WHERE id = ?", [a for a in archives if a[0] is not None])


MIGRATIONS: list[Migration] = [m001_queue, m002_domain, m003_job_superseded, m004_worker_identity,
                               m005_outbox_resends, m006_queue_minutes, m007_photos_by_status, m008_photo_libraries]


def _name(migration: Migration) -> str:
    return migration.__name__


def applied(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='migrations'").fetchone()
    if not exists:
        return []
    return [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def pending(conn: sqlite3.Connection) -> list[Migration]:
    done = set(applied(conn))
    return [m for m in MIGRATIONS if _name(m) not in done]


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    check_applied(applied(conn), str(path))


def check_applied(names: list[str], database: str) -> None:
    """Refuse a database without the schema, or with one older or newer than this code
    (the migrations applied to it, by name; `database` as it may be shown)."""
    known = {_name(m) for m in MIGRATIONS}
    if not names:
        raise SchemaTooOld(f"database {database} has no photojobs schema", hint="run `photojobs init`")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DatabaseUnusable(f"database {database} has migrations this photojobs does not know ({unknown[0]})",
                               hint="upgrade photojobs")
    if len(names) < len(MIGRATIONS):
        raise SchemaTooOld(f"database {database} schema is older than this photojobs",
                           hint="run `photojobs migrate`")


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = []
    for migration in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked inside the lock: two `init`s at once apply each migration once.
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", [_name(migration)]).fetchone():
                conn.execute("ROLLBACK")
                continue
            migration(db)
            conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", [_name(migration), time.time()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done.append(_name(migration))
    return done
