"""Real `photojobs work` processes on PostgreSQL: several at once run each job exactly
once; a worker killed with SIGKILL mid-job loses it to another once its lease expires;
an idle worker wakes on NOTIFY, not on its poll."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from photojobs.settings import load
from photojobs.storage import NewJob, open_backend

from .. import postgres_server
from ..conftest import cli_env, wait_for

pytestmark = postgres_server.marks()
# 20,000 in the load test (PJ_PG_LOAD_JOBS=20000); fewer by default to keep CI short.
LOAD_JOBS = int(os.environ.get("PJ_PG_LOAD_JOBS", "3000"))


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "photojobs", "-q", *args], cwd=workdir, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> list[str]:
    """SIGTERM (graceful), then the stderr of each."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    errors = []
    for proc in procs:
        try:
            errors.append(proc.communicate(timeout=30)[1])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            errors.append(proc.communicate()[1])
    return errors


def _backend(workdir: Path):
    return open_backend(load(config=workdir / "photojobs.toml", env={}))


def _counts(backend) -> dict[tuple[str, int], int]:
    """(status, attempts) -> jobs."""
    return {(r[0], r[1]): r[2] for r in backend.execute(
        "SELECT status, attempts, count(*) FROM jobs GROUP BY status, attempts").fetchall()}


def test_four_worker_processes_run_each_job_exactly_once(pg_workdir: Path) -> None:
    backend = _backend(pg_workdir)
    now = time.time()
    backend.enqueue([NewJob("noop", {"n": i}, "default", now) for i in range(LOAD_JOBS)])
    workers = [_start(pg_workdir, "work", "--queue", "default", "--sleep", "0.2") for _ in range(4)]
    try:
        wait_for(lambda: backend.count_jobs("default", "done") == LOAD_JOBS, timeout=180,
                 message=f"{LOAD_JOBS} jobs to be done")
    finally:
        errors = _stop(workers)
    assert _counts(backend) == {("done", 1): LOAD_JOBS}, errors  # claimed once each: attempts 1
    assert [w.returncode for w in workers] == [0, 0, 0, 0], errors


def test_kill_9_mid_job_and_another_worker_completes_it(pg_workdir: Path, tmp_path: Path) -> None:
    config = pg_workdir / "photojobs.toml"
    config.write_text("lease = 5\n" + config.read_text())  # the shortest lease allowed
    backend = _backend(pg_workdir)
    marker = tmp_path / "started"
    job_id = backend.enqueue_one(NewJob("sleepy", {"seconds": 1.5, "marker": str(marker)}, "default", time.time()))
    doomed = _start(pg_workdir, "work", "--sleep", "0.1")
    survivor = None
    try:
        wait_for(marker.exists, message="the job to start")
        survivor = _start(pg_workdir, "work", "--sleep", "0.1")
        os.killpg(doomed.pid, signal.SIGKILL)  # the supervisor and its children, as the OOM killer would
        doomed.wait(10)
        assert backend.job_status(job_id) == "reserved" and not Path(f"{marker}.done").exists()
        wait_for(lambda: backend.job_status(job_id) == "done", timeout=45, message="another worker to finish it")
    finally:
        errors = _stop([p for p in (doomed, survivor) if p is not None])
    row, errors_of_job = backend.execute("SELECT attempts FROM jobs WHERE id = :id", {"id": job_id}).fetchone(), \
        backend.execute("SELECT error_class FROM job_errors WHERE job_id = :id", {"id": job_id}).fetchall()
    assert row[0] == 2 and [e[0] for e in errors_of_job] == ["WorkerLost"], errors
    assert Path(f"{marker}.done").exists()


def test_an_idle_worker_wakes_on_notify_long_before_its_poll(pg_workdir: Path, tmp_path: Path) -> None:
    backend = _backend(pg_workdir)
    worker = _start(pg_workdir, "work", "--sleep", "30")  # its poll alone would take up to 30 s
    try:
        first = tmp_path / "first"
        backend.enqueue_one(NewJob("sleepy", {"seconds": 0, "marker": str(first)}, "default", time.time()))
        wait_for(lambda: Path(f"{first}.done").exists(), timeout=20, message="the worker to start")
        time.sleep(0.5)  # idle now, waiting
        marker = tmp_path / "second"
        dispatched = time.monotonic()
        backend.enqueue_one(NewJob("sleepy", {"seconds": 0, "marker": str(marker)}, "default", time.time()))
        wait_for(marker.exists, timeout=10, interval=0.005, message="the idle worker to wake")
        assert time.monotonic() - dispatched < 3
    finally:
        _stop([worker])


def test_a_worker_rides_out_the_server_going_away_and_coming_back(pg_workdir: Path, pg_url: str) -> None:
    from .netns import Relay

    relay = Relay("127.0.0.1")
    port = relay.port
    config = pg_workdir / "photojobs.toml"
    config.write_text(config.read_text().replace("127.0.0.1:5432", f"127.0.0.1:{port}"))
    backend = open_backend(load(env={}, db=pg_url))  # the test's own way in, not through the relay
    first = backend.enqueue_one(NewJob("noop", {}, "default", time.time()))
    worker = _start(pg_workdir, "work", "--sleep", "0.2")
    try:
        wait_for(lambda: backend.job_status(first) == "done", timeout=30, message="the worker to run a job")
        relay.close()  # the server is gone: connections dropped, new ones refused
        later = backend.enqueue([NewJob("noop", {"n": i}, "default", time.time()) for i in range(3)]).ids
        time.sleep(2)
        assert worker.poll() is None and [backend.job_status(i) for i in later] == ["pending"] * 3
        relay = Relay("127.0.0.1", port=port)  # back
        wait_for(lambda: all(backend.job_status(i) == "done" for i in later), timeout=30,
                 message="the worker to go on once the server is back")
        assert worker.poll() is None
    finally:
        (stderr,) = _stop([worker])
        relay.close()
    assert worker.returncode == 0, stderr
    assert stderr == ""  # -q: nothing printed, no traceback, no library chatter
    from photojobs.logs import log_path

    log = log_path(load(config=pg_workdir / "photojobs.toml", env={}))
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"db_unavailable", "db_back"} <= {e.get("event") for e in events}


def test_each_host_logs_under_its_name_and_logs_reads_every_host(pg_workdir: Path) -> None:
    import socket

    backend = _backend(pg_workdir)
    job_id = backend.enqueue_one(NewJob("noop", {}, "default", time.time()))
    ran = subprocess.run([sys.executable, "-m", "photojobs", "work", "--stop-when-empty"], cwd=pg_workdir,
                         env=cli_env(), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    logs = pg_workdir / "storage" / "logs"
    ours = logs / socket.gethostname() / "photojobs.jsonl"
    assert not (logs / "photojobs.jsonl").exists()
    mine = [json.loads(line) for line in ours.read_text().splitlines()]
    assert any(e.get("job", {}).get("id") == job_id for e in mine)
    # Another host sharing this storage root wrote its own file, one entry a second earlier.
    other = dict(mine[-1], message="from the other host")
    other["time"] = mine[-1]["time"][:17] + "00.000+00:00"
    (logs / "worker2").mkdir()
    (logs / "worker2" / "photojobs.jsonl").write_text(json.dumps(other) + "\n")
    read = subprocess.run([sys.executable, "-m", "photojobs", "logs", "--json"], cwd=pg_workdir, env=cli_env(),
                          capture_output=True, text=True, timeout=60)
    entries = [json.loads(line) for line in read.stdout.splitlines()]
    assert "from the other host" in [e["message"] for e in entries]
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
