"""The worker with real processes and real signals: at least once, timeouts, retries, priorities."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import set_config, wait_for


def job_row(app, job_id):
    return dict(app.backend.read("SELECT * FROM jobs WHERE id = ?", [job_id])[0])


def errors_of(app, job_id):
    return [dict(r) for r in app.backend.read("SELECT * FROM job_errors WHERE job_id = ? ORDER BY id", [job_id])]


def runs(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_work_runs_jobs_and_exits_0_when_empty(app, cli, tmp_path):
    out = tmp_path / "marks"
    for n in range(20):
        app.dispatch("mark", {"n": n, "path": str(out)})
    result = cli("work", "--stop-when-empty", "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(runs(out)) == list(range(20))
    assert app.backend.read("SELECT count(*) FROM jobs WHERE status = 'done'")[0][0] == 20
    assert "20 done, 0 failed" in result.stdout


def test_retries_keep_each_attempts_error_and_traceback(app, cli):
    ok = app.dispatch("flaky", {"fail_times": 2})
    bad = app.dispatch("flaky", {"fail_times": 5})
    result = cli("work", "--stop-when-empty")
    assert result.returncode == 1  # a job of this run ended in the failed table
    assert job_row(app, ok)["status"] == "done" and job_row(app, ok)["attempts"] == 3
    failed = job_row(app, bad)
    assert failed["status"] == "failed" and failed["attempts"] == 3
    errors = errors_of(app, bad)
    assert [(e["attempt"], e["error_class"], e["message"]) for e in errors] == [
        (1, "OSError", "transient failure 1"), (2, "OSError", "transient failure 2"),
        (3, "OSError", "transient failure 3")]
    assert all("Traceback" in e["traceback"] and "sample_jobs.py" in e["traceback"] for e in errors)


def test_permanent_failure_unknown_job_and_bad_payload_fail_without_retry(app, cli):
    doomed = app.dispatch("doomed", {"reason": "corrupt"})
    with app.transaction() as conn:  # rows a newer or broken dispatcher could have written
        unknown = conn.execute("INSERT INTO jobs (name, queue, payload, available_at, created_at)"
                               " VALUES ('vanished', 'default', '{}', 0, 0) RETURNING id").fetchone()[0]
        invalid = conn.execute("INSERT INTO jobs (name, queue, payload, available_at, created_at)"
                               " VALUES ('mark', 'default', '{\"n\": \"x\"}', 0, 0) RETURNING id").fetchone()[0]
        garbage = conn.execute("INSERT INTO jobs (name, queue, payload, available_at, created_at)"
                               " VALUES ('noop', 'default', 'not json', 0, 0) RETURNING id").fetchone()[0]
    result = cli("work", "--stop-when-empty")
    assert result.returncode == 1
    for job_id, error_class in [(doomed, "PermanentFailure"), (unknown, "UnknownJob"),
                                (invalid, "InvalidPayload"), (garbage, "InvalidPayload")]:
        row = job_row(app, job_id)
        assert (row["status"], row["attempts"]) == ("failed", 1), (job_id, row)
        assert [e["error_class"] for e in errors_of(app, job_id)] == [error_class]


def test_retry_later_waits_its_delay(app, cli):
    job_id = app.dispatch("later")
    assert cli("work", "--stop-when-empty").returncode == 0
    row = job_row(app, job_id)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["available_at"] > time.time() + 3000


def test_priorities_are_strict(app, cli, tmp_path):
    out = tmp_path / "order"
    for n in range(30):
        app.dispatch("mark", {"n": 300 + n, "path": str(out)}, queue="default")
        app.dispatch("mark", {"n": 100 + n, "path": str(out)}, queue="emails")
        app.dispatch("mark", {"n": 200 + n, "path": str(out)}, queue="photos")
    assert cli("work", "--stop-when-empty", "--queue", "emails,photos,default").returncode == 0
    order = runs(out)
    assert [n // 100 for n in order] == [1] * 30 + [2] * 30 + [3] * 30


def test_a_job_stuck_in_c_code_is_killed_at_its_timeout_and_the_next_runs(app, cli, tmp_path):
    stuck = app.dispatch("stuck_in_c", {"marker": str(tmp_path / "stuck")})
    out = tmp_path / "after"
    after = app.dispatch("mark", {"n": 1, "path": str(out)})
    started = time.monotonic()
    result = cli("work", "--stop-when-empty", timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    row = job_row(app, stuck)
    assert row["status"] == "failed" and [e["error_class"] for e in errors_of(app, stuck)] == ["JobTimeout"]
    assert job_row(app, after)["status"] == "done" and runs(out) == [1]


def test_a_sleeping_job_gets_the_soft_timeout_and_retries(app, cli):
    job_id = app.dispatch("sleepy", {"seconds": 30}, timeout=0.5, tries=2)
    started = time.monotonic()
    result = cli("work", "--stop-when-empty", "--timeout", "99")
    assert time.monotonic() - started < 15 and result.returncode == 0
    assert [e["error_class"] for e in errors_of(app, job_id)] == ["JobTimeout"]
    assert job_row(app, job_id)["status"] == "pending"  # to be tried again after its back-off


def test_a_job_that_kills_its_process_ends_failed_after_its_tries(app, cli, tmp_path):
    job_id = app.dispatch("suicide")
    out = tmp_path / "next"
    app.dispatch("mark", {"n": 7, "path": str(out)})
    result = cli("work", "--stop-when-empty", "--queue", "default", timeout=60)
    assert result.returncode == 1
    row = job_row(app, job_id)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert [e["error_class"] for e in errors_of(app, job_id)] == ["WorkerLost", "WorkerLost"]
    assert runs(out) == [7]


def test_kill_9_mid_job_runs_it_again_after_the_lease(app, spawn, cli, tmp_path):
    set_config(app.settings.root, "lease = 5")
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 1.5, "marker": str(marker)})
    worker = spawn("work", "--sleep", "0.1")
    wait_for(marker.exists, message="the job to start")
    os.killpg(worker.pid, signal.SIGKILL)  # the supervisor and its children, as the OOM killer would
    worker.wait(10)
    assert job_row(app, job_id)["status"] == "reserved"
    assert not Path(str(marker) + ".done").exists()
    wait_for(lambda: job_row(app, job_id)["lease_until"] < time.time(), message="the lease to expire",
             timeout=20)
    result = cli("work", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    row = job_row(app, job_id)
    assert row["status"] == "done" and row["attempts"] == 2
    assert [e["error_class"] for e in errors_of(app, job_id)] == ["WorkerLost"]
    assert Path(str(marker) + ".done").exists()


def test_the_supervisor_killed_alone_takes_its_children_along(app, spawn, cli, tmp_path):
    set_config(app.settings.root, "lease = 5")
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 3, "marker": str(marker)})
    worker = spawn("work", "--sleep", "0.1")
    wait_for(marker.exists, message="the job to start")
    child_pid = int(marker.read_text())
    os.kill(worker.pid, signal.SIGKILL)  # only the supervisor
    worker.wait(10)
    wait_for(lambda: not Path(f"/proc/{child_pid}").exists() or "Z" in _state(child_pid),
             message="the orphaned child to die")
    assert not Path(str(marker) + ".done").exists()
    wait_for(lambda: job_row(app, job_id)["lease_until"] < time.time(), message="the lease to expire",
             timeout=20)
    assert cli("work", "--stop-when-empty").returncode == 0
    assert job_row(app, job_id)["status"] == "done"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"


def test_sigterm_lets_the_running_job_finish_and_exits_0(app, spawn, tmp_path):
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 1.0, "marker": str(marker)})
    waiting = app.dispatch("noop", delay=0.5)
    worker = spawn("work", "--sleep", "0.1", "--queue", "default")
    wait_for(marker.exists, message="the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert Path(str(marker) + ".done").exists()
    assert job_row(app, job_id)["status"] == "done"
    assert job_row(app, waiting)["status"] == "pending" and job_row(app, waiting)["attempts"] == 0


def test_a_second_signal_stops_at_once_and_gives_the_job_back(app, spawn, tmp_path):
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 30, "marker": str(marker)})
    worker = spawn("work", "--sleep", "0.1")
    wait_for(marker.exists, message="the job to start")
    started = time.monotonic()
    worker.send_signal(signal.SIGINT)
    time.sleep(0.2)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    row = job_row(app, job_id)
    assert row["status"] == "pending" and row["attempts"] == 0  # released, the attempt not burnt


def test_grace_period_then_release(app, spawn, tmp_path):
    set_config(app.settings.root, "grace = 0.5")
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 30, "marker": str(marker)})
    worker = spawn("work", "--sleep", "0.1")
    wait_for(marker.exists, message="the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    row = job_row(app, job_id)
    assert row["status"] == "pending" and row["attempts"] == 0


def test_four_workers_run_5000_jobs_exactly_once(app, spawn, tmp_path):
    out = tmp_path / "marks"
    app.dispatch_many([("mark", {"n": n, "path": str(out)}) for n in range(5000)])
    # Long-running workers (a cron run of `work --stop-when-empty` takes a lock instead).
    workers = [spawn("work", "--queue", "default", "--sleep", "0.2") for _ in range(4)]
    done = lambda: app.backend.read("SELECT count(*) FROM jobs WHERE status = 'done'")[0][0]  # noqa: E731
    wait_for(lambda: done() == 5000, timeout=300, interval=0.2, message="5000 jobs done")
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(60) == 0
        stderr = worker.stderr.read()
        assert "locked" not in stderr, stderr
    assert sorted(runs(out)) == list(range(5000))
    assert done() == 5000


def test_max_jobs_and_max_time(app, cli, spawn, tmp_path):
    out = tmp_path / "marks"
    app.dispatch_many([("mark", {"n": n, "path": str(out)}) for n in range(50)])
    result = cli("work", "--max-jobs", "7", "--concurrency", "2")
    assert result.returncode == 0 and len(runs(out)) == 7
    started = time.monotonic()
    result = cli("work", "--max-time", "1", "--queue", "nothing-here")
    assert result.returncode == 0 and 0.9 < time.monotonic() - started < 10


def test_memory_limit_recycles_the_process_after_its_job(app, cli, tmp_path):
    pids = tmp_path / "pids"
    for n in range(3):
        app.dispatch("sleepy", {"seconds": 0, "marker": str(pids) + str(n)})
    result = cli("work", "--stop-when-empty", "--memory", "1")
    assert result.returncode == 0, result.stderr
    seen = {(tmp_path / f"pids{n}").read_text() for n in range(3)}
    assert len(seen) == 3  # each job ran in a fresh process


def test_bad_worker_options_are_usage_errors(cli):
    for args in (["--queue", ","], ["--concurrency", "0"], ["--loop", "--stop-when-empty"]):
        result = cli("work", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
