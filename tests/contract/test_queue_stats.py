"""`queue_stats`, the figures of `status` and `monitor`, against an exact computation on
the same data: counts exact; the mean close; the p95 within one histogram bucket (a factor
of sqrt(2)) of the exact nearest-rank p95 of the jobs done in the window."""

from __future__ import annotations

import math
import random
import time

import pytest

from photojobs.storage import Backend

from .conftest import boom, enqueue, new_job

BUCKET_RATIO = 2 ** 0.5  # the width of one duration bucket: each edge is sqrt(2) times the one before


def nearest_rank_p95(durations: list[float]) -> float:
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run(backend: Backend, queue: str, durations: list[float], *, fail: int = 0, retry: int = 0) -> list[int]:
    """Dispatch, claim and complete jobs of `queue` with these run times; `fail` more end in
    the failed table and `retry` more are put back for later (neither counts as done)."""
    ids = enqueue(backend, *(new_job(queue=queue) for _ in range(len(durations) + fail + retry)))
    claimed = backend.claim([queue], "w", limit=len(ids))
    assert sorted(j.id for j in claimed) == ids
    backend.complete(list(zip(ids, durations)), "w")
    for job_id in ids[len(durations):len(durations) + fail]:
        assert backend.fail(job_id, "w", boom(), duration=99.0)
    for job_id in ids[len(durations) + fail:]:
        assert backend.retry_later(job_id, "w", 3600, boom(), duration=99.0)
    return ids


def exact(stats: dict, keys: tuple[str, ...]) -> dict:
    return {key: stats[key] for key in keys}


def test_the_figures_match_an_exact_computation_on_the_same_data(backend: Backend) -> None:
    rng = random.Random(15)
    started = time.time()
    earlier = [10 ** rng.uniform(-4, 2) for _ in range(150)]  # 0.1 ms .. 100 s, done before `mark`
    run(backend, "default", earlier, fail=2)
    mark = time.time()
    later = [10 ** rng.uniform(-3.5, 1.5) for _ in range(400)] + [0.0, 0.0]
    run(backend, "default", later, fail=3, retry=4)
    emails = [rng.uniform(0.05, 0.5) for _ in range(37)]
    run(backend, "emails", emails)
    enqueue(backend, new_job(), new_job(), new_job(delay=3600))
    backend.claim(["default"], "w2", limit=1)  # the oldest of the three: one ready, one delayed left
    now = time.time()

    whole = backend.queue_stats(now, started - 1)
    default = whole["default"]
    assert exact(default, ("pending", "delayed", "reserved", "failed", "done_since", "failed_since")) == {
        "pending": 1, "delayed": 5, "reserved": 1, "failed": 5, "done_since": 552, "failed_since": 5}
    everything = earlier + later
    assert default["mean_s"] == pytest.approx(sum(everything) / len(everything), rel=1e-9)
    p95 = nearest_rank_p95(everything)
    assert p95 / BUCKET_RATIO <= default["p95_s"] <= p95 * BUCKET_RATIO
    assert exact(whole["emails"], ("pending", "delayed", "reserved", "failed", "done_since", "failed_since")) == {
        "pending": 0, "delayed": 0, "reserved": 0, "failed": 0, "done_since": 37, "failed_since": 0}
    assert whole["emails"]["mean_s"] == pytest.approx(sum(emails) / len(emails), rel=1e-9)

    window = backend.queue_stats(now, mark)["default"]  # only what finished after `mark`
    assert (window["done_since"], window["failed_since"], window["failed"]) == (402, 3, 5)
    assert window["mean_s"] == pytest.approx(sum(later) / len(later), rel=1e-9)
    p95 = nearest_rank_p95(later)
    assert p95 / BUCKET_RATIO <= window["p95_s"] <= p95 * BUCKET_RATIO

    nothing = backend.queue_stats(now, now + 60)["default"]
    assert (nothing["done_since"], nothing["failed_since"], nothing["mean_s"], nothing["p95_s"]) == (0, 0, None, None)


@pytest.mark.parametrize("durations", [[0.5], [0.001, 0.002], [3.0] * 19 + [300.0], [0.25] * 100])
def test_the_p95_of_small_and_even_samples(backend: Backend, durations: list[float]) -> None:
    run(backend, "default", durations)
    stats = backend.queue_stats(time.time(), time.time() - 3600)["default"]
    p95 = nearest_rank_p95(durations)
    assert p95 / BUCKET_RATIO <= stats["p95_s"] <= p95 * BUCKET_RATIO
    assert stats["mean_s"] == pytest.approx(sum(durations) / len(durations), rel=1e-9)


@pytest.mark.parametrize("durations", [[0.098], [0.098] * 7, [0.09, 0.098, 0.1]])
def test_the_p95_is_not_shown_under_the_mean_when_every_run_shares_its_bucket(backend: Backend,
                                                                              durations: list[float]) -> None:
    # One 98 ms job showed "mean 98 ms, p95 86 ms": the bucket's middle, under every run.
    run(backend, "default", durations)
    stats = backend.queue_stats(time.time(), time.time() - 3600)["default"]
    assert stats["p95_s"] >= stats["mean_s"]
    p95 = nearest_rank_p95(durations)
    assert p95 / BUCKET_RATIO <= stats["p95_s"] <= p95 * BUCKET_RATIO


def test_a_superseded_or_retried_failure_leaves_the_failed_counts(backend: Backend) -> None:
    fixed, retried, kept = enqueue(backend, new_job(unique_key="photo:1"), new_job(), new_job())
    backend.claim(["default"], "w", limit=3)
    for job_id in (fixed, retried, kept):
        backend.fail(job_id, "w", boom())
    again = enqueue(backend, new_job(unique_key="photo:1"))[0]  # the photo fixed and added again
    backend.claim(["default"], "w")
    backend.complete([(again, 0.1)], "w")
    backend.retry_failed([retried])
    stats = backend.queue_stats(time.time(), time.time() - 3600)["default"]
    assert exact(stats, ("pending", "failed", "done_since", "failed_since")) == {
        "pending": 1, "failed": 1, "done_since": 1, "failed_since": 1}


def test_pruned_done_jobs_leave_the_figures(backend: Backend) -> None:
    run(backend, "default", [0.2, 0.4])
    assert backend.queue_stats(time.time(), time.time() - 3600)["default"]["done_since"] == 2
    assert backend.prune(time.time() + 120) == 2  # everything done before two minutes from now
    stats = backend.queue_stats(time.time(), time.time() - 3600).get("default")
    assert stats is None or (stats["done_since"], stats["mean_s"], stats["p95_s"]) == (0, None, None)


def test_queue_names_come_from_live_finished_and_paused_jobs(backend: Backend) -> None:
    run(backend, "finished", [0.1])
    enqueue(backend, new_job(queue="waiting"))
    run(backend, "broken", [], fail=1)
    backend.pause("held")
    assert {"finished", "waiting", "broken", "held"} <= set(backend.queue_names())


def test_the_engine_buckets_the_part_minute_as_the_rollup_does(backend: Backend) -> None:
    """The jobs done in the part of the window's first minute are counted by the engine's
    SQL (rollup.PART), the rest by Python (rollup.record): a run time on a bucket edge, or
    just under it, lands in the same bucket both ways. One job a queue: its p95 names its bucket
    (raised to the job's own run time when that is above the bucket's middle)."""
    from photojobs.storage import rollup

    durations = [0.0, 1e6] + [d for edge in rollup.EDGES for d in (edge, math.nextafter(edge, 0.0))]
    for attempt in range(2):  # the jobs and `since` in one minute: the part the engine counts
        since = time.time()
        queues = [f"edge{attempt}_{i}" for i in range(len(durations))]
        for queue, duration in zip(queues, durations):
            run(backend, queue, [duration])
        if math.floor(time.time() / 60) == math.floor(since / 60):
            break
    stats = backend.queue_stats(time.time(), since)
    got = [stats[queue]["p95_s"] for queue in queues]
    assert got == [max(rollup.middle_of(rollup.bucket_of(d)), d) for d in durations]  # one job: p95 >= its mean
    assert [stats[queue]["mean_s"] for queue in queues] == pytest.approx(durations, rel=1e-12, abs=0)
