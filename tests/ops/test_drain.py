"""The drain commands (process-photos, build-archive, send-mail): a paused queue is said,
and Ctrl-C's summary says what is left."""

from __future__ import annotations

import os
import signal

from tests.api_views import pending_jobs
from tests.conftest import wait_for


def test_a_paused_queue_is_said_with_how_many_wait(run, ops_app, opsdir):
    for n in range(2):
        ops_app.dispatch("photo_job", {"tag": str(n)})
    assert run("queue", "pause", "photos").returncode == 0
    done = run("process-photos")
    assert done.returncode == 0
    assert "Queue photos is paused: 2 job(s) wait; `photojobs queue resume photos` lets them run" in done.stdout
    assert "0 done" not in done.stdout
    assert pending_jobs(ops_app, "photos") == 2


def test_ctrl_c_says_what_is_left_for_next_time(start, ops_app, opsdir):
    flag, marker = opsdir / "hold", opsdir / "started"
    flag.write_text("x")
    ops_app.dispatch("hold_while", {"flag": str(flag), "marker": str(marker)}, queue="photos")
    for n in range(3):
        ops_app.dispatch("photo_job", {"tag": str(n)})
    drain = start("process-photos")
    wait_for(marker.exists, message="the first photo job to start")
    os.killpg(drain.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    flag.unlink()  # the running job finishes; the others are left
    out, err = drain.communicate(timeout=30)
    assert drain.returncode == 0, err
    assert "interrupted: 1 done, 3 left (pending, will run next time)" in out
    assert pending_jobs(ops_app, "photos") == 3
