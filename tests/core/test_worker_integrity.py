"""The worker's integrity under faults: a failing or killed supervisor, a held write lock,
a kill mid-batch. Real processes, real signals, a real SQLite file checked with
`PRAGMA integrity_check` after each."""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from photojobs import ops
from tests.conftest import set_config, storage_rows, wait_for

HOLD_LOCK = ("import sqlite3, sys, time\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute('BEGIN IMMEDIATE')\n"
             "print('held', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n")


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process takes the write lock and keeps it `seconds` (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def integrity(db: Path) -> str:
    """The database file's own check, on purpose: what a worker crash may break is the file."""
    return storage_rows(db.parent, "PRAGMA integrity_check")[0][0]


def count(app, column: str) -> int:
    """`status --json` summed over the queues: reserved, or done_last_hour."""
    return sum(queue[column] for queue in ops.status(app)["queues"].values())


def runs(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (the worker, its children and their start server)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_write_lock_held_past_lock_budget_is_waited_out_by_a_looping_worker(app, spawn, tmp_path):
    set_config(app.settings.root, "lock_budget = 1\nbusy_timeout = 0.2\nlease = 5")
    out = tmp_path / "marks"
    app.dispatch_many([("mark", {"n": n, "path": str(out)}) for n in range(3000)])
    for n in range(2):
        app.dispatch("sleepy", {"seconds": 1.5})
    worker = spawn("work", "--loop", "--concurrency", "2", "--sleep", "0.1", "--queue", "default")
    wait_for(lambda: len(runs(out)) >= 200, timeout=30, message="the worker to get going")
    holder = hold_write_lock(app.settings.db_path, 4)  # past lock_budget, and past a renewal
    assert holder.wait(20) == 0
    assert worker.poll() is None, worker.stderr.read()  # it waited instead of dying
    wait_for(lambda: count(app, "done_last_hour") == 3002, timeout=60, message="every job done")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    stderr = worker.stderr.read()
    assert "waiting for the database's write lock" in stderr and f"held by pid {holder.pid}" in stderr, stderr
    assert sorted(runs(out)) == list(range(3000))  # nothing lost, nothing ran twice
    assert integrity(app.settings.db_path) == "ok"


@pytest.mark.parametrize("method", ["default", "spawn"])
def test_a_supervisor_that_raises_takes_its_children_along_at_once(app, tmp_path, monkeypatch, method):
    import photojobs.worker as worker_module
    from photojobs.worker import WorkerOptions

    if method == "spawn":  # the start method of macOS laptops, run here too
        monkeypatch.setattr(worker_module, "start_context", lambda: multiprocessing.get_context("spawn"))
    marker = tmp_path / "started"
    job_id = app.dispatch("sleepy", {"seconds": 30, "marker": str(marker)})
    for n in range(3):
        app.dispatch("sleepy", {"seconds": 30}, delay=3600)

    def progress(report) -> None:
        if marker.exists():
            raise RuntimeError("the supervisor fails")

    with pytest.raises(RuntimeError, match="the supervisor fails"):
        app.work(WorkerOptions(queues=["default"], concurrency=2, sleep=0.1), on_progress=progress)
    child = int(marker.read_text())
    assert not alive(child)  # gone before work() returned, not left running unsupervised
    row = app.backend.get(job_id)
    # the attempt's record, read from storage on purpose: no command shows the errors of a pending job
    errors = storage_rows(app.settings.db_path.parent, "SELECT error_class FROM job_errors WHERE job_id = ?", [job_id])
    # killed while running: one attempt charged (a kill explains it), back to pending
    assert (row["status"], row["attempts"], [e[0] for e in errors]) == ("pending", 1, ["WorkerLost"])
    assert count(app, "reserved") == 0
    assert integrity(app.settings.db_path) == "ok"


def test_children_start_clean_and_die_with_the_supervisor_without_pdeathsig(app, spawn, tmp_path):
    """Children do not descend from the supervisor by a bare fork (a clean process starts
    them); the portable watch (a pipe only the supervisor holds) kills them when it dies,
    here with the process that PR_SET_PDEATHSIG relies on stopped."""
    marker = tmp_path / "started"
    app.dispatch("sleepy", {"seconds": 30, "marker": str(marker)})
    worker = spawn("work", "--loop", "--sleep", "0.1")
    wait_for(marker.exists, message="the job to start")
    child = int(marker.read_text())
    server = parent_of(child)
    assert server != worker.pid
    os.kill(server, signal.SIGSTOP)  # it cannot exit, so the child's PDEATHSIG cannot fire
    try:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: not alive(child), timeout=5, message="the child to die with its supervisor")
    finally:
        os.kill(server, signal.SIGCONT)


def test_killing_the_supervisor_mid_batch_charges_only_the_running_job(app, spawn, cli, tmp_path):
    set_config(app.settings.root, "lease = 5")
    out = tmp_path / "marks"
    total = 20000
    app.dispatch_many([("mark", {"n": n, "path": str(out)}) for n in range(total)])
    worker = spawn("work", "--loop", "--tries", "1", "--queue", "default", "--sleep", "0.1")
    wait_for(lambda: len(runs(out)) >= 2000, timeout=60, message="a few thousand jobs to run")
    os.kill(worker.pid, signal.SIGKILL)  # the supervisor only; its child follows it
    worker.wait(10)
    wait_for(lambda: not group_members(worker.pid), timeout=10, message="the child to die with its supervisor")
    reserved = count(app, "reserved")
    assert reserved >= 2  # the kill caught a claim of several jobs, or this test proves nothing
    # as if the lease had run out, set in storage on purpose (waiting out the lease would only slow the test)
    storage_rows(app.settings.db_path.parent, "UPDATE jobs SET lease_until = 0 WHERE status = 'reserved'")
    result = cli("work", "--stop-when-empty", "--tries", "1", "--queue", "default", timeout=120)
    failed = [job["id"] for job in ops.list_failed(app)]
    assert len(failed) <= 1, failed  # at most the job that was running
    assert result.returncode in (0, 1), result.stderr
    assert count(app, "done_last_hour") == total - len(failed)
    seen = collections.Counter(runs(out))
    twice = [n for n, c in seen.items() if c > 1]
    assert twice == [], twice  # a finished job never ran again
    assert len(seen) >= total - len(failed)
    assert integrity(app.settings.db_path) == "ok"


def test_short_commands_give_up_on_a_held_lock_with_exit_3_naming_lock_budget(app, cli):
    set_config(app.settings.root, "lock_budget = 1\nbusy_timeout = 0.2")
    app.dispatch("noop", queue="emails")
    holder = hold_write_lock(app.settings.db_path, 30)
    try:
        for args in (["dispatch", "noop"], ["send-mail"]):
            result = cli(*args, timeout=30)
            assert result.returncode == 3, (args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "locked" in lines[0] and "lock_budget" in lines[0], (args, lines)
    finally:
        holder.kill()
        holder.wait()
    assert count(app, "reserved") == 0
    assert integrity(app.settings.db_path) == "ok"
