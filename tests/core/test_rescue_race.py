"""A rescue that read a lease as expired (while another process held the write lock) and
got the lock only after the holder renewed it takes nothing: the holder goes on."""

from photojobs.claims import ClaimLog, settle
from photojobs.errors import WorkerLost


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
    with app.transaction() as conn:  # the lease ran out while the holder could not renew
        conn.execute("UPDATE jobs SET lease_until = 0 WHERE reserved_by = ?", [token])
    expired = app.backend.expired_claims()  # what a rescuing worker read
    assert {t for _, t in expired} == {token}
    app.backend.renew([token])  # the holder renewed first, once the lock was free
    counts = settle(app, token, [job for job, _ in expired], WorkerLost("stopped renewing"),
                    expired=True, tries_of=lambda job: 5)
    assert counts == {"done": 0, "retry": 0, "failed": 0, "released": 0}
    rows = app.backend.read("SELECT status, reserved_by, attempts FROM jobs ORDER BY id")
    assert [(r["status"], r["reserved_by"], r["attempts"]) for r in rows] == [("reserved", token, 1)] * 3
    log.close()
