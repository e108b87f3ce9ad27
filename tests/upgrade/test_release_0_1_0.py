"""A database made by release 0.1.0 upgrades with `photojobs migrate` and keeps its work.

tests/fixtures/release-0.1.0.db was written by 0.1.0's own code (see
make_release_0_1_0_db.py next to it): photos (three ready, one failed), an order, a
ready and a pending download, a sent and a pending outbox row, done/pending/delayed
jobs, failed jobs with their error history, two batches, a paused queue, a schedule run.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import cli_env

FIXTURE = Path(__file__).parent.parent / "fixtures" / "release-0.1.0.db"


@pytest.fixture
def old_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "old"
    work.mkdir()
    shutil.copyfile(FIXTURE, work / "photojobs.db")
    (work / "photojobs.db").chmod(0o600)
    (work / "photojobs.toml").write_text('db = "photojobs.db"\nstorage = "storage"\nimports = ["sample_jobs"]\n'
                                         '[mail]\ntransport = "file"\n')
    monkeypatch.chdir(work)
    return work


def _schema(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:  # inspecting storage on purpose: the two schemas must match
        return {(r[0], r[1]) for r in conn.execute(
            "SELECT type, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND sql IS NOT NULL")}


def _as_of_today(stored: str, download: dict) -> str:
    """A download's status as a user sees it now: "expired" once its expiry has passed."""
    return "expired" if datetime.fromisoformat(download["expires_at"]) <= datetime.now(timezone.utc) else stored


def _photojobs(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=60)


def test_migrate_upgrades_a_release_0_1_0_database_and_keeps_its_work(old_workspace: Path, workdir: Path) -> None:
    import photojobs
    from photojobs import ops
    from photojobs.archives.downloads import list_downloads
    from photojobs.orders import show_order
    from photojobs.mail.outbox import list_outbox
    from photojobs.photos.store import get_photo, list_photos
    from photojobs.schedule import last_runs
    from photojobs.worker import WorkerOptions

    migrated = _photojobs(old_workspace, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert _schema(old_workspace / "photojobs.db") == _schema(workdir / "photojobs.db")  # as a fresh init's
    assert _photojobs(old_workspace, "migrate").stdout.strip() == "Schema is up to date."

    with photojobs.connect(old_workspace / "photojobs.toml") as app:
        failed = ops.list_failed(app)
        assert sorted(job["name"] for job in failed) == ["doomed", "flaky", "process_photo"]
        flaky = ops.show_failed(app, next(job["id"] for job in failed if job["name"] == "flaky"))
        assert [e["attempt"] for e in flaky["errors"]] == [1, 2, 3]
        assert flaky["errors"][-1]["message"] == "transient failure 3" and flaky["payload"] == {"fail_times": 9}

        photos = list_photos(app)
        assert [p["status"] for p in photos] == ["failed", "ready", "ready", "ready"]
        ready = get_photo(app, photos[1]["id"])
        assert (ready["width"], ready["height"], ready["album"]) == (64, 48, "wedding")
        assert ready["thumbnails"] and ready["sha256"]

        order = show_order(app, 1)
        assert order["email"] == "ada@example.com" and order["photo_count"] == 3
        downloads = {d["id"]: d for d in list_downloads(app)}
        # The fixture's expiry dates are kept; whether they have passed depends on today.
        assert downloads[1]["expires_at"] == "2026-12-08T22:33:29+00:00"
        assert downloads[2]["expires_at"] == "2026-12-04T22:33:30+00:00"
        assert downloads[1]["status"] == _as_of_today("ready", downloads[1]) and downloads[1]["file_count"] == 3
        assert downloads[2]["status"] == _as_of_today("pending", downloads[2]) and downloads[2]["notify"] is True

        outbox = {row["id"]: row for row in list_outbox(app)}
        assert (outbox[1]["status"], outbox[2]["status"]) == ("sent", "pending")
        assert outbox[2]["to_addr"] == "bob@example.com"

        queues = ops.status(app)["queues"]
        assert queues["emails"]["paused"] is True and queues["emails"]["pending"] == 1
        assert queues["downloads"]["pending"] == 1
        assert (queues["default"]["pending"], queues["default"]["delayed"], queues["default"]["failed"]) == (1, 1, 2)
        batches = {b["name"]: b for b in ops.list_batches(app)}
        assert (batches["three noops"]["done"], batches["three noops"]["pending"]) == (2, 1)
        assert last_runs(app)["prune_failed"]["run_at"] == "2026-11-29T03:00:00Z"

        # The upgraded queue still works: the pending no-op runs, the delayed one waits.
        report = app.work(WorkerOptions(queues=["default"], stop_when_empty=True))
        assert (report.done, report.failed) == (1, 0)
        after = ops.status(app)["queues"]["default"]
        assert (after["pending"], after["delayed"], after["failed"]) == (0, 1, 2)
        assert ops.list_batches(app)[0]["finished"] is True


def test_migrate_files_absolute_paths_under_the_default_library(old_workspace: Path) -> None:
    """m008: the longest common folder of the photos' absolute paths becomes library
    "default" and each path relative to it; `photos list` shows the same paths as before;
    a ready archive's path becomes relative to the storage root."""
    import json

    import photojobs
    from photojobs.libraries import listing
    from photojobs.storage import downloads, photos

    with sqlite3.connect(old_workspace / "photojobs.db") as conn:  # what 0.1.0 stored, read before the upgrade
        before = [r[0] for r in conn.execute("SELECT path FROM photos ORDER BY id")]
    assert _photojobs(old_workspace, "migrate").returncode == 0
    listed = _photojobs(old_workspace, "photos", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [p["path"] for p in json.loads(listed.stdout)] == before
    assert {p["library"] for p in json.loads(listed.stdout)} == {"default"}
    with photojobs.connect(old_workspace / "photojobs.toml") as app:
        shoot = str(Path(before[0]).parent)
        assert [(lib["name"], lib["folder"], lib["source"], lib["photos"]) for lib in listing(app.settings, app.backend)
                ] == [("default", shoot, "database", 4)]
        assert [r["path"] for r in photos.listed(app.backend)] == [Path(p).name for p in before]
        assert downloads.get(app.backend, 1)["path"] == "downloads/order-1-download-1.zip"
