"""Cron mode: a drain command holds a lock, so an overlapping run exits 0 at once; --max-time."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from photojobs.locks import AlreadyRunning, cron_lock, lock_path
from photojobs.settings import load
from tests.conftest import wait_for


def _dispatch_sleepy(cli, workdir, queue: str, seconds: float, name: str = "job") -> str:
    marker = str(workdir / f"{name}.started")
    done = cli("dispatch", "sleepy", "--queue", queue, "--payload", json.dumps({"seconds": seconds, "marker": marker}))
    assert done.returncode == 0, done.stderr
    return marker


@pytest.mark.parametrize("command, queue, lock", [
    (("send-mail",), "emails", "send-mail"),
    (("work", "--stop-when-empty"), "default", "work-emails-photos-downloads-default"),
])
def test_an_overlapping_run_exits_at_once_and_says_why(cli, spawn, workdir, command, queue, lock):
    marker = _dispatch_sleepy(cli, workdir, queue, 8)  # long enough that a run which waited would show it
    first = spawn(*command)
    wait_for(lambda: os.path.exists(marker), message="the first run to start its job")
    started = time.monotonic()
    second = cli(*command, timeout=20)
    took = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert f"{command[0]} is already running (pid {first.pid}, since " in second.stdout
    assert "this run exits without working" in second.stdout
    assert first.poll() is None and took < 6, took  # it did not wait for the first run
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert "1 done" in out
    path = workdir / "storage" / "locks" / f"{lock}.lock"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    third = cli(*command, timeout=20)  # the lock went with the first run
    assert third.returncode == 0 and "already running" not in third.stdout, third.stdout


def test_a_looping_worker_takes_no_cron_lock(cli, spawn, workdir):
    marker = _dispatch_sleepy(cli, workdir, "emails", 3)
    first = spawn("send-mail", "--loop")
    wait_for(lambda: os.path.exists(marker), message="the looping run to start its job")
    assert not (workdir / "storage" / "locks" / "send-mail.lock").exists()
    first.terminate()
    first.communicate(timeout=30)


def test_max_time_ends_a_cron_run_before_the_next_tick(cli, workdir):
    for index in range(3):
        _dispatch_sleepy(cli, workdir, "emails", 2.5, name=f"job{index}")
    started = time.monotonic()
    # --max-time counts the start-up too (the worker's clean child process: ~1 s when busy)
    done = cli("send-mail", "--max-time", "2", timeout=30)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "1 done" in done.stdout  # the job it had begun was let finish; no new one was claimed
    assert took < 8, took
    status = cli("status", "--json")
    assert json.loads(status.stdout)["queues"]["emails"]["pending"] == 2, status.stdout  # the two sleepy jobs left


def test_cron_lock_in_process(workdir):
    settings = load(config=workdir / "photojobs.toml")
    with cron_lock(settings, "drain-x", command="demo"):
        with pytest.raises(AlreadyRunning, match=rf"demo is already running \(pid {os.getpid()}, since"):
            with cron_lock(settings, "drain-x", command="demo"):
                pass
    with cron_lock(settings, "drain-x"):  # released
        pass
    assert AlreadyRunning.exit_code == 0
    assert lock_path(settings, "../../etc/passwd").parent == settings.storage_path / "locks"


def test_cleanup_downloads_takes_the_lock_but_its_dry_run_does_not(cli, workdir):
    settings = load(config=workdir / "photojobs.toml")
    with cron_lock(settings, "cleanup-downloads", command="cleanup-downloads"):  # a run in progress
        busy = cli("cleanup-downloads")
        dry = cli("cleanup-downloads", "--dry-run")
    assert busy.returncode == 0 and "cleanup-downloads is already running" in busy.stdout
    assert dry.returncode == 0 and "Would free" in dry.stdout
    done = cli("cleanup-downloads")
    assert done.returncode == 0 and "Freed" in done.stdout
