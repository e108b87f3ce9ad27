"""The thumbnail sweep: queue `process_photo` for every photo whose thumbnails are missing
or stale (the nightly `sweep_thumbnails` job's body).

Stale: the source file changed since it was processed (size or mtime), a thumbnail file
is gone, or the [thumbnails] settings changed (a conversion's fingerprint). Photos with a
live job are skipped by its unique key; failed photos are left alone.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import libraries
from ..storage import photos as photo_rows

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("photojobs.schedule")

PHOTO_JOB = "process_photo"


def queue_stale_thumbnails(app: "App", limit: int = 100000) -> int:
    """Dispatch a processing job for each photo that needs one (at most `limit`); how many."""
    from ..app import Dispatch

    if PHOTO_JOB not in app.registry.names():
        log.warning("thumbnail sweep: no %s job is registered; nothing queued", PHOTO_JOB)
        return 0
    settings = app.settings.thumbnails
    storage = app.settings.storage_path
    libs = libraries.of_app(app)
    chosen = [row["id"] for row in photo_rows.sweep_candidates(app.backend)
              if _needs_processing(row, libs.resolve(row["library"], row["path"]), storage, settings)][:limit]
    if not chosen:
        return 0
    ids = app.dispatch_many([Dispatch(PHOTO_JOB, {"photo_id": photo_id}) for photo_id in chosen],
                            skip_duplicates=True)
    queued = sum(1 for i in ids if i is not None)
    log.info("thumbnail sweep queued %d photo(s)", queued, extra={"event": "sweep_thumbnails"})
    return queued


def _needs_processing(row: Any, path: str, storage: Path, settings: Any) -> bool:
    if row["status"] == "pending":
        return True
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
    return any(c.name not in thumbs or prints.get(c.name) != settings.fingerprint(c, row["sha256"])
               for c in settings.conversions)
