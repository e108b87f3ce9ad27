"""The jobs the default schedule enqueues: the nightly thumbnail sweep and the weekly failed prune."""

from __future__ import annotations

import time
from pathlib import Path

from photojobs import ops
from photojobs.photos.store import get_photo, list_photos
from photojobs.samples import make_sample_photos, write_sample_jpeg
from photojobs.worker import WorkerOptions
from tests.conftest import storage_rows

from .conftest import add_schedule, query


def _drain(app, queues=("default",)):
    return app.work(WorkerOptions(queues=list(queues), stop_when_empty=True, sleep=0.05))


def _queued_photos(app) -> list[int]:
    """The photos whose processing job is waiting (`photos list --json`: last_job_status)."""
    return sorted(p["id"] for p in list_photos(app) if p["last_job_status"] == "pending")


def _sweep(app, workdir) -> list[int]:
    app.dispatch("sweep_thumbnails")
    report = _drain(app)
    assert report.failed == 0
    return _queued_photos(app)


def test_the_sweep_queues_photos_with_missing_or_stale_thumbnails(cli, workdir, app):
    paths = make_sample_photos(workdir / "shoot", 4, size=(240, 160))
    assert cli("photos", "add", str(workdir / "shoot")).returncode == 0
    done = cli("process-photos")
    assert done.returncode == 0, done.stderr
    ids = {photo["path"]: photo["id"] for photo in list_photos(app)}
    assert _sweep(app, workdir) == []  # everything is fresh

    first, second, third = (ids[str(p)] for p in paths[:3])
    Path(get_photo(app, first)["thumbnails"]["thumb"]["path"]).unlink()  # a thumbnail file is gone
    time.sleep(0.01)
    write_sample_jpeg(paths[1], (240, 160), seed=99)  # a source replaced since it was processed
    # a photo that failed, without thumbnails (left alone), set in storage on purpose: a real failure needs a bad file
    storage_rows(workdir, "UPDATE photos SET status = 'failed', thumbnails = '{}' WHERE id = ?", [third])
    assert _sweep(app, workdir) == sorted([first, second])
    assert _sweep(app, workdir) == sorted([first, second])  # a second sweep adds no duplicate

    assert cli("process-photos").returncode == 0
    assert _sweep(app, workdir) == []


def test_the_sweep_finds_thumbnails_made_with_old_settings(cli, workdir, app):
    make_sample_photos(workdir / "shoot", 2, size=(240, 160))
    assert cli("photos", "add", str(workdir / "shoot")).returncode == 0
    assert cli("process-photos").returncode == 0
    add_schedule(workdir, "[thumbnails]\nquality = 61")
    import photojobs

    with photojobs.connect(workdir / "photojobs.toml") as changed:
        assert len(_sweep(changed, workdir)) == 2


def test_prune_failed_deletes_only_jobs_failed_before_the_cutoff(app, workdir):
    for reason in ("old", "older", "new"):
        app.dispatch("doomed", {"reason": reason})
    assert _drain(app).failed == 3
    # two failures made 200 hours old in storage, on purpose: the clock cannot be moved
    storage_rows(workdir, "UPDATE jobs SET finished_at = ? WHERE name = 'doomed' AND payload LIKE '%old%'",
                 [time.time() - 200 * 3600])
    app.dispatch("prune_failed", {"hours": 168})
    assert _drain(app).failed == 0
    assert [ops.show_failed(app, job["id"])["payload"]["reason"] for job in ops.list_failed(app)] == ["new"]
    # no error record outlives its job: orphans no command would show, so storage is read on purpose
    assert query(workdir, "SELECT count(*) FROM job_errors WHERE job_id NOT IN (SELECT id FROM jobs)")[0][0] == 0
