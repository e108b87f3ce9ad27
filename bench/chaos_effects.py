"""Chaos scenarios about effects (files and marks), run by bench/chaos.py and, short, by
tests/chaos/test_effects.py. Each drives the real CLI in its own workspace under `base`:

- disk_full_during_archives: the storage root on a small tmpfs (mounted as root) fills up
  while `build-archive` writes downloads; then space is freed and the retries run.
- kill_during_photos_add: `photos add` of 1,000 files killed with SIGKILL at random
  moments, then run to the end.
- stale_archive_attempt: a `build-archive` worker frozen (SIGSTOP of its process group)
  while it writes the archive, past its lease, while another worker builds the download;
  then SIGCONT. (tests/archives/test_fencing.py also freezes one before it writes.)

`scenario(base, quick) -> dict` with at least "scenario", "passed" (None: could not run
here, with "skipped") and its numbers. Pass: nothing marked ready that is not complete,
no temp file left, every file registered once, `PRAGMA integrity_check` ok.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

LEASE = 5  # seconds: the smallest lease the settings accept


class Workspace:
    """A photojobs installation in `folder` (config, database; storage where asked)."""

    def __init__(self, folder: Path, storage: Path | None = None, config: str = ""):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        args = ["init"] + (["--storage", str(storage)] if storage else [])
        done = self.cli(*args)
        if done.returncode != 0:
            raise RuntimeError(f"photojobs init failed: {done.stderr}")
        if config:
            path = folder / "photojobs.toml"
            path.write_text(config + "\n" + path.read_text())

    def env(self) -> dict:
        return {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=self.folder, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str, python: list[str] | None = None) -> subprocess.Popen:
        command = [sys.executable, *(python or ["-m", "photojobs", *args])]
        return subprocess.Popen(command, cwd=self.folder, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def app(self):
        import photojobs

        return photojobs.connect(self.folder / "photojobs.toml")

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.folder / "photojobs.db", timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def integrity(self) -> str:
        return self.query("PRAGMA integrity_check")[0][0]


def make_photos(folder: Path, count: int, padding: int = 0) -> list[Path]:
    """`count` real JPEGs (with EXIF), each padded with `padding` random bytes."""
    from photojobs.samples import sample_exif, write_sample_jpeg

    paths = []
    for i in range(count):
        path = folder / f"{i // 100:02d}" / f"IMG_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sample_jpeg(path, (40, 30), exif=sample_exif(i), seed=i)
        if padding:
            with open(path, "ab") as fh:
                fh.write(os.urandom(padding))
        paths.append(path)
    return paths


def make_downloads(ws: Workspace, folder: Path, orders: int, photos: int, padding: int) -> list[int]:
    """`orders` orders of `photos` photos each (registered by `photos add`), each with a download."""
    from photojobs.archives.downloads import create_download
    from photojobs.orders import create_order
    from photojobs.photos.store import add_photos

    make_photos(folder, orders * photos, padding)
    with ws.app() as app:
        ids = add_photos(app, [folder], queue=False).added
        made = []
        for o in range(orders):
            order = create_order(app, f"c{o}@example.com", photo_ids=ids[o * photos:(o + 1) * photos])
            made.append(create_download(app, order["id"])["id"])
        return made


def check_downloads(ws: Workspace, downloads: Path) -> dict[str, Any]:
    """Every ready download's file is complete (size, SHA-256, ZIP CRCs); temp files left."""
    ready = ws.query("SELECT id, path, size_bytes, sha256, file_count FROM downloads WHERE status = 'ready'")
    incomplete = []
    for download_id, stored, size, sha256, count in ready:
        path = downloads.parent / stored  # stored relative to the storage root
        try:
            data = path.read_bytes()
            with zipfile.ZipFile(path) as archive:
                good = archive.testzip() is None and len(archive.namelist()) == count
        except (OSError, zipfile.BadZipFile):
            good = False
        if not good or len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            incomplete.append(download_id)
    temps = sorted(p.name for p in downloads.iterdir() if p.name.endswith(".tmp")) if downloads.is_dir() else []
    return {"ready": len(ready), "ready_incomplete": len(incomplete), "temp_files_left": len(temps)}


def _skipped(name: str, reason: str) -> dict[str, Any]:
    return {"scenario": name, "passed": None, "skipped": reason}


def _mount_tmpfs(target: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` on `target`; the reason it cannot, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


# -- scenario: the storage's disk full during archive builds -------------------------------------

def disk_full_during_archives(base: Path, quick: bool) -> dict[str, Any]:
    name = "disk_full_during_archives"
    orders, photos, padding = (6, 3, 150_000) if quick else (20, 5, 400_000)
    archive_bytes = photos * (padding + 3_000)
    storage = base / "storage-tmpfs"
    problem = _mount_tmpfs(storage, str(archive_bytes * orders // 3 + 256 * 1024))  # a third of them fit
    if problem:
        return _skipped(name, problem)
    started = time.monotonic()
    try:
        ws = Workspace(base / "ws", storage=storage)
        make_downloads(ws, base / "photos", orders, photos, padding)
        first = ws.cli("build-archive")
        after_full = check_downloads(ws, storage / "downloads")
        waiting = ws.query("SELECT count(*) FROM downloads WHERE status = 'pending' AND error LIKE '%disk is full%'")
        subprocess.run(["mount", "-o", "remount,size=256m", str(storage)], check=True)
        ws.query("UPDATE jobs SET available_at = 0 WHERE status = 'pending'")  # the retries, now
        second = ws.cli("build-archive")
        final = check_downloads(ws, storage / "downloads")
        failed = ws.query("SELECT count(*) FROM jobs WHERE status = 'failed'")[0][0]
        integrity = ws.integrity()
    finally:
        subprocess.run(["umount", "-l", str(storage)], check=False)
    result = {"scenario": name, "downloads": orders, "archive_bytes": archive_bytes,
              "ready_while_full": after_full["ready"], "waiting_for_space": waiting[0][0],
              "ready_incomplete": after_full["ready_incomplete"] + final["ready_incomplete"],
              "temp_files_left": after_full["temp_files_left"] + final["temp_files_left"],
              "ready_at_end": final["ready"], "failed_jobs": failed, "integrity": integrity,
              "exit_codes": [first.returncode, second.returncode], "seconds": round(time.monotonic() - started, 1)}
    result["passed"] = (result["ready_incomplete"] == 0 and result["temp_files_left"] == 0 and integrity == "ok"
                        and final["ready"] == orders and failed == 0 and after_full["ready"] < orders)
    return result


# -- scenario: kill -9 during `photos add` ---------------------------------------------------------

def kill_during_photos_add(base: Path, quick: bool) -> dict[str, Any]:
    name = "kill_during_photos_add"
    files, kills = 1000, (3 if quick else 12)
    started = time.monotonic()
    ws = Workspace(base / "ws")
    shoot = base / "shoot"
    make_photos(shoot, files)
    rng = random.Random(7)
    clock = time.monotonic()  # how long an uninterrupted add takes on this machine (0.2-2 s seen)
    Workspace(base / "probe").cli("photos", "add", str(shoot))
    whole = time.monotonic() - clock
    killed_mid_run = 0
    for _ in range(kills):
        proc = ws.start("photos", "add", str(shoot))
        time.sleep(rng.uniform(0.02, whole))  # a kill anywhere in the run, start-up included
        if proc.poll() is None:
            killed_mid_run += 1
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    clock = time.monotonic()
    last = ws.cli("photos", "add", str(shoot))
    last_seconds = time.monotonic() - clock
    registered = ws.query("SELECT count(*), count(DISTINCT path) FROM photos")[0]
    on_disk = {str(p.relative_to(shoot)) for p in shoot.rglob("*.jpg")}
    known = {row[0] for row in ws.query("SELECT path FROM photos")}  # relative to the library made at shoot/
    jobs = ws.query("SELECT count(*), count(DISTINCT unique_key) FROM jobs WHERE name = 'process_photo'")[0]
    integrity = ws.integrity()
    result = {"scenario": name, "files": files, "kills": kills, "killed_mid_run": killed_mid_run,
              "registered": registered[0], "registered_twice": registered[0] - registered[1],
              "missing": len(on_disk - known), "photo_jobs": jobs[0], "photo_jobs_twice": jobs[0] - jobs[1],
              "last_exit_code": last.returncode, "last_add_seconds": round(last_seconds, 2), "integrity": integrity,
              "seconds": round(time.monotonic() - started, 1)}
    result["passed"] = (registered[0] == files and result["registered_twice"] == 0 and result["missing"] == 0
                        and jobs[0] == files and result["photo_jobs_twice"] == 0 and integrity == "ok"
                        and last.returncode == 0)
    return result


# -- scenario: a stale archive attempt -------------------------------------------------------------

def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def _wait(predicate: Callable[[], Any], timeout: float, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def stale_archive_attempt(base: Path, quick: bool) -> dict[str, Any]:
    name = "stale_archive_attempt"
    photos, padding = (4, 6_000_000) if quick else (8, 25_000_000)
    started = time.monotonic()
    ws = Workspace(base / "ws", config=f"lease = {LEASE}")
    downloads = base / "ws" / "storage" / "downloads"
    make_downloads(ws, base / "photos", 1, photos, padding)
    stale = ws.start("-v", "build-archive")  # -v: its "job done" lines too, were there any
    writing = reserved = None
    try:
        # Frozen while it writes the archive (a temp file exists): the supervisor and its
        # child together, as a stopped VM would be.
        writing = _wait(lambda: downloads.is_dir() and any(p.name.endswith(".tmp") for p in downloads.iterdir()),
                        60, 0.002)
        if writing:
            os.killpg(stale.pid, signal.SIGSTOP)
        reserved = ws.query("SELECT j.id, j.lease_until FROM jobs j, downloads d WHERE j.status = 'reserved'"
                            " AND d.status = 'pending'")  # and not finished just before the stop
        if writing and reserved:
            job_id, lease_until = reserved[0]
            _wait(lambda: time.time() > lease_until + 0.5, LEASE + 5, 0.1)
            fresh = ws.cli("work", "--queue", "downloads", "--max-jobs", "1", timeout=120)
            between = check_downloads(ws, downloads)
        os.killpg(stale.pid, signal.SIGCONT)
        _, stale_err = stale.communicate(timeout=120)
    finally:
        if stale.poll() is None:
            os.killpg(stale.pid, signal.SIGKILL)
            stale.communicate(timeout=10)
    if not (writing and reserved):
        return {"scenario": name, "passed": False, "error": "the build was not caught while it wrote the archive"}
    final = check_downloads(ws, downloads)
    status = ws.query("SELECT status FROM downloads")[0][0]
    zips = [p.name for p in downloads.iterdir() if p.name.endswith(".zip")]
    job = ws.query("SELECT status, attempts FROM jobs WHERE id = ?", [job_id])[0]
    integrity = ws.integrity()
    result = {"scenario": name, "archive_bytes": photos * padding, "stopped_at": "mid_write",
              "fresh_exit_code": fresh.returncode, "ready_before_wake": between["ready"],
              "stale_discarded": "discarded" in stale_err and "lease" in stale_err,
              "stale_logged_done": bool(re.search(r" done\s+build_archive#", stale_err)), "status_at_end": status, "archives": len(zips),
              "ready_incomplete": final["ready_incomplete"], "temp_files_left": final["temp_files_left"],
              "job": f"{job[0]} after {job[1]} attempts", "integrity": integrity,
              "seconds": round(time.monotonic() - started, 1)}
    result["passed"] = (between["ready"] == 1 and status == "ready" and len(zips) == 1 and final["ready"] == 1
                        and final["ready_incomplete"] == 0 and final["temp_files_left"] == 0
                        and result["stale_discarded"] and not result["stale_logged_done"] and integrity == "ok")
    return result


SCENARIOS = [disk_full_during_archives, kill_during_photos_add, stale_archive_attempt]


if __name__ == "__main__":  # run on their own: python bench/chaos_effects.py [--full]
    import json
    import tempfile

    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="chaos-effects-") as folder:
            print(json.dumps(scenario(Path(folder), "--full" not in sys.argv)), flush=True)
