"""Logs: JSON lines in the storage root's logs/ (rotated by size), readable lines on the console.

The worker and the runner log through `logging.getLogger("photojobs.worker")` with
`extra={"event": ..., "job": {id, name, queue, attempt}, "duration": ..., "error": ...}`.
`configure(settings)` adds two handlers to the "photojobs" logger:

- `JsonLinesHandler`: one JSON object per line, appended with O_APPEND in one write(2),
  so worker processes writing at once never interleave their lines. When the file passes
  `max_bytes`, the process that notices renames it (photojobs.jsonl -> .1 -> .2 ...) while
  holding an fcntl lock on photojobs.jsonl.lock, so two processes never rotate twice;
  the others notice the new file within a second and reopen it (lines written meanwhile
  land at the end of .1, none is lost).
- `ConsoleHandler`: "15:04:05 INFO  done     process_photo#12 [photos] try 1 0.27s".

`read_entries` and `follow` read them back for `photojobs logs`.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .settings import check_keys, check_number

if TYPE_CHECKING:
    from .settings import Settings

LOG_NAME = "photojobs.jsonl"
DEFAULT_MAX_BYTES = 10 * 2**20
DEFAULT_BACKUPS = 5
REOPEN_CHECK_SECONDS = 1.0
FAILED_RETRY_SECONDS = 60.0  # after a failed write, how long the file is left alone
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

VERBOSE = 0  # the CLI's -v count: worker processes print tracebacks only when it is set

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


@dataclasses.dataclass(frozen=True)
class LogSettings:
    """`[logs]`: max_mb (10) is the size at which the file is rotated (0: never), backups (5)
    how many rotated files are kept."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS


def parse_logs(table: Mapping[str, Any], settings: Any = None, env: Any = None) -> LogSettings:
    """The [logs] table (settings.SECTIONS)."""
    check_keys(table, {"max_mb", "backups"}, "[logs]")
    max_mb = check_number(table.get("max_mb", DEFAULT_MAX_BYTES / 2**20), "max_mb", "[logs]")
    backups = check_number(table.get("backups", DEFAULT_BACKUPS), "backups", "[logs]", 1, 1000, whole=True)
    return LogSettings(int(max_mb * 2**20), backups)


def log_dir(settings: "Settings") -> Path:
    """storage/logs; on PostgreSQL, whose hosts may share one storage root, storage/logs/<host>."""
    from .storage import engine_of

    if engine_of(settings.db) == "postgresql":
        return settings.storage_path / "logs" / socket.gethostname()
    return settings.storage_path / "logs"


def log_path(settings: "Settings") -> Path:
    return log_dir(settings) / LOG_NAME


def log_paths(settings: "Settings") -> list[Path]:
    """Every host's job log under this storage root (this host's alone on SQLite)."""
    own = log_path(settings)
    if own.parent == settings.storage_path / "logs":
        return [own]
    return sorted({own, *(settings.storage_path / "logs").glob(f"*/{LOG_NAME}")})


_second_cache: list = [None, ""]


def _iso_utc(created: float) -> str:
    """2026-11-29T15:04:05.123+00:00, formatting the part to the second once a second."""
    second = int(created)
    if _second_cache[0] != second:
        _second_cache[0] = second
        _second_cache[1] = datetime.datetime.fromtimestamp(second, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second_cache[1]}.{int((created - second) * 1000):03d}+00:00"


def record_to_dict(record: logging.LogRecord) -> dict:
    """A log record as the JSON object written to the file."""
    entry: dict[str, Any] = {
        "time": _iso_utc(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "pid": record.process,
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            entry[key] = value
    if isinstance(entry.get("duration"), float):
        entry["duration"] = round(entry["duration"], 6)
    if record.exc_info and record.exc_info[0] is not None:
        entry["traceback"] = logging.Formatter().formatException(record.exc_info)
    return entry


class JsonLinesHandler(logging.Handler):
    """Append JSON lines to `path`, safe with several processes; rotate by size under a lock."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS,
                 level: int = logging.NOTSET):
        super().__init__(level)
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self._fd: int | None = None
        self._inode = 0
        self._unchecked = 0  # bytes written since the file's size was last looked at
        self._next_check = 0.0
        self._failed_until = 0.0  # the file could not be written: console only until then

    def probe(self) -> bool:
        """Open the file now (before a worker forks, so its children inherit the outcome);
        if it cannot be written, warn once. False if it cannot."""
        try:
            self._open()
        except OSError as exc:
            self._cannot_write(exc)
            return False
        return True

    def _cannot_write(self, exc: OSError) -> None:
        """One warning, then the file is left alone for a while: not a "Logging error" block
        per line (a worker logs several lines a job)."""
        if not self._failed_until:
            sys.stderr.write(f"Warning: cannot write the log file {self.path}: {exc.strerror or exc};"
                             " logging to the console only\n")
        self._close_fd()
        self._failed_until = time.monotonic() + FAILED_RETRY_SECONDS

    @property
    def failed(self) -> bool:
        """The file could not be written (and that was said once)."""
        return bool(self._failed_until)

    def fail_quietly(self) -> None:
        """The file already failed in the process that made this one (a worker's supervisor):
        leave it alone for a while, without a second warning."""
        self._failed_until = time.monotonic() + FAILED_RETRY_SECONDS

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        stat = os.fstat(self._fd)
        self._inode = stat.st_ino
        self._unchecked = self.max_bytes if stat.st_size > self.max_bytes else 0  # check at the first line
        self._next_check = time.monotonic() + REOPEN_CHECK_SECONDS

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _reopen_if_rotated(self) -> None:
        self._next_check = time.monotonic() + REOPEN_CHECK_SECONDS
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = -1
        if current != self._inode:
            self._close_fd()
            self._open()

    def emit(self, record: logging.LogRecord) -> None:
        if self._failed_until and time.monotonic() < self._failed_until:
            return
        try:
            line = json.dumps(record_to_dict(record), default=str, ensure_ascii=False) + "\n"
            if self._fd is None:
                self._open()
            elif time.monotonic() >= self._next_check:
                self._reopen_if_rotated()
            assert self._fd is not None
            data = line.encode("utf-8", "replace")
            os.write(self._fd, data)
            # Other processes append too: look at the real size every max_bytes/16 of our own.
            self._unchecked += len(data)
            if self.max_bytes and self._unchecked * 16 >= self.max_bytes:
                self._unchecked = 0
                if os.fstat(self._fd).st_size > self.max_bytes:
                    self.rotate()
        except OSError as exc:
            self._cannot_write(exc)
        except Exception:
            self.handleError(record)

    def rotate(self) -> None:
        """Rename the file to .1 (and .1 to .2, ...) under the lock, then reopen."""
        lock_fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                stat = None
            # Another process may have rotated already: then the path is a new, small file.
            if stat is not None and stat.st_ino == self._inode and stat.st_size > self.max_bytes:
                for index in range(self.backups - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{index}")
                    if older.exists():
                        os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
        self._close_fd()
        self._open()

    def close(self) -> None:
        self.acquire()
        try:
            self._close_fd()
        finally:
            self.release()
        super().close()


def format_entry(entry: dict) -> str:
    """One readable line: date and time (UTC), level, event, job, duration, error."""
    stamp = str(entry.get("time", ""))
    clock = stamp[:10] + " " + stamp[11:19] + "Z" if len(stamp) >= 19 else stamp  # a log spans days
    job = entry.get("job") if isinstance(entry.get("job"), dict) else {}
    parts = [clock, f"{entry.get('level', ''):<7}", f"{entry.get('event') or entry.get('message', ''):<8}"]
    if job:
        label = f"{job.get('name', 'job')}#{job.get('id', '?')}"
        if job.get("queue"):
            label += f" [{job['queue']}]"
        if job.get("attempt"):
            label += f" try {job['attempt']}"
        parts.append(label)
    elif entry.get("event") and entry.get("message"):
        parts.append(str(entry["message"]))
    if isinstance(entry.get("duration"), (int, float)):
        parts.append(f"{entry['duration']:.3f}s")
    if entry.get("delay") is not None:
        parts.append(f"again in {entry['delay']:g}s")
    if entry.get("error"):
        parts.append(f"- {entry['error']}")
    return " ".join(p for p in parts if p)


class ConsoleHandler(logging.Handler):
    """Readable lines on the current sys.stderr (looked up at each line, so a rich progress
    bar that redirects stderr prints them above itself). While such a bar is shown, lines
    below `busy_level` (WARNING: retries and failures only) are left to the file."""

    def __init__(self, level: int = logging.NOTSET, busy_level: int = logging.WARNING):
        super().__init__(level)
        self.busy_level = busy_level

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno < self.busy_level and type(sys.stderr).__name__ == "FileProxy":
                return  # rich's progress display owns the terminal
            sys.stderr.write(format_entry(record_to_dict(record)) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure(settings: "Settings", console_level: int | None = logging.INFO, file_level: int = logging.INFO) -> None:
    """Send the "photojobs" logger to the JSON-lines file and (unless None) the console.

    Idempotent: handlers installed by an earlier call are replaced. `[logs]` in
    photojobs.toml may set `max_mb` (10) and `backups` (5).
    """
    options = settings.logs
    logger = logging.getLogger("photojobs")
    for handler in list(logger.handlers):
        if isinstance(handler, (JsonLinesHandler, ConsoleHandler)):
            logger.removeHandler(handler)
            handler.close()
    logger.addHandler(JsonLinesHandler(log_path(settings), options.max_bytes, options.backups, level=file_level))
    if console_level is not None:
        logger.addHandler(ConsoleHandler(level=console_level))


def configure_cli(settings: "Settings", verbose: int = 0, quiet: bool = False) -> None:
    """The CLI's logging: every job event goes to the JSON-lines file (DEBUG too with -vv).
    The console shows retries, failures and timeouts (WARNING); every start and success too
    with -v (INFO), DEBUG with -vv, only errors with -q. So cron mails only when something
    went wrong, and a worker's output does not cost a line per job unless asked."""
    file_level = logging.DEBUG if verbose > 1 else logging.INFO
    console_level = (logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose
                     else logging.WARNING)
    global VERBOSE
    VERBOSE = verbose
    configure(settings, console_level=console_level, file_level=file_level)
    for handler in logging.getLogger("photojobs").handlers:
        if isinstance(handler, ConsoleHandler):
            handler.busy_level = console_level
        if isinstance(handler, JsonLinesHandler) and settings.storage_path.is_dir():
            handler.probe()  # never creates the storage root: a missing one is `init`'s to make


# -- reading -------------------------------------------------------------------------------

def _files_newest_first(path: Path) -> list[Path]:
    backups = sorted((p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: int(p.suffix[1:]))
    return ([path] if path.exists() else []) + backups


def make_matcher(text: str | None = None, job: int | None = None, level: str | None = None) -> Callable[[str], dict | None]:
    """A function line -> entry (or None when the line does not match the filters)."""
    from .errors import UsageError

    minimum = 0
    if level:
        name = level.upper()
        if name not in LEVELS:
            raise UsageError(f"--level must be one of {', '.join(l.lower() for l in LEVELS)}, not {level!r}")
        minimum = LEVELS.index(name)
    needle = text.lower() if text else None

    def match(line: str) -> dict | None:
        if needle and needle not in line.lower():
            return None
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        if job is not None and not (isinstance(entry.get("job"), dict) and entry["job"].get("id") == job):
            return None
        if minimum and (entry.get("level") not in LEVELS or LEVELS.index(entry["level"]) < minimum):
            return None
        return entry

    return match


def read_all_entries(paths: list[Path], match: Callable[[str], dict | None], limit: int | None = 50) -> list[dict]:
    """The last `limit` matching entries of several hosts' logs, merged by time, oldest first."""
    if len(paths) == 1:
        return read_entries(paths[0], match, limit)
    merged = sorted((e for p in paths for e in read_entries(p, match, limit)), key=lambda e: str(e.get("time", "")))
    return merged[-limit:] if limit is not None else merged


def read_entries(path: Path, match: Callable[[str], dict | None], limit: int | None = 50) -> list[dict]:
    """The last `limit` matching entries (all with None), oldest first, across rotated files."""
    found: list[dict] = []
    for file in _files_newest_first(path):
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            continue
        for line in reversed(lines):
            entry = match(line)
            if entry is not None:
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    return found[::-1]
    return found[::-1]


def follow(path: Path, match: Callable[[str], dict | None], poll: float = 0.2,
           stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
    """Yield matching entries appended to `path` from now on, across rotations."""
    handle = None
    inode = None
    partial = ""
    at_end = path.exists()  # a file that exists now is followed from its end; a new one from its start
    while not stop():
        if handle is None:
            try:
                handle = open(path, encoding="utf-8", errors="replace")
            except FileNotFoundError:
                at_end = False
                time.sleep(poll)
                continue
            inode = os.fstat(handle.fileno()).st_ino
            if at_end:
                handle.seek(0, os.SEEK_END)
                at_end = False
        chunk = handle.read()
        if chunk:
            partial += chunk
            *lines, partial = partial.split("\n")
            for line in lines:
                entry = match(line)
                if entry is not None:
                    yield entry
            continue
        try:
            rotated = os.stat(path).st_ino != inode
        except FileNotFoundError:
            rotated = True
        if rotated:  # the old file is drained: read the new one from its start
            handle.close()
            handle, partial = None, ""
            continue
        time.sleep(poll)
    if handle is not None:
        handle.close()
