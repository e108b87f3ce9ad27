"""Photo libraries: a photo is (library, path relative to its folder), and each host maps
a library's name to its own folder with [libraries] in photojobs.toml (photojobs.libraries)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import photojobs
from photojobs import libraries
from photojobs.archives.downloads import create_download, show_download
from photojobs.errors import ConfigError, UsageError
from photojobs.install import init
from photojobs.orders import create_order
from photojobs.photos.store import add_photos, get_photo, list_photos
from photojobs.samples import make_sample_photos
from photojobs.storage import downloads as download_rows
from photojobs.storage import photos as photo_rows
from photojobs.worker import WorkerOptions

from .. import postgres_server
from ..conftest import cli_env

ENGINES = ["sqlite", pytest.param("postgresql", marks=postgres_server.marks())]


def _host(folder: Path, db: str, storage: Path, libs: dict[str, Path] | None) -> Path:
    """A host's photojobs.toml (its own folder); returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    text = f'db = "{db}"\nstorage = "{storage}"\n'
    if libs is not None:
        text += "[libraries]\n" + "".join(f'{name} = "{path}"\n' for name, path in libs.items())
    (folder / "photojobs.toml").write_text(text)
    return folder / "photojobs.toml"


def _run(app, queue: str):
    return app.work(WorkerOptions(queues=[queue], stop_when_empty=True, sleep=0.05))


@pytest.fixture(params=ENGINES)
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database both hosts use: an SQLite file (one machine in the test) or PostgreSQL."""
    if request.param == "postgresql":
        return postgres_server.empty_database()
    db = str(tmp_path / "shared.db")
    init(config=str(tmp_path / "init" / "photojobs.toml"), db=db, storage=str(tmp_path / "storage"))
    return db


def test_a_photo_added_on_one_host_is_processed_and_archived_on_another(tmp_path: Path, shared_db: str) -> None:
    mount_a, mount_b, storage = tmp_path / "mountA", tmp_path / "mountB", tmp_path / "storage"
    make_sample_photos(mount_a / "wedding", 3, size=(96, 64))
    shutil.copytree(mount_a, mount_b)  # the same share, mounted elsewhere on host B (mtimes kept)
    host_a = _host(tmp_path / "hostA", shared_db, storage, {"studio": mount_a})
    host_b = _host(tmp_path / "hostB", shared_db, storage, {"studio": mount_b})
    (storage / "downloads").mkdir(parents=True, exist_ok=True)

    with photojobs.connect(host_a) as app:
        added = add_photos(app, [mount_a / "wedding"], album="wedding")
        assert len(added.added) == 3 and added.queued == 3
        rows = [photo_rows.get(app.backend, i) for i in added.added]
        assert {(r["library"], r["path"]) for r in rows} == {("studio", f"wedding/sample-{n:04d}.jpg") for n in (1, 2, 3)}
    shutil.rmtree(mount_a)  # host B cannot read host A's folder: it must use its own

    with photojobs.connect(host_b) as app:
        report = _run(app, "photos")
        assert (report.done, report.failed, report.retried) == (3, 0, 0)
        shown = get_photo(app, added.added[0])
        assert (shown["status"], shown["library"]) == ("ready", "studio")
        assert shown["path"] == str(mount_b / "wedding" / "sample-0001.jpg")
        order = create_order(app, "ada@example.com", album="wedding")
        download = create_download(app, order["id"])
        assert _run(app, "downloads").done == 1
        ready = show_download(app, download["id"])
        assert ready["status"] == "ready" and ready["file_count"] == 3
        assert ready["path"] == str(storage / "downloads" / Path(ready["path"]).name)
        assert download_rows.get(app.backend, download["id"])["path"] == f"downloads/{Path(ready['path']).name}"
        thumbs = json.loads(photo_rows.get(app.backend, added.added[0])["thumbnails"])
        assert all(not os.path.isabs(t["path"]) for t in thumbs.values())  # relative to the storage root


def test_a_missing_library_folder_retries_the_job_and_does_not_fail_the_photo(tmp_path: Path, shared_db: str) -> None:
    share = tmp_path / "share"
    make_sample_photos(share, 1, size=(64, 48))
    config = _host(tmp_path / "host", shared_db, tmp_path / "storage", {"studio": share})
    with photojobs.connect(config) as app:
        photo_id = add_photos(app, [share]).added[0]
        share.rename(tmp_path / "unmounted")
        report = _run(app, "photos")
        assert (report.done, report.failed, report.retried) == (0, 0, 1)
        assert get_photo(app, photo_id)["status"] == "pending"
        job = app.backend.jobs_by_unique_key([f"photo:{photo_id}"])[f"photo:{photo_id}"]
        status, error = app.backend.execute("SELECT status, last_error FROM jobs WHERE id = :id", {"id": job[0]}).fetchone()
        assert status == "pending" and "'studio'" in error and str(share) in error and "\n" not in error
        (tmp_path / "unmounted").rename(share)  # mounted again: the retry succeeds
        assert libraries.of_app(app).require("studio", "sample-0001.jpg") == str(share / "sample-0001.jpg")


def test_a_path_outside_the_configured_libraries_is_a_one_line_usage_error(workdir: Path, tmp_path: Path) -> None:
    inside, outside = tmp_path / "studio", tmp_path / "elsewhere"
    make_sample_photos(inside, 1, size=(32, 24))
    make_sample_photos(outside, 1, size=(32, 24))
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(f'\n[libraries]\nstudio = "{inside}"\narchive = "/mnt/archive"\n')
    result = subprocess.run([sys.executable, "-m", "photojobs", "photos", "add", str(inside), str(outside)],
                            cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "outside every photo library (archive = /mnt/archive, studio = " in result.stderr
    assert "[libraries]" in result.stderr
    with photojobs.connect(workdir / "photojobs.toml") as app:
        assert list_photos(app) == []  # the inside one was not kept either: one transaction
        with pytest.raises(UsageError, match="outside every photo library"):
            add_photos(app, [outside])
    shown = subprocess.run([sys.executable, "-m", "photojobs", "photos", "libraries", "--json"], cwd=workdir,
                           env=cli_env(), capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert [(lib["name"], lib["source"], lib["exists"]) for lib in json.loads(shown.stdout)] == [
        ("archive", "photojobs.toml", False), ("studio", "photojobs.toml", True)]


def test_a_laptop_without_libraries_gets_default_and_a_move_is_one_line(workdir: Path, tmp_path: Path) -> None:
    shoots, other = tmp_path / "shoots", tmp_path / "Card 2"
    make_sample_photos(shoots / "wedding", 1, size=(32, 24))
    make_sample_photos(other, 1, size=(32, 24))
    with photojobs.connect(workdir / "photojobs.toml") as app:
        first = add_photos(app, [shoots], queue=False).added[0]
        second = add_photos(app, [other / "sample-0001.jpg"], queue=False).added[0]
        again = add_photos(app, [shoots / "wedding"], queue=False)  # inside "default": the same photo
        assert again.unchanged == [first] and not again.added
        assert [(lib["name"], lib["folder"], lib["photos"]) for lib in libraries.listing(app.settings, app.backend)
                ] == [("card-2", str(other), 1), ("default", str(shoots), 1)]
        assert get_photo(app, first)["path"] == str(shoots / "wedding" / "sample-0001.jpg")
        assert get_photo(app, second)["library"] == "card-2"
    moved = tmp_path / "disk" / "shoots"
    moved.parent.mkdir()
    shoots.rename(moved)
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(f'\n[libraries]\ndefault = "{moved}"\n')
    with photojobs.connect(workdir / "photojobs.toml") as app:
        assert get_photo(app, first)["path"] == str(moved / "wedding" / "sample-0001.jpg")
        assert add_photos(app, [moved], queue=False).unchanged == [first]  # found again, not added twice


def test_libraries_settings_are_checked_at_load_and_folders_when_used(workdir: Path, cli) -> None:
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write('\n[libraries]\nstudio = "/not/mounted/here"\n')
    assert cli("status").returncode == 0  # an unmounted share does not stop `status`
    with photojobs.connect(workdir / "photojobs.toml") as app:
        assert libraries.configured(app.settings) == {"studio": "/not/mounted/here"}
    for bad, message in (('Studio = "/x"', "not a library name"), ('studio = "relative/x"', "not an absolute")):
        (workdir / "photojobs.toml").write_text((workdir / "photojobs.toml").read_text().split("[libraries]")[0]
                                                + f"[libraries]\n{bad}\n")
        with pytest.raises(ConfigError, match=message):
            photojobs.connect(workdir / "photojobs.toml")
        for command in (("status",), ("photos", "add", str(workdir))):  # every command, at load
            result = cli(*command)
            assert result.returncode == 3 and message in result.stderr
            assert "[libraries]" in result.stderr and len(result.stderr.strip().splitlines()) <= 2


def test_migrating_absolute_paths_keeps_non_utf8_names(tmp_path: Path) -> None:
    """m008 on SQLite: text and BLOB (non-UTF-8) absolute paths become relative to their
    longest common folder, library "default"; each resolves to the same file as before."""
    fixture = Path(__file__).parent.parent / "fixtures" / "release-0.1.0.db"
    shutil.copyfile(fixture, tmp_path / "photojobs.db")
    with sqlite3.connect(tmp_path / "photojobs.db") as conn:
        old = [r[0] for r in conn.execute("SELECT path FROM photos ORDER BY id")]
        raw = os.fsencode(Path(old[0]).parent.parent) + b"/caf\xe9/x.jpg"
        conn.execute("INSERT INTO photos (path, status, created_at) VALUES (?, 'pending', 0)", [raw])
    config = _host(tmp_path, "photojobs.db", tmp_path / "storage", None)
    result = subprocess.run([sys.executable, "-m", "photojobs", "migrate"], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with photojobs.connect(config) as app:
        rows = photo_rows.listed(app.backend)
        assert rows[-1]["path"] == b"caf\xe9/x.jpg" and rows[0]["path"] == "shoot/broken.jpg"
        libs = libraries.of_app(app)
        assert libs.recorded == {"default": str(Path(old[0]).parent.parent)}
        assert [libs.resolve(r["library"], r["path"]) for r in rows] == [*old, os.fsdecode(raw)]


def test_the_plan_finds_the_longest_common_folder() -> None:
    plan = libraries.default_library_plan
    assert plan([]) is None and plan([(1, "relative.jpg")]) is None
    assert plan([(1, "/a/b/c.jpg")]) == ("/a/b", [(1, "c.jpg")])
    assert plan([(1, "/a/b/c.jpg"), (2, "/a/bc/d.jpg")]) == ("/a", [(1, "b/c.jpg"), (2, "bc/d.jpg")])
    assert plan([(1, "/x.jpg"), (2, b"/\xff/y.jpg")]) == ("/", [(1, "x.jpg"), (2, b"\xff/y.jpg")])
    assert plan([(1, b"/\xff/a.jpg"), (2, b"/\xff/b.jpg")]) == (b"/\xff", [(1, "a.jpg"), (2, "b.jpg")])


@pytest.mark.parametrize("engine", [pytest.param("postgresql", marks=postgres_server.marks())])
def test_migrating_absolute_paths_on_postgresql(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """m008's PostgreSQL twin: the same result from a database at m007 holding absolute
    paths, one of them not UTF-8 (kept as marked text), and a ready archive's path."""
    from photojobs import migrations
    from photojobs.storage.pg_connect import connect
    from photojobs.storage.pg_migrations import migrate_url

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:7])  # a database of the release before
    url = postgres_server.fresh_database("m008")
    with connect(url) as conn:
        conn.execute("INSERT INTO photos (path, status, created_at) VALUES (%s, 'ready', 0), (%s, 'pending', 0)",
                     ["/srv/old/shoot/a.jpg", b"/srv/old/caf\xe9/b.jpg"])
        conn.execute("INSERT INTO orders (email, created_at) VALUES ('ada@example.com', 0)")
        conn.execute("INSERT INTO downloads (order_id, token, status, path, created_at)"
                     " VALUES (1, 't', 'ready', '/srv/storage/downloads/order-1-download-1.zip', 0)")
    monkeypatch.undo()
    assert migrate_url(url) == ["m008_photo_libraries"]
    config = _host(tmp_path, url, tmp_path / "storage", None)
    with photojobs.connect(config) as app:
        assert [(r["library"], r["path"]) for r in photo_rows.listed(app.backend)] == [
            ("default", "shoot/a.jpg"), ("default", b"caf\xe9/b.jpg")]
        assert libraries.of_app(app).recorded == {"default": "/srv/old"}
        assert download_rows.get(app.backend, 1)["path"] == "downloads/order-1-download-1.zip"


def test_a_library_name_taken_meanwhile_is_read_again_not_reused(tmp_path: Path, shared_db: str) -> None:
    """Two `photos add` at once on two hosts: the second to record "default" finds the
    first's folder and files its photo under a library of its own."""
    from photojobs.storage import libraries as library_rows

    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    make_sample_photos(mine, 1, size=(32, 24))
    config = _host(tmp_path / "host", shared_db, tmp_path / "storage", None)
    with photojobs.connect(config) as app:
        stale = libraries.of_app(app)  # read before the other host recorded its library
        with app.transaction() as tx:
            library_rows.record(tx, "default", str(theirs), 0.0)
        with app.transaction() as tx:
            placed = libraries.place_or_adopt(tx, stale, str(mine / "sample-0001.jpg"), [str(mine)])
        assert placed == ("mine", "sample-0001.jpg")
        assert library_rows.recorded(app.backend) == {"default": str(theirs), "mine": str(mine)}
