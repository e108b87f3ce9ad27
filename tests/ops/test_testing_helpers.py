"""photojobs.testing: the fake queue's recording and assertions (and their messages), the
sync mode, and the pytest plugin's fixtures."""

from __future__ import annotations

import re

import pytest

from photojobs import Dispatch
from photojobs.errors import InvalidPayload, UnknownJob
from photojobs.testing import fake_queue
from tests.api_views import queued_jobs

from .conftest import db_rows, set_top


def _fails(call, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_fake_queue_records_instead_of_enqueuing(ops_app, opsdir):
    with fake_queue() as q:
        first = ops_app.dispatch("record", {"tag": "a"})
        ids = ops_app.dispatch_many([Dispatch("noop", {"n": 1}), ("noop", {"n": 2})], batch="b")
    assert first == 1 and ids == [2, 3]
    assert queued_jobs(ops_app) == 0  # nothing reached the database
    q.assert_dispatched("record", tag="a")
    q.assert_dispatched("noop", times=2)
    q.assert_dispatched("noop", n=2)
    q.assert_not_dispatched("doomed")
    q.assert_not_dispatched("noop", n=3)
    q.assert_count(3)
    q.assert_count(2, "noop")
    assert [j.queue for j in q.dispatched()] == ["default", "default", "default"]
    assert q.dispatched("noop", n=1)[0].batch == "b"
    # after the block, dispatch is real again
    ops_app.dispatch("noop")
    assert queued_jobs(ops_app) == 1
    assert len(q.jobs) == 3


def test_fake_queue_checks_payloads_like_the_real_dispatch(ops_app):
    with fake_queue() as q:
        with pytest.raises(InvalidPayload, match="lacks 'tag'"):
            ops_app.dispatch("record", {})
        with pytest.raises(UnknownJob):
            ops_app.dispatch("no_such_job")
        with pytest.raises(InvalidPayload):  # all or nothing, as dispatch_many
            ops_app.dispatch_many([Dispatch("noop"), Dispatch("noop", {"n": "x"})])
    q.assert_count(0)
    with fake_queue(validate=False) as loose:
        ops_app.dispatch("no_such_job", {"anything": 1})
    loose.assert_dispatched("no_such_job", anything=1)


def test_assertion_messages_say_what_was_expected_and_what_was_dispatched(ops_app):
    with fake_queue() as q:
        ops_app.dispatch("record", {"tag": "welcome"}, queue="emails")
        ops_app.dispatch("noop", {"n": 1})

    message = _fails(q.assert_dispatched, "record", tag="goodbye")
    assert message.startswith("""expected a 'record' job with payload including {"tag": "goodbye"} to be"""
                              " dispatched, but none was; dispatched:")
    assert '#1 record {"tag": "welcome"} queue=emails' in message
    assert '#2 noop {"n": 1} queue=default' in message

    message = _fails(q.assert_dispatched, "noop", times=2)
    assert "expected a 'noop' job to be dispatched 2 time(s), but it was dispatched 1 time(s)" in message

    message = _fails(q.assert_not_dispatched, "record")
    assert message.startswith("expected no 'record' job to be dispatched, but found 1 (#1); dispatched:")
    message = _fails(q.assert_not_dispatched, "noop", n=1)
    assert message.startswith("""expected no 'noop' job with payload including {"n": 1} to be dispatched""")

    message = _fails(q.assert_count, 3)
    assert message.startswith("expected 3 jobs to be dispatched, but 2 were; dispatched:")
    message = _fails(q.assert_count, 0, "noop")
    assert message.startswith("expected 0 'noop' jobs to be dispatched, but 1 were")
    assert _fails(q.assert_nothing_dispatched).startswith("expected no job to be dispatched, but 2 were")

    with fake_queue() as empty:
        pass
    assert _fails(empty.assert_dispatched, "noop").endswith("but none was; no job was dispatched")


def test_sync_mode_runs_jobs_inline_through_the_workers_code(opsdir):
    import photojobs
    from photojobs import PermanentFailure, ops

    set_top(opsdir, 'queue = "sync"')
    with photojobs.connect(opsdir / "photojobs.toml") as app:
        ok = app.dispatch("record", {"tag": "inline"})
        # ran before dispatch returned
        assert (opsdir / "storage" / "runs" / "inline.log").exists()
        flaky = app.dispatch("flaky", {"fail_times": 2})
        with pytest.raises(PermanentFailure, match="cannot ever work: sync"):  # recorded, then raised
            app.dispatch("doomed", {"reason": "sync"})
        (doomed,) = ops.list_failed(app)
        rows = {job_id: app.backend.get(job_id) for job_id in (ok, flaky)}
    assert (rows[ok]["status"], rows[ok]["attempts"]) == ("done", 1)
    assert (rows[flaky]["status"], rows[flaky]["attempts"]) == ("done", 3)  # retried at once, as a worker would
    assert (doomed["name"], doomed["error"]) == ("doomed", "PermanentFailure: cannot ever work: sync")
    # the failed attempts' records, read from storage on purpose: no command shows those of a job that ended done
    errors = db_rows(opsdir, "SELECT attempt FROM job_errors WHERE job_id = ? ORDER BY attempt", [flaky])
    assert [e[0] for e in errors] == [1, 2]


def test_sync_mode_runs_jobs_after_the_outermost_commit_and_never_after_a_rollback(opsdir, tmp_path):
    import photojobs
    from photojobs import ops

    set_top(opsdir, 'queue = "sync"')
    marker = tmp_path / "marks"
    with photojobs.connect(opsdir / "photojobs.toml") as app:
        with app.transaction() as tx:
            first = app.dispatch("mark", {"n": 1, "path": str(marker)})
            assert not marker.exists()  # not inside the caller's open transaction
            tx.execute("INSERT INTO paused_queues (queue, paused_at) VALUES (:queue, :at)", {"queue": "q", "at": 1.0})
        assert marker.read_text() == "1\n"
        with pytest.raises(RuntimeError):
            with app.transaction():
                app.dispatch("mark", {"n": 2, "path": str(marker)})
                raise RuntimeError("the caller rolls back")
        assert marker.read_text() == "1\n"  # the rolled-back job never ran
        assert app.backend.get(first)["status"] == "done"
        default = ops.status(app)["queues"]["default"]  # the rolled-back job left no row
        assert (default["done_last_hour"], queued_jobs(app)) == (1, 0)


def test_plugin_fixture_fake_queue(photojobs_fake_queue, ops_app):
    ops_app.dispatch("noop", {"n": 5})
    photojobs_fake_queue.assert_dispatched("noop", n=5)


def test_plugin_fixture_sync_app(photojobs_sync_app, tmp_path):
    marker = tmp_path / "mark.txt"
    job_id = photojobs_sync_app.dispatch("mark", {"n": 7, "path": str(marker)})
    assert marker.read_text() == "7\n"
    status = photojobs_sync_app.backend.get(job_id)["status"]
    assert status == "done"


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    from importlib.metadata import entry_points

    names = {e.value for e in entry_points(group="pytest11")}
    assert "photojobs.testing.plugin" in names
    source = open(__import__("photojobs.testing.plugin", fromlist=["x"]).__file__).read()
    # it is imported by every pytest run: nothing heavy at module level
    assert not re.search(r"^(from|import) (PIL|rich|typer|sqlite_utils)", source, re.M)
