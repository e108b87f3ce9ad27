"""Queue throughput on PostgreSQL: photojobs against procrastinate and pgqueuer, on the
same server and machine, in the same run, as ratios.

    python bench/queue_postgres.py [--jobs 20000] [--repeat 3] [--sweep-jobs 5000]

Measures (no-op jobs, a fresh database per run, medians of --repeat):
- end to end with 2 and 4 worker processes: the jobs are queued first (not timed), then
  the clock runs from the workers' start to the last one's exit, each draining the queue:
  photojobs `work --concurrency P --stop-when-empty` (one supervisor, P worker processes),
  procrastinate P x `worker --one-shot`, pgqueuer P x its queue manager in drain mode;
- single dispatch (one job per call and commit) and bulk dispatch (one call) from Python.
Each peer at its defaults and at its best setting from a small sweep (procrastinate
`--concurrency` 1-10, pgqueuer `--batch-size` 10-500, --sweep-jobs jobs, one run each);
photojobs at its defaults. Durability: the server's synchronous_commit, printed.
Peers are installed from the `bench` extra only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: drop the folder from the path, or `import queue` (stdlib, used by
# psycopg and multiprocessing) would import it.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from typing import Callable

SUPPORT = Path(__file__).resolve().parent / "support"
ADMIN = os.environ.get("PJ_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PROCRASTINATE_SWEEP = (1, 2, 5, 10)
PGQUEUER_SWEEP = (10, 50, 100, 500)

PROCRASTINATE_MODULE = """
import procrastinate
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo={url!r}))

@app.task(name="noop")
def noop(n=0):
    pass
"""

PGQUEUER_MODULE = """
import psycopg
from pgqueuer import PgQueuer, PsycopgDriver

async def create() -> PgQueuer:
    conn = await psycopg.AsyncConnection.connect({url!r}, autocommit=True)
    pgq = PgQueuer(PsycopgDriver(conn))

    @pgq.entrypoint("noop")
    async def noop(job) -> None:
        pass

    return pgq


if __name__ == "__main__":  # what `pgq run --mode drain` does (its CLI fails on this typer)
    import asyncio
    import sys

    from pgqueuer.domain.types import QueueExecutionMode

    async def main() -> None:
        pgq = await create()
        options = {{"batch_size": int(sys.argv[1])}} if len(sys.argv) > 1 else {{}}
        await pgq.qm.run(mode=QueueExecutionMode.drain, **options)

    asyncio.run(main())
"""


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql)


class Database:
    """A fresh database for one run, dropped after it."""

    def __init__(self, tag: str) -> None:
        self.name = f"pjbench_{tag}_{os.getpid()}_{time.monotonic_ns() % 10**9}"
        _admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        _admin(f"CREATE DATABASE {self.name}")
        self.url = ADMIN.rsplit("/", 1)[0] + "/" + self.name

    def count(self, sql: str) -> int:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchone()[0]

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: object) -> None:
        _admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def _env(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(SUPPORT)])
    return env


def _timed(commands: list[list[str]], folder: Path) -> float:
    """Start every command at once; seconds until the last one exits (each must exit 0)."""
    started = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=folder, env=_env(folder), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.perf_counter() - started
    failed = [e for p, e in zip(procs, errors) if p.returncode != 0]
    if failed:
        raise SystemExit(f"{commands[0][:4]} failed: {failed[0][-2000:]}")
    return elapsed


# -- photojobs -------------------------------------------------------------------------------

def _photojobs_app(folder: Path, url: str):
    import photojobs
    from photojobs.install import init

    sys.path.insert(0, str(SUPPORT))
    init(config=str(folder / "photojobs.toml"), db=url)
    with open(folder / "photojobs.toml", "a") as fh:
        fh.write('imports = ["bench_jobs"]\n')
    return photojobs.connect(folder / "photojobs.toml")


def photojobs_end_to_end(folder: Path, jobs: int, processes: int) -> float:
    with Database("pj") as db:
        app = _photojobs_app(folder, db.url)
        app.dispatch_many([("bench_noop", {"n": i}) for i in range(jobs)])
        app.close()
        seconds = _timed([[sys.executable, "-m", "photojobs", "-q", "work", "--concurrency", str(processes),
                           "--stop-when-empty"]], folder)
        done = db.count("SELECT count(*) FROM jobs WHERE status = 'done' AND attempts = 1")
        assert done == jobs, f"photojobs ran {done} of {jobs} jobs once"
    return jobs / seconds


def photojobs_single(folder: Path, jobs: int) -> float:
    with Database("pj") as db:
        app = _photojobs_app(folder, db.url)
        app.dispatch("bench_noop", {"n": 0})  # imports and connection outside the timing
        started = time.perf_counter()
        for i in range(jobs):
            app.dispatch("bench_noop", {"n": i})
        rate = jobs / (time.perf_counter() - started)
        app.close()
    return rate


def photojobs_bulk(folder: Path, jobs: int) -> float:
    with Database("pj") as db:
        app = _photojobs_app(folder, db.url)
        items = [("bench_noop", {"n": i}) for i in range(jobs)]
        started = time.perf_counter()
        app.dispatch_many(items)
        rate = jobs / (time.perf_counter() - started)
        app.close()
    return rate


# -- procrastinate ---------------------------------------------------------------------------

def _procrastinate(folder: Path, db: Database):
    import importlib

    name = f"procrastinate_bench_{os.getpid()}_{time.monotonic_ns()}"
    (folder / f"{name}.py").write_text(PROCRASTINATE_MODULE.format(url=db.url))
    sys.path.insert(0, str(folder))
    subprocess.run([sys.executable, "-m", "procrastinate", "--app", f"{name}.app", "schema", "--apply"],
                   cwd=folder, env=_env(folder), check=True, capture_output=True)
    return name, importlib.import_module(name)


def procrastinate_end_to_end(folder: Path, jobs: int, processes: int, concurrency: int | None) -> float:
    with Database("pc") as db:
        name, module = _procrastinate(folder, db)
        with module.app.open():
            for start in range(0, jobs, 5000):
                module.noop.batch_defer(*({"n": i} for i in range(start, min(jobs, start + 5000))))
        worker = [sys.executable, "-m", "procrastinate", "--app", f"{name}.app", "worker", "--one-shot"]
        if concurrency is not None:
            worker += ["--concurrency", str(concurrency)]
        seconds = _timed([worker] * processes, folder)
        done = db.count("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
        assert done == jobs, f"procrastinate ran {done} of {jobs} jobs"
    return jobs / seconds


def procrastinate_single(folder: Path, jobs: int) -> float:
    with Database("pc") as db:
        _, module = _procrastinate(folder, db)
        with module.app.open():
            module.noop.defer(n=0)
            started = time.perf_counter()
            for i in range(jobs):
                module.noop.defer(n=i)
            return jobs / (time.perf_counter() - started)


def procrastinate_bulk(folder: Path, jobs: int) -> float:
    with Database("pc") as db:
        _, module = _procrastinate(folder, db)
        with module.app.open():
            items = [{"n": i} for i in range(jobs)]
            started = time.perf_counter()
            module.noop.batch_defer(*items)
            return jobs / (time.perf_counter() - started)


# -- pgqueuer --------------------------------------------------------------------------------

def _pgqueuer(folder: Path, db: Database) -> str:
    name = f"pgqueuer_bench_{os.getpid()}_{time.monotonic_ns()}"
    (folder / f"{name}.py").write_text(PGQUEUER_MODULE.format(url=db.url))
    subprocess.run([sys.executable, "-m", "pgqueuer", "--pg-dsn", db.url, "install"], cwd=folder, env=_env(folder),
                   check=True, capture_output=True)
    return name


async def _pgqueuer_enqueue(url: str, jobs: int, bulk: bool) -> float:
    import psycopg
    from pgqueuer import PsycopgDriver, Queries

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    queries = Queries(PsycopgDriver(conn))
    await queries.enqueue("noop", b"0", 0)
    started = time.perf_counter()
    if bulk:
        await queries.enqueue(["noop"] * jobs, [str(i).encode() for i in range(jobs)], [0] * jobs)
    else:
        for i in range(jobs):
            await queries.enqueue("noop", str(i).encode(), 0)
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


def pgqueuer_end_to_end(folder: Path, jobs: int, processes: int, batch_size: int | None) -> float:
    with Database("pq") as db:
        name = _pgqueuer(folder, db)
        asyncio.run(_pgqueuer_enqueue(db.url, jobs - 1, bulk=True))  # plus the one it enqueues first
        worker = [sys.executable, f"{name}.py"] + ([str(batch_size)] if batch_size is not None else [])
        seconds = _timed([worker] * processes, folder)
        left = db.count("SELECT count(*) FROM pgqueuer")
        done = db.count("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        assert left == 0 and done == jobs, f"pgqueuer: {done} of {jobs} jobs successful, {left} left"
    return jobs / seconds


def pgqueuer_dispatch(folder: Path, jobs: int, bulk: bool) -> float:
    with Database("pq") as db:
        _pgqueuer(folder, db)
        return jobs / asyncio.run(_pgqueuer_enqueue(db.url, jobs, bulk))


# -- the run ---------------------------------------------------------------------------------

def median(fn: Callable[..., float], repeat: int, *args: object) -> float:
    values = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="pjbench-") as tmp:
            values.append(fn(Path(tmp), *args))
    return statistics.median(values)


def best(fn: Callable[..., float], settings: tuple[int, ...], jobs: int, processes: int) -> tuple[int, dict]:
    """The setting with the highest rate over one run each; all the rates."""
    rates = {s: median(fn, 1, jobs, processes, s) for s in settings}
    return max(rates, key=rates.__getitem__), rates


def synchronous_commit() -> str:
    import psycopg

    with psycopg.connect(ADMIN) as conn:
        return conn.execute("SHOW synchronous_commit").fetchone()[0]


def run(jobs: int, repeat: int, sweep_jobs: int) -> list[tuple[str, float, float, float]]:
    """Rows (measure, photojobs/s, procrastinate/s, pgqueuer/s), printed as they come."""
    rows = []
    for processes in (2, 4):
        print(f"... sweep, {processes} processes", file=sys.stderr, flush=True)
        c_best, c_rates = best(procrastinate_end_to_end, PROCRASTINATE_SWEEP, sweep_jobs, processes)
        b_best, b_rates = best(pgqueuer_end_to_end, PGQUEUER_SWEEP, sweep_jobs, processes)
        print(f"# sweep at {processes} processes, {sweep_jobs} jobs: procrastinate --concurrency "
              + ", ".join(f"{c}: {r:,.0f}/s" for c, r in c_rates.items()) + "; pgqueuer --batch-size "
              + ", ".join(f"{b}: {r:,.0f}/s" for b, r in b_rates.items()), flush=True)
        print(f"... end to end, {processes} processes", file=sys.stderr, flush=True)
        ours = median(photojobs_end_to_end, repeat, jobs, processes)
        rows.append((f"end to end, {processes} processes, defaults", ours,
                     median(procrastinate_end_to_end, repeat, jobs, processes, None),
                     median(pgqueuer_end_to_end, repeat, jobs, processes, None)))
        rows.append((f"end to end, {processes} processes, peers best (c={c_best}, b={b_best})", ours,
                     median(procrastinate_end_to_end, repeat, jobs, processes, c_best),
                     median(pgqueuer_end_to_end, repeat, jobs, processes, b_best)))
    single = min(jobs, 5000)
    print("... dispatch", file=sys.stderr, flush=True)
    rows.append(("single dispatch", median(photojobs_single, repeat, single),
                 median(procrastinate_single, repeat, single), median(pgqueuer_dispatch, repeat, single, False)))
    rows.append(("bulk dispatch (one call)", median(photojobs_bulk, repeat, jobs),
                 median(procrastinate_bulk, repeat, jobs), median(pgqueuer_dispatch, repeat, jobs, True)))
    return rows


def report(rows: list[tuple[str, float, float, float]]) -> None:
    print(f"{'measure (PostgreSQL)':<52} {'photojobs/s':>11} {'procrast./s':>11} {'pgqueuer/s':>10}"
          f" {'vs pc':>6} {'vs pq':>6}")
    for label, ours, pc, pq in rows:
        print(f"{label:<52} {ours:>11,.0f} {pc:>11,.0f} {pq:>10,.0f} {ours / pc:>5.2f}x {ours / pq:>5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep-jobs", type=int, default=5000)
    args = parser.parse_args()
    print(f"# PostgreSQL at {ADMIN.rsplit('/', 1)[0]}, synchronous_commit={synchronous_commit()};"
          f" {args.jobs} no-op jobs, median of {args.repeat}; {os.cpu_count()} cores")
    report(run(args.jobs, args.repeat, args.sweep_jobs))


if __name__ == "__main__":
    main()
