"""The libraries table: each photo library's name and the folder it was first seen in
(this host's fallback when photojobs.toml's [libraries] does not name it). A folder that
is not UTF-8 is stored as its bytes, as photo paths are."""

from __future__ import annotations

from typing import Any

from .base import Executor, Transaction


def recorded(db: Executor) -> dict[str, Any]:
    """name -> folder (text, or bytes) of every library the database knows."""
    return {r[0]: r[1] for r in db.execute("SELECT name, folder FROM libraries ORDER BY name").fetchall()}


def record(tx: Transaction, name: str, folder: str | bytes, now: float) -> bool:
    """Remember a library where it was first seen; False if the name was known already
    (it keeps its folder: another host or process recorded it first)."""
    return tx.execute("INSERT INTO libraries (name, folder, created_at) VALUES (:name, :folder, :now)"
                      " ON CONFLICT (name) DO NOTHING", {"name": name, "folder": folder, "now": now}).rowcount > 0


def photo_counts(db: Executor) -> dict[str, int]:
    """Photos per library."""
    return {r[0]: r[1] for r in db.execute("SELECT library, count(*) FROM photos GROUP BY library").fetchall()}
