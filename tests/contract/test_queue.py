"""The job's life through the Backend protocol: enqueue, claim, renew, complete,
retry_later, fail, release, rescue_expired, prune; unique keys and pause."""

from __future__ import annotations

import time

import pytest

from photojobs.errors import DuplicateJob
from photojobs.storage import Backend

from .conftest import boom, enqueue, new_job


def test_claim_takes_ready_jobs_oldest_first(backend: Backend) -> None:
    first, second, third = enqueue(backend, new_job(payload={"n": 1}), new_job(payload={"n": 2}), new_job())
    claimed = backend.claim(["default"], "w1", limit=2)
    assert [job.id for job in claimed] == [first, second]
    assert claimed[0].payload == {"n": 1} and claimed[0].attempts == 1 and claimed[0].queue == "default"
    assert [job.id for job in backend.claim(["default"], "w2", limit=5)] == [third]
    assert backend.claim(["default"], "w3") == []


def test_queues_are_claimed_in_strict_priority(backend: Backend) -> None:
    photo = enqueue(backend, new_job(queue="photos"))[0]
    mail = enqueue(backend, new_job(queue="emails"))[0]
    assert [j.id for j in backend.claim(["emails", "photos"], "w", limit=5)] == [mail]  # not both: one queue a claim
    assert [j.id for j in backend.claim(["emails", "photos"], "w", limit=5)] == [photo]


def test_a_delayed_job_waits_until_due(backend: Backend) -> None:
    enqueue(backend, new_job(delay=3600))
    assert backend.claim(["default"], "w") == [] and not backend.has_ready(["default"])
    due = enqueue(backend, new_job(delay=-1))[0]
    assert backend.has_ready(["default"]) and [j.id for j in backend.claim(["default"], "w")] == [due]


def test_only_the_holder_completes_a_job(backend: Backend) -> None:
    job_id = enqueue(backend, new_job())[0]
    backend.claim(["default"], "w1")
    backend.complete([(job_id, 0.5)], "someone-else")
    assert backend.job_status(job_id) == "reserved"
    backend.complete([(job_id, 0.5)], "w1")
    assert backend.job_status(job_id) == "done"
    assert backend.queue_stats(time.time(), time.time() - 60)["default"]["done_since"] == 1


def test_retry_later_records_the_error_and_delays_the_job(backend: Backend) -> None:
    job_id = enqueue(backend, new_job())[0]
    backend.claim(["default"], "w1")
    assert not backend.retry_later(job_id, "not-the-holder", 0, boom())
    assert backend.retry_later(job_id, "w1", 3600, boom("first"), duration=0.1)
    assert backend.job_status(job_id) == "pending" and backend.claim(["default"], "w1") == []
    stats = backend.queue_stats(time.time(), time.time() - 60)["default"]
    assert (stats["pending"], stats["delayed"]) == (0, 1)
    assert not backend.retry_later(job_id, "w1", 0, boom())  # pending now: nobody holds it


def test_retries_count_attempts_until_fail_moves_the_job_to_the_failed_table(backend: Backend) -> None:
    job_id = enqueue(backend, new_job(payload={"photo_id": 3}))[0]
    for attempt in (1, 2):
        (job,) = backend.claim(["default"], "w")
        assert job.attempts == attempt
        assert backend.retry_later(job_id, "w", 0, boom(f"attempt {attempt}"))
    backend.claim(["default"], "w")
    assert not backend.fail(job_id, "other", boom())
    assert backend.fail(job_id, "w", boom("attempt 3"), duration=1.5)
    (listed,) = backend.list_failed()
    assert listed["id"] == job_id and listed["attempts"] == 3 and listed["last_error"] == "OSError: attempt 3"
    row, errors = backend.failed_job(job_id)
    assert row["payload"] and [e["attempt"] for e in errors] == [1, 2, 3]
    assert [e["message"] for e in errors] == ["attempt 1", "attempt 2", "attempt 3"]
    assert errors[0]["traceback"] == "Traceback: ..." and errors[0]["error_class"] == "OSError"
    assert backend.failed_job(job_id + 1) is None


def test_the_failed_list_filters_by_queue_and_limits(backend: Backend) -> None:
    ids = enqueue(backend, new_job(queue="a"), new_job(queue="b"), new_job(queue="b"))
    for queue in ("a", "b", "b"):
        (job,) = backend.claim([queue], "w")
        backend.fail(job.id, "w", boom())
    assert [r["id"] for r in backend.list_failed(queue="b")] == [ids[2], ids[1]]
    assert len(backend.list_failed(limit=1)) == 1


def test_retry_failed_gives_fresh_tries_and_skips_a_held_unique_key(backend: Backend) -> None:
    keyed, plain = enqueue(backend, new_job(unique_key="photo:1"), new_job())
    for _ in range(2):
        (job,) = backend.claim(["default"], "w")
        backend.fail(job.id, "w", boom())
    live = enqueue(backend, new_job(unique_key="photo:1"))[0]  # the key is free once its job failed
    assert backend.retry_failed(ids=[plain, 999999]).missing == [999999]
    assert backend.job_status(plain) == "failed"  # nothing changed
    result = backend.retry_failed()
    assert result.retried == [plain] and result.skipped == [(keyed, "photo:1")]
    (job,) = backend.claim(["default"], "w")
    assert job.id == plain and job.attempts == 1
    assert backend.live_job("photo:1") == live


def test_retry_failed_by_queue(backend: Backend) -> None:
    a, b = enqueue(backend, new_job(queue="a"), new_job(queue="b"))
    for queue in ("a", "b"):
        (job,) = backend.claim([queue], "w")
        backend.fail(job.id, "w", boom())
    assert backend.retry_failed(queue="b").retried == [b]
    assert backend.job_status(a) == "failed"


def test_a_live_unique_key_refuses_a_second_job_or_is_skipped(backend: Backend) -> None:
    first = enqueue(backend, new_job(unique_key="k"))[0]
    with pytest.raises(DuplicateJob):
        backend.enqueue([new_job(unique_key="k")])
    with pytest.raises(DuplicateJob):
        backend.enqueue_one(new_job(unique_key="k"))
    assert backend.enqueue([new_job(unique_key="k"), new_job()], skip_duplicates=True).ids[0] is None
    assert backend.live_job("k") == first
    backend.claim(["default"], "w")
    assert backend.live_job("k") == first  # reserved is live too
    backend.complete([(first, 0.0)], "w")
    assert backend.live_job("k") is None
    assert enqueue(backend, new_job(unique_key="k"))


def test_a_refused_duplicate_leaves_nothing_of_its_call(backend: Backend) -> None:
    enqueue(backend, new_job(unique_key="k"))
    with pytest.raises(DuplicateJob):
        backend.enqueue([new_job(queue="other"), new_job(unique_key="k")])
    assert backend.count_jobs("other", "pending") == 0


def test_release_gives_jobs_back_without_counting_the_attempt(backend: Backend) -> None:
    ids = enqueue(backend, new_job(), new_job(), new_job())
    backend.claim(["default"], "w", limit=3)
    assert backend.release("w", [ids[1], ids[2]]) == 2
    assert [j.id for j in backend.reserved_by("w")] == [ids[0]]
    assert backend.release("w") == 1 and backend.release("w", []) == 0
    assert [j.attempts for j in backend.claim(["default"], "w2", limit=3)] == [1, 1, 1]


def test_renew_keeps_a_lease_and_rescue_takes_over_only_expired_ones(connect) -> None:
    short = connect(lease=0.2)
    kept, lost = enqueue(short, new_job(), new_job())
    short.claim(["default"], "alive", limit=1)
    short.claim(["default"], "dead", limit=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        short.renew(["alive"])
        rescued = short.rescue_expired("rescuer")
        if rescued:
            break
        time.sleep(0.05)
    assert [(j.id, holder) for j, holder in rescued] == [(lost, "dead")] and rescued[0][0].attempts == 1
    assert short.holds(lost, "rescuer") and not short.holds(lost, "dead")
    assert short.holds(kept, "alive")
    holder, lease_until = short.lease_of(kept)
    assert holder == "alive" and lease_until > time.time() - 1  # what a child asks before it starts a job
    assert short.lease_of(lost)[0] == "rescuer"
    assert short.rescue_expired("another-rescuer") == []  # taken over once
    short.complete([(lost, 1.0)], "dead")  # the stale worker wakes late: its result does not count
    assert not short.retry_later(lost, "dead", 0, boom()) and not short.fail(lost, "dead", boom())
    assert short.job_status(lost) == "reserved"
    assert short.retry_later(lost, "rescuer", 0, boom("worker lost"))
    assert [j.id for j in short.claim(["default"], "w")] == [lost]


def test_prune_removes_old_done_jobs_only(backend: Backend) -> None:
    done, failed, pending = enqueue(backend, new_job(), new_job(), new_job())
    backend.claim(["default"], "w", limit=2)
    backend.complete([(done, 0.0)], "w")
    backend.fail(failed, "w", boom())
    assert backend.prune(time.time() - 3600) == 0
    assert backend.prune(time.time() + 1) == 1
    assert backend.job_status(done) is None
    assert (backend.job_status(failed), backend.job_status(pending)) == ("failed", "pending")


def test_discard_deletes_jobs_by_status_queue_ids_and_age(backend: Backend) -> None:
    a1, a2, b1 = enqueue(backend, new_job(queue="a"), new_job(queue="a"), new_job(queue="b"))
    assert backend.count_jobs("a", "pending") == 2
    assert backend.discard(status="pending", ids=[a1]) == 1
    assert backend.discard(status="failed", queue="a") == 0
    assert backend.discard(status="pending", queue="a") == 1
    (job,) = backend.claim(["b"], "w")
    backend.fail(job.id, "w", boom())
    assert backend.discard(status="failed", finished_before=time.time() - 60) == 0
    assert backend.discard(status="failed", finished_before=time.time() + 1) == 1
    assert backend.failed_job(b1) is None and backend.job_status(a2) is None


def test_a_paused_queue_is_not_claimed_and_keeps_its_jobs(backend: Backend) -> None:
    mail = enqueue(backend, new_job(queue="emails"))[0]
    assert backend.pause("emails") and not backend.pause("emails")
    assert "emails" in backend.paused() and not backend.has_ready(["emails"])
    assert backend.claim(["emails"], "w") == []
    assert backend.resume("emails") and not backend.resume("emails")
    assert [j.id for j in backend.claim(["emails"], "w")] == [mail]


def test_claim_id_reserves_one_pending_job(backend: Backend) -> None:
    job_id = enqueue(backend, new_job(delay=3600))[0]
    job = backend.claim_id(job_id, "sync")
    assert job is not None and job.id == job_id and backend.holds(job_id, "sync")
    assert backend.claim_id(job_id, "sync") is None


def test_due_times_spaces_out_a_job_type(backend: Backend) -> None:
    now = time.time()
    enqueue(backend, new_job("send_email", delay=10), new_job("send_email", delay=20), new_job("other", delay=30))
    times = backend.due_times("send_email", now - 60, 5)
    assert len(times) == 2 and times[0] > times[1] > now
