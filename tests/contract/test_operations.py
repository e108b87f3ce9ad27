"""What operating the queue needs, through the Backend protocol: counts, batches,
workers' heartbeats, the restart signal, waiting for work, transactions."""

from __future__ import annotations

import threading
import time

import pytest

from photojobs.storage import Backend

from .conftest import boom, enqueue, new_job


def test_queue_stats_count_each_state(backend: Backend) -> None:
    ids = enqueue(backend, new_job(), new_job(), new_job(), new_job(), new_job(delay=3600))
    backend.claim(["default"], "w", limit=3)
    backend.complete([(ids[0], 0.25), (ids[1], 0.75)], "w")
    backend.fail(ids[2], "w", boom())
    stats = backend.queue_stats(time.time(), time.time() - 3600)["default"]
    assert {k: stats[k] for k in ("pending", "delayed", "reserved", "failed", "done_since", "failed_since")} == {
        "pending": 1, "delayed": 1, "reserved": 0, "failed": 1, "done_since": 2, "failed_since": 1}
    assert stats["mean_s"] == pytest.approx(0.5) and 0.75 / 2 ** 0.5 <= stats["p95_s"] <= 0.75 * 2 ** 0.5  # a bucket
    assert stats["oldest_ready"] <= time.time()
    assert backend.count_jobs("default", "pending") == 2
    assert backend.count_jobs("default", "pending", ready_at=time.time()) == 1


def test_a_batch_counts_its_jobs_and_forgets_skipped_duplicates(backend: Backend) -> None:
    enqueue(backend, new_job(unique_key="photo:2"))
    made = backend.enqueue([new_job(unique_key="photo:1"), new_job(unique_key="photo:2"), new_job()],
                           batch="shoot", skip_duplicates=True)
    assert made.batch_id is not None and made.ids[1] is None
    first, _, third = made.ids
    (job,) = backend.claim(["default"], "w")  # the unbatched job first
    backend.complete([(job.id, 0.0)], "w")
    backend.claim(["default"], "w", limit=2)
    backend.fail(first, "w", boom())
    row = backend.batch(made.batch_id)
    assert (row["name"], row["total"], row["present"]) == ("shoot", 2, 2)
    assert (row["pending"], row["reserved"], row["done"], row["failed"]) == (0, 1, 0, 1)
    assert [r["id"] for r in backend.batch_failed_jobs(made.batch_id, 10)] == [first]
    assert [r["id"] for r in backend.batches(10, unfinished_only=True)] == [made.batch_id]
    backend.complete([(third, 0.0)], "w")
    assert backend.batches(10, unfinished_only=True) == []
    assert backend.batch(made.batch_id + 1) is None


def test_a_batch_of_only_duplicates_is_no_batch(backend: Backend) -> None:
    enqueue(backend, new_job(unique_key="k"))
    made = backend.enqueue([new_job(unique_key="k")], batch="nothing new", skip_duplicates=True)
    assert made.ids == [None] and made.batch_id is None and backend.batches(10) == []


def test_workers_register_beat_and_leave(backend: Backend) -> None:
    backend.register_worker("host:1:ab", "host", 1, ["emails", "photos"], 2)
    job_id = enqueue(backend, new_job())[0]
    backend.claim(["default"], "host:1:ab/0.1")
    backend.heartbeat("host:1:ab", [job_id, 0])
    (row,) = backend.workers()
    assert (row["id"], row["queues"], row["concurrency"], row["current_jobs"]) == ("host:1:ab", "emails,photos", 2,
                                                                                    str(job_id))
    assert backend.reservations() == [(job_id, "host:1:ab/0.1")]
    backend.register_worker("host:1:ab", "host", 1, ["default"], 1)  # registered again: one row, fresh
    assert [(r["queues"], r["current_jobs"]) for r in backend.workers()] == [("default", None)]
    backend.unregister_worker("host:1:ab")
    assert backend.workers() == []


def test_a_restart_request_is_seen_by_every_connection(backend: Backend, connect) -> None:
    assert backend.restart_requested_at() is None
    backend.request_restart(1000.5)
    connect().request_restart(2000.25)
    assert backend.restart_requested_at() == 2000.25


def test_wait_for_jobs_wakes_when_another_connection_enqueues(backend: Backend, connect) -> None:
    assert backend.wait_for_jobs(0.1) is False
    other = connect()
    timer = threading.Timer(0.2, lambda: enqueue(other, new_job()))
    timer.start()
    started = time.monotonic()
    try:
        assert backend.wait_for_jobs(10) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 5
    assert backend.wait_for_jobs(10, interrupted=lambda: True) is False


def test_after_commit_runs_once_the_outermost_transaction_commits(backend: Backend) -> None:
    ran: list[str] = []
    with backend.transaction() as tx:
        tx.after_commit(lambda: ran.append("outer"))
        with backend.transaction() as inner:
            inner.after_commit(lambda: ran.append("inner"))
            enqueue(backend, new_job())
        assert ran == []
    assert ran == ["outer", "inner"]


def test_a_transaction_runs_named_parameters_and_offers_its_connection(backend: Backend) -> None:
    with backend.transaction() as tx:
        tx.execute("INSERT INTO paused_queues (queue, paused_at) VALUES (:queue, :at)", {"queue": "mine", "at": 5.0})
        assert tx.execute("SELECT paused_at FROM paused_queues WHERE queue = :queue",
                          {"queue": "mine"}).fetchone()[0] == 5.0
        assert tx.connection is not None and hasattr(tx.connection, "cursor")  # the engine's DB-API connection
    assert backend.paused() == {"mine": 5.0}


def test_a_rolled_back_transaction_keeps_nothing_and_runs_no_hook(backend: Backend) -> None:
    ran: list[str] = []
    with pytest.raises(RuntimeError):
        with backend.transaction() as tx:
            enqueue(backend, new_job())
            tx.after_commit(lambda: ran.append("never"))
            raise RuntimeError("the caller changed its mind")
    assert ran == [] and backend.count_jobs("default", "pending") == 0


def test_a_savepoint_undoes_its_block_and_its_hooks(backend: Backend) -> None:
    ran: list[str] = []
    with backend.transaction() as tx:
        kept = enqueue(backend, new_job())[0]
        with pytest.raises(ValueError):
            with tx.savepoint():
                enqueue(backend, new_job(queue="undone"))
                tx.after_commit(lambda: ran.append("undone"))
                raise ValueError
        tx.after_commit(lambda: ran.append("kept"))
    assert ran == ["kept"] and backend.job_status(kept) == "pending"
    assert backend.count_jobs("undone", "pending") == 0


def test_a_failing_hook_is_raised_after_the_others_ran(backend: Backend) -> None:
    ran: list[str] = []

    def fails() -> None:
        raise OSError("the job failed")

    with pytest.raises(OSError, match="the job failed"):
        with backend.transaction() as tx:
            tx.after_commit(fails)
            tx.after_commit(lambda: ran.append("second"))
            enqueue(backend, new_job())
    assert ran == ["second"] and backend.count_jobs("default", "pending") == 1  # committed before the hooks
