"""Waiting for a lock another session holds on PostgreSQL (a careless migration's
`LOCK TABLE`, a `VACUUM FULL`, a script's open transaction), as SQLite's write lock.

A session's `lock_timeout` bounds each wait. A short command waits `lock_budget` in one
go, then gives up (DatabaseLocked, exit 3, naming the holder). A long-running worker
(`on_lock_wait` set) waits in slices of LOCK_SLICE and retries without limit, so between
tries it logs whom it waits for and its supervisor keeps supervising; its transactions
take their row-exclusive locks on the queue's tables first (the retryable step, as
SQLite's BEGIN IMMEDIATE), then wait without a timeout for anything later in them.
"""

from __future__ import annotations

import psycopg

from ..errors import DatabaseLocked
from .urls import without_password as masked

LOCK_SLICE = 0.5  # seconds: one try of a waiting worker
# Every write of the queue takes these (and a statement's ROW EXCLUSIVE conflicts only with
# SHARE and stronger: what DDL, LOCK TABLE, CREATE INDEX or VACUUM FULL hold).
QUEUE_TABLES = "jobs, job_errors, queue_minutes"
BEGIN_WAITING = f"BEGIN; LOCK TABLE {QUEUE_TABLES} IN ROW EXCLUSIVE MODE; SET LOCAL lock_timeout = 0"

# Who blocks this database's writers: the sessions that block a waiting session, and those
# holding a lock on a table that a write would wait for.
_HOLDERS = """
WITH blockers AS (
    SELECT unnest(pg_blocking_pids(pid)) AS pid FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
    UNION
    SELECT pid FROM pg_locks WHERE locktype = 'relation' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'))
SELECT a.pid, a.application_name, a.state, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60),
       (SELECT string_agg(DISTINCT l.relation::regclass::text, ', ') FROM pg_locks l
        WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
        AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'))
FROM blockers b JOIN pg_stat_activity a ON a.pid = b.pid
WHERE a.pid <> pg_backend_pid() ORDER BY a.pid LIMIT 3
"""


def lock_timeout_ms(budget: float, waiting: bool) -> int:
    return int(1000 * (min(LOCK_SLICE, budget) if waiting else budget))


def holders(conn: psycopg.Connection) -> str | None:
    """"PostgreSQL pid 123 (app, idle in transaction, on jobs: LOCK TABLE jobs ...)", as far
    as the server says; None when nobody is seen holding a lock (it was just released)."""
    try:
        rows = conn.execute(_HOLDERS).fetchall()
    except psycopg.Error:
        return None
    described = []
    for pid, application, state, query, tables in rows:
        what = ", ".join(part for part in (application, state, f"on {tables}" if tables else "") if part)
        described.append(f"PostgreSQL pid {pid} ({what}: {query})" if query else f"PostgreSQL pid {pid} ({what})")
    return "; ".join(described) or None


def locked_error(url: str, budget: float, holder: str | None) -> DatabaseLocked:
    return DatabaseLocked(f"database {masked(url)} stayed locked past lock_budget ({budget:g}s)"
                          + (f", held by {holder}" if holder else ""),
                          hint="another session holds a lock on its tables; try again, or raise lock_budget")


__all__ = ["BEGIN_WAITING", "LOCK_SLICE", "holders", "lock_timeout_ms", "locked_error"]
