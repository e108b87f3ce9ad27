"""A streaming ZIP writer for download archives: members stored (JPEGs do not deflate),
ZIP64 only where a size or offset needs it, memory flat whatever the archive's size.

`write_archive(members, dest)` writes to a private temp file next to `dest`. Each
member's CRC-32 is known before its local header goes out (a photo up to 16 MiB is read
once into a reused buffer; a bigger file is read twice), so the file is written strictly
in order, with sizes and CRC in the local header (no data descriptor: every unzip tool
reads it), and its SHA-256 is computed on the way. The kernel is asked to start writing
back as it goes; then the file is fsynced, its headers and central directory are read
back and compared byte for byte, `zipfile` must list exactly the members written, and it
is renamed into place and the folder fsynced. On any error the temp file is removed; a
crash leaves only a `.tmp` file that the next attempt or the clean-up removes.

Measured on this kind of VM (2 cores): a second thread reading the archive back while it
is written made it 2-3x slower (the two compete for memory bandwidth), so verification
of the data by read-back is an option (`read_back=True`), off by default: it reads the
page cache, not the disk, and the bytes written are the bytes CRC'd and hashed.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import queue
import re
import secrets
import stat
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..photos.files import open_regular

CHUNK_SIZE = 1 << 20
WHOLE_FILE_LIMIT = 16 << 20  # a member up to this size is read once, into one reused buffer
WRITEBACK_EVERY = 32 << 20  # bytes written between two requests to start writing back
ZIP64_LIMIT = 0xFFFFFFFF  # a size or offset at or past this needs ZIP64 (lowered in tests)
COUNT_LIMIT = 0xFFFF  # more members than this need the ZIP64 end record
TEMP_SUFFIX = ".tmp"

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_UTF8_FLAG = 0x800
_UNIX_FILE = (stat.S_IFREG | 0o644) << 16
_MADE_BY_UNIX = 3 << 8


class SourceChanged(OSError):
    """A member's source changed size while it was being archived."""


class SourceMismatch(OSError):
    """A member's source is not the file that was processed (size or mtime differ)."""

    def __init__(self, member: "Member", detail: str):
        super().__init__(errno.ESTALE, detail, str(member.source))
        self.member = member


class ArchiveCorrupt(Exception):
    """The archive read back does not match what was written."""


@dataclasses.dataclass
class Member:
    """One file to archive: its name inside the ZIP and its path on disk."""

    name: str
    source: Path
    expected: tuple[int, int] | None = None  # (size, mtime_ns) recorded when it was processed
    label: str | None = None  # how errors name it ("photo 12")


@dataclasses.dataclass
class _Written:
    name: bytes
    flags: int
    dos_time: int
    dos_date: int
    crc: int
    size: int
    offset: int  # of the local header
    data_offset: int
    zip64: bool


@dataclasses.dataclass
class ArchiveResult:
    path: Path
    size_bytes: int
    file_count: int
    sha256: str
    zip64: bool
    source_bytes: int


ProgressCallback = Callable[[int], None]  # called with the source bytes archived so far


def temp_path_for(dest: Path, attempt: tuple[int, int] | None = None) -> Path:
    """A fresh temp name beside `dest`, its own to one attempt: `.<dest name>.<random>.tmp`,
    or `.<dest name>.j<job>a<attempt>-<random>.tmp` for a job's attempt."""
    tag = f"j{attempt[0]}a{attempt[1]}-" if attempt else ""
    return dest.parent / f".{dest.name}.{tag}{secrets.token_hex(6)}{TEMP_SUFFIX}"


_ATTEMPT_TAG = re.compile(r"j(\d+)a(\d+)-")


def is_temp_of(path: Path, dest: Path) -> bool:
    return path.name.startswith(f".{dest.name}.") and path.name.endswith(TEMP_SUFFIX)


def install(temp: Path, result: "ArchiveResult") -> None:
    """Rename the finished temp file into place (`result.path`) and make the rename durable."""
    os.replace(temp, result.path)
    _fsync_folder(result.path.parent)


def write_archive(members: Sequence[Member], dest: str | os.PathLike, *, progress: ProgressCallback | None = None,
                  chunk_size: int = CHUNK_SIZE, read_back: bool = False, attempt: tuple[int, int] | None = None,
                  publish: "Callable[[Path, ArchiveResult], None] | None" = None) -> ArchiveResult:
    """Write `members` (stored) as the ZIP `dest`, atomically; returns what was written.

    `publish(temp, result)` makes the verified temp file the archive (default: `install`);
    a job passes one that renames only while it still holds its lease, in the transaction
    that marks the download ready. If it raises, the temp file is removed.

    Checked before the rename: every local header and the central directory read back
    byte for byte, and `zipfile` lists exactly the members written. `read_back` also
    reads all the data back (CRC-32 of each member, SHA-256 of the file); that reads the
    page cache, not the disk, so it guards against bugs here rather than a bad disk.
    """
    dest = Path(dest)
    temp = temp_path_for(dest, attempt)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        writer = _StreamWriter(fd, chunk_size, progress)
        try:
            for member in members:
                writer.add(member)
            archive_size = writer.finish()
        finally:
            digest = writer.sha256.hexdigest()  # waits for the hashing thread
        os.fsync(fd)
        _check_headers(temp, writer.entries, *writer.directory)
        _check_directory(temp, writer.entries)
        if read_back:
            _read_back(temp, writer.entries, archive_size, digest, chunk_size)
        os.close(fd)
        fd = -1
        result = ArchiveResult(dest, archive_size, len(writer.entries), digest, writer.uses_zip64,
                               writer.source_bytes)
        (publish or install)(temp, result)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _remove_quietly(temp)
        raise
    return result


class _StreamWriter:
    """Writes members one after the other. A member's CRC-32 is known before its local
    header is written: a file up to WHOLE_FILE_LIMIT is read once into a reused buffer, a
    bigger one is read twice (its CRC, then the copy, whose CRC must match). So the bytes
    go out in order, and the archive's SHA-256 is computed on the way, from the buffer,
    on a second thread. Two buffers take turns, so that one file is read while the
    previous one is still being hashed; a buffer is reused only once its hash is done."""

    def __init__(self, fd: int, chunk_size: int, progress: ProgressCallback | None):
        self.fd = fd
        self.offset = 0
        self.entries: list[_Written] = []
        self.source_bytes = 0
        self.uses_zip64 = False
        self.progress = progress
        self.chunk_size = chunk_size
        self.buffers: list[bytearray] = []  # two of WHOLE_FILE_LIMIT bytes, made when first needed
        self.hashed: list[threading.Event | None] = [None, None]  # set once a buffer's bytes are hashed
        self.sha256 = _BackgroundHash()
        self.writeback = _Writeback(fd)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.sha256.update(view)
        while view:
            done = os.write(self.fd, view)
            if done <= 0:  # pragma: no cover - a regular file never writes 0 without an error
                raise OSError(errno.EIO, "short write")
            view = view[done:]
            self.offset += done
        self.writeback.written(self.offset)

    def add(self, member: Member) -> None:
        name = member.name.encode("utf-8")
        flags = 0 if member.name.isascii() else _UTF8_FLAG
        turn = len(self.entries) % 2
        buffer = self._buffer(turn)
        with os.fdopen(open_regular(member.source), "rb", buffering=0) as source:
            info = os.fstat(source.fileno())
            if member.expected is not None and (info.st_size, info.st_mtime_ns) != member.expected:
                raise SourceMismatch(member, f"size or modification time differ from when it was processed"
                                             f" ({info.st_size} bytes now, {member.expected[0]} then)")
            _advise_sequential(source.fileno())
            size = info.st_size
            dos_time, dos_date = _dos_time(info.st_mtime)
            zip64 = size >= ZIP64_LIMIT
            whole = size <= len(buffer)
            data = _read_whole(source, buffer, size, member.source) if whole else None
            crc = zlib.crc32(data) if data is not None else _crc_of(source, buffer, self.chunk_size)
            header_offset = self.offset
            self._write(_local_header(name, flags, dos_time, dos_date, crc, size, zip64))
            data_offset = self.offset
            if data is not None:
                self._copy_buffer(data)
            else:
                source.seek(0)
                self._copy_stream(source, buffer, size, crc, member.source)
        self.hashed[turn] = self.sha256.mark()
        self.source_bytes += size
        self.uses_zip64 |= zip64
        self.entries.append(_Written(name, flags, dos_time, dos_date, crc, size, header_offset, data_offset, zip64))

    def _copy_buffer(self, data: memoryview) -> None:
        for start in range(0, len(data), self.chunk_size):
            self._write(data[start:start + self.chunk_size])
            if self.progress is not None:
                self.progress(self.source_bytes + min(start + self.chunk_size, len(data)))

    def _buffer(self, turn: int) -> bytearray:
        if len(self.buffers) <= turn:
            self.buffers.append(bytearray(max(WHOLE_FILE_LIMIT, 2 * self.chunk_size)))
        if self.hashed[turn] is not None:
            self.hashed[turn].wait()  # type: ignore[union-attr]
        return self.buffers[turn]

    def _copy_stream(self, source, buffer: bytearray, size: int, crc_before: int, path: Path) -> None:
        crc, copied = 0, 0
        slots = [memoryview(buffer)[:self.chunk_size], memoryview(buffer)[self.chunk_size:2 * self.chunk_size]]
        done: list[threading.Event | None] = [None, None]
        while copied <= size:
            slot = (copied // self.chunk_size) % 2
            if done[slot] is not None:
                done[slot].wait()  # type: ignore[union-attr]
            n = source.readinto(slots[slot])
            if not n:
                break
            chunk = slots[slot][:n]
            crc = zlib.crc32(chunk, crc)
            self._write(chunk)
            done[slot] = self.sha256.mark()
            copied += n
            if self.progress is not None:
                self.progress(self.source_bytes + copied)
        if copied != size or crc != crc_before:
            raise SourceChanged(errno.EAGAIN, "the file changed while it was archived", str(path))

    def finish(self) -> int:
        """Write the central directory and the end records; returns the archive's size."""
        central_offset = self.offset
        self._write(b"".join(_central_header(e) for e in self.entries))
        central_size = self.offset - central_offset
        count = len(self.entries)
        need64 = count >= COUNT_LIMIT or central_size >= ZIP64_LIMIT or central_offset >= ZIP64_LIMIT
        tail = b""
        if need64:
            self.uses_zip64 = True
            end64_offset = self.offset
            tail += _END64.pack(b"PK\x06\x06", _END64.size - 12, _MADE_BY_UNIX | 45, 45, 0, 0, count, count,
                                central_size, central_offset)
            tail += _LOCATOR64.pack(b"PK\x06\x07", 0, end64_offset, 1)
        shown = 0xFFFF if need64 else count
        tail += _END.pack(b"PK\x05\x06", 0, 0, shown, shown, _cap(central_size, need64), _cap(central_offset, need64), 0)
        self._write(tail)
        self.directory = (central_offset, b"".join(_central_header(e) for e in self.entries) + tail)
        return self.offset


class _BackgroundHash:
    """SHA-256 computed on a second thread (hashlib releases the GIL), fed in order. A fed
    view must not change until a `mark()` made after it is set."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.digest: str | None = None

    def update(self, data: bytes | memoryview) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="archive-sha256", daemon=True)
            self.thread.start()
        self.queue.put(data)

    def mark(self) -> threading.Event:
        event = threading.Event()
        if self.thread is None:
            event.set()
        else:
            self.queue.put(event)
        return event

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
            else:
                self.sha.update(item)

    def hexdigest(self) -> str:
        if self.digest is None:
            if self.thread is not None:
                self.queue.put(None)
                self.thread.join()
            self.digest = self.sha.hexdigest()
        return self.digest


def _read_whole(source, buffer: bytearray, size: int, path: Path) -> memoryview:
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = source.readinto(view[got:size])
        if not n:
            break
        got += n
    if got != size or source.read(1):
        raise SourceChanged(errno.EAGAIN, f"the file changed size while it was archived ({size} bytes before)",
                            str(path))
    return view[:size]


def _crc_of(source, buffer: bytearray, chunk_size: int) -> int:
    crc = 0
    view = memoryview(buffer)[:chunk_size]
    while True:
        n = source.readinto(view)
        if not n:
            return crc
        crc = zlib.crc32(view[:n], crc)


def _cap(value: int, zip64: bool) -> int:
    return 0xFFFFFFFF if zip64 or value >= 0xFFFFFFFF else value


def _local_header(name: bytes, flags: int, dos_time: int, dos_date: int, crc: int, size: int, zip64: bool) -> bytes:
    extra = struct.pack("<HHQQ", 1, 16, size, size) if zip64 else b""
    sized = 0xFFFFFFFF if zip64 else size
    return _LOCAL.pack(b"PK\x03\x04", 45 if zip64 else 20, flags, 0, dos_time, dos_date, crc, sized, sized,
                       len(name), len(extra)) + name + extra


def _central_header(e: _Written) -> bytes:
    big_offset = e.offset >= ZIP64_LIMIT
    fields = [e.size, e.size] if e.zip64 else []
    if big_offset:
        fields.append(e.offset)
    extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
    version = 45 if fields else 20
    sized = 0xFFFFFFFF if e.zip64 else e.size
    return _CENTRAL.pack(b"PK\x01\x02", _MADE_BY_UNIX | version, version, e.flags, 0, e.dos_time, e.dos_date,
                         e.crc, sized, sized, len(e.name), len(extra), 0, 0, 0, _UNIX_FILE,
                         0xFFFFFFFF if big_offset else e.offset) + e.name + extra


def _dos_time(mtime: float) -> tuple[int, int]:
    t = time.localtime(mtime)
    if t.tm_year < 1980:
        return 0, (0 << 9) | (1 << 5) | 1
    if t.tm_year > 2107:
        return (23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


# --- durability and verification -------------------------------------------------------

class _Writeback:
    """Asks Linux to start writing dirty pages back every WRITEBACK_EVERY bytes, so that the
    disk works while we copy instead of all at the final fsync (sync_file_range, no wait)."""

    _call = None

    def __init__(self, fd: int):
        self.fd = fd
        self.started = 0
        if _Writeback._call is None:
            _Writeback._call = _load_sync_file_range() or False

    def written(self, offset: int) -> None:
        if self._call and offset - self.started >= WRITEBACK_EVERY:
            self._call(self.fd, self.started, offset - self.started, 2)  # SYNC_FILE_RANGE_WRITE
            self.started = offset


def _load_sync_file_range():
    if not hasattr(os, "posix_fadvise"):  # not Linux-like: fsync alone does the work
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
        call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        call.restype = ctypes.c_int
        return call
    except (OSError, AttributeError):
        return None


def _advise_sequential(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass


def _read_back(path: Path, entries: list[_Written], size: int, sha256: str, chunk_size: int) -> None:
    """Read the whole archive back: each member's CRC-32 and the file's SHA-256 must be
    those computed while writing."""
    sha, view = hashlib.sha256(), memoryview(bytearray(chunk_size))
    crcs = [0] * len(entries)
    index, position = 0, 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            sha.update(view[:n])
            end = position + n
            while index < len(entries) and entries[index].data_offset < end:
                e = entries[index]
                lo, hi = max(e.data_offset, position), min(e.data_offset + e.size, end)
                if hi > lo:
                    crcs[index] = zlib.crc32(view[lo - position:hi - position], crcs[index])
                if e.data_offset + e.size > end:
                    break
                index += 1
            position = end
    bad = [e.name.decode() for e, crc in zip(entries, crcs) if crc != e.crc]
    if position != size or bad or sha.hexdigest() != sha256:
        detail = f"{bad[0]} has a bad CRC" if bad else "its checksum differs"
        raise ArchiveCorrupt(f"archive {path} does not read back as written: {detail}")


def _check_headers(path: Path, entries: list[_Written], directory_offset: int, directory: bytes) -> None:
    """Every local header and the central directory read back byte for byte as written
    (the data between them was written from the buffer its CRC-32 was computed on)."""
    with open(path, "rb", buffering=0) as fh:
        for e in entries:
            expected = _local_header(e.name, e.flags, e.dos_time, e.dos_date, e.crc, e.size, e.zip64)
            if os.pread(fh.fileno(), len(expected), e.offset) != expected:
                raise ArchiveCorrupt(f"archive {path}: the header of {e.name.decode()} does not read back as written")
        if os.pread(fh.fileno(), len(directory), directory_offset) != directory:
            raise ArchiveCorrupt(f"archive {path}: its central directory does not read back as written")


def _check_directory(path: Path, entries: list[_Written]) -> None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    expected = [(e.name.decode(), e.size, e.crc, e.offset) for e in entries]
    found = [(i.filename, i.file_size, i.CRC, i.header_offset) for i in infos]
    if found != expected:
        raise ArchiveCorrupt(f"archive {path}: its central directory does not list what was written")


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _attempt_of(name: str, prefix: str) -> tuple[int, int] | None:
    match = _ATTEMPT_TAG.match(name, len(prefix))
    return (int(match[1]), int(match[2])) if match else None


def remove_temp_files(folder: Path, names: Iterable[str], before: tuple[int, int] | None = None) -> list[Path]:
    """Remove the temp files left in `folder` for any of the archive names `names`; with
    `before` (job id, attempt), only those of earlier attempts (and untagged ones): a later
    attempt's temp file is live work, and a stale attempt must not touch it."""
    removed = []
    prefixes = tuple(f".{n}." for n in names)
    try:
        candidates = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in candidates:
        if entry.name.startswith(prefixes) and entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            prefix = next(p for p in prefixes if entry.name.startswith(p))
            tagged = _attempt_of(entry.name, prefix)
            if before is not None and tagged is not None and tagged >= before:
                continue
            _remove_quietly(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


__all__ = ["Member", "ArchiveResult", "ArchiveCorrupt", "SourceChanged", "SourceMismatch", "write_archive", "install",
           "remove_temp_files", "temp_path_for", "is_temp_of", "ZIP64_LIMIT", "COUNT_LIMIT", "TEMP_SUFFIX"]
