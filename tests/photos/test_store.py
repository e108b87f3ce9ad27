"""Registering and processing photos against a real SQLite database and real files."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest
from PIL import Image

from photojobs import libraries
from photojobs.errors import NotFound, PermanentFailure, RetryLater, UsageError
from photojobs.photos import processing
from photojobs.photos.files import io_failure
from photojobs.photos.store import add_photos, counts, get_photo, list_photos, mark_failed, queue_unqueued
from photojobs.worker import WorkerOptions
from photojobs.samples import make_sample_photos, write_sample_jpeg

from .conftest import append_config, oriented_jpeg


def jobs(app):
    return app.backend.read("SELECT id, name, queue, payload, unique_key, batch_id, status FROM jobs ORDER BY id")


def test_add_folder_registers_images_and_queues_one_batch(tmp_path, photo_app):
    app = photo_app.app
    shoot = tmp_path / "shoot"
    make_sample_photos(shoot / "day 1", 3, size=(60, 40))
    (shoot / "notes.txt").write_text("not a photo")
    (shoot / ".DS_Store").write_bytes(b"\x00")
    result = add_photos(app, [shoot], album="Wedding")
    assert (len(result.added), result.queued, len(result.skipped)) == (3, 3, 2)
    assert result.summary()["skipped_by_reason"] == {"hidden file": 1, "not an image file name": 1}
    rows = jobs(app)
    assert [r["name"] for r in rows] == ["process_photo"] * 3 and {r["queue"] for r in rows} == {"photos"}
    assert {r["batch_id"] for r in rows} == {result.batch_id} and result.batch_id is not None
    assert [r["unique_key"] for r in rows] == [f"photo:{i}" for i in result.added]
    assert {p["album"] for p in list_photos(app)} == {"Wedding"}
    assert [p["status"] for p in list_photos(app, album="Wedding", status="pending")] == ["pending"] * 3

    again = add_photos(app, [shoot])  # unchanged: a no-op
    assert (len(again.added), len(again.changed), len(again.unchanged), again.queued) == (0, 0, 3, 0)
    assert len(jobs(app)) == 3
    moved = add_photos(app, [shoot / "day 1" / "sample-0001.jpg"], album="Reception")  # album only
    assert (moved.unchanged, moved.queued) == ([result.added[0]], 0)
    assert [p["id"] for p in list_photos(app, album="Reception")] == [result.added[0]]


def test_changed_file_is_processed_again(tmp_path, photo_app):
    app = photo_app.app
    path = write_sample_jpeg(tmp_path / "a.jpg", (80, 60))
    first = add_photos(app, [path])
    assert app.work(WorkerOptions(queues=["photos"], stop_when_empty=True)).done == 1
    write_sample_jpeg(path, (90, 60), seed=3)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = add_photos(app, [path])
    assert second.changed == first.added and second.queued == 1
    assert get_photo(app, first.added[0])["status"] == "pending"
    processing.process_photo(app, first.added[0])
    assert get_photo(app, first.added[0])["width"] == 90


def test_symlinks_outside_the_folder_are_refused(tmp_path, photo_app):
    shoot, elsewhere = tmp_path / "shoot", tmp_path / "private"
    make_sample_photos(shoot, 1, size=(40, 30))
    secret = write_sample_jpeg(elsewhere / "secret.jpg", (40, 30))
    os.symlink(secret, shoot / "link-out.jpg")
    os.symlink(shoot / "sample-0001.jpg", shoot / "link-in.jpg")
    os.symlink(elsewhere, shoot / "folder-link")
    os.symlink(shoot / "gone.jpg", shoot / "broken.jpg")
    result = add_photos(photo_app.app, [shoot])
    reasons = result.summary()["skipped_by_reason"]
    assert reasons == {"symlink points outside the folder added": 1, "symlinked folder not followed": 1,
                       "broken symlink": 1}
    assert len(result.added) == 1  # the inner link is the same file as its target
    assert all("secret" not in p["path"] for p in list_photos(photo_app.app))


def test_awkward_file_names(tmp_path, photo_app):
    folder = os.fsencode(tmp_path / "names")
    os.makedirs(folder)
    names = [b"with space.jpg", b"quote's \"double\".jpg", b"caf\xe9-latin1.jpg", "日本.jpg".encode()]
    data = write_sample_jpeg(tmp_path / "src.jpg", (40, 30)).read_bytes()
    for name in names:
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)
    app = photo_app.app
    result = add_photos(app, [os.fsdecode(folder)])
    assert len(result.added) == 4
    for photo_id in result.added:
        processing.process_photo(app, photo_id)
    photos = list_photos(app, status="ready")
    assert len(photos) == 4
    assert any(p["path"].endswith("caf\\xe9-latin1.jpg") for p in photos)  # shown escaped, not mangled
    raw = app.backend.read("SELECT library, path FROM photos WHERE path LIKE '%latin1%' OR typeof(path) = 'blob'")
    assert raw[0]["path"] == b"caf\xe9-latin1.jpg"  # relative to its library, still its exact bytes
    assert os.path.exists(libraries.of_app(app).resolve(raw[0]["library"], raw[0]["path"]))


def test_missing_path_and_bad_album_are_usage_errors(tmp_path, photo_app):
    with pytest.raises(NotFound, match="no such file"):
        add_photos(photo_app.app, [tmp_path / "nope"])
    with pytest.raises(UsageError):
        add_photos(photo_app.app, [tmp_path], album="bad\nname")


def test_process_photo_fills_the_row_and_writes_thumbnails(tmp_path, photo_app):
    app = photo_app.app
    path = tmp_path / "portrait.jpg"
    oriented_jpeg(path, (400, 600), 6)  # stored 600x400, shown upright as portrait
    photo_id = add_photos(app, [path], queue=False).added[0]
    processing.process_photo(app, photo_id)
    photo = get_photo(app, photo_id)
    assert photo["status"] == "ready" and photo["error"] is None and photo["processed_at"]
    assert (photo["width"], photo["height"], photo["orientation"]) == (400, 600, 6)
    assert photo["mime"] == "image/jpeg" and photo["size_bytes"] == path.stat().st_size
    assert len(photo["sha256"]) == 64 and photo["camera_model"] == "Canon EOS R6"
    assert photo["taken_at"] == "2024-06-01T14:30:05+02:00" and photo["gps_lat"] == pytest.approx(48.85837)
    thumbs = photo["thumbnails"]
    assert {k: (v["width"], v["height"]) for k, v in thumbs.items()} == {
        "thumb": (213, 320), "preview": (400, 600), "web": (400, 600)}
    storage = str(app.settings.storage_path)
    for entry in thumbs.values():
        assert entry["path"].startswith(storage + "/thumbnails/") and Image.open(entry["path"]).size == (
            entry["width"], entry["height"])
    leftovers = [n for n in os.listdir(os.path.dirname(thumbs["thumb"]["path"])) if n.endswith(".tmp")]
    assert leftovers == []


def test_thumbnails_rebuild_only_when_source_or_settings_change(tmp_path, workdir, photo_app):
    app = photo_app.app
    path = write_sample_jpeg(tmp_path / "a.jpg", (500, 300))
    photo_id = add_photos(app, [path], queue=False).added[0]
    assert processing.process_photo(app, photo_id)["rebuilt"] == ["preview", "thumb", "web"]
    assert processing.process_photo(app, photo_id)["rebuilt"] == []
    assert processing.process_photo(app, photo_id, regenerate=True)["rebuilt"] == ["preview", "thumb", "web"]
    thumb = get_photo(app, photo_id)["thumbnails"]["thumb"]["path"]
    os.unlink(thumb)
    assert processing.process_photo(app, photo_id)["rebuilt"] == ["thumb"]
    append_config(workdir, '[thumbnails.thumb]\nsize = 100\n[thumbnails.web]\nsize = 2048\nformat = "webp"')
    app = photo_app.reload()
    assert processing.process_photo(app, photo_id)["rebuilt"] == ["thumb", "web"]
    photo = get_photo(app, photo_id)
    assert set(photo["thumbnails"]) == {"thumb", "web"} and photo["thumbnails"]["web"]["path"].endswith(".webp")
    assert not os.path.exists(thumb.replace("thumb.jpg", "preview.jpg"))  # dropped conversion removed


def test_bad_inputs_fail_permanently_with_a_reason(tmp_path, photo_app):
    app = photo_app.app
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello")
    good = write_sample_jpeg(folder / "truncated.jpg", (300, 200)).read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    write_sample_jpeg(folder / "deleted.jpg", (40, 30))
    ids = dict(zip(["deleted", "empty", "text", "truncated"], add_photos(app, [folder], queue=False).added))
    os.unlink(folder / "deleted.jpg")
    expected = {"empty": "empty file", "text": "not an image", "truncated": "truncated", "deleted": "missing"}
    for name, fragment in expected.items():
        with pytest.raises(PermanentFailure, match=fragment):
            processing.process_photo(app, ids[name])


def test_io_errors_that_may_pass_are_retried(tmp_path, photo_app, monkeypatch):
    assert isinstance(io_failure(OSError(errno.EIO, "Input/output error"), "x"), RetryLater)
    assert isinstance(io_failure(OSError(errno.ESTALE, "Stale file handle"), "x"), RetryLater)
    assert isinstance(io_failure(PermissionError(errno.EACCES, "Permission denied"), "x"), PermanentFailure)
    path = write_sample_jpeg(tmp_path / "a.jpg", (40, 30))
    photo_id = add_photos(photo_app.app, [path], queue=False).added[0]

    def flaky(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    from photojobs.photos import files

    monkeypatch.setattr(files, "open_regular", flaky)  # the disk says EIO once
    with pytest.raises(RetryLater, match="I/O error"):
        processing.process_photo(photo_app.app, photo_id)


def test_malformed_exif_is_a_warning_and_the_photo_is_processed(tmp_path, photo_app):
    from .conftest import plain_jpeg, with_app1

    path = tmp_path / "odd.jpg"
    path.write_bytes(with_app1(plain_jpeg((80, 60)), b"Exif\x00\x00" + bytes(range(256)) * 2))
    photo_id = add_photos(photo_app.app, [path], queue=False).added[0]
    processing.process_photo(photo_app.app, photo_id)
    photo = get_photo(photo_app.app, photo_id)
    assert photo["status"] == "ready" and photo["warnings"] and (photo["width"], photo["height"]) == (80, 60)


def test_no_queue_then_queue_unqueued(tmp_path, photo_app):
    app = photo_app.app
    make_sample_photos(tmp_path / "s", 2, size=(40, 30))
    add_photos(app, [tmp_path / "s"], queue=False)
    assert jobs(app) == []
    assert queue_unqueued(app) == 2
    assert queue_unqueued(app) == 0  # live jobs exist already
    assert counts(app) == {"pending": 2} and counts(app, [1]) == {"pending": 1} and counts(app, []) == {}
    assert app.work(WorkerOptions(queues=["photos"], stop_when_empty=True)).done == 2
    mark_failed(app, 1, "damaged on purpose")
    assert queue_unqueued(app, regenerate=True) == 1  # a failed photo waits for `failed retry`
    assert [json.loads(r["payload"]) for r in jobs(app)[2:]] == [{"photo_id": 2, "regenerate_thumbnails": True}]


def test_a_failed_thumbnail_write_is_retried_and_leaves_no_temp_file(tmp_path, photo_app):
    app = photo_app.app
    path = write_sample_jpeg(tmp_path / "a.jpg", (200, 100))
    photo_id = add_photos(app, [path], queue=False).added[0]
    folder = app.settings.storage_path / processing.thumbnail_folder(
        photo_id, processing.thumbs_mod.thumbnail_settings())
    (folder / "web.jpg").mkdir(parents=True)  # a folder where a thumbnail must go: the rename fails
    with pytest.raises(RetryLater, match="cannot write thumbnails"):
        processing.process_photo(app, photo_id)
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    assert (folder / "web.jpg").is_dir()
    assert get_photo(app, photo_id)["status"] == "pending"


def test_a_symlink_given_as_an_argument_is_followed_only_inside_its_own_folder(tmp_path, photo_app):
    shoot, elsewhere = tmp_path / "shoot", tmp_path / "private"
    make_sample_photos(shoot, 1, size=(40, 30))
    secret = write_sample_jpeg(elsewhere / "secret.jpg", (40, 30))
    os.symlink(secret, shoot / "link-out.jpg")
    os.symlink("/etc/passwd", shoot / "passwd.jpg")
    os.symlink(shoot / "sample-0001.jpg", shoot / "link-in.jpg")
    result = add_photos(photo_app.app, [shoot / "link-out.jpg", shoot / "passwd.jpg", shoot / "link-in.jpg"])
    assert result.summary()["skipped_by_reason"] == {"symlink points outside its own folder": 2}
    assert [p["path"] for p in list_photos(photo_app.app)] == [str(shoot / "sample-0001.jpg")]


@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_processing_never_follows_a_symlink_nor_blocks_on_a_fifo_swapped_in(tmp_path, photo_app, swap):
    app = photo_app.app
    path = write_sample_jpeg(tmp_path / "a.jpg", (80, 60))
    photo_id = add_photos(app, [path]).added[0]
    path.unlink()
    if swap == "symlink":
        os.symlink(write_sample_jpeg(tmp_path / "other" / "b.jpg", (80, 60)), path)
    else:
        os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(PermanentFailure, match="symlink, not followed" if swap == "symlink" else "is a FIFO"):
        processing.process_photo(app, photo_id)
    assert time.monotonic() - started < 5
