"""The outbox table: one row per message, so a retry never sends a message twice."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .base import Executor, Transaction
from .sql import assignments, in_list

COLUMNS = "id, template, to_addr, subject, context, message_id, status, created_at, sent_at, error, job_id, resends"


def insert(tx: Transaction, template: str, to: str, subject: str, context: str, message_id: str, now: float) -> int:
    return tx.execute("INSERT INTO outbox (template, to_addr, subject, context, message_id, status, created_at)"
                      " VALUES (:template, :to, :subject, :context, :message_id, 'pending', :now) RETURNING id",
                      {"template": template, "to": to, "subject": subject, "context": context,
                       "message_id": message_id, "now": now}).fetchone()[0]


def get(db: Executor, outbox_id: int) -> Any | None:
    return db.execute(f"SELECT {COLUMNS} FROM outbox WHERE id = :id", {"id": outbox_id}).fetchone()


def update(tx: Transaction, outbox_id: int, fields: Mapping[str, Any], only_if: Sequence[str] = ()) -> int:
    """Set `fields` on the row, if its status is one of `only_if` (any, if empty); how many rows."""
    sql, params = assignments(fields)
    sql = f"UPDATE outbox SET {sql} WHERE id = :id"
    if only_if:
        marks, allowed = in_list("status", list(only_if))
        sql += f" AND status IN {marks}"
        params.update(allowed)
    return tx.execute(sql, {**params, "id": outbox_id}).rowcount


def mark_resent(tx: Transaction, outbox_id: int) -> None:
    """`mail resend`: pending again, its resends counted (each resend is its own .eml file)."""
    tx.execute("UPDATE outbox SET status = 'pending', sent_at = NULL, resends = resends + 1 WHERE id = :id",
               {"id": outbox_id})


def sent_times(db: Executor, after: float, limit: int) -> list[float]:
    """When the latest `limit` messages sent after `after` went out, newest first."""
    return [r[0] for r in db.execute("SELECT sent_at FROM outbox WHERE sent_at > :after ORDER BY sent_at DESC"
                                     " LIMIT :limit", {"after": after, "limit": limit}).fetchall()]


def listed(db: Executor, status: str | None = None, limit: int = 50) -> list[Any]:
    """Newest first."""
    where = " WHERE status = :status" if status else ""
    return db.execute(f"SELECT {COLUMNS} FROM outbox{where} ORDER BY id DESC LIMIT :limit",
                      {"status": status, "limit": limit}).fetchall()
