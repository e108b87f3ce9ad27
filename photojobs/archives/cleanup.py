"""`cleanup-downloads`: garbage collection of storage/downloads.

- a download past its expiry has its file deleted and is marked `expired` (a pending
  one too, so its archive is not built; a failed one keeps its status and error, and
  has no file: anything a failed build left is an orphan);
- a file no ready download points at (an orphan) is deleted;
- a temp file (`.<name>.<random>.tmp`) left by a killed build is deleted.

Orphans and temp files are only touched once older than the grace period (longer than
the archive job's timeout), so a build in progress, or one that has just renamed its
file into place, is never disturbed. Only files directly inside storage/downloads are
ever deleted, never through a symlink. The dry run reports the same and changes nothing.
With `max_time` (cron: end before the next tick) it stops between files once the time is
up and says so (`stopped_early`); the next run goes on where it stopped.

Settings (photojobs.toml), optional:

    [downloads]
    grace_seconds = 3600    # read at load with the rest of [downloads] (downloads.py)
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..storage import downloads as download_rows
from .downloads import downloads_folder
from .views import archive_path
from .zipwriter import TEMP_SUFFIX

if TYPE_CHECKING:
    from ..app import App

def _inside(path: Path, folder: Path) -> bool:
    return path.parent == folder


def _size(path: Path) -> int | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _remove(path: Path, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def _expire(app: "App", folder: Path, now: float, dry_run: bool, out_of_time: Any) -> list[dict[str, Any]]:
    expired = []
    for row in download_rows.expiring(app.backend, now):
        if out_of_time():
            break
        path = archive_path(app.settings, row)
        size = _size(path) if path is not None and _inside(path, folder) else None
        freed = size if size is not None and _remove(path, dry_run) else 0  # type: ignore[arg-type]
        if not dry_run:
            with app.transaction() as tx:
                download_rows.set_status(tx, row["id"], "expired", only_if=[row["status"]])
        expired.append({"id": row["id"], "was": row["status"], "path": str(path) if size is not None else None,
                        "freed_bytes": freed or 0})
    return expired


def cleanup_downloads(app: "App", *, dry_run: bool = False, now: float | None = None,
                      grace: float | None = None, max_time: float | None = None) -> dict[str, Any]:
    """Collect expired downloads' files, orphans and stale temp files (for at most
    `max_time` seconds); returns a report."""
    if max_time is not None and max_time <= 0:
        raise UsageError("--max-time must be positive")
    deadline = time.monotonic() + max_time if max_time is not None else None
    stopped = []

    def out_of_time() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            stopped.append(True)
        return bool(stopped)

    now = time.time() if now is None else now
    grace = app.settings.downloads.grace_seconds if grace is None else grace
    folder = downloads_folder(app.settings)
    expired = _expire(app, folder, now, dry_run, out_of_time)
    handled = {e["path"] for e in expired if e["path"]}
    live = {str(app.settings.storage_path / p) for p in download_rows.ready_paths(app.backend)}
    live -= handled
    orphans, temps, kept = [], [], 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if out_of_time():
            break
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode) or entry.path in handled:
            continue
        is_temp = entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)
        if not is_temp and entry.path in live:
            kept += 1
            continue
        if now - info.st_mtime < grace:
            kept += 1
            continue
        if _remove(Path(entry.path), dry_run):
            record = {"path": entry.path, "freed_bytes": info.st_size if stat.S_ISREG(info.st_mode) else 0}
            (temps if is_temp else orphans).append(record)
    freed = sum(r["freed_bytes"] for r in (*expired, *orphans, *temps))
    return {"dry_run": dry_run, "folder": str(folder), "expired": expired, "orphans": orphans, "temp_files": temps,
            "kept_files": kept, "freed_bytes": freed, "stopped_early": bool(stopped)}


__all__ = ["cleanup_downloads"]
