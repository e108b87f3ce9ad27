"""The orders and order_photos tables: a customer and the photos bought, in order."""

from __future__ import annotations

from typing import Any, Sequence

from .base import Executor, Transaction


def insert(tx: Transaction, email: str, name: str | None, photo_ids: Sequence[int], now: float) -> int:
    order_id = tx.execute("INSERT INTO orders (email, name, created_at) VALUES (:email, :name, :now) RETURNING id",
                          {"email": email, "name": name, "now": now}).fetchone()[0]
    tx.executemany("INSERT INTO order_photos (order_id, position, photo_id) VALUES (:order, :position, :photo)",
                   [{"order": order_id, "position": position, "photo": photo_id}
                    for position, photo_id in enumerate(photo_ids, start=1)])
    return order_id


def get(db: Executor, order_id: int) -> Any | None:
    return db.execute("SELECT * FROM orders WHERE id = :id", {"id": order_id}).fetchone()


def photos_of(db: Executor, order_id: int) -> list[Any]:
    """The order's photo rows (every column of photos) with their position, in order."""
    return db.execute("SELECT op.position, p.* FROM order_photos op JOIN photos p ON p.id = op.photo_id"
                      " WHERE op.order_id = :id ORDER BY op.position", {"id": order_id}).fetchall()


def has_photos(db: Executor, order_id: int) -> bool:
    return db.execute("SELECT 1 FROM order_photos WHERE order_id = :id LIMIT 1", {"id": order_id}).fetchone() is not None


def listed(db: Executor, limit: int | None = None) -> list[Any]:
    """Orders, newest first, with their photo count and their latest download's status."""
    sql = ("SELECT o.*, (SELECT count(*) FROM order_photos op WHERE op.order_id = o.id) AS photo_count,"
           " (SELECT d.status FROM downloads d WHERE d.order_id = o.id ORDER BY d.id DESC LIMIT 1) AS download"
           " FROM orders o ORDER BY o.id DESC" + (" LIMIT :limit" if limit is not None else ""))
    return db.execute(sql, {"limit": limit}).fetchall()
