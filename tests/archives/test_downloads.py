"""Downloads: created with their job in one transaction; built by a real worker into a
verified, private ZIP; failures leave no ready download and no temp file."""

import datetime
import hashlib
import json
import os
import re
import stat
import time
import zipfile

import pytest

from photojobs.archives.downloads import build_download, create_download, list_downloads, show_download
from photojobs.orders import create_order
from photojobs.errors import NotFound, UsageError

from tests.api_views import outbox_rows, pending_jobs
from tests.conftest import storage_rows

from .conftest import downloads_dir, run_downloads, temp_files

CONTRACT = {"id", "order_id", "status", "path", "size_bytes", "file_count", "expires_at", "url", "error"}


@pytest.fixture
def order(app, photos):
    ids, paths = photos(3, padding=200_000)
    return create_order(app, "ada@example.com", name="Ada", photo_ids=[ids[2], ids[0], ids[1]]), [paths[2], paths[0], paths[1]]


def test_create_writes_a_pending_download_and_its_job(app, order):
    before = time.time()
    download = create_download(app, order[0]["id"], expires_days=2)
    assert CONTRACT <= set(download)
    assert download["status"] == "pending" and download["path"] is None
    token = download["url"].rsplit("/", 1)[1]
    assert download["url"] == f"http://localhost:8000/downloads/{token}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes = 256 bits
    expires_at = datetime.datetime.fromisoformat(download["expires_at"]).timestamp()
    assert before + 2 * 86400 - 5 < expires_at < time.time() + 2 * 86400 + 5
    assert pending_jobs(app, "downloads") == 1  # its build_archive job, waiting in the downloads queue
    other = create_download(app, order[0]["id"])
    assert other["url"] != download["url"] and pending_jobs(app, "downloads") == 2


def test_download_and_job_commit_together_or_not_at_all(app, order, monkeypatch):
    def broken_dispatch(*args, **kwargs):
        raise RuntimeError("queue unavailable")

    monkeypatch.setattr(app, "dispatch", broken_dispatch)
    with pytest.raises(RuntimeError):
        create_download(app, order[0]["id"])
    assert list_downloads(app) == []


def test_create_refuses_bad_input(app, order):
    with pytest.raises(NotFound, match="no order with id 99"):
        create_download(app, 99)
    with pytest.raises(UsageError, match="expires-days"):
        create_download(app, order[0]["id"], expires_days=0)
    with pytest.raises(UsageError, match="not a thumbnail conversion"):
        create_download(app, order[0]["id"], conversion="huge")
    assert list_downloads(app) == [] and pending_jobs(app, "downloads") == 0


def test_the_worker_builds_a_verified_private_archive(app, order, workdir):
    download = create_download(app, order[0]["id"])
    report = run_downloads(app)
    assert (report.done, report.failed) == (1, 0)
    shown = show_download(app, download["id"])
    assert shown["status"] == "ready" and shown["error"] is None and shown["file_count"] == 3
    path = shown["path"]
    assert os.path.dirname(path) == str(downloads_dir(workdir).resolve())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert shown["size_bytes"] == os.path.getsize(path)
    assert shown["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    oid = order[0]["id"]
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names == [f"Order-{oid}/001-IMG_0003.jpg", f"Order-{oid}/002-IMG_0001.jpg", f"Order-{oid}/003-IMG_0002.jpg"]
        for name, original in zip(names, order[1]):
            assert z.read(name) == original.read_bytes()
            assert z.getinfo(name).compress_type == zipfile.ZIP_STORED
    assert temp_files(workdir) == []
    mtime = os.stat(path).st_mtime_ns
    build_download(app, download["id"])  # run again (at least once): nothing rebuilt
    assert os.stat(path).st_mtime_ns == mtime


def test_odd_file_names_come_out_safe_and_unique(app, photos):
    ids, paths = photos(3, names=["x.jpg", "X.JPG", "bad\x01name?.jpg"])
    order = create_order(app, "ada@example.com", photo_ids=ids)
    download = create_download(app, order["id"])
    build_download(app, download["id"])
    with zipfile.ZipFile(show_download(app, download["id"])["path"]) as z:
        assert z.namelist() == [f"Order-{order['id']}/001-x.jpg", f"Order-{order['id']}/002-X.JPG",
                                f"Order-{order['id']}/003-bad_name_.jpg"]


def test_a_photo_deleted_before_the_build_fails_the_download_with_its_reason(app, order, workdir):
    download = create_download(app, order[0]["id"])
    order[1][1].unlink()
    report = run_downloads(app)
    assert report.failed == 1
    shown = show_download(app, download["id"])
    assert shown["status"] == "failed" and shown["path"] is None
    assert "missing on disk" in shown["error"] and order[1][1].name in shown["error"]
    assert os.listdir(downloads_dir(workdir)) == []


def test_a_conversion_archive_holds_the_thumbnails(app, order, workdir):
    from photojobs.errors import RetryLater

    download = create_download(app, order[0]["id"], conversion="thumb")
    # The photos' processing is set in storage on purpose (pending, then ready with made-up
    # thumbnails): the archive job's side is what this test is about, not Pillow's.
    storage_rows(workdir, "UPDATE photos SET status = 'pending'")
    with pytest.raises(RetryLater, match="not processed yet"):  # photos still pending
        build_download(app, download["id"])
    thumbs = []
    for i, photo_id in enumerate(p["photo_id"] for p in order[0]["photos"]):
        rel = f"thumbnails/t{i}.jpg"
        (workdir / "storage" / rel).write_bytes(b"\xff\xd8thumb%d" % i)
        thumbs.append(workdir / "storage" / rel)
        storage_rows(workdir, "UPDATE photos SET status = 'ready', thumbnails = ? WHERE id = ?",
                     [json.dumps({"thumb": {"path": rel, "width": 320, "height": 213}}), photo_id])
    build_download(app, download["id"])
    with zipfile.ZipFile(show_download(app, download["id"])["path"]) as z:
        assert z.namelist()[0] == f"Order-{order[0]['id']}/001-IMG_0003-thumb.jpg"
        assert [z.read(n) for n in z.namelist()] == [t.read_bytes() for t in thumbs]


def test_notify_queues_the_download_ready_mail_once_ready(app, order):
    download = create_download(app, order[0]["id"], notify=True)
    assert outbox_rows(app) == []
    build_download(app, download["id"])
    (mail,) = outbox_rows(app)
    assert mail["template"] == "download-ready" and mail["to_addr"] == "ada@example.com"
    assert mail["context"] == {"order_id": order[0]["id"], "download_id": download["id"]}
    build_download(app, download["id"])  # a second run (at least once) does not mail twice
    assert len(outbox_rows(app)) == 1


def test_an_expired_download_is_not_built(app, order, workdir):
    download = create_download(app, order[0]["id"])
    # its expiry moved into the past in storage, on purpose: no command shortens a download's life
    storage_rows(workdir, "UPDATE downloads SET expires_at = ? WHERE id = ?", [time.time() - 1, download["id"]])
    assert build_download(app, download["id"])["status"] == "expired"
    assert os.listdir(downloads_dir(workdir)) == []


def test_cli_downloads(cli, app, order):
    oid = str(order[0]["id"])
    created = cli("downloads", "create", oid, "--expires-days", "3", "--json")
    assert created.returncode == 0, created.stderr
    download = json.loads(created.stdout)
    built = cli("build-archive")
    assert built.returncode == 0, built.stderr
    assert "1 done" in built.stdout
    shown = json.loads(cli("downloads", "show", str(download["id"]), "--json").stdout)
    assert CONTRACT <= set(shown) and shown["status"] == "ready" and shown["file_count"] == 3
    listed = json.loads(cli("--json", "downloads", "list").stdout)
    assert [d["id"] for d in listed] == [download["id"]]
    assert cli("downloads", "list").returncode == 0
    assert cli("downloads", "show", "77").returncode == 2
    order[1][0].unlink()
    cli("downloads", "create", oid)
    failed = cli("build-archive")
    assert failed.returncode == 1
    assert list_downloads(app, status="failed")[0]["error"].startswith("photo ")


def test_a_photo_replaced_by_a_folder_fails_at_once_with_its_reason(app, order, workdir):
    download = create_download(app, order[0]["id"])
    order[1][2].unlink()
    order[1][2].mkdir()
    report = run_downloads(app)
    assert report.failed == 1
    shown = show_download(app, download["id"])
    assert shown["status"] == "failed" and "is not a regular file" in shown["error"] and temp_files(workdir) == []


def test_a_mail_set_up_that_refuses_the_notice_leaves_the_archive_ready(app, order, monkeypatch):
    import photojobs.mail

    def refuse(*args, **kwargs):
        with app.transaction() as conn:  # a half-queued mail (a stand-in's own row) is rolled back with it
            conn.execute("INSERT INTO outbox (template, to_addr, status, created_at) VALUES ('x', 'y', 'pending', 0)")
        raise UsageError("[mail] from is not one address")

    download = create_download(app, order[0]["id"], notify=True)
    monkeypatch.setattr(photojobs.mail, "queue_mail", refuse)
    shown = build_download(app, download["id"])
    assert shown["status"] == "ready" and "mail could not be queued: [mail] from" in shown["error"]
    assert outbox_rows(app) == []


def test_downloads_conversion_setting_is_the_default_and_checked(workdir, order):
    import photojobs
    from photojobs.errors import ConfigError

    config = workdir / "photojobs.toml"
    config.write_text(config.read_text() + '\n[downloads]\nconversion = "thumb"\n')
    with photojobs.connect(config) as app:
        assert create_download(app, order[0]["id"])["conversion"] == "thumb"
        assert create_download(app, order[0]["id"], conversion="web")["conversion"] == "web"
    config.write_text(config.read_text().replace('"thumb"', '"huge"'))
    with pytest.raises(ConfigError, match=r"\[downloads\] conversion"):  # checked when the settings load
        photojobs.connect(config)
