"""`photojobs db copy --to postgresql://...`: move an SQLite installation up to PostgreSQL.

Copies jobs (done, pending, reserved and failed, with every attempt's error), batches,
paused queues, photos, orders, downloads, the outbox and the schedule's runs into an
empty PostgreSQL database, in one transaction with COPY, keeping the ids; then checks
that each table holds as many rows as the source and commits, or leaves it empty.
Workers' rows are not copied: they describe processes of the old host.
Stop the workers first: jobs reserved at the time of the copy are copied as reserved
and come back through their lease, as after a crash.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable

from ..errors import UsageError
from . import engine_of, postgres_engine
from .tables import TABLES

_IDENTITY = ("batches", "jobs", "job_errors", "photos", "orders", "downloads", "outbox")


def copy_to_postgres(settings: Any, url: str, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy this installation's SQLite database into the empty PostgreSQL database at
    `url` (made and migrated if needed); returns the rows copied per table."""
    from .sqlite_connection import open_database

    if engine_of(settings.db) != "sqlite":
        raise UsageError("db copy reads an SQLite database: this installation's db is not one")
    if engine_of(url) != "postgresql":
        raise UsageError(f"--to must be a postgresql:// URL, not {url!r}")
    postgres_engine()
    from .pg_connect import connect, masked
    from .pg_migrations import migrate_url

    source = open_database(settings)  # refuses a missing database or an old schema
    try:
        migrate_url(url, create=True, section=settings.postgres)
        target = connect(url, settings.postgres)
        try:
            with target.transaction():
                _refuse_unless_empty(target, masked(url))
                copied = {table: _copy_table(source, target, table) for table in TABLES}
                for table, count in copied.items():
                    if progress:
                        progress(table, count)
                _check_counts(source, target, copied)
                for table in _IDENTITY:
                    target.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                   f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        finally:
            target.close()
    finally:
        source.close()
    return copied


def _refuse_unless_empty(target: Any, where: str) -> None:
    for table in TABLES:
        if target.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            raise UsageError(f"database {where} is not empty (table {table} has rows)",
                             hint="copy into a new, empty database")


def _columns(source: sqlite3.Connection, target: Any, table: str) -> list[str]:
    theirs = {r[0] for r in target.execute("SELECT column_name FROM information_schema.columns"
                                           " WHERE table_schema = current_schema() AND table_name = %s", [table])}
    return [r[1] for r in source.execute(f"PRAGMA table_info({table})") if r[1] in theirs]


def _copy_table(source: sqlite3.Connection, target: Any, table: str) -> int:
    columns = _columns(source, target, table)
    payload = columns.index("payload") if table == "jobs" else None
    count = 0
    with target.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"):
            values = list(row)
            if payload is not None:
                values[payload] = _json_text(values[payload])
            copy.write_row(values)
            count += 1
    return count


def _json_text(value: Any) -> str:
    """A payload as valid JSON: one that is not (refused by the worker anyway) is kept as a JSON string."""
    try:
        json.loads(value)
        return value
    except (TypeError, ValueError):
        return json.dumps(value if isinstance(value, str) else repr(value))


def _check_counts(source: sqlite3.Connection, target: Any, copied: dict[str, int]) -> None:
    for table in TABLES:
        want = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        have = target.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if not want == have == copied[table]:
            raise UsageError(f"db copy: table {table} has {have} rows in PostgreSQL, {want} in SQLite; nothing kept")


__all__ = ["TABLES", "copy_to_postgres"]
