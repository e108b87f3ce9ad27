"""Benchmark: photo processing on 24-megapixel JPEGs, against its peers, in the same run:
speed, then fidelity (SSIM per size, bench/photo_fidelity.py).

    python bench/photos.py [--count 36] [--rounds 3] [--size 6000x4000]
                           [--fidelity-count 8] [--photolike-count 8] [--no-speed]

Methods, each on the same generated JPEGs (with EXIF, camera-like size), making the
same three thumbnails (2048, 1024 and 320 px on the long side, JPEG quality 85):

- pillow-plain: the plain pipeline: open, decode the full image, apply the orientation,
  resize the full image to every size (LANCZOS), save. Thumbnails only.
- pyvips: `pyvips.Image.thumbnail(path, box, height=box)` from the source for each size
  (shrink-on-load), Q=85: the thumbnails whose fidelity is measured. VIPS_CONCURRENCY=1
  (one core). Thumbnails only.
- pyvips chained: `thumbnail` for 2048, then 1024 and 320 each chained from the previous
  one (`thumbnail_image`), Q=85: pyvips' fastest way to the same sizes. Thumbnails only.
- photojobs c1 / c2: the whole job through the real queue: `photojobs photos add` into a
  fresh workspace, then `photojobs process-photos --concurrency N`: hash, EXIF,
  dimensions, three thumbnails written with fsync and rename, the database row updated.

Every method is one command timed from its start to its exit (interpreter start-up and
imports included for all of them). CPU time is user + sys of the command and of the
children it waited for: it barely moves when neighbours load the machine, wall time does.

Every method runs `--rounds` times, interleaved; the fastest round of each counts (the
machine may be shared: the slower rounds measure the neighbours). Each run is paired
with a run on one photo, which gives the fixed cost (start-up, imports, forks); the
"marginal" rate is (count - 1) / (time - time for one photo): the rate once running.

Each method runs in its own process; peak memory is the largest RSS of any process of
that method (psutil sampling every 10 ms, and VmHWM for the peers). Results go to stdout and
bench/out/photos/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "photos"
SIZES = (2048, 1024, 320)
QUALITY = 85


# -- the peers, run inside a child process ------------------------------------------------------

def run_pillow_plain(src: Path, out: Path) -> None:
    from PIL import Image, ImageOps

    for path in sorted(src.glob("*.jpg")):
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            icc = opened.info.get("icc_profile")
        for size in SIZES:
            scale = size / max(image.size)
            resized = image.resize((round(image.width * scale), round(image.height * scale)),
                                   Image.Resampling.LANCZOS)
            resized.save(out / f"{path.stem}-{size}.jpg", "JPEG", quality=QUALITY, icc_profile=icc)


def run_pyvips(src: Path, out: Path) -> None:
    import pyvips

    keep = pyvips.enums.ForeignKeep.ICC
    for path in sorted(src.glob("*.jpg")):
        for size in SIZES:
            image = pyvips.Image.thumbnail(str(path), size, height=size)
            image.write_to_file(str(out / f"{path.stem}-{size}.jpg"), Q=QUALITY, keep=keep)


def run_pyvips_chained(src: Path, out: Path) -> None:
    import pyvips

    keep = pyvips.enums.ForeignKeep.ICC
    for path in sorted(src.glob("*.jpg")):
        image = pyvips.Image.thumbnail(str(path), SIZES[0], height=SIZES[0]).copy_memory()
        image.write_to_file(str(out / f"{path.stem}-{SIZES[0]}.jpg"), Q=QUALITY, keep=keep)
        for size in SIZES[1:]:
            image = image.thumbnail_image(size, height=size).copy_memory()
            image.write_to_file(str(out / f"{path.stem}-{size}.jpg"), Q=QUALITY, keep=keep)


def child_main(method: str, src: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    {"pillow-plain": run_pillow_plain, "pyvips": run_pyvips, "pyvips-chained": run_pyvips_chained}[method](src, out)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": own_peak_mb()}))


def own_peak_mb() -> float:
    """This process's own high-water RSS (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the parent: sources, timing, memory ---------------------------------------------------------

def make_sources(count: int, size: tuple[int, int]) -> Path:
    """`count` JPEGs in a folder of their own: hard links to a cache of generated photos
    (made once, about 2 s each), so a smaller run does not throw larger ones away."""
    sys.path.insert(0, str(ROOT))
    from photojobs.samples import sample_exif, write_sample_jpeg

    cache = OUT / f"src-{size[0]}x{size[1]}"
    cache.mkdir(parents=True, exist_ok=True)
    chosen = OUT / f"set-{size[0]}x{size[1]}-{count}"
    shutil.rmtree(chosen, ignore_errors=True)
    chosen.mkdir()
    for i in range(count):
        path = cache / f"photo-{i + 1:03d}.jpg"
        if not path.exists():
            info = sample_exif(i)
            info.orientation = (1, 1, 6, 1)[i % 4]
            write_sample_jpeg(path, size, exif=info, seed=i, grain=0.25)
        os.link(path, chosen / path.name)
    return chosen


class PeakMemory:
    """The largest RSS seen in a process tree, sampled every 10 ms; also each process's
    CPU time as last seen (`cpu_seconds`): the workers of `process-photos` are children of
    the forkserver, whose CPU the command's rusage does not receive."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self.cpu: dict[int, float] = {}

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.peak[proc.pid] = max(rss, self.peak.get(proc.pid, 0))
            self.cpu[proc.pid] = times.user + times.system  # its own, not its children's: no double count

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    @property
    def peak_mb(self) -> float:
        return max(self.peak.values(), default=0) / 2**20


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run cmd to its end: wall seconds, CPU seconds (user + sys of its whole process tree),
    peak RSS MB of any of its processes, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(proc.pid)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        memory.sample()
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stdout}\n{stderr}")
    # rusage counts what was reaped up the tree; the samples count processes it never reaps
    # (forkserver workers) but miss each one's last 10 ms: the larger is the nearer.
    cpu = max(usage.ru_utime + usage.ru_stime, memory.cpu_seconds)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": memory.peak_mb,
            "stdout": stdout}


def run_peer(method: str, src: Path) -> dict:
    out = OUT / f"out-{method}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "VIPS_CONCURRENCY": "1"}
    run = timed([sys.executable, __file__, "--child", method, str(src), str(out)], env=env)
    inner = json.loads(run.pop("stdout").strip().splitlines()[-1])
    return {**run, "peak_mb": max(inner["peak_mb"], run["peak_mb"]), "seconds_in_loop": inner["seconds"]}


def run_photojobs(src: Path, concurrency: int) -> dict:
    work = OUT / f"ws-c{concurrency}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    env["PYTHONPATH"] = str(ROOT)
    cli = [sys.executable, "-m", "photojobs", "-q"]
    subprocess.run([*cli, "init"], cwd=work, env=env, check=True, capture_output=True)
    subprocess.run([*cli, "photos", "add", str(src)], cwd=work, env=env, check=True, capture_output=True)
    run = timed([*cli, "process-photos", "--concurrency", str(concurrency)], env=env, cwd=work)
    run.pop("stdout")
    ready = subprocess.run([*cli, "photos", "list", "--status", "ready", "--json"], cwd=work, env=env, check=True,
                           capture_output=True, text=True)
    return {**run, "ready": len(json.loads(ready.stdout))}


METHODS = {
    "pillow-plain (thumbnails only)": lambda src: run_peer("pillow-plain", src),
    "pyvips per size (thumbnails only)": lambda src: run_peer("pyvips", src),
    "pyvips chained (thumbnails only)": lambda src: run_peer("pyvips-chained", src),
    "photojobs process-photos c1 (whole job)": lambda src: run_photojobs(src, 1),
    "photojobs process-photos c2 (whole job)": lambda src: run_photojobs(src, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=36, help="photos (default 36)")
    parser.add_argument("--size", default="6000x4000", help="pixels, WxH (default 6000x4000: 24 MP)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the fastest of each method counts (default 3)")
    parser.add_argument("--fidelity-count", type=int, default=8, help="detailed JPEGs for SSIM (default 8)")
    parser.add_argument("--photolike-count", type=int, default=8,
                        help="photo-like 4032x3024 JPEGs for SSIM (default 8)")
    parser.add_argument("--no-speed", action="store_true", help="fidelity only")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    size = tuple(int(v) for v in args.size.lower().split("x"))
    started = time.perf_counter()
    src = make_sources(args.count, size)
    total_mb = sum(p.stat().st_size for p in src.glob("*.jpg")) / 1e6
    print(f"{args.count} JPEGs of {size[0]}x{size[1]} ({total_mb / args.count:.1f} MB each) in {src}"
          f" (made in {time.perf_counter() - started:.0f}s)")
    fidelity = run_fidelity(src, args)
    if args.no_speed:
        return
    single = make_sources(1, size)
    best: dict[str, dict] = {}
    for round_number in range(args.rounds):  # interleaved rounds; the fastest of each method counts
        for name, run in METHODS.items():
            result = run(src)
            one = run(single)
            print(f"  round {round_number + 1}: {name:42} {result['seconds']:6.2f}s wall"
                  f" {result['cpu_seconds']:6.2f}s CPU {result['peak_mb']:5.0f} MB; 1 photo {one['seconds']:5.2f}s",
                  flush=True)
            previous = best.get(name)
            if previous is None or result["seconds"] < previous["seconds"]:
                best[name] = {**result, "peak_mb": max(result["peak_mb"], (previous or {}).get("peak_mb", 0)),
                              "one_photo_seconds": previous["one_photo_seconds"] if previous else 1e9}
            best[name]["one_photo_seconds"] = min(best[name]["one_photo_seconds"], one["seconds"])
    report(best, args, size, fidelity)


def run_fidelity(src: Path, args: argparse.Namespace) -> dict:
    """SSIM and bytes per size against pyvips, on the detailed set and the photo-like set."""
    import photo_fidelity

    sets = {"detailed 24 MP JPEGs (this bench's)": sorted(src.glob("*.jpg"))[:args.fidelity_count],
            "photo-like 12 MP JPEGs (seeded generator)":
                photo_fidelity.photo_like_sources(OUT / "photolike", args.photolike_count, (4032, 3024))}
    results = {}
    for label, paths in sets.items():
        started = time.perf_counter()
        results[label] = photo_fidelity.measure(paths)
        ok = photo_fidelity.report(f"{label}, {len(paths)} files", results[label])
        results[label]["met"] = ok
        print(f"  ({time.perf_counter() - started:.0f}s)", flush=True)
    (OUT / "fidelity.json").write_text(json.dumps(results, indent=2))
    return results


def report(results: dict, args: argparse.Namespace, size: tuple[int, int], fidelity: dict) -> None:
    print(f"\n{'method':42} {'photos/s':>9} {'marginal':>9} {'ms/photo':>9} {'CPU ms/photo':>13} {'peak MB':>8}")
    for name, r in results.items():
        r["photos_per_s"] = args.count / r["seconds"]
        r["marginal_photos_per_s"] = (args.count - 1) / max(1e-9, r["seconds"] - r["one_photo_seconds"])
        print(f"{name:42} {r['photos_per_s']:9.2f} {r['marginal_photos_per_s']:9.2f}"
              f" {1000 * r['seconds'] / args.count:9.0f} {1000 * r['cpu_seconds'] / args.count:13.0f}"
              f" {r['peak_mb']:8.0f}")
    targets = {"c1 / pillow-plain": (3, 0, 3.0), "c1 / pyvips per size": (3, 1, 1.0),
               "c1 / pyvips chained": (3, 2, 1.0), "c2 / c1": (4, 3, 1.8)}
    rows = list(results.values())
    ratios = {}
    print(f"\n{'':20} {'end to end':>11} {'marginal':>9}")
    for name, (a, b, target) in targets.items():
        whole = rows[a]["photos_per_s"] / rows[b]["photos_per_s"]
        marginal = rows[a]["marginal_photos_per_s"] / rows[b]["marginal_photos_per_s"]
        ratios[name] = {"end_to_end": whole, "marginal": marginal, "target": target}
        verdict = "ok" if min(whole, marginal) >= target else "ok at the margin" if marginal >= target else "MISSED"
        print(f"{name:20} {whole:10.2f}x {marginal:8.2f}x  (target >= {target}x: {verdict})")
    peak = max(r["peak_mb"] for r in rows[3:])
    print(f"{'peak RSS per worker':20} {peak:5.0f} MB (target < 300 MB: {'ok' if peak < 300 else 'MISSED'})")
    ready = [r["ready"] for r in rows[3:]]
    if any(n != args.count for n in ready):
        print(f"WARNING: photojobs made {ready} photos ready, expected {args.count}")
    for label, result in fidelity.items():
        print(f"fidelity, {label}: {'ok at every size' if result['met'] else 'MISSED'}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    (OUT / "results.json").write_text(json.dumps({"count": args.count, "size": size, "rounds": args.rounds,
                                                  "results": results, "ratios": ratios, "cpus": os.cpu_count(),
                                                  "fidelity": fidelity,
                                                  "load_average": load}, indent=2))


if __name__ == "__main__":
    main()
