"""Queue throughput: photojobs against Huey's SQLite storage, in the same run, as ratios.

    python bench/queue.py [--jobs 20000] [--repeat 3]

Measures, median of --repeat runs each:
- end to end: N no-op jobs already queued, then `photojobs work --concurrency 2
  --stop-when-empty` (a real CLI process, start-up included) against Huey's consumer with
  2 process workers (`huey_consumer -w 2 -k process`), until its queue is empty;
- single dispatch: one job per transaction, from Python (`app.dispatch` vs a Huey task call);
- bulk dispatch: `app.dispatch_many` of N jobs in one transaction;
- the cron path: wall time of `photojobs work --stop-when-empty` on an empty queue.
With --postgres, the PostgreSQL columns too (bench/queue_postgres.py: photojobs against
procrastinate and pgqueuer on one server). Both durabilities: photojobs `normal` (the default) and `full` against Huey's default
(WAL with SQLite's default synchronous=FULL) and Huey with fsync=False (synchronous=OFF).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named queue.py: drop its folder from the path, or `import queue` (stdlib,
# used by multiprocessing and Huey) would import it.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import os
import statistics
import subprocess
import tempfile
import time

SUPPORT = Path(__file__).resolve().parent / "support"  # bench_jobs.py, the job the workers run
sys.path.insert(0, str(SUPPORT))

HUEY_MODULE = """
from huey import SqliteHuey
huey = SqliteHuey(filename={db!r}, fsync={fsync!r})

@huey.task()
def noop(n=0):
    pass
"""


def run_photojobs(folder: Path, jobs: int, durability: str) -> float:
    import photojobs
    from photojobs.install import init

    init(config=str(folder / "photojobs.toml"))
    app = photojobs.connect(photojobs.Settings(db=str(folder / "photojobs.db"), durability=durability,
                                               imports=("bench_jobs",)))
    app.dispatch_many([("bench_noop", {"n": i}) for i in range(jobs)])
    app.close()
    env = {**os.environ, "PYTHONPATH": str(SUPPORT), "PHOTOJOBS_DURABILITY": durability,
           "PHOTOJOBS_IMPORTS": "bench_jobs"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "photojobs", "-q", "work", "--concurrency", "2", "--stop-when-empty"],
                   cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    done = photojobs.connect(folder / "photojobs.toml").backend.read(
        "SELECT count(*) FROM jobs WHERE status = 'done'")[0][0]
    assert done == jobs, f"photojobs ran {done} of {jobs} jobs"
    return jobs / elapsed


def huey_module(folder: Path, fsync: bool | None) -> str:
    name = f"huey_bench_{os.getpid()}_{int(time.time() * 1e6)}"
    (folder / f"{name}.py").write_text(HUEY_MODULE.format(db=str(folder / "huey.db"), fsync=fsync))
    sys.path.insert(0, str(folder))
    return name


def run_huey(folder: Path, jobs: int, fsync: bool | None) -> float:
    import importlib

    name = huey_module(folder, fsync)
    module = importlib.import_module(name)
    for i in range(jobs):
        module.noop(i)
    assert module.huey.pending_count() == jobs
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "huey.bin.huey_consumer", f"{name}.huey", "-w", "2", "-k", "process",
                             "-d", "0.01", "-q"], cwd=folder, env={**os.environ, "PYTHONPATH": str(folder)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while module.huey.pending_count():
            if proc.poll() is not None:
                raise SystemExit(f"huey's consumer exited with code {proc.returncode}")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait()
    return jobs / elapsed


def single_dispatch_photojobs(folder: Path, jobs: int, durability: str) -> float:
    import photojobs
    from photojobs.install import init

    init(config=str(folder / "photojobs.toml"))
    app = photojobs.connect(photojobs.Settings(db=str(folder / "photojobs.db"), durability=durability,
                                               imports=("bench_jobs",)))
    app.dispatch("bench_noop", {"n": 0})  # imports and connection outside the timing
    started = time.perf_counter()
    for i in range(jobs):
        app.dispatch("bench_noop", {"n": i})
    return jobs / (time.perf_counter() - started)


def single_dispatch_huey(folder: Path, jobs: int, fsync: bool | None) -> float:
    import importlib

    module = importlib.import_module(huey_module(folder, fsync))
    module.noop(0)
    started = time.perf_counter()
    for i in range(jobs):
        module.noop(i)
    return jobs / (time.perf_counter() - started)


def bulk_dispatch(folder: Path, jobs: int, durability: str) -> float:
    import photojobs
    from photojobs.install import init

    init(config=str(folder / "photojobs.toml"))
    app = photojobs.connect(photojobs.Settings(db=str(folder / "photojobs.db"), durability=durability,
                                               imports=("bench_jobs",)))
    items = [("bench_noop", {"n": i}) for i in range(jobs)]
    started = time.perf_counter()
    app.dispatch_many(items)
    return jobs / (time.perf_counter() - started)


def empty_cron_run(folder: Path) -> float:
    from photojobs.install import init

    init(config=str(folder / "photojobs.toml"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "photojobs", "-q", "work", "--stop-when-empty"], cwd=folder, check=True,
                   env={k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")})
    return time.perf_counter() - started


def median(fn, repeat: int, *args) -> float:
    values = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="pjbench-") as tmp:
            values.append(fn(Path(tmp), *args))
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true",
                        help="also the PostgreSQL columns (bench/queue_postgres.py) in the same run")
    parser.add_argument("--sweep-jobs", type=int, default=5000, help="jobs per run of the peers' sweep (--postgres)")
    args = parser.parse_args()
    n, r = args.jobs, args.repeat
    print(f"# {n} no-op jobs, median of {r}; {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    rows = []
    for label, ours, theirs in [("normal vs huey fsync=False", "normal", False),
                                ("full vs huey default (FULL)", "full", None)]:
        print(f"... {label}", file=sys.stderr, flush=True)
        p = median(run_photojobs, r, n, ours)
        h = median(run_huey, r, n, theirs)
        rows.append((f"end to end, {label}", p, h))
        sp = median(single_dispatch_photojobs, r, min(n, 5000), ours)
        sh = median(single_dispatch_huey, r, min(n, 5000), theirs)
        rows.append((f"single dispatch, {label}", sp, sh))
    bulk = median(bulk_dispatch, r, max(n, 100000), "normal")
    cron = median(empty_cron_run, max(r, 5))
    print(f"{'measure':<45} {'photojobs/s':>12} {'huey/s':>10} {'ratio':>7}")
    for label, p, h in rows:
        print(f"{label:<45} {p:>12,.0f} {h:>10,.0f} {p / h:>6.2f}x")
    print(f"{'bulk dispatch (one transaction), normal':<45} {bulk:>12,.0f}")
    print(f"{'work --stop-when-empty on an empty queue':<45} {cron * 1000:>10.0f} ms")
    if args.postgres:
        import importlib.util  # bench/ is off sys.path (see the top): load the PostgreSQL half by its file

        spec = importlib.util.spec_from_file_location("queue_postgres", Path(__file__).with_name("queue_postgres.py"))
        postgres = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(postgres)
        postgres.report(postgres.run(n, r, args.sweep_jobs))


if __name__ == "__main__":
    main()
