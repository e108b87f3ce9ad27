"""`status`, `monitor`, the queue and `photos list` with a long history, beside a fresh
database in the same run (issue 15).

    python bench/scale.py [--history 1000000] [--photos 10000] [--jobs 20000] [--repeat 5] [--rounds 3]
    python bench/scale.py --engine postgresql [--admin postgresql://postgres@127.0.0.1:5432/postgres]

Two workspaces made by `photojobs init` in a temporary folder:
- fresh: nothing in it;
- history: --history finished jobs and --photos photos. The jobs are dispatched in bulk
  (`dispatch_many`, 50,000 per transaction) and finished through the engine's own path
  without running them (the documented shortcut): `backend.claim` 5,000 at a time, then
  `backend.complete` with log-normal run times (median 7 ms), the statements and the
  rollup writes a worker makes. The photos are tiny JPEGs registered with `photos add`
  in 20 albums; their processing jobs are finished the same way, and their status set
  through the photos repository (90% ready, 2% failed, the rest pending), no thumbnails.
Then, alternating the two workspaces so a busy moment hits both alike:
- `status`, `status --json`, `monitor default --max 10000000`: the median of --repeat
  whole processes each (start-up included, output to a pipe), wall and CPU time;
- end to end: --jobs no-op jobs dispatched (not timed), the database checkpointed and
  synced, then `work --concurrency 2 --stop-when-empty` timed as a whole process;
  --rounds rounds, each running both workspaces back to back (in turn first), the median
  rate of each and the median of the rounds' ratios, per wall and per CPU second;
- `photos list` (piped: every photo), `photos list --json`, `photos list --album
  "Album 03" --status ready`: the median of --repeat, with the history (the fresh
  workspace has no photos).
On PostgreSQL (`--engine postgresql`) each workspace's `db` is a database of its own,
made by `photojobs init` through the server of --admin (or PJ_BENCH_POSTGRES) and dropped
at the end. The history is written in one statement (the documented shortcut there): an
INSERT ... SELECT over generate_series of the rows `complete` leaves (status done,
attempts 1, started_at, finished_at and a log-normal duration, median 7 ms; reserved_by
and lease_until NULL), their finish times spread evenly over the --within hours before
the build (default 1: all within the last hour, as issue 15 measured; at most 23, inside
the 24 hours the workers' prune keeps), then the per-minute rollup counted from them by
the statement migration m006 uses (rollup.backfill_sql). Unlike rows that went pending ->
reserved -> done, the table has no dead row versions; both workspaces are VACUUM
ANALYZEd and checkpointed before timing. The photos are built as on SQLite. CPU times
are the photojobs process's own (the server's work shows in the wall time only).
Targets: each command at most 0.3 s (median) with the history; end to end at least 0.9x
the fresh rate; `photos list` of 10,000 photos under 1 s. Prints a table and the figures
as JSON (also written to bench/out/scale.json, or scale-postgresql.json).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]  # bench/queue.py would shadow the stdlib's queue (psycopg imports it)

SUPPORT = Path(__file__).resolve().parent / "support"  # bench_jobs.py: the no-op job
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}, "PYTHONPATH": str(SUPPORT)}
CONFIG = "db = 'photojobs.db'\nstorage = 'storage'\nimports = ['bench_jobs']\n"
CHUNK = 50_000
ADMIN = os.environ.get("PJ_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# What `complete` leaves of a claimed bench_noop job, for `count` jobs finished evenly over
# [:start, :start + :span); durations log-normal (mu -5, sigma 1: median 7 ms, Box-Muller).
PG_HISTORY = """
INSERT INTO jobs (name, queue, payload, status, attempts, tries, timeout, available_at, created_at, reserved_by,
                  lease_until, started_at, finished_at, duration, unique_key, batch_id, last_error)
SELECT 'bench_noop', 'default', jsonb_build_object('n', g - 1), 'done', 1, NULL, NULL, f - d - 0.001,
       f - d - 0.001, NULL, NULL, f - d, f, d, NULL, NULL, NULL
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT %(start)s + (g - 1) * %(span)s / %(count)s AS f,
                     exp(-5 + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS d) AS x
"""
ALBUMS = 20

COMMANDS = {
    "status": ["status"],
    "status --json": ["status", "--json"],
    "monitor": ["monitor", "default", "--max", "10000000"],
}
PHOTO_COMMANDS = {
    "photos list (piped)": ["photos", "list"],
    "photos list --json": ["photos", "list", "--json"],
    "photos list --album --status": ["photos", "list", "--album", "Album 03", "--status", "ready"],
}


def workspace(folder: Path, db: str | None = None):
    """A workspace made by `photojobs init` (on `db`, a PostgreSQL URL, if given), with the
    bench's job importable; its App."""
    sys.path.insert(0, str(SUPPORT))
    import photojobs
    from photojobs.install import init

    folder.mkdir(parents=True)
    init(config=str(folder / "photojobs.toml"), db=db)
    (folder / "photojobs.toml").write_text(CONFIG if db is None else CONFIG.replace("'photojobs.db'", repr(db)))
    return photojobs.connect(folder / "photojobs.toml")


def admin(statement: str, url: str = ADMIN) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def build_history_postgres(app, count: int, hours: float) -> None:
    """The shortcut on PostgreSQL: the done rows in one INSERT ... SELECT, then their minutes."""
    from photojobs.storage import rollup

    with app.transaction() as tx:
        span = hours * 3600.0
        tx.connection.execute(PG_HISTORY, {"count": count, "start": time.time() - span, "span": span})
        tx.execute(rollup.backfill_sql("floor(finished_at / 60)::bigint"))


def finish(app, queue: str, rng: random.Random) -> int:
    """Mark every pending job of `queue` done through the engine's claim and complete."""
    finished = 0
    while True:
        jobs = app.backend.claim([queue], "bench-scale", limit=5000)
        if not jobs:
            return finished
        app.backend.complete([(job.id, rng.lognormvariate(-5, 1)) for job in jobs], "bench-scale")
        finished += len(jobs)


def build_history(app, count: int, rng: random.Random) -> None:
    for start in range(0, count, CHUNK):
        app.dispatch_many([("bench_noop", {"n": n}) for n in range(start, min(count, start + CHUNK))])
        finish(app, "default", rng)


def build_photos(app, folder: Path, count: int, rng: random.Random) -> None:
    from PIL import Image

    from photojobs.photos.store import add_photos
    from photojobs.storage import photos as photo_rows

    image = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 40, 40)).save(image, "JPEG")
    for album in range(ALBUMS):
        shoot = folder / "shoot" / f"album{album:02d}"
        shoot.mkdir(parents=True)
        for n in range(album, count, ALBUMS):
            (shoot / f"img{n:05d}.jpg").write_bytes(image.getvalue())
        add_photos(app, [shoot], album=f"Album {album:02d}")
    finish(app, "photos", rng)
    ids = [p["id"] for p in photo_rows.listed(app.backend, columns=("id",))]
    with app.transaction() as tx:
        for photo_id in ids:
            draw = rng.random()
            if draw < 0.9:
                photo_rows.save_processed(tx, photo_id, {"status": "ready", "width": 16, "height": 12,
                                                          "processed_at": time.time()})
            elif draw < 0.92:
                photo_rows.mark_failed(tx, photo_id, "not an image (bench)", time.time())


def settle(app) -> None:
    """Leave a database at rest: its WAL checkpointed into the file, which SQLite then
    syncs, so the first timed command does not pay for flushing what the build wrote.
    (Not an fsync of our own: closing a descriptor of the file would drop this process's
    SQLite locks on it, and another process could then delete the WAL under us.)
    PostgreSQL: VACUUM ANALYZE (what autovacuum would have done by then), and a CHECKPOINT."""
    if app.backend.engine == "postgresql":
        app.backend.execute("VACUUM ANALYZE")
        app.backend.execute("CHECKPOINT")
        return
    app.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def timed(folder: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (its processes' user + system) of one whole photojobs process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=folder, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"photojobs {' '.join(args)} in {folder} exited {done.returncode}: {done.stderr[-500:]!r}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(folders: dict[str, Path], commands: dict[str, list[str]], repeat: int) -> dict[str, dict[str, dict]]:
    """Each command's median wall and CPU time in each workspace, the workspaces alternating."""
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {c: {w: [] for w in folders} for c in commands}
    for _ in range(repeat):
        for command, args in commands.items():
            for name, folder in folders.items():
                runs[command][name].append(timed(folder, args))
    return {c: {w: {"wall": statistics.median(r[0] for r in t), "cpu": statistics.median(r[1] for r in t)}
                for w, t in by_ws.items()} for c, by_ws in runs.items()}


def end_to_end(apps: dict, folders: dict[str, Path], jobs: int, rounds: int) -> dict:
    """Jobs per second of wall and of CPU time in each workspace (medians of `rounds`), and
    the median of each round's ratio (the two runs of a round are next to each other in
    time: a busy minute on a shared machine slows both)."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in folders}
    for index in range(rounds):
        order = list(folders) if index % 2 == 0 else list(reversed(folders))
        for name in order:
            apps[name].dispatch_many([("bench_noop", {"n": n}) for n in range(jobs)])
            settle(apps[name])
            wall, cpu = timed(folders[name], ["-q", "work", "--concurrency", "2", "--stop-when-empty"])
            left = apps[name].backend.count_jobs("default", "pending")
            if left:
                raise SystemExit(f"{left} jobs left in {folders[name]}")
            runs[name].append((jobs / wall, jobs / cpu))
    ratios = [history[0] / fresh[0] for fresh, history in zip(runs["fresh"], runs["history"])]
    cpu_ratios = [history[1] / fresh[1] for fresh, history in zip(runs["fresh"], runs["history"])]
    return {"per_s": {name: statistics.median(r[0] for r in rates) for name, rates in runs.items()},
            "per_cpu_s": {name: statistics.median(r[1] for r in rates) for name, rates in runs.items()},
            "ratio": statistics.median(ratios), "cpu_ratio": statistics.median(cpu_ratios),
            "rounds": [{name: round(runs[name][i][0]) for name in runs} for i in range(rounds)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--within", type=float, default=1.0,
                        help="PostgreSQL: the history finished within this many hours before the build (<= 23)")
    parser.add_argument("--admin", default=ADMIN, help="PostgreSQL: a URL of the server's maintenance database")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces (their folder is printed)")
    options = parser.parse_args()
    rng = random.Random(15)
    root = Path(tempfile.mkdtemp(prefix="photojobs-scale-"))
    folders = {"fresh": root / "fresh", "history": root / "history"}
    postgres = options.engine == "postgresql"
    urls = {name: options.admin.rsplit("/", 1)[0] + f"/pjbench_scale_{os.getpid()}_{name}" for name in folders}
    try:
        load_before = os.getloadavg()[0]
        apps = {name: workspace(folder, urls[name] if postgres else None) for name, folder in folders.items()}
        started = time.perf_counter()
        if postgres:
            build_history_postgres(apps["history"], options.history, min(options.within, 23.0))
        else:
            build_history(apps["history"], options.history, rng)
        build_photos(apps["history"], folders["history"], options.photos, rng)
        built = time.perf_counter() - started
        print(f"built {options.history:,} finished jobs and {options.photos:,} photos in {built:.0f} s", flush=True)
        for app in apps.values():
            settle(app)
        commands = medians(folders, COMMANDS, options.repeat)
        photos = medians({"history": folders["history"]}, PHOTO_COMMANDS, options.repeat)
        load_between = os.getloadavg()[0]
        rates = end_to_end(apps, folders, options.jobs, options.rounds)
        figures = {"engine": options.engine, "history": options.history,
                   "within_hours": min(options.within, 23.0) if postgres else None,
                   "photos": options.photos, "jobs": options.jobs,
                   "repeat": options.repeat, "rounds": options.rounds, "build_s": round(built, 1),
                   "load_average": [round(x, 2) for x in (load_before, load_between, os.getloadavg()[0])],
                   "commands_s": commands, "photos_s": photos, "end_to_end": rates}
        report(figures)
        out = Path(__file__).resolve().parent / "out"
        out.mkdir(exist_ok=True)
        (out / ("scale.json" if not postgres else "scale-postgresql.json")).write_text(
            json.dumps(figures, indent=2) + "\n")
        for app in apps.values():
            app.close()
    finally:
        if options.keep:
            print(f"workspaces kept in {root}" + (f" (databases {', '.join(urls.values())})" if postgres else ""))
        else:
            shutil.rmtree(root, ignore_errors=True)
            for url in urls.values() if postgres else ():
                admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)", options.admin)


def report(figures: dict) -> None:
    def ms(t: dict) -> str:
        return f"{t['wall'] * 1000:.0f} ms (CPU {t['cpu'] * 1000:.0f})"

    print(f"\n{figures['engine']}\n| measure | fresh | {figures['history']:,} finished jobs | target |\n|---|---|---|---|")
    for command, by_ws in figures["commands_s"].items():
        verdict = "met" if by_ws["history"]["wall"] <= 0.3 else "MISSED"
        print(f"| `{command}` | {ms(by_ws['fresh'])} | {ms(by_ws['history'])} | <= 300 ms: {verdict} |")
    e2e = figures["end_to_end"]
    print(f"| end to end, {figures['jobs']:,} no-op jobs, 2 processes | {e2e['per_s']['fresh']:,.0f}/s"
          f" | {e2e['per_s']['history']:,.0f}/s ({e2e['ratio']:.2f}x; per CPU second {e2e['cpu_ratio']:.2f}x)"
          f" | >= 0.9x: {'met' if e2e['ratio'] >= 0.9 else 'MISSED'} |")
    for command, by_ws in figures["photos_s"].items():
        verdict = "met" if by_ws["history"]["wall"] < 1.0 else "MISSED"
        print(f"| `{command}`, {figures['photos']:,} photos | | {ms(by_ws['history'])} | < 1 s: {verdict} |")
    load = figures["load_average"]
    print(f"\nload average {load[0]} before, {load[1]} between, {load[2]} after; build {figures['build_s']} s\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
