"""What a new user trips on, following README.md: each mistake gives one clear line, a
sensible exit code, and leaves nothing half-written (found by walking the README through)."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import photojobs
from photojobs import libraries
from photojobs.archives.downloads import create_download, show_download
from photojobs.errors import ConfigError, SchemaTooOld, UsageError
from photojobs.install import init
from photojobs.orders import create_order
from photojobs.photos.store import add_photos, get_photo, list_photos, retry_photos
from photojobs.samples import make_sample_photos

from .. import postgres_server
from ..conftest import cli_env
from ..photos.test_libraries import _host, _run, shared_db  # noqa: F401 - shared_db is a fixture


def _photojobs(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photojobs", "--config", str(config), *args], env=cli_env(),
                          capture_output=True, text=True, timeout=60)


def _unmount(mount_point: Path, away: Path) -> None:
    """A share unmounted: its files are gone, its mount point stays, an empty folder."""
    mount_point.rename(away)
    mount_point.mkdir()


def test_an_unmounted_share_leaves_an_empty_mount_point_and_its_jobs_retry(tmp_path: Path, shared_db: str) -> None:
    share = tmp_path / "mnt" / "studio"
    make_sample_photos(share / "2026" / "wedding", 2, size=(64, 48))
    config = _host(tmp_path / "host", shared_db, tmp_path / "storage", {"studio": share})
    (tmp_path / "storage" / "downloads").mkdir(parents=True, exist_ok=True)
    with photojobs.connect(config) as app:
        first, second = add_photos(app, [share], album="wedding").added
        assert _run(app, "photos").done == 2
        order = create_order(app, "ada@example.com", album="wedding")
        _unmount(share, tmp_path / "away")
        retry_photos(app, [first])
        processed = _run(app, "photos")
        assert (processed.done, processed.failed, processed.retried) == (0, 0, 1)
        assert get_photo(app, first)["status"] == "pending"
        download = create_download(app, order["id"])
        archived = _run(app, "downloads")
        assert (archived.done, archived.failed, archived.retried) == (0, 0, 1)
        assert show_download(app, download["id"])["status"] == "pending"  # the customer's link is not failed
        errors = [row[0] for row in app.backend.execute(
            "SELECT last_error FROM jobs WHERE status = 'pending' ORDER BY id").fetchall()]
        assert len(errors) == 2 and all("'studio'" in e and "not mounted" in e for e in errors), errors
        listed = {lib["name"]: lib for lib in libraries.listing(app.settings, app.backend)}
        assert listed["studio"]["exists"] is False  # `photos libraries` says the share is not there
    shown = _photojobs(config, "photos", "add", str(share / "2026" / "wedding"))
    assert shown.returncode == 2 and shown.stderr.count("\n") == 1
    assert "not mounted" in shown.stderr and "'studio'" in shown.stderr, shown.stderr


def test_a_deleted_photo_in_a_mounted_share_still_fails_at_once(tmp_path: Path, shared_db: str) -> None:
    share = tmp_path / "studio"
    make_sample_photos(share, 2, size=(64, 48))
    config = _host(tmp_path / "host", shared_db, tmp_path / "storage", {"studio": share})
    with photojobs.connect(config) as app:
        first = add_photos(app, [share]).added[0]
        (share / "sample-0001.jpg").unlink()  # the share is there: the photo is gone for good
        report = _run(app, "photos")
        assert (report.done, report.failed, report.retried) == (1, 1, 0)
        assert get_photo(app, first)["status"] == "failed"


def test_a_misspelt_library_on_a_second_host_is_refused_not_added_twice(tmp_path: Path, shared_db: str) -> None:
    mount_a, mount_b, storage = tmp_path / "mountA", tmp_path / "mountB", tmp_path / "storage"
    make_sample_photos(mount_a / "wedding", 2, size=(32, 24))
    shutil.copytree(mount_a, mount_b)  # the same share, mounted elsewhere on host B
    host_a = _host(tmp_path / "hostA", shared_db, storage, {"studio": mount_a})
    host_b = _host(tmp_path / "hostB", shared_db, storage, {"stduio": mount_b})
    with photojobs.connect(host_a) as app:
        assert len(add_photos(app, [mount_a], queue=False).added) == 2
    result = _photojobs(host_b, "photos", "add", str(mount_b / "wedding"))
    assert result.returncode == 3 and result.stderr.count("\n") == 1, result.stderr
    assert "'stduio'" in result.stderr and "'studio'" in result.stderr, result.stderr
    with photojobs.connect(host_b) as app:
        assert len(list_photos(app)) == 2  # nothing written: no second copy of the same files
        assert sorted(libraries.load(app.settings, app.backend).recorded) == ["studio"]
        with pytest.raises(ConfigError, match="a typo"):
            add_photos(app, [mount_b / "wedding"])


def test_a_laptop_naming_its_moved_folder_anew_is_told_the_library_it_had(workdir: Path, tmp_path: Path) -> None:
    shoots = tmp_path / "shoots"
    make_sample_photos(shoots, 1, size=(32, 24))
    with photojobs.connect(workdir / "photojobs.toml") as app:
        add_photos(app, [shoots], queue=False)  # no [libraries]: the folder becomes "default"
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(f'\n[libraries]\nphotos = "{shoots}"\n')  # meant: default = ...
    with photojobs.connect(workdir / "photojobs.toml") as app:
        with pytest.raises(ConfigError, match="'default'"):
            add_photos(app, [shoots], queue=False)
        assert len(list_photos(app)) == 1


def test_a_new_library_with_an_unrelated_name_is_still_made(tmp_path: Path, shared_db: str) -> None:
    studio, archive = tmp_path / "studio", tmp_path / "archive"
    make_sample_photos(studio, 1, size=(32, 24))
    make_sample_photos(archive, 1, size=(32, 24))
    host_a = _host(tmp_path / "hostA", shared_db, tmp_path / "storage", {"studio": studio})
    host_b = _host(tmp_path / "hostB", shared_db, tmp_path / "storage", {"archive": archive})
    with photojobs.connect(host_a) as app:
        add_photos(app, [studio], queue=False)
    with photojobs.connect(host_b) as app:
        assert len(add_photos(app, [archive], queue=False).added) == 1


def test_outside_the_libraries_names_the_library_the_database_has_for_it(workdir: Path, tmp_path: Path) -> None:
    wedding, portrait = tmp_path / "shoots" / "wedding", tmp_path / "shoots" / "portrait"
    make_sample_photos(wedding, 1, size=(32, 24))
    make_sample_photos(portrait, 1, size=(32, 24))
    with photojobs.connect(workdir / "photojobs.toml") as app:
        add_photos(app, [wedding], queue=False)  # "default"
        add_photos(app, [portrait], queue=False)  # "portrait"
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(f'\n[libraries]\ndefault = "{wedding}"\n')  # the README's one-line move
    with photojobs.connect(workdir / "photojobs.toml") as app:
        with pytest.raises(UsageError) as caught:
            add_photos(app, [portrait], queue=False)
    assert f'portrait = "{portrait}"' in caught.value.hint


def test_a_missing_album_is_one_tidy_line(workdir: Path, cli) -> None:
    make_sample_photos(workdir / "shoot", 1, size=(32, 24))
    assert cli("photos", "add", "shoot", "--album", "wedding", "--no-queue").returncode == 0
    result = cli("photos", "list", "--album", "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: no album 'nope' (albums: 'wedding')"
    assert json.loads(cli("photos", "list", "--album", "WEDDING", "--json").stdout)[0]["album"] == "wedding"


def test_a_laptop_moving_its_photos_and_naming_them_anew_is_told_the_library_it_had(workdir: Path,
                                                                                    tmp_path: Path) -> None:
    shoots, moved = tmp_path / "shoots", tmp_path / "disk" / "shoots"
    make_sample_photos(shoots / "wedding", 2, size=(32, 24))
    with photojobs.connect(workdir / "photojobs.toml") as app:
        add_photos(app, [shoots], queue=False)  # "default"
    moved.parent.mkdir()
    shoots.rename(moved)
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(f'\n[libraries]\nphotos = "{moved}"\n')  # meant: default = ... (README: a move is one line)
    with photojobs.connect(workdir / "photojobs.toml") as app:
        with pytest.raises(ConfigError, match="'default'") as caught:
            add_photos(app, [moved / "wedding"], queue=False)
        assert "rename photos to default" in caught.value.hint
        assert len(list_photos(app)) == 2


@pytest.mark.parametrize("url, says", [
    ("postgresql://postgres:secret@127.0.0.1/x?sslmod=require", 'invalid URI query parameter: "sslmod"'),
    ("postgresql://postgres@127.0.0.1/x?sslmode=bogus", 'invalid sslmode value: "bogus"'),
    ("postgresql://postgres@127.0.0.1:port/x", 'invalid integer value "port"'),
    ("postgresql://postgres@[::1/x", "IPv6"),
    ("postgresql:/postgres@127.0.0.1/x", "two slashes"),
])
def test_a_mistyped_postgresql_url_is_one_line_and_init_leaves_nothing(tmp_path: Path, url: str, says: str) -> None:
    pytest.importorskip("psycopg")
    for args in (["status"], ["init"]):
        result = subprocess.run([sys.executable, "-m", "photojobs", "--db", url, *args], cwd=tmp_path,
                                env=cli_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert result.stderr.count("\n") == 1 and "not a" in result.stderr and "PostgreSQL URL" in result.stderr
        assert says in result.stderr and "secret" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no photojobs.toml with the bad URL that a second init would keep


def test_init_against_a_server_that_is_down_leaves_no_config_behind(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    result = subprocess.run([sys.executable, "-m", "photojobs", "init", "--db", "postgresql://postgres@127.0.0.1:1/x"],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "cannot reach PostgreSQL" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=postgres_server.marks())])
def test_your_own_sql_on_a_missing_table_is_not_called_a_missing_schema(engine: str, workdir: Path) -> None:
    """README's web-app example: `tx.execute` on the app's own table, with a typo or before its migration."""
    db = postgres_server.empty_database() if engine == "postgresql" else None
    if db:
        init(config=str(workdir / "pg.toml"), db=db, storage=str(workdir / "storage"))
    with photojobs.connect(workdir / ("pg.toml" if db else "photojobs.toml")) as app:
        with pytest.raises(Exception) as caught:
            with app.transaction() as tx:
                tx.execute("UPDATE shop_orders SET paid = 1 WHERE id = :id", {"id": 3})
                app.dispatch("send_email", {"outbox_id": 7})
        assert not isinstance(caught.value, SchemaTooOld) and "shop_orders" in str(caught.value)
        assert app.backend.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0  # rolled back together


def test_a_bad_thumbnails_quality_names_the_table_it_was_written_in(workdir: Path, cli) -> None:
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n[thumbnails]\nquality = 101\n")  # README's [thumbnails] example, one digit too many
    result = cli("process-photos")
    assert result.returncode == 3
    assert result.stderr.strip() == (f"Error: {workdir / 'photojobs.toml'}: [thumbnails]: quality = 101 is out of range:"
                                     " expected 1 to 100")


def test_status_watch_piped_prints_a_block_each_interval(workdir: Path) -> None:
    """`photojobs status --watch | tee status.log`: a terminal redraw shows nothing in a pipe."""
    proc = subprocess.Popen([sys.executable, "-m", "photojobs", "status", "--watch", "--interval", "0.2"], cwd=workdir,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, deadline = b"", time.monotonic() + 30
        while out.count(b"# Queues at ") < 2 and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                out += os.read(proc.stdout.fileno(), 65536)
        assert out.count(b"# Queues at ") >= 2, out
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_a_storage_root_whose_share_is_not_mounted_is_refused_not_filled(workdir: Path, cli) -> None:
    """Several hosts mount one storage root; on a host where it is not mounted, its mount point
    is an empty folder, and archives and thumbnails written there would be this host's alone."""
    make_sample_photos(workdir / "shoot", 1, size=(32, 24))
    assert cli("photos", "add", "shoot").returncode == 0
    _unmount(workdir / "storage", workdir / "away")
    for args in (("process-photos",), ("work", "--stop-when-empty"), ("status",)):
        result = cli(*args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "is empty: its share is not mounted?" in result.stderr
    assert list((workdir / "storage").iterdir()) == []  # nothing written where the share belongs
    assert cli("init").returncode == 0 and cli("process-photos").returncode == 0  # a new root: init sets it up
