"""The downloads table: an order's archive, its token, status and expiry."""

from __future__ import annotations

from typing import Any, Sequence

from .base import Executor, Transaction
from .sql import in_list, where_equal


def insert(tx: Transaction, order_id: int, token: str, conversion: str | None, expires_at: float, now: float,
           notify: bool) -> int:
    return tx.execute("INSERT INTO downloads (order_id, token, status, conversion, expires_at, created_at, notify)"
                      " VALUES (:order, :token, 'pending', :conversion, :expires_at, :now, :notify) RETURNING id",
                      {"order": order_id, "token": token, "conversion": conversion, "expires_at": expires_at,
                       "now": now, "notify": int(notify)}).fetchone()[0]


def get(db: Executor, download_id: int) -> Any | None:
    return db.execute("SELECT * FROM downloads WHERE id = :id", {"id": download_id}).fetchone()


def by_token(db: Executor, token: str) -> Any | None:
    return db.execute("SELECT * FROM downloads WHERE token = :token", {"token": token}).fetchone()


def listed(db: Executor, order_id: int | None = None, status: str | None = None, limit: int | None = None, *,
           now: float | None = None) -> list[Any]:
    """Newest first (of one order, in one status). With `now`, the status is the effective
    one: a pending or ready download past its expiry counts as expired."""
    where, params = where_equal({"order_id": order_id, "status": status if now is None else None})
    clauses = [where[len(" WHERE "):]] if where else []
    if now is not None and status == "expired":
        clauses.append("(status = 'expired' OR (status IN ('pending', 'ready') AND expires_at <= :now))")
    elif now is not None and status is not None:
        clauses.append("status = :status" + (" AND (expires_at IS NULL OR expires_at > :now)" if status != "failed"
                                              else ""))
    sql = "SELECT * FROM downloads" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id DESC"
    sql += " LIMIT :limit" if limit is not None else ""
    return db.execute(sql, {**params, "status": status, "now": now, "limit": limit}).fetchall()


def set_status(tx: Transaction, download_id: int, status: str, *, only_if: Sequence[str] | None = None,
               clear_error: bool = False) -> int:
    """Move a download to `status` (its error cleared, if asked), if it is in one of
    `only_if`; how many rows changed."""
    sql = "UPDATE downloads SET status = :status" + (", error = NULL" if clear_error else "") + " WHERE id = :id"
    params = {"status": status, "id": download_id}
    if only_if:
        marks, allowed = in_list("from", list(only_if))
        sql += f" AND status IN {marks}"
        params.update(allowed)
    return tx.execute(sql, params).rowcount


def mark_ready(tx: Transaction, download_id: int, path: str, size_bytes: int, file_count: int, sha256: str,
               at: float) -> bool:
    """Ready, if it is still pending (not expired or failed meanwhile)."""
    return tx.execute("UPDATE downloads SET status = 'ready', path = :path, size_bytes = :size, file_count = :count,"
                      " sha256 = :sha256, ready_at = :at, error = NULL WHERE id = :id AND status = 'pending'",
                      {"path": path, "size": size_bytes, "count": file_count, "sha256": sha256, "at": at,
                       "id": download_id}).rowcount > 0


def note_error(tx: Transaction, download_id: int, reason: str, *, only_pending: bool = True) -> None:
    """Keep `reason` in the download's error (a pending one's last attempt, by default)."""
    tx.execute("UPDATE downloads SET error = :reason WHERE id = :id" + (" AND status = 'pending'" if only_pending else ""),
               {"reason": reason, "id": download_id})


def fail_pending(tx: Transaction, download_id: int, reason: str) -> int | None:
    """A pending download fails with `reason`; returns its order id (None: it was not pending)."""
    row = tx.execute("UPDATE downloads SET status = 'failed', error = :reason WHERE id = :id AND status = 'pending'"
                     " RETURNING order_id", {"reason": reason, "id": download_id}).fetchone()
    return row[0] if row else None


def expiring(db: Executor, now: float) -> list[Any]:
    """(id, status, path) of pending and ready downloads whose expiry is past."""
    return db.execute("SELECT id, status, path FROM downloads WHERE expires_at <= :now"
                      " AND status IN ('pending', 'ready') ORDER BY id", {"now": now}).fetchall()


def ready_paths(db: Executor) -> set[str]:
    return {r[0] for r in db.execute("SELECT path FROM downloads WHERE status = 'ready' AND path IS NOT NULL").fetchall()}


def pending_ids(db: Executor) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM downloads WHERE status = 'pending' ORDER BY id").fetchall()]


def finished_among(db: Executor, ids: Sequence[int]) -> set[int]:
    """Which of `ids` are no longer pending."""
    if not ids:
        return set()
    marks, params = in_list("id", list(ids))
    return {r[0] for r in db.execute(f"SELECT id FROM downloads WHERE id IN {marks} AND status != 'pending'",
                                     params).fetchall()}
