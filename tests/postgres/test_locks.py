"""A lock held on the queue's tables on PostgreSQL (a careless migration's LOCK TABLE, a
VACUUM FULL): a short command gives up after lock_budget with exit 3 and one line naming
the holder; a looping worker waits, says whom it waits for, and goes on when it is freed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from .. import postgres_server
from ..conftest import cli_env, wait_for
from .conftest import write_config

pytestmark = postgres_server.marks()


def _photojobs(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=folder, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def _hold(url: str, table: str = "jobs") -> psycopg.Connection:
    conn = psycopg.connect(url, application_name="careless migration")
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def test_a_short_command_gives_up_after_lock_budget_naming_the_holder(pg_url: str, tmp_path: Path) -> None:
    write_config(tmp_path, pg_url, "lock_budget = 1\n")
    assert _photojobs(tmp_path, "dispatch", "noop", "--queue", "emails").returncode == 0
    holder = _hold(pg_url)
    pid = holder.info.backend_pid
    try:
        for args in (["dispatch", "noop"], ["send-mail"], ["failed", "retry", "--all"]):
            started = time.monotonic()
            result = _photojobs(tmp_path, *args, timeout=30)
            took = time.monotonic() - started
            assert result.returncode == 3, (args, result.stderr)
            (line,) = result.stderr.strip().splitlines()
            assert "stayed locked past lock_budget (1s)" in line, (args, line)
            assert f"PostgreSQL pid {pid} (careless migration" in line and "on jobs" in line, (args, line)
            assert took < 15, (args, took)  # the budget, not forever
    finally:
        holder.close()
    assert _photojobs(tmp_path, "dispatch", "noop").returncode == 0  # freed: it works again
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE status = 'reserved'").fetchone()[0] == 0


def test_a_looping_worker_waits_out_a_held_table_lock_and_says_whom_it_waits_for(pg_url: str, tmp_path: Path) -> None:
    write_config(tmp_path, pg_url, "lock_budget = 1\nlease = 5\n")
    worker = subprocess.Popen([sys.executable, "-m", "photojobs", "work", "--loop", "--sleep", "0.1",
                               "--queue", "default"], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            wait_for(lambda: conn.execute("SELECT count(*) FROM workers").fetchone()[0] == 1, timeout=30,
                     message="the worker to start")
            holder = _hold(pg_url)
            pid = holder.info.backend_pid
            try:
                assert _photojobs(tmp_path, "--db", pg_url, "dispatch", "noop", timeout=5).returncode == 3
                time.sleep(3)  # past lock_budget, and past a renewal of the worker's leases
                assert worker.poll() is None  # it waits, it does not die
            finally:
                holder.close()
            assert _photojobs(tmp_path, "dispatch", "noop").returncode == 0
            wait_for(lambda: conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0] == 1,
                     timeout=30, message="the job dispatched after the lock to run")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    waits = [line for line in stderr.splitlines() if "waiting for the database's write lock" in line]
    assert waits and all(f"held by PostgreSQL pid {pid} (careless migration" in line for line in waits), stderr
    assert "Traceback" not in stderr, stderr
