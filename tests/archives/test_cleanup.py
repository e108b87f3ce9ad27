"""cleanup-downloads on a mix of expired, live, orphan and temp files; the dry run changes nothing."""

import json
import os
import time
from pathlib import Path

import pytest

from photojobs.archives.cleanup import cleanup_downloads
from photojobs.archives.downloads import build_download, create_download, show_download
from photojobs.orders import create_order

from tests.conftest import storage_rows

from .conftest import downloads_dir

OLD = time.time() - 2 * 3600  # past the default grace of an hour


@pytest.fixture
def mix(app, photos, workdir, tmp_path):
    """Two ready downloads (one expired), an expired pending one, a failed expired one, an old
    orphan, a fresh orphan, an old temp file, a fresh temp file, a folder, a symlink out."""
    ids, _ = photos(2)
    order = create_order(app, "ada@example.com", photo_ids=ids)
    live, old, pending, failed = (create_download(app, order["id"]) for _ in range(4))
    build_download(app, live["id"])
    build_download(app, old["id"])
    folder = downloads_dir(workdir)
    # expiry in the past and a failed build, set in storage on purpose: no command makes them
    for d in (old, pending, failed):
        storage_rows(workdir, "UPDATE downloads SET expires_at = ? WHERE id = ?", [time.time() - 60, d["id"]])
    storage_rows(workdir, "UPDATE downloads SET status = 'failed', error = 'boom' WHERE id = ?", [failed["id"]])
    files = {}
    for name, age in [("orphan.zip", OLD), ("fresh-orphan.zip", None), (".order-1-download-9.zip.ab12.tmp", OLD),
                      (".order-1-download-8.zip.cd34.tmp", None)]:
        files[name] = folder / name
        files[name].write_bytes(b"x" * 1000)
        if age:
            os.utime(files[name], (age, age))
    (folder / "subdir").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (folder / "link.zip").symlink_to(outside)
    os.utime(folder / "link.zip", (OLD, OLD), follow_symlinks=False)
    return {"live": live, "old": old, "pending": pending, "failed": failed, "files": files, "outside": outside}


def _snapshot(app, workdir):
    # the stored rows, on purpose: `downloads list` shows a download past its expiry as
    # expired whether or not cleanup marked it, and the dry run must not mark it
    rows = [tuple(r) for r in storage_rows(workdir, "SELECT id, status, path FROM downloads ORDER BY id")]
    return rows, sorted(os.listdir(downloads_dir(workdir)))


def test_dry_run_reports_and_changes_nothing(app, workdir, mix):
    before = _snapshot(app, workdir)
    report = cleanup_downloads(app, dry_run=True)
    assert _snapshot(app, workdir) == before
    assert report["dry_run"] and report["freed_bytes"] > 2000
    assert [e["id"] for e in report["expired"]] == [mix["old"]["id"], mix["pending"]["id"]]
    assert sorted(os.path.basename(o["path"]) for o in report["orphans"]) == ["link.zip", "orphan.zip"]


def test_cleanup_collects_expired_orphan_and_stale_temp_files_only(app, workdir, mix):
    old_path = show_download(app, mix["old"]["id"])["path"]
    old_size = os.path.getsize(old_path)
    report = cleanup_downloads(app)
    assert report["freed_bytes"] == old_size + 1000 + 1000  # the symlink frees nothing
    statuses = {d: show_download(app, mix[d]["id"])["status"] for d in ("live", "old", "pending", "failed")}
    assert statuses == {"live": "ready", "old": "expired", "pending": "expired", "failed": "failed"}
    left = sorted(os.listdir(downloads_dir(workdir)))
    live_name = os.path.basename(show_download(app, mix["live"]["id"])["path"])
    assert left == sorted([live_name, "fresh-orphan.zip", ".order-1-download-8.zip.cd34.tmp", "subdir"])
    assert mix["outside"].read_text() == "keep me"  # a symlink is removed, never followed
    assert [os.path.basename(t["path"]) for t in report["temp_files"]] == [".order-1-download-9.zip.ab12.tmp"]
    again = cleanup_downloads(app)
    assert again["freed_bytes"] == 0 and not again["expired"]
    assert build_download(app, mix["pending"]["id"])["status"] == "expired"  # its queued job builds nothing


def test_cli_cleanup(cli, app, workdir, mix):
    dry = cli("cleanup-downloads", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["dry_run"] is True
    assert (mix["files"]["orphan.zip"]).exists()
    done = cli("cleanup-downloads")
    assert done.returncode == 0 and done.stdout.startswith("Freed")
    assert not mix["files"]["orphan.zip"].exists()


def test_an_expired_download_shows_expired_and_no_deleted_path(app, workdir, mix, cli):
    def listed(*args):
        done = cli("downloads", "list", *args, "--json")
        assert done.returncode == 0, done.stderr
        return {d["id"]: d for d in json.loads(done.stdout)}

    before = listed()
    assert before[mix["old"]["id"]]["status"] == "expired"  # past its expiry, cleanup not run yet
    assert before[mix["pending"]["id"]]["status"] == "expired"
    assert before[mix["live"]["id"]]["status"] == "ready" and before[mix["live"]["id"]]["path"]
    assert set(listed("--status", "expired")) == {mix["old"]["id"], mix["pending"]["id"]}
    assert set(listed("--status", "ready")) == {mix["live"]["id"]}

    cleanup_downloads(app)
    shown = json.loads(cli("downloads", "show", str(mix["old"]["id"]), "--json").stdout)
    assert shown["status"] == "expired" and shown["path"] is None
    human = cli("downloads", "show", str(mix["old"]["id"])).stdout
    assert "order-" not in human and "expired" in human


def test_max_time_stops_between_files_and_the_next_run_goes_on(cli, app, workdir, mix):
    out_of_time = cleanup_downloads(app, max_time=1e-9)  # over before the first file
    assert out_of_time["stopped_early"] is True and out_of_time["freed_bytes"] == 0
    assert mix["files"]["orphan.zip"].exists()
    done = cli("cleanup-downloads", "--max-time", "60", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stopped_early"] is False and len(report["expired"]) == 2
    assert not mix["files"]["orphan.zip"].exists()
    assert cli("cleanup-downloads", "--max-time", "0").returncode == 2


def test_a_link_is_servable_only_while_ready_unexpired_and_on_disk(app, mix):
    from photojobs.archives.downloads import servable_download

    def token(name):  # the link's last part
        return show_download(app, mix[name]["id"])["url"].rsplit("/", 1)[1]

    live = servable_download(app, token("live"))
    assert live is not None and live == Path(show_download(app, mix["live"]["id"])["path"])
    for name in ("old", "pending", "failed"):  # expired (file still there for "old"), or never built
        assert servable_download(app, token(name)) is None, name
    assert servable_download(app, "no-such-token-at-all") is None and servable_download(app, "") is None
    live.unlink()
    assert servable_download(app, token("live")) is None
