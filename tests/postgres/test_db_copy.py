"""`photojobs db copy --to postgresql://...`: a real installation (release 0.1.0's
fixture, migrated) moves to PostgreSQL with every row, and the copy goes on working."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from photojobs.settings import load
from photojobs.storage import downloads, libraries, open_backend, orders, outbox, photos, schedule_runs

from .. import postgres_server
from ..conftest import cli_env

pytestmark = postgres_server.marks()
FIXTURE = Path(__file__).parent.parent / "fixtures" / "release-0.1.0.db"


def _photojobs(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def studio(tmp_path: Path) -> Path:
    """An SQLite installation made by release 0.1.0, migrated to this version."""
    shutil.copyfile(FIXTURE, tmp_path / "photojobs.db")
    (tmp_path / "photojobs.toml").write_text('db = "photojobs.db"\nstorage = "storage"\n')
    assert _photojobs(tmp_path, "migrate").returncode == 0
    return tmp_path


def _everything(backend) -> dict:
    """What a user sees of each table, through the storage seam (engine-neutral)."""
    failed = {r["id"]: (dict(r), [dict(e) for e in backend.failed_job(r["id"])[1]]) for r in backend.list_failed()}
    now = time.time()
    return {
        "stats": {q: {k: v for k, v in s.items() if k not in ("mean_s", "p95_s")}
                  for q, s in backend.queue_stats(now, now - 10 * 365 * 86400).items()},
        "failed": failed,
        "paused": sorted(backend.paused()),
        "batches": [dict(r) for r in backend.batches(50)],
        "photos": [dict(r) for r in photos.listed(backend)],
        "orders": [dict(r) for r in orders.listed(backend)],
        "order_photos": [[dict(p) for p in orders.photos_of(backend, r["id"])] for r in orders.listed(backend)],
        "downloads": [dict(r) for r in downloads.listed(backend)],
        "outbox": [dict(r) for r in outbox.listed(backend)],
        "schedule": {k: dict(v) for k, v in schedule_runs.latest(backend).items()},
        "libraries": libraries.recorded(backend),
    }


def _job_payloads(backend) -> list:
    return [json.loads(r[0]) for r in backend.execute("SELECT payload FROM jobs ORDER BY id").fetchall()]


def test_db_copy_moves_every_row_and_the_copy_keeps_working(studio: Path, pg_url: str) -> None:
    result = _photojobs(studio, "db", "copy", "--to", pg_url, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert rows["jobs"] > 5 and rows["job_errors"] > 0 and rows["photos"] == 4 and rows["outbox"] == 2
    assert rows["libraries"] == 1  # the migrated absolute paths' folder, "default"

    source = open_backend(load(config=studio / "photojobs.toml", env={}))
    target = open_backend(load(config=studio / "photojobs.toml", env={}, db=pg_url))
    assert _everything(target) == _everything(source)
    assert _job_payloads(target) == _job_payloads(source)

    # New rows continue after the copied ids; a failed job retries on PostgreSQL.
    failed_id = target.list_failed()[0]["id"]
    assert target.retry_failed(ids=[failed_id]).retried == [failed_id]
    with target.transaction() as tx:
        new_photo = photos.insert(tx, "default", "new.jpg", None, 1, 1, time.time())
    assert new_photo > max(r["id"] for r in photos.listed(source))

    again = _photojobs(studio, "db", "copy", "--to", pg_url)
    assert again.returncode == 2 and "is not empty" in again.stderr  # never into a database in use


def test_db_copy_refuses_what_is_not_an_sqlite_source_or_a_postgresql_target(studio: Path, pg_url: str) -> None:
    result = _photojobs(studio, "db", "copy", "--to", str(studio / "other.db"))
    assert result.returncode == 2 and "postgresql:// URL" in result.stderr
    result = _photojobs(studio, "--db", pg_url, "db", "copy", "--to", pg_url)
    assert result.returncode == 2 and "not one" in result.stderr
