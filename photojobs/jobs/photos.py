"""The `process_photo` job: a thin wrapper over photojobs.photos.processing.

Queue "photos", 5 minutes, 3 tries, one live job per photo. Pillow and exifread are
imported inside the handler, so a worker that finds no work never pays for them.
"""

from __future__ import annotations

from typing import Any

from ..errors import PhotojobsError
from ..registry import job


@job("process_photo", queue="photos", tries=3, timeout=300, backoff=[10, 60], context=True,
     unique=lambda p: f"photo:{p['photo_id']}")
def process_photo(ctx: Any, photo_id: int, regenerate_thumbnails: bool = False) -> None:
    """Read a photo's file facts and EXIF, and make its thumbnails."""
    from ..photos.processing import process_photo as run

    run(ctx.app, photo_id, regenerate=regenerate_thumbnails, holds_lease=ctx.holds_lease)


@process_photo.failed
def photo_failed(ctx: Any, error: BaseException, photo_id: int, **_: Any) -> None:
    """The job landed in the failed table: the photo is failed, with the reason."""
    from ..photos.store import mark_failed

    reason = str(error) if isinstance(error, PhotojobsError) else f"{type(error).__name__}: {error}"
    mark_failed(ctx.app, photo_id, reason or type(error).__name__)


@job("sweep_thumbnails", queue="default", tries=2, timeout=900, context=True,
     unique=lambda payload: "sweep_thumbnails")
def sweep_thumbnails(ctx: Any, limit: int = 100000) -> int:
    """Queue `process_photo` for every photo whose thumbnails are missing or stale; returns how many
    (core in photojobs.photos.sweep; enqueued nightly by the schedule)."""
    from ..photos.sweep import queue_stale_thumbnails

    return queue_stale_thumbnails(ctx.app, limit)
