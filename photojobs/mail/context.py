"""What a template sees: the order, its photos (with a thumbnail when ready), the download.

The outbox keeps only ids (`{"order_id": 3, "download_id": 5}`); the context is read
when the message is rendered, so a confirmation sent after the photos were processed
shows their thumbnails.
"""

from __future__ import annotations

import json
import time
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from ..errors import NotFound
from ..storage import downloads as download_rows
from ..storage import orders as order_rows
from .message import InlineImage

MAX_INLINE_BYTES = 1_000_000  # a thumbnail bigger than this is not embedded


def download_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/downloads/{token}"


def _smallest_thumbnail(raw: str | None, storage: Path) -> Path | None:
    """The smallest thumbnail file of a photo, if it exists inside the storage root."""
    try:
        thumbs = json.loads(raw) if raw else {}
    except ValueError:
        return None
    entries = thumbs.values() if isinstance(thumbs, dict) else thumbs if isinstance(thumbs, list) else []
    candidates = []
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else entry
        width = entry.get("width", 0) if isinstance(entry, dict) else 0
        if isinstance(path, str) and path:
            candidates.append((width or 0, path))
    for _, path in sorted(candidates, key=lambda c: c[0] or 10**9):
        resolved = (storage / path).resolve()
        if resolved.is_relative_to(storage) and resolved.is_file() and resolved.stat().st_size <= MAX_INLINE_BYTES:
            return resolved
    return None


def order_context(db: Any, storage: Path, order_id: int, domain: str,
                  max_images: int) -> tuple[dict, list[dict], list[InlineImage]]:
    row = order_rows.get(db, order_id)
    if row is None:
        raise NotFound(f"no order {order_id}", hint="see `photojobs orders list`")
    order = {key: row[key] for key in ("id", "email", "name", "created_at")}
    photos, images = [], []
    for row in order_rows.photos_of(db, order_id):
        photo_id, path, album, status, width, height, taken_at, thumbnails = (
            row[key] for key in ("id", "path", "album", "status", "width", "height", "taken_at", "thumbnails"))
        photo = {"id": photo_id, "filename": Path(path).name, "album": album, "status": status,
                 "width": width, "height": height, "taken_at": taken_at, "cid": None}
        thumb = _smallest_thumbnail(thumbnails, storage) if status == "ready" and len(images) < max_images else None
        if thumb is not None:
            cid = make_msgid(idstring=f"photo{photo_id}", domain=domain)[1:-1]
            subtype = "png" if thumb.suffix.lower() == ".png" else "webp" if thumb.suffix.lower() == ".webp" else "jpeg"
            images.append(InlineImage(cid, thumb, subtype))
            photo["cid"] = cid
        photos.append(photo)
    return order, photos, images


def download_context(db: Any, base_url: str, download_id: int) -> dict:
    row = download_rows.get(db, download_id)
    if row is None:
        raise NotFound(f"no download {download_id}", hint="see `photojobs downloads list`")
    download = {key: row[key] for key in ("id", "order_id", "token", "status", "size_bytes", "file_count",
                                          "expires_at", "ready_at")}
    download["url"] = download_url(base_url, download.pop("token"))
    download["expired"] = bool(download["expires_at"] and download["expires_at"] < time.time())
    return download


def build_context(db: Any, settings: Any, stored: dict, *, domain: str = "localhost",
                  max_images: int = 20) -> tuple[dict, list[InlineImage]]:
    """The template context for the ids kept in the outbox, and the images to embed."""
    order_id, download_id = stored.get("order_id"), stored.get("download_id")
    context: dict[str, Any] = {**(stored.get("vars") or {}), "order": None, "photos": [], "download": None,
                               "base_url": settings.base_url}
    images: list[InlineImage] = []
    if download_id is not None:
        context["download"] = download_context(db, settings.base_url, download_id)
        order_id = order_id if order_id is not None else context["download"]["order_id"]
    if order_id is not None:
        context["order"], context["photos"], images = order_context(
            db, settings.storage_path, order_id, domain, max_images)
    return context, images


def sample_context(base_url: str) -> dict:
    """A made-up order and download, so `mail preview` shows a template without data."""
    now = time.time()
    photos = [{"id": i, "filename": f"IMG_{4810 + i}.jpg", "album": "sample", "status": "ready",
               "width": 6000, "height": 4000, "taken_at": "2026-06-20T14:03:11", "cid": None} for i in (1, 2, 3)]
    return {
        "order": {"id": 1, "email": "customer@example.com", "name": "Ada Customer", "created_at": now},
        "photos": photos,
        "download": {"id": 1, "order_id": 1, "status": "ready", "size_bytes": 38_400_000, "file_count": 3,
                     "expires_at": now + 7 * 86400, "ready_at": now, "expired": False,
                     "url": download_url(base_url, "sample-token")},
        "base_url": base_url,
    }
