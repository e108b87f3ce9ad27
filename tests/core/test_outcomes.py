"""What recording an attempt's outcome says: a worker that no longer holds its job records
nothing, and says so (LOST), instead of claiming a retry it did not record."""

from __future__ import annotations

from photojobs.runner import FAILED, LOST, RETRY, record_failure


def test_a_worker_that_lost_its_job_records_nothing_and_says_so(app) -> None:
    job_id = app.dispatch("flaky", {"fail_times": 5})
    (stale,) = app.backend.claim(["default"], "stale-worker")
    app.backend.release("stale-worker")  # its lease ran out; the job went back and another took it
    (fresh,) = app.backend.claim(["default"], "fresh-worker")
    assert record_failure(app, stale, "stale-worker", OSError("woke up late"), 1.0) == LOST
    assert record_failure(app, stale, "stale-worker", OSError("woke up late"), 1.0, permanent=True) == LOST
    assert app.backend.holds(job_id, "fresh-worker")  # untouched by the stale attempt
    assert record_failure(app, fresh, "fresh-worker", OSError("transient"), 1.0) == RETRY
    last = app.backend.claim_id(job_id, "fresh-worker")
    assert record_failure(app, last, "fresh-worker", OSError("broken"), 1.0, permanent=True) == FAILED
    (row, errors) = app.backend.failed_job(job_id)
    assert [e["message"] for e in errors] == ["transient", "broken"]  # nothing of the stale attempt
