"""`status`, `monitor`, the queue and `photos list` with a long history, beside a fresh
database in the same run (issue 15).

    python bench/scale.py [--history 1000000] [--photos 10000] [--jobs 20000] [--repeat 5] [--rounds 3]

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
  whole processes each (start-up included, output to a pipe);
- end to end: --jobs no-op jobs dispatched (not timed), then `work --concurrency 2
  --stop-when-empty` timed as a whole process; --rounds rounds, the median rate of each
  workspace and their ratio;
- `photos list` (piped: every photo), `photos list --json`, `photos list --album
  "Album 03" --status ready`: the median of --repeat, with the history (the fresh
  workspace has no photos).
Targets: each command at most 0.3 s (median) with the history; end to end at least 0.9x
the fresh rate; `photos list` of 10,000 photos under 1 s. Prints a table and the figures
as JSON (also written to bench/out/scale.json).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent / "support"  # bench_jobs.py: the no-op job
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}, "PYTHONPATH": str(SUPPORT)}
CONFIG = "db = 'photojobs.db'\nstorage = 'storage'\nimports = ['bench_jobs']\n"
CHUNK = 50_000
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


def workspace(folder: Path):
    """A workspace made by `photojobs init`, with the bench's job importable; its App."""
    sys.path.insert(0, str(SUPPORT))
    import photojobs
    from photojobs.install import init

    folder.mkdir(parents=True)
    init(config=str(folder / "photojobs.toml"))
    (folder / "photojobs.toml").write_text(CONFIG)
    return photojobs.connect(folder / "photojobs.toml")


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


def timed(folder: Path, args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=folder, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"photojobs {' '.join(args)} in {folder} exited {done.returncode}: {done.stderr[-500:]!r}")
    return elapsed


def medians(folders: dict[str, Path], commands: dict[str, list[str]], repeat: int) -> dict[str, dict[str, float]]:
    """Each command's median wall time in each workspace, the workspaces alternating."""
    times: dict[str, dict[str, list[float]]] = {c: {w: [] for w in folders} for c in commands}
    for _ in range(repeat):
        for command, args in commands.items():
            for name, folder in folders.items():
                times[command][name].append(timed(folder, args))
    return {c: {w: statistics.median(t) for w, t in by_ws.items()} for c, by_ws in times.items()}


def end_to_end(apps: dict, folders: dict[str, Path], jobs: int, rounds: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in folders}
    for _ in range(rounds):
        for name, folder in folders.items():
            apps[name].dispatch_many([("bench_noop", {"n": n}) for n in range(jobs)])
            elapsed = timed(folder, ["-q", "work", "--concurrency", "2", "--stop-when-empty"])
            left = apps[name].backend.count_jobs("default", "pending")
            if left:
                raise SystemExit(f"{left} jobs left in {folder}")
            rates[name].append(jobs / elapsed)
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the workspaces (their folder is printed)")
    options = parser.parse_args()
    rng = random.Random(15)
    root = Path(tempfile.mkdtemp(prefix="photojobs-scale-"))
    folders = {"fresh": root / "fresh", "history": root / "history"}
    try:
        load_before = os.getloadavg()[0]
        apps = {name: workspace(folder) for name, folder in folders.items()}
        started = time.perf_counter()
        build_history(apps["history"], options.history, rng)
        build_photos(apps["history"], folders["history"], options.photos, rng)
        built = time.perf_counter() - started
        print(f"built {options.history:,} finished jobs and {options.photos:,} photos in {built:.0f} s", flush=True)
        commands = medians(folders, COMMANDS, options.repeat)
        photos = medians({"history": folders["history"]}, PHOTO_COMMANDS, options.repeat)
        rates = end_to_end(apps, folders, options.jobs, options.rounds)
        figures = {"history": options.history, "photos": options.photos, "jobs": options.jobs,
                   "repeat": options.repeat, "rounds": options.rounds, "build_s": round(built, 1),
                   "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                   "commands_s": commands, "photos_s": photos, "end_to_end_per_s": rates,
                   "end_to_end_ratio": round(rates["history"] / rates["fresh"], 3)}
        report(figures)
        out = Path(__file__).resolve().parent / "out"
        out.mkdir(exist_ok=True)
        (out / "scale.json").write_text(json.dumps(figures, indent=2) + "\n")
        for app in apps.values():
            app.close()
    finally:
        if options.keep:
            print(f"workspaces kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(figures: dict) -> None:
    history = f"{figures['history']:,} finished jobs"
    print(f"\n| measure | fresh | {history} | target |\n|---|---|---|---|")
    for command, by_ws in figures["commands_s"].items():
        verdict = "met" if by_ws["history"] <= 0.3 else "MISSED"
        print(f"| `{command}` | {by_ws['fresh'] * 1000:.0f} ms | {by_ws['history'] * 1000:.0f} ms"
              f" | <= 300 ms: {verdict} |")
    rates, ratio = figures["end_to_end_per_s"], figures["end_to_end_ratio"]
    print(f"| end to end, {figures['jobs']:,} no-op jobs, 2 processes | {rates['fresh']:,.0f}/s"
          f" | {rates['history']:,.0f}/s ({ratio:.2f}x) | >= 0.9x: {'met' if ratio >= 0.9 else 'MISSED'} |")
    for command, by_ws in figures["photos_s"].items():
        verdict = "met" if by_ws["history"] < 1.0 else "MISSED"
        print(f"| `{command}`, {figures['photos']:,} photos | | {by_ws['history'] * 1000:.0f} ms | < 1 s: {verdict} |")
    print(f"\nload average {figures['load_average'][0]} before, {figures['load_average'][1]} after;"
          f" build {figures['build_s']} s\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
