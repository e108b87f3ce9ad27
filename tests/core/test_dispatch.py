"""Dispatching jobs: from Python and from the CLI, one at a time, in bulk, in your own transaction."""

from __future__ import annotations

import json

import pytest

from photojobs import Dispatch, ops
from photojobs.errors import DuplicateJob, InvalidPayload, UnknownJob
from photojobs.orders import list_orders
from tests.api_views import queued_jobs


def test_dispatch_stores_json_payload_on_the_jobs_queue(app):
    job_id = app.dispatch("mark", {"n": 1, "path": "/tmp/x"}, queue="photos", delay=60)
    row = app.backend.get(job_id)
    assert json.loads(row["payload"]) == {"n": 1, "path": "/tmp/x"}
    assert row["queue"] == "photos" and row["status"] == "pending"
    assert row["available_at"] - row["created_at"] == pytest.approx(60, abs=1)


@pytest.mark.parametrize("payload, message", [
    ({"n": "one", "path": "x"}, "n must be int"),
    ({"path": "x"}, "lacks 'n'"),
    ({"n": 1, "path": "x", "extra": 1}, "unknown payload key 'extra'"),
    ([1, 2], "must be a JSON object"),
])
def test_a_payload_that_does_not_fit_is_refused_at_dispatch(app, payload, message):
    with pytest.raises(InvalidPayload, match=message):
        app.dispatch("mark", payload)
    assert queued_jobs(app) == 0


def test_unknown_job_is_refused(app):
    with pytest.raises(UnknownJob, match="no job named 'nope'"):
        app.dispatch("nope")


def test_unique_key_refuses_a_second_live_job(app):
    app.dispatch("noop", unique_key="photo:1")
    with pytest.raises(DuplicateJob, match="photo:1"):
        app.dispatch("noop", unique_key="photo:1")
    ids = app.dispatch_many([Dispatch("noop", unique_key="photo:1"), Dispatch("noop", unique_key="photo:2")],
                            skip_duplicates=True)
    assert ids[0] is None and ids[1] is not None
    claimed = app.backend.claim(["default"], "test-worker", limit=10)
    app.backend.complete([(job.id, 0.0) for job in claimed], "test-worker")
    assert len(claimed) == 2 and queued_jobs(app) == 0
    assert app.dispatch("noop", unique_key="photo:1")  # a finished job no longer blocks its key


def test_bulk_dispatch_is_one_transaction_and_a_batch(app):
    with pytest.raises(InvalidPayload):
        app.dispatch_many([("noop", {"n": 1}), ("noop", {"n": "bad"})])
    assert queued_jobs(app) == 0 and ops.list_batches(app) == []
    ids = app.dispatch_many([("noop", {"n": i}) for i in range(100)], batch="shoot")
    assert len(ids) == 100
    (batch,) = ops.list_batches(app)
    assert (batch["name"], batch["total"], batch["pending"], batch["missing"]) == ("shoot", 100, 100, 0)


def test_dispatch_inside_your_transaction_rolls_back_with_your_data(app):
    """The caller's own rows go in with tx.execute, the documented API for them (README)."""
    with pytest.raises(RuntimeError):
        with app.transaction() as conn:
            conn.execute("INSERT INTO orders (email, created_at) VALUES ('a@b.c', 0)")
            app.dispatch("noop")
            raise RuntimeError("the web request failed")
    assert queued_jobs(app) == 0 and list_orders(app) == []
    with app.transaction() as conn:
        conn.execute("INSERT INTO orders (email, created_at) VALUES ('a@b.c', 0)")
        app.dispatch("noop")
    assert queued_jobs(app) == 1 and len(list_orders(app)) == 1


def test_cli_dispatch(cli):
    ok = cli("dispatch", "mark", "--payload", '{"n": 3, "path": "/tmp/p"}', "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["id"] == 1
    for args, message in [
        (["dispatch", "mark", "--payload", "{nope"], "not valid JSON"),
        (["dispatch", "mark", "--payload", '{"n": 1}'], "lacks 'path'"),
        (["dispatch", "nope"], "no job named 'nope'"),
        (["dispatch", "noop", "--delay", "-3"], "--delay"),
    ]:
        bad = cli(*args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)
    dup = [cli("dispatch", "noop", "--unique-key", "k") for _ in range(2)]
    assert dup[0].returncode == 0 and dup[1].returncode == 2 and "unique key 'k'" in dup[1].stderr


def test_one_app_shared_by_a_web_apps_threads(app):
    import threading

    errors = []

    def handler(thread: int) -> None:
        try:
            for n in range(100):
                if n % 10 == 0:
                    with app.transaction() as conn:  # its own rows and its job, atomically
                        conn.execute("INSERT INTO orders (email, created_at) VALUES (?, 0)", [f"{thread}@x.y"])
                        app.dispatch("noop", {"n": n})
                else:
                    app.dispatch("noop", {"n": n})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=handler, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert queued_jobs(app) == 800 and len(list_orders(app)) == 80
