"""Benchmark: building a download archive of a 2 GB order, against the disk's own rate, in
the same run.

    python bench/archives.py [--size-gb 2] [--file-mb 10] [--deflate-mb N] [--keep]

The order is --size-gb of JPEG bytes: a real JPEG with EXIF (made by photojobs.samples)
padded with random bytes to --file-mb each, so the bytes do not compress (like a JPEG's).
The sources are written and synced first; every method then reads them from the page
cache and writes into fresh blocks of the same file system: no output is deleted before
the next method is timed (blocks freed a moment before write several times faster on a
virtual disk). Each method runs in its own process; wall time includes making the copy
durable (fsync or sync), since the archive is fsynced too.

- cp+sync: `cp -r` of the source folder, then `sync` of the copied files. The ceiling.
- photojobs: `photojobs build-archive` in a workspace whose order holds those photos:
  the real job through the real queue (worker child process, stored ZIP, read-back
  verification, SHA-256, fsync, rename, row updated). Timed as a whole process
  (start-up included) and by the job's own duration in the jobs table.
- zipfile stored: `zipfile.ZipFile(..., ZIP_STORED).write(...)` of each file, then fsync.
- zipfile deflate: the same with ZIP_DEFLATED (level 6), on the first --deflate-mb of the
  order (default 500 MB; it runs at some 25 MB/s), its rate compared.

cp+sync, photojobs and zipfile stored run in --rounds rounds (default 5), the order
rotating so that each method runs first, second and last as often: a virtual disk's rate
drifts during a run, and blocks it has held before write much faster than blocks it has
never held, so --warm-up untimed copies (default 2) are written first, to take up blocks
freed by an earlier run. The table gives each method's median rate over the rounds (and
the range); the headline ratio is photojobs' median over cp+sync's, and each round's own
ratio is printed too.

Peak memory is the largest RSS of the method's process tree, as GNU time's %M reports it
(needs /usr/bin/time). Results go to
stdout and bench/out/archives/results.json; the generated files are removed at the end
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "archives"
MB = 1_000_000
TIME = "/usr/bin/time"  # GNU time

ZIPFILE_CHILD = """
import os, sys, time, zipfile
src, dest, method, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = sorted(os.listdir(src))
total = 0
start = time.perf_counter()
with open(dest, "wb") as fh:
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED if method == "deflate" else zipfile.ZIP_STORED) as z:
        for name in files:
            if total >= limit:
                break
            z.write(os.path.join(src, name), "Order-1/" + name)
            total += os.path.getsize(os.path.join(src, name))
    fh.flush()
    os.fsync(fh.fileno())
print(total, time.perf_counter() - start)
"""


def make_sources(folder: Path, size_bytes: int, file_bytes: int) -> list[Path]:
    """Real JPEG heads padded with random bytes: as incompressible as JPEG data, made fast."""
    import random

    from photojobs.samples import sample_exif, write_sample_jpeg

    folder.mkdir(parents=True)
    head = write_sample_jpeg(folder.parent / "head.jpg", (1600, 1067), exif=sample_exif(0)).read_bytes()
    rng = random.Random(5)
    block = rng.randbytes(64 << 20)
    paths = []
    for i in range(max(1, size_bytes // file_bytes)):
        path = folder / f"IMG_{i + 1:04d}.jpg"
        offset = rng.randrange(0, len(block) - file_bytes)
        with open(path, "wb") as fh:
            fh.write(head)
            fh.write(block[offset:offset + file_bytes - len(head)])
        paths.append(path)
    os.sync()
    return paths


def timed(cmd: list[str], **kwargs) -> dict:
    """Run `cmd`; wall seconds, peak RSS (MB) of its process tree, stdout."""
    import tempfile

    # A forked child inherits the parent's peak RSS (Linux keeps ru_maxrss across exec), so
    # the method runs under GNU time, a process of 2 MB, whose %M is its child tree's peak.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        proc = subprocess.Popen([TIME, "-f", "%M", "-o", peak.name, *cmd], stdout=out, stderr=err, text=True,
                                **kwargs)
        proc.wait()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        out_text, err_text = out.read(), err.read()
        peak_kb = int(peak.read().split()[-1])
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {err_text[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "stdout": out_text}


def bench_cp(src: Path, dest: Path) -> dict:
    script = f'cp -r "{src}" "{dest}" && sync "{dest}"/*'
    return timed(["sh", "-c", script])


def make_workspace(work: Path, paths: list[Path]) -> Path:
    """A photojobs workspace with the photos registered, an order of them and a download."""
    import photojobs
    from photojobs.archives.downloads import create_download
    from photojobs.orders import create_order
    from photojobs.install import init

    config = work / "photojobs.toml"
    init(config=str(config))
    with photojobs.connect(config) as app:
        with app.transaction() as conn:
            ids = [conn.execute("INSERT INTO photos (path, album, status, size_bytes, created_at)"
                                " VALUES (?, 'bench', 'ready', ?, ?) RETURNING id",
                                [str(p), p.stat().st_size, time.time()]).fetchone()[0] for p in paths]
        order = create_order(app, "bench@example.com", photo_ids=ids)
        create_download(app, order["id"])
    return config


def bench_photojobs(config: Path) -> dict:
    import photojobs

    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    env["PYTHONPATH"] = str(ROOT)
    result = timed([sys.executable, "-m", "photojobs", "--config", str(config), "-q", "build-archive"], env=env)
    with photojobs.connect(config) as app:
        job = app.backend.read("SELECT status, duration FROM jobs WHERE name = 'build_archive' ORDER BY id DESC")[0]
        download = app.backend.read("SELECT status, size_bytes, file_count, path FROM downloads ORDER BY id DESC")[0]
    if job["status"] != "done" or download["status"] != "ready":
        raise SystemExit(f"the archive job did not finish: {dict(job)} {dict(download)}")
    result.update(job_seconds=job["duration"], archive_bytes=download["size_bytes"], path=download["path"])
    return result


def bench_zipfile(src: Path, dest: Path, method: str, limit: int) -> dict:
    result = timed([sys.executable, "-c", ZIPFILE_CHILD, str(src), str(dest), method, str(limit)])
    source_bytes, seconds = result["stdout"].split()
    result.update(source_bytes=int(source_bytes), inner_seconds=float(seconds))
    return result


def report(summary: list[dict], cp_median: float) -> None:
    print(f"\n{'method':<22}{'rounds':>7}{'median MB/s':>13}{'min-max MB/s':>15}{'vs cp+sync':>12}{'peak RSS MB':>13}")
    for row in summary:
        row["vs_cp"] = round(row["median_mb_s"] / cp_median, 3)
        print(f"{row['method']:<22}{row['rounds']:>7}{row['median_mb_s']:>13.0f}"
              f"{row['min_mb_s']:>8.0f}-{row['max_mb_s']:<6.0f}{row['vs_cp']:>12.2f}{row['peak_rss_mb']:>13.1f}")


def run_round(number: int, order: list[str], src: Path, config: Path, total: int) -> list[dict]:
    """cp+sync, photojobs and zipfile stored once each, in `order`, into fresh blocks."""
    rows = []
    for method in order:
        if method == "cp+sync":
            r = bench_cp(src, OUT / f"cp{number}")
            rows.append({"method": method, "round": number, "bytes": total, "seconds": r["seconds"],
                         "peak_rss_mb": r["peak_rss_mb"]})
        elif method == "photojobs":
            r = bench_photojobs(config)
            rows.append({"method": "photojobs (job)", "round": number, "bytes": total, "seconds": r["job_seconds"],
                         "peak_rss_mb": r["peak_rss_mb"], "archive_bytes": r["archive_bytes"]})
            rows.append({"method": "photojobs (command)", "round": number, "bytes": total, "seconds": r["seconds"],
                         "peak_rss_mb": r["peak_rss_mb"]})
        else:
            r = bench_zipfile(src, OUT / f"stored{number}.zip", "stored", total)
            rows.append({"method": method, "round": number, "bytes": r["source_bytes"], "seconds": r["seconds"],
                         "peak_rss_mb": r["peak_rss_mb"]})
    return rows


def new_download(config: Path) -> None:
    """Queue the next build (a new download of the same order: a new file, fresh blocks)."""
    import photojobs
    from photojobs.archives.downloads import create_download

    with photojobs.connect(config) as app:
        create_download(app, app.backend.read("SELECT id FROM orders")[0][0])


def rate(row: dict) -> float:
    return row["bytes"] / row["seconds"]


def summarise(rows: list[dict]) -> list[dict]:
    """One row per method: the median, lowest and highest rate over the rounds, the largest peak RSS."""
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    out = []
    for method, runs in by_method.items():
        rates = [rate(r) / MB for r in runs]
        out.append({"method": method, "rounds": len(runs), "median_mb_s": statistics.median(rates),
                    "min_mb_s": min(rates), "max_mb_s": max(rates),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="bytes of JPEGs in the order (GB)")
    parser.add_argument("--file-mb", type=float, default=10.0, help="size of each photo (MB)")
    parser.add_argument("--deflate-mb", type=float, default=500, help="deflate this much of the order (MB)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of cp+sync, photojobs, zipfile stored")
    parser.add_argument("--warm-up", type=int, default=2, help="untimed copies of the order written first")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    work, src = OUT / "work", OUT / "work" / "photos"
    try:
        print(f"generating {args.size_gb:g} GB of JPEGs ({args.file_mb:g} MB each) ...", flush=True)
        paths = make_sources(src, int(args.size_gb * 1e9), int(args.file_mb * MB))
        total = sum(p.stat().st_size for p in paths)
        config = make_workspace(work, paths)
        os.sync()
        time.sleep(1)
        for number in range(args.warm_up):  # untimed: takes blocks the disk wrote before (fast ones)
            bench_cp(src, OUT / f"warm-up{number}")
        methods = ["cp+sync", "photojobs", "zipfile stored"]
        rows = []
        for number in range(1, args.rounds + 1):
            if number > 1:
                new_download(config)
            shift = (number - 1) % len(methods)
            rows += run_round(number, methods[shift:] + methods[:shift], src, config, total)
        deflate = bench_zipfile(src, OUT / "deflate.zip", "deflate", int(args.deflate_mb * MB))
        rows.append({"method": "zipfile deflate", "round": 1, "bytes": deflate["source_bytes"],
                     "seconds": deflate["seconds"], "peak_rss_mb": deflate["peak_rss_mb"]})
        print("\nEach round (the order of the methods rotates):")
        cp_rounds = {r["round"]: r for r in rows if r["method"] == "cp+sync"}
        for number in range(1, args.rounds + 1):
            print(f"  round {number}: " + ", ".join(
                f"{r['method']} {r['bytes'] / MB / r['seconds']:.0f} MB/s ({r['seconds']:.2f} s)"
                for r in rows if r.get("round") == number and r["method"] != "zipfile deflate"))
        summary = summarise(rows)
        cp = next(r for r in summary if r["method"] == "cp+sync")
        report(summary, cp["median_mb_s"])
        job = next(r for r in summary if r["method"] == "photojobs (job)")
        command = next(r for r in summary if r["method"] == "photojobs (command)")
        deflated = os.path.getsize(OUT / "deflate.zip")
        ratios = [rate(r) / rate(cp_rounds[r["round"]]) for r in rows if r["method"] == "photojobs (job)"]
        print(f"\n{len(paths)} photos, {total / MB:.0f} MB a round. Deflate saved"
              f" {100 * (1 - deflated / deflate['source_bytes']):.2f}% of the bytes it read."
              f"\nphotojobs (job) / cp+sync, medians: {job['vs_cp']:.2f} (command, start-up included:"
              f" {command['vs_cp']:.2f}); within each round: {', '.join(f'{x:.2f}' for x in ratios)}"
              f" (median {statistics.median(ratios):.2f}). Target >= 0.70;"
              f" peak RSS {job['peak_rss_mb']:.0f} MB (target < 100 MB).")
        cp_rates = [rate(r) / MB for r in cp_rounds.values()]
        if max(cp_rates) > 1.5 * min(cp_rates):
            print(f"note: cp+sync ran at {min(cp_rates):.0f}-{max(cp_rates):.0f} MB/s across the rounds: this disk's"
                  " rate is not steady (blocks it held before write faster), hence medians over rounds.")
        results = {"size_bytes": total, "photos": len(paths), "summary": summary, "rounds": rows,
                   "ratio_per_round": ratios, "ratio_of_medians": job["vs_cp"],
                   "cpu_count": os.cpu_count()}
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            for path in OUT.iterdir():
                if path.name != "results.json":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()


if __name__ == "__main__":
    main()
