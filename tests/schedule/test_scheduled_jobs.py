"""The jobs the default schedule enqueues: the nightly thumbnail sweep and the weekly failed prune."""

from __future__ import annotations

import json
import time

from photojobs.samples import make_sample_photos, write_sample_jpeg
from photojobs.worker import WorkerOptions

from .conftest import add_schedule, query


def _drain(app, queues=("default",)):
    return app.work(WorkerOptions(queues=list(queues), stop_when_empty=True, sleep=0.05))


def _queued_photos(workdir) -> list[int]:
    rows = query(workdir, "SELECT payload FROM jobs WHERE name = 'process_photo' AND status = 'pending'")
    return sorted(json.loads(p)["photo_id"] for (p,) in rows)


def _sweep(app, workdir) -> list[int]:
    app.dispatch("sweep_thumbnails")
    report = _drain(app)
    assert report.failed == 0
    return _queued_photos(workdir)


def test_the_sweep_queues_photos_with_missing_or_stale_thumbnails(cli, workdir, app):
    paths = make_sample_photos(workdir / "shoot", 4, size=(240, 160))
    assert cli("photos", "add", str(workdir / "shoot")).returncode == 0
    done = cli("process-photos")
    assert done.returncode == 0, done.stderr
    ids = {row[1]: row[0] for row in query(workdir, "SELECT id, path FROM photos")}
    assert _sweep(app, workdir) == []  # everything is fresh

    first, second, third = (ids[p.name] for p in paths[:3])  # paths relative to the library, "default"
    (thumb_path,) = query(workdir, "SELECT json_extract(thumbnails, '$.thumb.path') FROM photos WHERE id = ?",
                          (first,))[0]
    (workdir / "storage" / thumb_path).unlink()  # a thumbnail file is gone
    time.sleep(0.01)
    write_sample_jpeg(paths[1], (240, 160), seed=99)  # a source replaced since it was processed
    with app.transaction() as conn:
        conn.execute("UPDATE photos SET status = 'failed' WHERE id = ?", [third])  # left alone
        conn.execute("UPDATE photos SET thumbnails = '{}' WHERE id = ?", [third])
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
    with app.transaction() as conn:
        conn.execute("UPDATE jobs SET finished_at = ? WHERE name = 'doomed' AND payload LIKE '%old%'",
                     [time.time() - 200 * 3600])
    app.dispatch("prune_failed", {"hours": 168})
    assert _drain(app).failed == 0
    left = query(workdir, "SELECT payload FROM jobs WHERE status = 'failed'")
    assert [json.loads(p)["reason"] for (p,) in left] == ["new"]
    assert query(workdir, "SELECT count(*) FROM job_errors WHERE job_id NOT IN (SELECT id FROM jobs)")[0][0] == 0
