"""The database's disk full (a small tmpfs, mounted as root): a one-line error with exit 3
from the CLI, a PhotojobsError from the library (dispatch and dispatch_many), nothing
half-written, and everything works again once space is freed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..conftest import cli_env, init_workspace, storage_rows


def fill(folder) -> None:
    """Write a filler file until the disk says ENOSPC."""
    # Unbuffered: a buffered file keeps the tail of a partial write and raises ENOSPC again
    # when it is closed (whenever the space left is not a multiple of the write).
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A workspace on its own 2 MB tmpfs; unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield init_workspace(mount, monkeypatch)
    finally:
        monkeypatch.chdir(tmp_path)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_database_disk_is_an_environment_error_and_nothing_is_half_written(small_disk):
    import photojobs
    from photojobs.app import Dispatch
    from photojobs.errors import DiskFull

    big = "x" * 200_000  # needs new pages: the WAL must grow
    with photojobs.connect(small_disk / "photojobs.toml") as app:
        app.dispatch("record", {"tag": "before"})
        fill(small_disk)
        with pytest.raises(DiskFull, match="the disk is full"):
            app.dispatch_many([Dispatch("record", {"tag": big}) for _ in range(20)])
        with pytest.raises(DiskFull):
            app.dispatch("record", {"tag": big})
        done = subprocess.run([sys.executable, "-m", "photojobs", "dispatch", "record", "--payload",
                               '{"tag": "%s"}' % ("y" * 100_000)], cwd=small_disk, env=cli_env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1 and "the disk is full" in done.stderr, done.stderr
        (small_disk / "filler").unlink()
        app.dispatch("record", {"tag": "after"})  # the connection is usable again
        tags = [job.payload for job in app.backend.claim(["default"], "test-worker", limit=10)]  # the jobs queued
    assert tags == [{"tag": "before"}, {"tag": "after"}]
    assert storage_rows(small_disk, "PRAGMA integrity_check")[0][0] == "ok"  # the file itself, on purpose
