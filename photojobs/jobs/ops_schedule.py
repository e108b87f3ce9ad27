"""Jobs the default schedule enqueues: `prune_failed` (weekly) and `sweep_thumbnails` (nightly).

Light at import time: each handler imports what it needs when it runs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..registry import job

log = logging.getLogger("photojobs.schedule")

PHOTO_JOB = "process_photo"


@job("prune_failed", queue="default", tries=3, timeout=300, context=True)
def prune_failed(ctx, hours: float = 168) -> int:
    """Delete failed jobs that failed more than `hours` ago (`photojobs failed prune --hours`)."""
    from ..ops.failed import prune_failed as prune

    removed = prune(ctx.app, hours)
    log.info("pruned %d failed job(s) older than %sh", removed, hours, extra={"event": "prune_failed"})
    return removed


@job("sweep_thumbnails", queue="default", tries=2, timeout=900, context=True,
     unique=lambda payload: "sweep_thumbnails")
def sweep_thumbnails(ctx, limit: int = 100000) -> int:
    """Queue `process_photo` for every photo whose thumbnails are missing or stale; returns how many.

    Stale: the source file changed since it was processed (size or mtime), a thumbnail
    file is gone, or the [thumbnails] settings changed (a conversion's fingerprint).
    Photos with a live job are skipped by its unique key; failed photos are left alone.
    """
    from ..app import Dispatch
    from ..storage import photos as photo_rows

    if PHOTO_JOB not in ctx.app.registry.names():
        log.warning("thumbnail sweep: no %s job is registered; nothing queued", PHOTO_JOB)
        return 0
    settings = _thumbnail_settings(ctx)
    rows = photo_rows.sweep_candidates(ctx.app.backend)
    chosen = [row["id"] for row in rows if _needs_processing(row, ctx.storage, settings)][:limit]
    if not chosen:
        return 0
    ids = ctx.app.dispatch_many([Dispatch(PHOTO_JOB, {"photo_id": photo_id}) for photo_id in chosen],
                                skip_duplicates=True)
    queued = sum(1 for i in ids if i is not None)
    log.info("thumbnail sweep queued %d photo(s)", queued, extra={"event": "sweep_thumbnails"})
    return queued


def _thumbnail_settings(ctx) -> Any:
    """The configured conversions (with their fingerprints), if the photos package offers them;
    the sweep then also finds thumbnails made with old settings. None: check files only."""
    try:
        from ..photos.thumbnails import thumbnail_settings
    except ImportError:
        return None
    try:
        return thumbnail_settings(ctx.settings.section("thumbnails"))
    except Exception as exc:  # noqa: BLE001 - a bad [thumbnails] table fails process_photo itself
        log.warning("thumbnail sweep: cannot read [thumbnails] (%s); checking files only", exc)
        return None


def _needs_processing(row: Any, storage: Path, settings: Any) -> bool:
    if row["status"] == "pending":
        return True
    path = os.fsdecode(row["path"]) if isinstance(row["path"], (bytes, bytearray)) else row["path"]
    try:
        st = os.stat(path)
    except OSError:
        return False  # the source is gone: processing would only fail
    if (st.st_size, st.st_mtime_ns) != (row["size_bytes"], row["mtime_ns"]):
        return True
    try:
        thumbs = json.loads(row["thumbnails"] or "{}")
        prints = json.loads(row["fingerprint"] or "{}")
    except ValueError:
        return True
    if not thumbs or any(not (storage / entry.get("path", "")).is_file() for entry in thumbs.values()):
        return True
    if settings is None:
        return False
    return any(c.name not in thumbs or prints.get(c.name) != settings.fingerprint(c, row["sha256"])
               for c in settings.conversions)
