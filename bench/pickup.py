"""Idle pickup latency: from a dispatch's commit to the job's start in an idle worker.

    python bench/pickup.py [--jobs 40]

A real `photojobs work` (default --sleep 1) waits idle; jobs are dispatched one at a time
at random gaps of 0.2-0.5 s (so the worker is idle each time); each job writes the time
it started. PostgreSQL with LISTEN/NOTIFY (the default), PostgreSQL polling only
(`[postgres] listen = false`), and SQLite (`PRAGMA data_version` polled every 50 ms).
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # bench/queue.py would shadow the stdlib's queue

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time

SUPPORT = Path(__file__).resolve().parent / "support"
ADMIN = os.environ.get("PJ_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def measure(folder: Path, db: str | None, extra: str, jobs: int) -> list[float]:
    """Latencies (seconds) of `jobs` dispatches to an idle worker."""
    import photojobs
    from photojobs.install import init

    init(config=str(folder / "photojobs.toml"), db=db)
    with open(folder / "photojobs.toml", "a") as fh:
        fh.write(f'imports = ["bench_jobs"]\n{extra}')
    sys.path.insert(0, str(SUPPORT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    env["PYTHONPATH"] = str(SUPPORT)
    worker = subprocess.Popen([sys.executable, "-m", "photojobs", "-q", "work", "--queue", "default"], cwd=folder,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = folder / "started.log"
    committed: dict[int, float] = {}
    try:
        with photojobs.connect(folder / "photojobs.toml") as app:
            app.dispatch("bench_started", {"log": str(log)})  # the worker is up once this ran
            deadline = time.monotonic() + 60
            while not log.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)
            for _ in range(jobs):
                job_id = app.dispatch("bench_started", {"log": str(log)})
                committed[job_id] = time.time()
                time.sleep(0.2 + random.random() * 0.3)
            deadline = time.monotonic() + 30
            while len(log.read_text().splitlines()) < jobs + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(30)
    started = {int(i): float(t) for i, t in (line.split() for line in log.read_text().splitlines())}
    return [started[i] - at for i, at in committed.items() if i in started]


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"median {statistics.median(ordered) * 1000:6.1f} ms, p90 {ordered[int(0.9 * len(ordered))] * 1000:6.1f} ms,"
            f" max {ordered[-1] * 1000:6.1f} ms ({len(ordered)} jobs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    print(f"# idle pickup, `photojobs work` at its default --sleep 1; {os.cpu_count()} cores")
    name = f"pjbench_pickup_{os.getpid()}"
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    for label, db, extra in [("PostgreSQL, LISTEN/NOTIFY", url, ""),
                             ("PostgreSQL, poll only (listen = false)", url, "[postgres]\nlisten = false\n"),
                             ("SQLite, data_version poll", None, "")]:
        if db:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            _admin(f"CREATE DATABASE {name}")
        try:
            with tempfile.TemporaryDirectory(prefix="pjbench-") as tmp:
                print(f"{label:<40} {summary(measure(Path(tmp), db, extra, args.jobs))}", flush=True)
        finally:
            if db:
                _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
