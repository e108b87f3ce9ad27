"""A stale attempt (its lease lost, the job now another worker's) applies nothing: the
photo job's thumbnails and ready mark happen only in a transaction that checks the lease,
and the log says the result was discarded (the mail job: tests/mail/test_stale_attempt.py)."""

from __future__ import annotations

import logging

from photojobs.runner import LOST, execute
from photojobs.samples import write_sample_jpeg
from tests.conftest import storage_rows


def claim_then_lose(app, queue: str):
    """Claim the queue's job as worker "stale", then hand it to "fresh", as a rescue and a
    new claim would while "stale" was stopped."""
    (job,) = app.backend.claim([queue], "stale")
    # the hand-over, in storage on purpose: the row whose holder the fencing rule checks
    storage_rows(app.settings.db_path.parent, "UPDATE jobs SET reserved_by = 'fresh' WHERE id = ?", [job.id])
    return job


def test_a_stale_photo_attempt_writes_no_thumbnail_and_no_ready_mark(app, workdir, caplog):
    from photojobs.photos.store import add_photos, get_photo

    path = write_sample_jpeg(workdir / "a.jpg", (120, 80))
    photo_id = add_photos(app, [path]).added[0]
    job = claim_then_lose(app, "photos")
    with caplog.at_level(logging.WARNING, logger="photojobs"):
        assert execute(app, job, "stale")[0] == LOST  # nothing recorded: the job is the new holder's
    assert get_photo(app, photo_id)["status"] == "pending"
    thumbs = workdir / "storage" / "thumbnails"
    assert not thumbs.exists() or [p for p in thumbs.rglob("*") if p.is_file()] == []  # no file, no temp file
    assert any(r.message == "job result discarded: lease lost" and "thumbnails were discarded" in r.error
               for r in caplog.records)
    assert app.backend.get(job.id)["reserved_by"] == "fresh"  # the record is the new holder's
