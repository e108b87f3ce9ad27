"""The photo commands end to end: `photos add`, `process-photos`, `photos list|show`, as subprocesses."""

from __future__ import annotations

import json
import os

from photojobs.samples import make_sample_photos, write_sample_jpeg


def run_json(cli, *args):
    done = cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_add_process_list_show(workdir, cli):
    shoot = workdir / "shoot"
    make_sample_photos(shoot, 4, size=(300, 200))
    (shoot / "empty.jpg").write_bytes(b"")
    (shoot / "fake photo.jpg").write_text("not a jpeg")
    good = write_sample_jpeg(workdir / "t.jpg", (300, 200)).read_bytes()
    (shoot / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (shoot / "readme.txt").write_text("hi")
    from .test_thumbnails import _png_header_only

    (shoot / "bomb.png").write_bytes(_png_header_only(100000, 100000))
    write_sample_jpeg(shoot / "deleted later.jpg", (40, 30))

    added = run_json(cli, "photos", "add", str(shoot), "--album", "Wedding")
    assert (added["added"], added["queued"], added["skipped"]) == (9, 9, 1)
    again = cli("photos", "add", str(shoot))
    assert again.returncode == 0 and "unchanged 9" in again.stdout
    os.unlink(shoot / "deleted later.jpg")

    done = cli("process-photos", "--concurrency", "2")
    assert done.returncode == 1, done.stdout + done.stderr  # five photos failed in this run
    assert "4 done, 5 failed" in done.stdout

    ready = run_json(cli, "photos", "list", "--status", "ready")
    failed = run_json(cli, "photos", "list", "--status", "failed", "--album", "Wedding")
    assert len(ready) == 4
    reasons = {os.path.basename(p["path"]): p["error"] for p in failed}
    assert set(reasons) == {"empty.jpg", "fake photo.jpg", "truncated.jpg", "bomb.png", "deleted later.jpg"}
    assert "empty file" in reasons["empty.jpg"] and "not an image" in reasons["fake photo.jpg"]
    assert "truncated" in reasons["truncated.jpg"] and "bomb" in reasons["bomb.png"]
    assert "missing" in reasons["deleted later.jpg"]
    # permanent failures: in the failed table after one attempt each, no retries
    jobs = run_json(cli, "failed", "list")
    assert sorted(j["attempts"] for j in jobs) == [1] * 5
    assert all(j["error"].startswith("PermanentFailure") for j in jobs)

    photo = run_json(cli, "photos", "show", str(ready[2]["id"]))
    for field in ("id", "path", "album", "status", "width", "height", "orientation", "size_bytes", "sha256", "mime",
                  "camera_make", "camera_model", "lens", "iso", "exposure_time", "f_number", "focal_length",
                  "taken_at", "gps_lat", "gps_lon", "thumbnails", "processed_at", "error"):
        assert field in photo
    assert photo["orientation"] == 6 and (photo["width"], photo["height"]) == (300, 200)
    assert set(photo["thumbnails"]) == {"thumb", "preview", "web"}
    assert photo["thumbnails"]["thumb"]["width"] == 300 or photo["thumbnails"]["thumb"]["width"] == 320

    table = cli("photos", "list")
    assert table.returncode == 0 and "Wedding" in table.stdout
    missing = cli("photos", "show", "999")
    assert missing.returncode == 2 and "no photo with id 999" in missing.stderr
    bad = cli("photos", "list", "--status", "done")
    assert bad.returncode == 2 and "--status" in bad.stderr


def test_no_queue_limit_and_regenerate(workdir, cli):
    make_sample_photos(workdir / "s", 3, size=(200, 150))
    assert run_json(cli, "photos", "add", "s", "--no-queue")["queued"] == 0
    first = cli("process-photos", "--limit", "2")
    assert first.returncode == 0 and "Queued 3" in first.stdout and "2 done" in first.stdout
    rest = cli("process-photos")
    assert rest.returncode == 0 and "1 done" in rest.stdout
    thumb = run_json(cli, "photos", "show", "1")["thumbnails"]["thumb"]["path"]
    before = os.stat(thumb).st_mtime_ns
    regen = cli("process-photos", "--regenerate-thumbnails")
    assert regen.returncode == 0 and "3 done" in regen.stdout
    assert os.stat(thumb).st_mtime_ns != before


def test_add_errors(workdir, cli):
    missing = cli("photos", "add", "no-such-folder")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    usage = cli("photos", "add")
    assert usage.returncode == 2


def test_an_io_error_that_may_pass_is_retried_not_failed(workdir, cli):
    write_sample_jpeg(workdir / "a.jpg", (200, 100))
    assert run_json(cli, "photos", "add", "a.jpg")["queued"] == 1
    blocker = workdir / "storage" / "thumbnails" / "000" / "1" / "web.jpg"
    blocker.mkdir(parents=True)  # the thumbnail cannot be renamed into place: an I/O error
    done = cli("process-photos")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 done, 0 failed, 1 to retry" in done.stdout
    assert run_json(cli, "failed", "list") == []
    photo = run_json(cli, "photos", "show", "1")
    assert photo["status"] == "pending" and photo["error"] is None
    blocker.rmdir()


def test_a_bad_thumbnails_table_is_an_environment_error(workdir, cli):
    from .conftest import append_config

    append_config(workdir, '[thumbnails.thumb]\nsize = 320\nformat = "gif"')
    done = cli("process-photos")
    assert done.returncode == 3 and "[thumbnails.thumb]: format must be jpeg or webp" in done.stderr
