"""Fixtures for the archives tests: real JPEGs (with EXIF), photo rows, orders, a worker run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import storage_rows


def write_photo(path: Path, seed: int = 0, padding: int = 0) -> Path:
    """A real JPEG with EXIF; `padding` random bytes after its end make it bigger, fast."""
    from photojobs.samples import sample_exif, write_sample_jpeg

    write_sample_jpeg(path, (240, 160), exif=sample_exif(seed), seed=seed)
    if padding:
        with open(path, "ab") as fh:
            fh.write(os.urandom(padding))
    return path


def add_photo_rows(app, paths, album: str | None = None, status: str = "ready") -> list[int]:
    """Register photos directly in storage, on purpose: the originals are what an archive
    holds, and processing them (Pillow) is not what the archives tests are about."""
    return [storage_rows(app.settings.db_path.parent, "INSERT INTO photos (path, album, status, size_bytes, mtime_ns,"
                         " created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                         [str(p), album, status, os.stat(p).st_size, os.stat(p).st_mtime_ns, time.time()])[0][0]
            for p in paths]


@pytest.fixture
def photos(workdir: Path, app):
    """make(n, padding=0, album="shoot") -> (ids, paths): n JPEGs in workdir/shoot, registered."""
    counter = [0]

    def make(count: int, padding: int = 0, album: str | None = "shoot", names: list[str] | None = None):
        folder = workdir / "shoot"
        folder.mkdir(exist_ok=True)
        paths = []
        for i in range(count):
            counter[0] += 1
            name = names[i] if names else f"IMG_{counter[0]:04d}.jpg"
            paths.append(write_photo(folder / name, seed=counter[0], padding=padding))
        return add_photo_rows(app, paths, album), paths

    return make


def run_downloads(app):
    """Drain the downloads queue with a real worker (child processes); returns its report."""
    from photojobs.worker import WorkerOptions

    return app.work(WorkerOptions(queues=["downloads"], stop_when_empty=True, sleep=0.05))


def downloads_dir(workdir: Path) -> Path:
    return workdir / "storage" / "downloads"


def temp_files(workdir: Path) -> list[str]:
    return sorted(p.name for p in downloads_dir(workdir).iterdir() if p.name.endswith(".tmp"))
