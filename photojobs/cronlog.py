"""A cron run's output in its log file: each line dated, the file rotated by size.

`photojobs cron print` writes lines such as

    * * * * * photojobs --config C --log-file storage/logs/cron-send-mail.log send-mail ... >> (same file) 2>&1

With `--log-file`, everything the command prints (stdout and stderr, the worker's log lines
too) goes to the file, each line led by the local date and time, in one O_APPEND write per
line (worker processes write at once without mixing their lines). At start the file is
rotated when it passed `max_bytes` (cron-send-mail.log -> .1 -> .2 ...), under an flock so
two runs never rotate twice. The shell's `>> file 2>&1` stays as a safety net: what
Python cannot catch (an interpreter that fails to start) still lands in the file, undated.
"""

from __future__ import annotations

import atexit
import datetime
import fcntl
import io
import os
import sys
from pathlib import Path

DEFAULT_MAX_BYTES = 2**20
DEFAULT_BACKUPS = 3


def rotate_if_large(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> bool:
    """Rename path to path.1 (path.1 to path.2, ...; the oldest dropped) if it passed max_bytes."""
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_size <= max_bytes:
                return False
        except FileNotFoundError:
            return False
        for index in range(max(1, backups) - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
        return True
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


class DatedLines(io.TextIOBase):
    """A text stream that writes each whole line as "2026-12-01 21:56:51+0100 text"."""

    def __init__(self, fd: int):
        super().__init__()
        self.fd = fd
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
            os.write(self.fd, "".join(f"{stamp} {line}\n" for line in lines).encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        pass  # whole lines are written at once; a last partial line at exit (finish)

    def finish(self) -> None:
        if self._partial:
            self.write("\n")


def redirect_output(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
                    backups: int = DEFAULT_BACKUPS) -> None:
    """Send this process's stdout and stderr to `path`, dated, after rotating it if large."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    rotate_if_large(target, max_bytes, backups)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    for name in ("stdout", "stderr"):
        stream = DatedLines(fd)
        getattr(sys, name).flush()
        setattr(sys, name, stream)
        atexit.register(stream.finish)
