"""The PostgreSQL server the tests use: 127.0.0.1:5432, user postgres (trust), as on the
project's machines and CI. One database per test session, `photojobs_test_<pid>`, made
through the `postgres` maintenance database and dropped when the session ends.

No server: the PostgreSQL tests skip, saying why. With PJ_REQUIRE_POSTGRES=1 (CI sets
it; read at collection, before the tests clear PHOTOJOBS_* from the environment) a
missing server fails them instead.
"""

from __future__ import annotations

import atexit
import functools
import os

import pytest

HOST, ADMIN_USER = "127.0.0.1", "postgres"
PORT = int(os.environ.get("PJ_TEST_POSTGRES_PORT", "5432"))  # another port: to see the skip or the failure
ADMIN_URL = f"postgresql://{ADMIN_USER}@{HOST}:{PORT}/postgres"
REQUIRED = os.environ.get("PJ_REQUIRE_POSTGRES") == "1"
TABLES = ("job_errors", "jobs", "batches", "paused_queues", "workers", "control", "order_photos", "downloads",
          "orders", "photos", "libraries", "outbox", "schedule_runs", "queue_minutes")
IDENTITY_TABLES = ("job_errors", "jobs", "batches", "downloads", "orders", "photos", "outbox")


@functools.cache
def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {HOST}:{PORT} as user {ADMIN_USER}: {str(exc).strip().splitlines()[0]}"
    return None


def marks() -> list[pytest.MarkDecorator]:
    """On a PostgreSQL test: skip without a server, unless the server is required."""
    reason = unavailable()
    if reason is None or REQUIRED:  # required: the test runs, and its database fixture fails it
        return []
    return [pytest.mark.skip(reason=f"{reason}; set PJ_REQUIRE_POSTGRES=1 to make this a failure")]


def url(name: str | None = None) -> str:
    return f"postgresql://{ADMIN_USER}@{HOST}:{PORT}/{name or session_database()}"


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(statement)


@functools.cache
def session_database() -> str:
    """This session's database, made and migrated once (dropped at exit)."""
    from photojobs.storage.pg_migrations import migrate_url

    reason = unavailable()
    if reason is not None:
        pytest.fail(f"PostgreSQL is required here: {reason}", pytrace=False)
    name = f"photojobs_test_{os.getpid()}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    atexit.register(_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    migrate_url(url(name))
    return name


def empty_database() -> str:
    """The session database with every table emptied (ids start again at 1); its URL."""
    import psycopg

    # DELETE, not TRUNCATE: on tables this small it costs milliseconds, TRUNCATE ~0.5 s.
    with psycopg.connect(url(), autocommit=True, connect_timeout=3) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("; ".join(f"DELETE FROM {table}" for table in TABLES))
        conn.execute("; ".join(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1, false)"
                               for table in IDENTITY_TABLES))
    return url()


def fresh_database(tag: str) -> str:
    """A database of its own for a test that runs processes (dropped at exit); its URL."""
    from photojobs.storage.pg_migrations import migrate_url

    session_database()
    name = f"photojobs_test_{os.getpid()}_{tag}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    atexit.register(_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    migrate_url(url(name))
    return url(name)
