"""How a download is shown (`downloads show`, `orders show`, the download link): read by
the orders module and by the archive builder alike, so neither imports the other for it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import Settings


def download_url(settings: "Settings", token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/downloads/{token}"


def effective_status(row: Any, now: float) -> str:
    """A pending or ready download past its expiry is expired, whether cleanup ran or not:
    its link no longer works."""
    if row["status"] in ("pending", "ready") and row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return row["status"]


def archive_path(settings: "Settings", row: Any) -> Path | None:
    """A download's archive file: stored relative to the storage root (an absolute path,
    kept from before, stands as it is)."""
    return settings.storage_path / row["path"] if row["path"] else None


def download_view(settings: "Settings", row: Any, now: float | None = None) -> dict[str, Any]:
    """A download as `downloads show --json` prints it (the CLI contract's fields, and more).
    The path is shown only while its file is there (cleanup deletes expired ones)."""
    from ..ops.common import iso

    now = time.time() if now is None else now
    status = effective_status(row, now)
    path = archive_path(settings, row)
    return {"id": row["id"], "order_id": row["order_id"], "status": status,
            "path": str(path) if path is not None and path.is_file() else None,
            "size_bytes": row["size_bytes"], "file_count": row["file_count"], "expires_at": iso(row["expires_at"]),
            "url": download_url(settings, row["token"]), "error": row["error"], "sha256": row["sha256"],
            "conversion": row["conversion"], "notify": bool(row["notify"]), "created_at": iso(row["created_at"]),
            "ready_at": iso(row["ready_at"]),
            "expired": row["expires_at"] is not None and row["expires_at"] <= now}
