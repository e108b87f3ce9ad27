"""The photos table. A photo is (library, path relative to the library's folder); the
path is stored as TEXT when it is valid UTF-8, else as the file name's exact bytes (see
photojobs.migrations.stored)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .base import Executor, Transaction
from .sql import assignments, in_list, where_equal

_SELLABLE = "status != 'failed'"


def get(db: Executor, photo_id: int) -> Any | None:
    return db.execute("SELECT * FROM photos WHERE id = :id", {"id": photo_id}).fetchone()


def find_by_path(db: Executor, library: str, path: str | bytes) -> Any | None:
    """(id, size_bytes, mtime_ns, album) of the photo registered at `path` of `library`, or None."""
    return db.execute("SELECT id, size_bytes, mtime_ns, album FROM photos WHERE library = :library AND path = :path",
                      {"library": library, "path": path}).fetchone()


def insert(tx: Transaction, library: str, path: str | bytes, album: str | None, size: int, mtime_ns: int,
           now: float) -> int:
    return tx.execute("INSERT INTO photos (library, path, album, status, size_bytes, mtime_ns, created_at)"
                      " VALUES (:library, :path, :album, 'pending', :size, :mtime_ns, :now) RETURNING id",
                      {"library": library, "path": path, "album": album, "size": size, "mtime_ns": mtime_ns,
                       "now": now}).fetchone()[0]


def set_album(tx: Transaction, photo_id: int, album: str) -> None:
    tx.execute("UPDATE photos SET album = :album WHERE id = :id", {"album": album, "id": photo_id})


def mark_changed(tx: Transaction, photo_id: int, size: int, mtime_ns: int) -> None:
    """The file changed on disk: pending again, with its new size and mtime."""
    tx.execute("UPDATE photos SET status = 'pending', size_bytes = :size, mtime_ns = :mtime_ns, error = NULL"
               " WHERE id = :id", {"size": size, "mtime_ns": mtime_ns, "id": photo_id})


def mark_pending(tx: Transaction, photo_ids: Iterable[int]) -> None:
    """To be processed again: pending, its last error cleared."""
    tx.executemany("UPDATE photos SET status = 'pending', error = NULL WHERE id = :id", [{"id": i} for i in photo_ids])


def albums(db: Executor) -> list[str]:
    """The album names in use, sorted."""
    return [r[0] for r in db.execute("SELECT DISTINCT album FROM photos WHERE album IS NOT NULL ORDER BY album")
            .fetchall()]


def set_batch(tx: Transaction, batch_id: int, photo_ids: Iterable[int]) -> None:
    tx.executemany("UPDATE photos SET batch_id = :batch WHERE id = :id",
                   [{"batch": batch_id, "id": photo_id} for photo_id in photo_ids])


def ids_to_process(tx: Transaction, regenerate: bool) -> list[int]:
    """Pending photos; with `regenerate` the ready ones too, their fingerprints forgotten
    so that any job for them rebuilds the thumbnails."""
    where = "status IN ('pending', 'ready')" if regenerate else "status = 'pending'"
    if regenerate:
        tx.execute(f"UPDATE photos SET fingerprint = NULL WHERE {where}")
    return [r[0] for r in tx.execute(f"SELECT id FROM photos WHERE {where} ORDER BY id").fetchall()]


def save_processed(tx: Transaction, photo_id: int, fields: dict[str, Any]) -> bool:
    """Write what processing found; False if the photo was removed meanwhile."""
    sql, params = assignments(fields)
    return tx.execute(f"UPDATE photos SET {sql} WHERE id = :id", {**params, "id": photo_id}).rowcount > 0


def mark_failed(tx: Transaction, photo_id: int, reason: str, at: float) -> None:
    tx.execute("UPDATE photos SET status = 'failed', error = :reason, processed_at = :at WHERE id = :id",
               {"reason": reason, "at": at, "id": photo_id})


def listed(db: Executor, album: str | None = None, status: str | None = None, limit: int | None = None,
           after: int | None = None, columns: Sequence[str] = ("*",)) -> list[Any]:
    """Photos in id order (of `album`, in `status`, with an id above `after`): each filter
    reads its index (photos_album, photos_status), `after` starts a page where one ended.
    `columns` (names from code) leaves out what a listing does not show, such as the EXIF."""
    where, params = where_equal({"album": album, "status": status})
    if after is not None:
        where += (" AND" if where else " WHERE") + " id > :after"
    sql = f"SELECT {', '.join(columns)} FROM photos{where} ORDER BY id" + (" LIMIT :limit" if limit is not None else "")
    return db.execute(sql, {**params, "limit": limit, "after": after}).fetchall()


def count_listed(db: Executor, album: str | None = None, status: str | None = None, after: int | None = None) -> int:
    """How many photos `listed` would give without a limit."""
    where, params = where_equal({"album": album, "status": status})
    if after is not None:
        where += (" AND" if where else " WHERE") + " id > :after"
    return db.execute(f"SELECT count(*) FROM photos{where}", {**params, "after": after}).fetchone()[0]


def counts(db: Executor, ids: Sequence[int] | None = None) -> dict[str, int]:
    """Photos per status (all, or among `ids`)."""
    if ids is not None and not ids:
        return {}
    where, params = ("", {}) if ids is None else in_list("id", list(ids))
    sql = "SELECT status, count(*) FROM photos" + (f" WHERE id IN {where}" if ids is not None else "")
    return {r[0]: r[1] for r in db.execute(sql + " GROUP BY status", params).fetchall()}


def sweep_candidates(db: Executor) -> list[Any]:
    """Pending and ready photos with what the thumbnail sweep compares, in id order."""
    return db.execute("SELECT id, library, path, status, size_bytes, mtime_ns, sha256, thumbnails, fingerprint"
                      f" FROM photos WHERE status IN ('pending', 'ready') ORDER BY id").fetchall()


def sellable_in_album(db: Executor, album: str) -> list[int]:
    """The album's photos that did not fail processing, oldest first."""
    return [r[0] for r in db.execute(f"SELECT id FROM photos WHERE album = :album AND {_SELLABLE} ORDER BY id",
                                     {"album": album}).fetchall()]


def states(db: Executor, ids: Sequence[int]) -> dict[int, Any]:
    """id -> (id, status, error) of the photos among `ids` that exist."""
    if not ids:
        return {}
    marks, params = in_list("id", list(ids))
    return {r["id"]: r for r in db.execute(f"SELECT id, status, error FROM photos WHERE id IN {marks}",
                                           params).fetchall()}
