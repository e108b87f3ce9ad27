"""status (--json, --watch) and monitor's thresholds and exit codes."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import time

from tests.conftest import wait_for

from .conftest import db_exec, db_rows, set_top


def test_status_counts_per_queue(run, run_json, ops_app, opsdir):
    ops_app.dispatch("noop")
    ops_app.dispatch("noop", queue="emails")
    ops_app.dispatch("doomed", queue="photos")
    assert run("work", "--stop-when-empty").returncode == 1
    for n in range(3):
        ops_app.dispatch("noop", {"n": n})
    ops_app.dispatch("noop", delay=3600)
    ops_app.dispatch("photo_job")  # its own queue: photos
    # waiting two minutes already: the clock moved in storage, on purpose
    db_exec(opsdir, "UPDATE jobs SET available_at = available_at - 120 WHERE status = 'pending' AND queue = 'default'"
                    " AND available_at <= ?", [time.time()])
    assert run("queue", "pause", "emails").returncode == 0

    data = run_json("status")
    default, photos, emails = data["queues"]["default"], data["queues"]["photos"], data["queues"]["emails"]
    assert (default["pending"], default["delayed"], default["reserved"], default["failed"]) == (3, 1, 0, 0)
    assert 119 < default["oldest_pending_s"] < 200
    assert default["done_last_hour"] == 1 and default["failed_last_hour"] == 0
    assert default["mean_s"] is not None and default["p95_s"] >= 0
    assert (photos["pending"], photos["failed"], photos["failed_last_hour"]) == (1, 1, 1)
    assert photos["oldest_pending_s"] < 60
    assert emails["paused"] is True and default["paused"] is False
    assert emails["done_last_hour"] == 1 and emails["pending"] == 0 and emails["oldest_pending_s"] is None
    assert data["queues"]["downloads"]["pending"] == 0  # the standard queues are always listed
    assert data["workers"] == [] and data["stale_workers"] == 0

    human = run("status")
    assert human.returncode == 0
    assert "emails (paused)" in human.stdout and "Workers: 0 live" in human.stdout
    # one vocabulary for job states: the table's columns are the --json keys
    header = next(line for line in human.stdout.splitlines() if line.strip().startswith("queue"))
    assert header.split()[:5] == ["queue", "pending", "delayed", "reserved", "failed"]
    assert {"pending", "delayed", "reserved", "failed"} <= set(photos)


def test_mean_and_p95_of_done_jobs_in_the_last_hour(ops_app):
    from photojobs.ops import status

    ids = ops_app.dispatch_many([("noop", {"n": n}) for n in range(1, 101)])
    assert len(ops_app.backend.claim(["default"], "w", limit=100)) == 100
    ops_app.backend.complete([(job_id, n / 100) for n, job_id in enumerate(ids, 1)], "w")  # 0.01 .. 1.00 s
    default = status(ops_app)["queues"]["default"]
    assert default["done_last_hour"] == 100
    assert default["mean_s"] == 0.505
    assert 0.95 / 2 ** 0.5 <= default["p95_s"] <= 0.95 * 2 ** 0.5  # within its histogram bucket (README)


def test_running_job_and_live_worker(start, run_json, ops_app, opsdir):
    set_top(opsdir, "lease = 30")  # heartbeat every 10 s: the running job is known from its claim
    marker = opsdir / "running"
    job_id = ops_app.dispatch("sleepy", {"seconds": 30, "marker": str(marker)})
    worker = start("work", "--queue", "default")
    wait_for(marker.exists, message="the job to start")

    def running():
        data = run_json("status")
        return data if data["workers"] and data["workers"][0]["current_jobs"] == [job_id] else None

    data = wait_for(running, timeout=10, interval=0.3, message="the worker with its running job")
    assert data["queues"]["default"]["reserved"] == 1
    live = data["workers"][0]
    assert live["pid"] == worker.pid and live["queues"] == ["default"] and live["concurrency"] == 1
    assert live["heartbeat_age_s"] < 10
    # a worker that stopped heartbeating (killed with its host) is no longer live: its row made in storage, on purpose
    db_exec(opsdir, "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at)"
                    " VALUES ('gone', 'elsewhere', 1, 'default', 1, ?, ?)", [time.time() - 200, time.time() - 91])
    data = run_json("status")
    assert [w["pid"] for w in data["workers"]] == [worker.pid] and data["stale_workers"] == 1
    worker.send_signal(signal.SIGTERM)
    os.killpg(worker.pid, signal.SIGKILL)


def test_monitor_exit_codes(run, ops_app, opsdir):
    for n in range(3):
        ops_app.dispatch("noop", {"n": n})
    ops_app.dispatch("noop", queue="emails")

    over = run("monitor", "default,emails", "--max", "2")
    assert over.returncode == 1
    assert over.stdout.strip().splitlines() == ["default: 3 jobs pending (max 2)"]
    assert run("monitor", "default,emails", "--max", "3").returncode == 0

    db_exec(opsdir, "UPDATE jobs SET available_at = available_at - 900 WHERE queue = 'emails'")  # aged in storage, on purpose
    aged = run("monitor", "emails,photos", "--max-age", "600", "--max", "100")
    assert aged.returncode == 1
    assert re.match(r"emails: the oldest pending job has waited 9\d\ds", aged.stdout)  # 900 s + the run's own time
    assert run("monitor", "photos", "--max-age", "0").returncode == 0  # nothing pending: no age

    both = run("monitor", "default,emails", "--max", "1", "--max-age", "600", "--json")
    assert both.returncode == 1
    result = json.loads(both.stdout)
    assert result["ok"] is False
    assert {(a["queue"], a["metric"]) for a in result["alerts"]} == {("default", "pending"),
                                                                     ("emails", "oldest_pending_s")}
    assert result["queues"]["default"]["pending"] == 3

    one_line_per_queue = run("monitor", "default,emails", "--max", "0", "--max-age", "600")
    assert one_line_per_queue.returncode == 1
    lines = one_line_per_queue.stdout.strip().splitlines()
    assert lines[0] == "default: 3 jobs pending (max 0)"
    assert re.match(r"emails: 1 job pending \(max 0\); the oldest pending job has waited 9\d\ds", lines[1])
    assert len(lines) == 2

    ok = run("monitor", "default", "--max", "10", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True


def test_monitor_usage_errors(run):
    no_threshold = run("monitor", "default")
    assert no_threshold.returncode == 2 and "--max" in no_threshold.stderr
    bad_name = run("monitor", "de fault", "--max", "1")
    assert bad_name.returncode == 2 and "not a queue name" in bad_name.stderr
    assert run("monitor", "default", "--max", "-1").returncode == 2


def test_status_watch_refreshes_in_place_on_a_terminal(opsdir, ops_app):
    import subprocess
    import sys

    from tests.conftest import cli_env

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "photojobs", "status", "--watch", "--interval", "0.2"],
                            cwd=opsdir, env=cli_env({"COLUMNS": "100", "LINES": "40"}), stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    output = b""
    try:
        def rendered_twice():
            nonlocal output
            import select

            if select.select([master], [], [], 0.2)[0]:
                output += os.read(master, 65536)
            return output.count(b"Queues at") >= 2 and b"\x1b[" in output
        wait_for(rendered_twice, timeout=15, message="two renders with cursor movement")
        os.killpg(proc.pid, signal.SIGINT)

        def exited():
            # keep draining the pty: rich's last redraw blocks on a full pty buffer otherwise
            nonlocal output
            import select

            if select.select([master], [], [], 0.1)[0]:
                try:
                    output += os.read(master, 65536)
                except OSError:  # EIO once the child closed its side
                    pass
            return proc.poll() is not None
        wait_for(exited, timeout=15, message="status --watch to exit on SIGINT")
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    # rich's Live moves the cursor up to redraw the table where it was
    assert b"\x1b[1A" in output or b"\x1b[2K" in output
