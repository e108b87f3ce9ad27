"""queue pause|resume|clear|restart with real workers."""

from __future__ import annotations

import signal
import time

from photojobs import ops
from photojobs.ops.overview import workers
from tests.conftest import wait_for

from .conftest import set_top


def _runs(opsdir, tag):
    log = opsdir / "storage" / "runs" / f"{tag}.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_paused_queue_is_skipped_while_others_run(run, run_json, ops_app, opsdir):
    assert run("queue", "pause", "photos").stdout.strip() == "Paused queue photos"
    assert run("queue", "pause", "photos").stdout.strip() == "Queue photos was paused already"
    photo_ids = [ops_app.dispatch("record", {"tag": "photos"}, queue="photos") for _ in range(3)]
    ops_app.dispatch("record", {"tag": "emails"}, queue="emails")
    ops_app.dispatch("record", {"tag": "default"})

    # photos comes first in priority, yet only the other queues run
    work = run("work", "--stop-when-empty", "--queue", "photos,emails,default")
    assert work.returncode == 0, work.stderr
    assert (_runs(opsdir, "photos"), _runs(opsdir, "emails"), _runs(opsdir, "default")) == (0, 1, 1)
    assert {ops_app.backend.job_status(job_id) for job_id in photo_ids} == {"pending"}  # kept, untouched
    assert max(ops_app.backend.get(job_id)["attempts"] for job_id in photo_ids) == 0
    assert run_json("status")["queues"]["photos"]["paused"] is True
    # a worker on the paused queue alone finds nothing to do
    assert run("work", "--stop-when-empty", "--queue", "photos").returncode == 0
    assert _runs(opsdir, "photos") == 0

    assert run("queue", "resume", "photos").stdout.strip() == "Resumed queue photos"
    assert run("queue", "resume", "photos").stdout.strip() == "Queue photos was not paused"
    assert run("work", "--stop-when-empty", "--queue", "photos").returncode == 0
    assert _runs(opsdir, "photos") == 3


def test_pause_takes_effect_on_a_running_workers_next_claim(start, ops_app, opsdir):
    worker = start("work", "--queue", "photos", "--sleep", "0.1")
    ops_app.dispatch("record", {"tag": "before"}, queue="photos")
    wait_for(lambda: _runs(opsdir, "before") == 1, message="the first job to run")
    from photojobs.ops import pause_queue

    pause_queue(ops_app, "photos")
    after = ops_app.dispatch("record", {"tag": "after"}, queue="photos")
    # the worker wakes up on the commit and claims again: give it several claim rounds
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert _runs(opsdir, "after") == 0
        time.sleep(0.1)
    assert ops_app.backend.job_status(after) == "pending"
    from photojobs.ops import resume_queue

    resume_queue(ops_app, "photos")
    wait_for(lambda: _runs(opsdir, "after") == 1, message="the job to run after resume")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0


def test_clear_asks_unless_yes_and_keeps_running_and_failed(run, run_json, ops_app, opsdir):
    ops_app.dispatch("doomed")
    assert run("work", "--stop-when-empty").returncode == 1  # one failed job in default
    for n in range(3):
        ops_app.dispatch("noop", {"n": n})
    ops_app.dispatch("noop", delay=600)
    ops_app.dispatch("noop", queue="emails")

    no_terminal = run("queue", "clear", "default", input="")  # cron: nobody to answer
    assert no_terminal.returncode == 2
    assert no_terminal.stderr.strip() == "Error: refusing without a terminal: pass --yes"
    declined = run("queue", "clear", "default", input="n\n")
    assert declined.returncode == 1
    assert "Delete 4 pending job(s) of queue default?" in declined.stdout
    queues = run_json("status")["queues"]
    assert queues["default"]["pending"] + queues["default"]["delayed"] + queues["emails"]["pending"] == 5

    accepted = run("queue", "clear", "default", input="y\n")
    assert accepted.returncode == 0 and "Deleted 4 pending job(s) of queue default" in accepted.stdout
    queues = run_json("status")["queues"]
    counts = {f"{name}:{key}": queue[key] for name, queue in queues.items()
              for key in ("pending", "delayed", "reserved", "failed") if queue[key]}
    assert counts == {"default:failed": 1, "emails:pending": 1}

    assert run("queue", "clear", "emails", "--yes").returncode == 0
    assert "has no pending jobs" in run("queue", "clear", "emails").stdout
    assert run("queue", "clear", "bad name", "--yes").returncode == 2


def test_restart_makes_a_running_worker_finish_its_job_and_exit_0(start, run, ops_app, opsdir):
    set_top(opsdir, "lease = 5")  # heartbeat every 1.7 s (the restart check runs every second)
    marker = opsdir / "sleeping"
    job_id = ops_app.dispatch("sleepy", {"seconds": 3, "marker": str(marker)})
    waiting = ops_app.dispatch("noop")  # still pending when the worker stops: left for the next worker
    worker = start("work", "--queue", "default")
    wait_for(marker.exists, message="the job to start")
    restart = run("queue", "restart")
    assert restart.returncode == 0, restart.stderr
    assert worker.wait(timeout=20) == 0
    assert (opsdir / "sleeping.done").exists()  # the running job was not cut short
    assert ops_app.backend.job_status(job_id) == "done"
    assert workers(ops_app) == ([], [], 0)  # its row went with it
    assert ops_app.backend.job_status(waiting) == "pending"

    # a worker started after the restart keeps running past its heartbeats
    fresh = start("work", "--queue", "default")
    started = time.time()
    wait_for(lambda: any(time.time() - w["heartbeat_age_s"] > started + 1.2 for w in workers(ops_app)[0]),
             message="two heartbeats of the new worker")
    assert fresh.poll() is None
    wait_for(lambda: ops_app.backend.job_status(waiting) == "done", message="the fresh worker to run the waiting job")
    fresh.send_signal(signal.SIGTERM)
    assert fresh.wait(timeout=15) == 0


def test_a_misspelt_queue_is_refused_with_the_known_names(run, ops_app, opsdir):
    ops_app.dispatch("noop", queue="reports")  # a queue that only a job names is known too
    for args in (["queue", "pause", "photoss"], ["monitor", "emals,photos", "--max", "5"],
                 ["queue", "clear", "photoss", "--yes"], ["failed", "list", "--queue", "photoss"],
                 ["failed", "flush", "--queue", "photoss", "--yes"]):
        refused = run(*args)
        assert refused.returncode == 2, args
        line = refused.stderr.strip()
        assert line.startswith("Error: no queue named "), line
        assert "did you mean " in line and "(known: default, downloads, emails, photos, reports)" in line
    assert "did you mean photos?" in run("queue", "pause", "photoss").stderr
    assert "did you mean emails?" in run("monitor", "emals,photos", "--max", "5").stderr
    assert ops.paused_queues(ops_app) == {}
    assert run("queue", "pause", "reports").returncode == 0
    assert run("monitor", "reports,photos", "--max", "5").returncode == 0


def test_work_warns_about_an_unknown_queue_and_still_runs(run):
    done = run("work", "--stop-when-empty", "--queue", "emals")
    assert done.returncode == 0
    assert "Warning: no queue named 'emals': did you mean emails?" in done.stderr
