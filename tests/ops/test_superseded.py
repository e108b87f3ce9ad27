"""A failed job superseded by a later success with its unique key (a photo fixed and re-added)."""

from __future__ import annotations

import json

from photojobs.samples import write_sample_jpeg


def test_a_fixed_photo_leaves_the_failed_list_and_counts(opsdir, run, run_json):
    photo = opsdir / "shoot" / "bride.jpg"
    photo.parent.mkdir()
    photo.write_text("not a jpeg yet")
    assert run_json("photos", "add", str(photo.parent))["queued"] == 1
    assert run("process-photos").returncode == 1
    [failed] = run_json("failed", "list")
    assert run_json("status")["queues"]["photos"]["failed"] == 1

    write_sample_jpeg(photo, (120, 80))  # the photographer fixes the file and adds it again
    assert run_json("photos", "add", str(photo.parent))["changed"] == 1
    assert run("process-photos").returncode == 0
    [ready] = run_json("photos", "list", "--status", "ready")
    new_job = ready["last_job_id"]  # the job that processed it
    assert ready["last_job_status"] == "done"

    assert run_json("failed", "list") == []
    assert run_json("status")["queues"]["photos"]["failed"] == 0
    assert run_json("failed", "retry", "--all") == {"retried": [], "skipped": []}
    shown = run_json("failed", "show", str(failed["id"]))
    assert shown["superseded_by"] == new_job and shown["errors"]
    human = run("failed", "show", str(failed["id"]))
    assert f"Superseded by job {new_job}" in human.stdout
    refused = run("failed", "retry", str(failed["id"]))
    assert refused.returncode == 2 and f"superseded by job {new_job}" in refused.stderr
    # flush still deletes it: it is a failed record
    assert "Deleted 1 failed job" in run("failed", "flush", "--yes").stdout


def test_a_later_failure_with_the_same_key_is_not_superseded(opsdir, run, run_json):
    first = run_json("dispatch", "doomed", "--unique-key", "k")["id"]
    assert run("work", "--stop-when-empty").returncode == 1
    second = run_json("dispatch", "doomed", "--unique-key", "k")["id"]
    assert run("work", "--stop-when-empty").returncode == 1
    assert sorted(r["id"] for r in run_json("failed", "list")) == [first, second]
    other = run_json("dispatch", "noop", "--unique-key", "other")["id"]
    assert run("work", "--stop-when-empty").returncode == 0
    assert len(run_json("failed", "list")) == 2
    assert json.loads(run("failed", "show", str(first), "--json").stdout)["superseded_by"] is None
    assert other


def test_an_older_database_upgrades_and_marks_fixed_failures(opsdir, run, run_json):
    """A database from before m003-m005: `migrate` adds the columns and supersedes the
    failures a later done job with the same key already fixed."""
    import sqlite3

    conn = sqlite3.connect(opsdir / "photojobs.db", isolation_level=None)  # an older schema, made on purpose
    conn.executescript("""
        DROP TRIGGER jobs_supersede;
        DROP INDEX jobs_unique_key;
        ALTER TABLE jobs DROP COLUMN superseded_by;
        ALTER TABLE workers DROP COLUMN boot_id;
        ALTER TABLE workers DROP COLUMN pid_ns;
        ALTER TABLE workers DROP COLUMN pid_start;
        ALTER TABLE outbox DROP COLUMN resends;
        DELETE FROM migrations WHERE name IN ('m003_job_superseded', 'm004_worker_identity', 'm005_outbox_resends');
        INSERT INTO jobs (id, name, queue, payload, status, attempts, available_at, created_at, finished_at,
                          unique_key) VALUES
            (1, 'noop', 'default', '{}', 'failed', 1, 0, 0, 1, 'photo:1'),
            (2, 'noop', 'default', '{}', 'done', 1, 0, 0, 2, 'photo:1'),
            (3, 'noop', 'default', '{}', 'failed', 1, 0, 0, 3, 'photo:2');
    """)
    conn.close()
    old = run("status")
    assert old.returncode == 3 and "photojobs migrate" in old.stderr
    assert run("migrate").returncode == 0
    assert [r["id"] for r in run_json("failed", "list")] == [3]
    assert run_json("failed", "show", "1")["superseded_by"] == 2
