"""A failed job superseded by a later success with its unique key (a photo fixed and re-added)."""

from __future__ import annotations

import json

from photojobs.samples import write_sample_jpeg

from .conftest import db_rows


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
    new_job = db_rows(opsdir, "SELECT id FROM jobs WHERE status = 'done'")[0][0]

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
