"""A worker SIGKILLed on this host is dead at once: `status` says so and the next worker
takes its job back without waiting for the lease. Elsewhere the lease still decides."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from photojobs.liveness import identity

from tests.conftest import wait_for

from .conftest import db_exec, db_rows, set_top


def _reaped_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_worker_is_dead_now_and_its_job_runs_again_at_once(start, run, run_json, ops_app, opsdir):
    set_top(opsdir, "lease = 30")  # a lease expiry would take 30 s; the test is far shorter
    flag, marker = opsdir / "hold", opsdir / "started"
    flag.write_text("x")
    job_id = ops_app.dispatch("hold_while", {"flag": str(flag), "marker": str(marker)})
    worker = start("work", "--queue", "default")
    wait_for(marker.exists, message="the job to start")
    wait_for(lambda: run_json("status")["workers"], timeout=10, interval=0.3, message="the live worker")

    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = time.monotonic()
    data = run_json("status")
    assert data["workers"] == []
    [dead] = data["dead_workers"]
    assert dead["pid"] == worker.pid and dead["current_jobs"] == [job_id]
    assert "1 dead" in run("status").stdout

    flag.unlink()  # the job can finish when it runs again
    again = run("work", "--stop-when-empty", "--queue", "default")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - killed_at < 30
    row = ops_app.backend.get(job_id)
    assert (row["status"], row["attempts"]) == ("done", 2)
    # the lost attempt's record, read from storage on purpose: no command shows those of a job that ended done
    [error] = db_rows(opsdir, "SELECT error_class, message FROM job_errors WHERE job_id = ?", [job_id])
    assert error["error_class"] == "WorkerLost" and f"pid {worker.pid} is gone" in error["message"]
    assert run_json("status")["dead_workers"] == []


def test_elsewhere_or_unsure_the_lease_decides(run, run_json, ops_app, opsdir):
    set_top(opsdir, "lease = 30")
    host, boot_id, pid_ns = identity()
    now = time.time()
    rows = {"other-boot": (host, "another boot", pid_ns), "other-host": ("elsewhere", boot_id, pid_ns),
            "other-ns": (host, boot_id, "pid:[1]"), "unknown": (host, None, None)}
    # workers of other hosts, boots and namespaces, each holding a job: made in storage on purpose
    for name, (h, b, n) in rows.items():
        job_id = ops_app.dispatch("noop", {"n": len(name)})
        db_exec(opsdir, "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at,"
                        " boot_id, pid_ns) VALUES (?, ?, ?, 'default', 1, ?, ?, ?, ?)",
                [name, h, _reaped_pid(), now - 5, now, b, n])
        db_exec(opsdir, "UPDATE jobs SET status = 'reserved', reserved_by = ?, lease_until = ?, attempts = 1"
                        " WHERE id = ?", [f"{name}/0.1", now + 30, job_id])
    # and one that is certainly dead: this host, this boot, this namespace, pid gone
    db_exec(opsdir, "INSERT INTO workers (id, host, pid, queues, concurrency, started_at, heartbeat_at,"
                    " boot_id, pid_ns) VALUES ('here', ?, ?, 'default', 1, ?, ?, ?, ?)",
            [socket.gethostname(), _reaped_pid(), now - 5, now, boot_id, pid_ns])
    data = run_json("status")
    assert sorted(w["id"] for w in data["workers"]) == sorted(rows)
    assert [w["id"] for w in data["dead_workers"]] == ["here"]

    assert run("work", "--stop-when-empty", "--queue", "default").returncode == 0
    data = run_json("status")
    assert data["queues"]["default"]["reserved"] == 4  # the lease decides: their jobs stay theirs
    assert sorted(w["id"] for w in data["workers"] + data["dead_workers"]) == sorted(rows)


def test_a_reused_pid_or_a_zombie_is_not_the_worker():
    from photojobs.liveness import pid_gone, process_start

    started = process_start(os.getpid())[1]
    assert not pid_gone(os.getpid(), started)  # this process, as it registered
    assert not pid_gone(os.getpid(), None)  # an older row without its start: the pid decides
    assert pid_gone(os.getpid(), started - 100)  # another process started earlier had this pid
    zombie = subprocess.Popen(["true"])
    wait_for(lambda: process_start(zombie.pid)[0] == "Z", message="the child to exit")
    assert pid_gone(zombie.pid, None)
    zombie.wait()
    assert pid_gone(zombie.pid, None)
