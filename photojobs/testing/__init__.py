"""Test helpers for code that dispatches photojobs jobs.

    from photojobs.testing import fake_queue

    def test_signup_sends_mail():
        with fake_queue() as q:
            signup("a@b.c")              # calls app.dispatch("send_email", {...})
        q.assert_dispatched("send_email", to="a@b.c")
        q.assert_not_dispatched("process_photo")
        q.assert_count(1)

Inside `fake_queue()` every `App.dispatch` / `App.dispatch_many` records the job instead
of writing it to the database (the payload is still checked against the job's signature
when the job is registered). To run jobs for real but inline, set `queue = "sync"` in
photojobs.toml (or `photojobs.connect(db, queue="sync")`): dispatch then runs each job at
once through the worker's own code path. The pytest plugin (photojobs.testing.plugin)
offers both as fixtures: `photojobs_fake_queue` and `photojobs_sync_app`.
"""

from __future__ import annotations

from .fake import DispatchedJob, FakeQueue, fake_queue

__all__ = ["DispatchedJob", "FakeQueue", "fake_queue"]
