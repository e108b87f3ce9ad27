"""batch list|show: total, done, failed and progress from the jobs of a batch."""

from __future__ import annotations

from photojobs import Dispatch

from .conftest import db_exec


def test_batch_progress_through_a_real_run(run, run_json, ops_app, opsdir):
    items = [Dispatch("noop", {"n": n}) for n in range(4)] + [Dispatch("doomed", {"reason": "corrupt"})]
    ids = ops_app.dispatch_many(items, batch="shoot 12")
    ops_app.dispatch_many([Dispatch("noop", {"n": 9})], batch="other")
    batch_id = run_json("batch", "list")[1]["id"]  # most recent first

    before = run_json("batch", "show", str(batch_id))
    assert (before["name"], before["total"], before["pending"], before["done"], before["progress"]) == \
        ("shoot 12", 5, 5, 0, 0.0)
    assert before["finished"] is False and before["finished_at"] is None

    assert run("work", "--stop-when-empty", "--queue", "default").returncode == 1
    after = run_json("batch", "show", str(batch_id))
    assert (after["total"], after["done"], after["failed"], after["pending"], after["reserved"]) == (5, 4, 1, 0, 0)
    assert after["progress"] == 1.0 and after["finished"] is True and after["finished_at"]
    assert [(j["id"], j["error"]) for j in after["failed_jobs"]] == [(ids[4], "PermanentFailure: cannot ever work: corrupt")]

    listed = run_json("batch", "list")
    assert [(b["name"], b["done"], b["failed"]) for b in listed] == [("other", 1, 0), ("shoot 12", 4, 1)]
    table = run("batch", "list")
    assert "shoot" in table.stdout and "100%" in table.stdout

    # done rows are pruned after keep_done_hours: counted as missing, progress stays complete
    # (deleted in storage on purpose: a prune would need the clock moved a day)
    db_exec(opsdir, "DELETE FROM jobs WHERE batch_id = ? AND status = 'done'", [batch_id])
    pruned = run_json("batch", "show", str(batch_id))
    assert (pruned["missing"], pruned["done"], pruned["progress"]) == (4, 0, 1.0)


def test_partial_progress_and_unfinished_filter(run_json, ops_app, opsdir):
    half = ops_app.dispatch_many([Dispatch("noop", {"n": n}) for n in range(4)], batch="half")
    [seven] = ops_app.dispatch_many([Dispatch("noop", {"n": 7})], batch="done already")
    for job_id in (half[0], half[1], seven):  # done, through the backend as a worker would
        assert ops_app.backend.claim_id(job_id, "test-worker")
        ops_app.backend.complete([(job_id, 0.0)], "test-worker")
    half = run_json("batch", "list", "--unfinished")
    assert [(b["name"], b["done"], b["pending"], b["progress"]) for b in half] == [("half", 2, 2, 0.5)]


def test_batch_show_not_found(run):
    result = run("batch", "show", "42")
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: no batch 42 (see `photojobs batch list`)"
