"""The history does not slow the queue or `status` down: on SQLite, no statement of the job's
life, of `status` or of the prune reads the jobs table whole (each goes through an index
that skips the finished rows), and an upgraded database counts the done jobs it had.

These tests inspect SQLite's query plans on purpose: a full scan is what made `status`
take seconds and the worker's prune hold the write lock with a million finished jobs.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from photojobs.storage import AttemptError, NewJob


class Recorder:
    """A sqlite3 connection that remembers each statement and its parameters: the query
    plans of what status runs are inspected in storage on purpose (no full scans)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.statements = conn, []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append((sql, params))
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = list(rows)
        if rows:
            self.statements.append((sql, rows[0]))
        return self.conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def full_scans(recorder: Recorder, table: str) -> list[str]:
    """The recorded statements whose plan reads `table` whole (not through an index)."""
    found = []
    for sql, params in recorder.statements:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH")):
            continue
        plan = [row[3] for row in recorder.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        if any(step == f"SCAN {table}" for step in plan):
            found.append(f"{' '.join(sql.split())[:160]} -> {plan}")
    return found


@pytest.fixture
def recorded(app):
    """The app's backend with 300 done and 5 failed jobs, recording statements from now on."""
    backend = app.backend
    ids = backend.enqueue([NewJob("noop", {}, "default", time.time()) for _ in range(305)]).ids
    backend.claim(["default"], "w", limit=305)
    backend.complete([(job_id, 0.01) for job_id in ids[:300]], "w")
    for job_id in ids[300:]:
        backend.fail(job_id, "w", AttemptError("OSError", "boom"))
    recorder = Recorder(backend.conn)
    backend.conn = recorder
    yield backend, recorder
    backend.conn = recorder.conn


def test_the_job_s_life_status_and_prune_never_scan_the_jobs_table(recorded) -> None:
    backend, recorder = recorded
    now = time.time()
    ids = backend.enqueue([NewJob("noop", {}, "default", now) for _ in range(4)]).ids
    assert backend.has_ready(["emails", "default"])
    backend.claim(["emails", "default"], "w2", limit=4)
    backend.renew(["w2"])
    backend.complete([(ids[0], 0.5)], "w2")
    backend.retry_later(ids[1], "w2", 60, AttemptError("OSError", "again"))
    backend.fail(ids[2], "w2", AttemptError("OSError", "boom"))
    backend.release("w2", [ids[3]])
    backend.rescue_expired("rescuer")
    backend.reserved_by("w2")
    stats = backend.queue_stats(time.time(), time.time() - 3600)
    backend.queue_names()
    backend.count_jobs("default", "pending")
    backend.list_failed("default", 10)
    backend.prune(time.time() - 3600)
    backend.discard(status="failed", finished_before=time.time() - 7 * 86400)
    assert stats["default"]["done_since"] == 301 and stats["default"]["failed"] == 6
    assert full_scans(recorder, "jobs") == []


def test_photos_list_filters_read_through_indexes(app, recorded, tmp_path) -> None:
    from PIL import Image

    from photojobs.photos.store import add_photos, list_photos

    for n in range(3):
        Image.new("RGB", (32, 24), (n * 80, 0, 0)).save(tmp_path / f"{n}.jpg", "JPEG")
    add_photos(app, [tmp_path], album="Wedding")
    backend, recorder = recorded
    recorder.statements.clear()
    assert list_photos(app, album="wedding") and list_photos(app, status="pending")
    assert full_scans(recorder, "photos") == []


def test_an_upgraded_database_counts_the_done_jobs_it_had(app, workdir, cli) -> None:
    import json

    backend = app.backend
    durations = {"default": [0.002 * 1.1 ** n for n in range(60)], "emails": [0.3, 0.1, 0.2]}
    for queue, times in durations.items():
        ids = backend.enqueue([NewJob("noop", {}, queue, time.time()) for _ in times]).ids
        backend.claim([queue], "w", limit=len(ids))
        backend.complete(list(zip(ids, times)), "w")
    app.close()
    figures = ("done_last_hour", "failed_last_hour", "mean_s", "p95_s", "pending", "failed")

    def status() -> dict:
        done = cli("status", "--json")
        assert done.returncode == 0, done.stderr
        return {q: {k: v[k] for k in figures} for q, v in json.loads(done.stdout)["queues"].items()}

    def minutes() -> list[tuple]:  # the rollup's rows, on purpose: the backfill must rebuild each bucket
        with sqlite3.connect(workdir / "photojobs.db") as conn:
            return conn.execute("SELECT * FROM queue_minutes ORDER BY minute, queue").fetchall()

    before, counted = status(), minutes()
    assert before["default"]["done_last_hour"] == 60 and before["emails"]["mean_s"] == pytest.approx(0.2)
    with sqlite3.connect(workdir / "photojobs.db") as conn:  # back to the schema before m006 (0.1.0's indexes)
        conn.executescript("""
            DROP TABLE queue_minutes; DROP INDEX jobs_done; DROP INDEX jobs_failed; DROP INDEX photos_status;
            CREATE INDEX jobs_finished ON jobs(status, finished_at) WHERE status IN ('done', 'failed');
            DELETE FROM migrations WHERE name IN ('m006_queue_minutes', 'm007_photos_by_status');
        """)
    refused = cli("status")
    assert refused.returncode == 3 and "photojobs migrate" in refused.stderr
    migrated = cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert status() == before
    backfilled = minutes()
    assert [row[:-1] for row in backfilled] == [row[:-1] for row in counted]  # queue, minute, counts, each bucket
    assert [row[-1] for row in backfilled] == pytest.approx([row[-1] for row in counted])  # the sum of run times
