"""A rescue that comes after the holder renewed (it waited out a held write lock) takes
nothing: the holder goes on. A child whose claim was rescued starts none of its jobs."""

from photojobs import ops
from photojobs.claims import ClaimLog, settle
from photojobs.errors import WorkerLost
from tests.conftest import storage_rows


def test_a_rescue_that_loses_the_race_to_a_renewal_takes_nothing(app):
    for n in range(3):
        app.dispatch("noop", {"n": n})
    token = "otherhost:1234:abcdef/0.1"
    jobs = app.backend.claim(["default"], token, 3)
    assert len(jobs) == 3
    log = ClaimLog(app.settings, token)  # the holder's child: its first job done, the second running
    log.new_claim()
    log.started(jobs[0].id)
    log.finished(jobs[0].id, 0.01)
    log.started(jobs[1].id)
    # the lease ran out while the holder could not renew: set in storage, on purpose
    storage_rows(app.settings.db_path.parent, "UPDATE jobs SET lease_until = 0 WHERE reserved_by = ?", [token])
    app.backend.renew([token])  # the holder renewed first, once the lock was free
    assert app.backend.rescue_expired("rescuer") == []  # the takeover checks the lease as it writes
    # the rows the fencing rule protects, read from storage on purpose: still the holder's, one attempt each
    rows = storage_rows(app.settings.db_path.parent, "SELECT status, reserved_by, attempts FROM jobs ORDER BY id")
    assert [(r["status"], r["reserved_by"], r["attempts"]) for r in rows] == [("reserved", token, 1)] * 3
    log.close()


def test_a_child_whose_claim_lost_its_lease_does_not_start_the_jobs_given_back(app, workdir):
    import multiprocessing

    from photojobs.worker import WorkerOptions
    from photojobs.worker_child import ChildLoop, Slot

    runs = workdir / "runs"
    for tag in ("a", "b"):
        app.dispatch("record", {"tag": tag, "marker_dir": str(runs)})
    ctx = multiprocessing.get_context("spawn")
    token = "thishost:1:abcdef/0.1"
    loop = ChildLoop(type(app), app.settings, WorkerOptions(queues=["default"]), Slot(ctx), token, ctx.Value("q", 0))
    jobs = loop.claim(2)
    assert len(jobs) == 2
    # The claim sat out a write lock held past its lease; a rescue then gave its jobs back
    # (none had started) before the supervisor could renew.
    loop.lease_until = 0.0
    storage_rows(workdir, "UPDATE jobs SET lease_until = 0 WHERE reserved_by = ?", [token])  # expired, on purpose
    rescued = app.backend.rescue_expired("rescuer")
    assert {holder for _, holder in rescued} == {token}
    settle(app, token, [job for job, _ in rescued], WorkerLost("stopped renewing"),
           expired=True, tries_of=lambda job: 5, holder="rescuer")
    loop.run_batch(jobs)
    loop.flush()
    assert not runs.exists()  # another worker may be running them now
    assert ops.status(app)["queues"]["default"]["pending"] == 2
    # A claim whose lease the supervisor renewed in time runs as usual.
    jobs = loop.claim(2)
    loop.lease_until = 0.0
    app.backend.renew([token])
    loop.run_batch(jobs)
    loop.flush()
    assert sorted(p.stem for p in runs.glob("*.log")) == ["a", "b"]
    default = ops.status(app)["queues"]["default"]
    assert (default["pending"], default["reserved"], default["done_last_hour"]) == (0, 0, 2)
    loop.claim_log.close()


def test_successes_rolled_back_with_a_failed_claim_are_recorded_on_recovery_not_run_again(app, workdir, monkeypatch):
    """A claim records the last successes in its transaction; when the claim fails there (a
    full disk, a lost server) they are rolled back with it and must stay to be recorded."""
    import multiprocessing

    import pytest

    from photojobs.errors import DiskFull
    from photojobs.outage import Outage
    from photojobs.worker import WorkerOptions
    from photojobs.worker_child import ChildLoop, Slot

    runs = workdir / "runs"
    app.dispatch("record", {"tag": "a", "marker_dir": str(runs)})
    ctx = multiprocessing.get_context("spawn")
    loop = ChildLoop(type(app), app.settings, WorkerOptions(queues=["default"]), Slot(ctx), "thishost:1:abcdef/0.1",
                     ctx.Value("q", 0))
    loop.run_batch(loop.claim(1))
    assert [job_id for job_id, _ in loop.pending_done] == [1]  # ran, its success held back a moment

    def full(*args, **kwargs):
        raise DiskFull("database: the disk is full")

    monkeypatch.setattr(loop.backend, "claim", full)
    with pytest.raises(DiskFull):
        loop.claim(1)
    monkeypatch.undo()
    assert app.backend.read("SELECT status FROM jobs")[0][0] == "reserved"  # rolled back with the claim
    assert loop._recover(Outage("a worker process"))
    assert app.backend.read("SELECT status FROM jobs")[0][0] == "done"  # recorded, not given back
    assert sorted(p.stem for p in runs.glob("*.log")) == ["a"]
    loop.claim_log.close()
