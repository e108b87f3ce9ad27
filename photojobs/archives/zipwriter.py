"""A streaming ZIP writer for download archives: members stored (JPEGs do not deflate),
ZIP64 only where a size or offset needs it, memory flat whatever the archive's size.

`write_archive(members, dest)` writes to a private temp file next to `dest`, reading each
source once in 1 MiB chunks (CRC-32 on the way, patched into the local header after the
data, so no data descriptor is needed and every unzip tool reads it), asks the kernel to
start writing back as it goes, then fsyncs while it reads the file back to verify it
(CRC-32 of every member, SHA-256 of the whole file, and the central directory through
`zipfile`), renames it into place and fsyncs the folder. On any error the temp file is
removed; a crash leaves only a `.tmp` file that the next attempt or the clean-up removes.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import secrets
import stat
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

CHUNK_SIZE = 1 << 20
WRITEBACK_EVERY = 32 << 20  # bytes written between two requests to start writing back
ZIP64_LIMIT = 0xFFFFFFFF  # a size or offset at or past this needs ZIP64 (lowered in tests)
COUNT_LIMIT = 0xFFFF  # more members than this need the ZIP64 end record
TEMP_SUFFIX = ".tmp"

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_CRC_OFFSET = 14  # of the CRC-32 field in a local header
_UTF8_FLAG = 0x800
_UNIX_FILE = (stat.S_IFREG | 0o644) << 16
_MADE_BY_UNIX = 3 << 8


class SourceChanged(OSError):
    """A member's source changed size while it was being archived."""


class ArchiveCorrupt(Exception):
    """The archive read back does not match what was written."""


@dataclasses.dataclass
class Member:
    """One file to archive: its name inside the ZIP and its path on disk."""

    name: str
    source: Path


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


def temp_path_for(dest: Path) -> Path:
    """A fresh temp name beside `dest`: `.<dest name>.<random>.tmp`."""
    return dest.parent / f".{dest.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def is_temp_of(path: Path, dest: Path) -> bool:
    return path.name.startswith(f".{dest.name}.") and path.name.endswith(TEMP_SUFFIX)


def write_archive(members: Sequence[Member], dest: str | os.PathLike, *, progress: ProgressCallback | None = None,
                  chunk_size: int = CHUNK_SIZE) -> ArchiveResult:
    """Write `members` (stored) as the ZIP `dest`, atomically; returns what was written."""
    dest = Path(dest)
    temp = temp_path_for(dest)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        writer = _StreamWriter(fd, chunk_size, progress)
        verifier = _TrailingVerifier(temp, writer.entries, chunk_size)
        verifier.start()
        try:
            for member in members:
                writer.add(member)
                verifier.advance(writer.offset)
            archive_size = writer.finish()
            verifier.advance(archive_size, final=True)
            os.fsync(fd)
        finally:
            if not verifier.final:
                verifier.cancel()
            verifier.join()
        if verifier.error is not None:
            raise verifier.error
        _check_headers(fd, temp, writer.entries, *writer.directory)
        _check_directory(temp, writer.entries)
        os.close(fd)
        fd = -1
        os.replace(temp, dest)
        _fsync_folder(dest.parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _remove_quietly(temp)
        raise
    assert verifier.digest is not None
    return ArchiveResult(dest, archive_size, len(writer.entries), verifier.digest,
                         writer.uses_zip64, writer.source_bytes)


class _StreamWriter:
    def __init__(self, fd: int, chunk_size: int, progress: ProgressCallback | None):
        self.fd = fd
        self.offset = 0
        self.entries: list[_Written] = []
        self.source_bytes = 0
        self.uses_zip64 = False
        self.progress = progress
        self.buffer = bytearray(chunk_size)
        self.writeback = _Writeback(fd)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
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
        with open(member.source, "rb", buffering=0) as source:
            info = os.fstat(source.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", str(member.source))
            _advise_sequential(source.fileno())
            size = info.st_size
            dos_time, dos_date = _dos_time(info.st_mtime)
            zip64 = size >= ZIP64_LIMIT
            header_offset = self.offset
            self._write(_local_header(name, flags, dos_time, dos_date, size, zip64))
            data_offset = self.offset
            crc = self._copy(source, size, member.source)
        os.pwrite(self.fd, struct.pack("<I", crc), header_offset + _CRC_OFFSET)
        self.uses_zip64 |= zip64
        self.entries.append(_Written(name, flags, dos_time, dos_date, crc, size, header_offset, data_offset, zip64))

    def _copy(self, source, size: int, path: Path) -> int:
        crc, copied = 0, 0
        view = memoryview(self.buffer)
        while True:
            n = source.readinto(view)
            if not n:
                break
            chunk = view[:n]
            crc = zlib.crc32(chunk, crc)
            self._write(chunk)
            copied += n
            if copied > size:
                break
            if self.progress is not None:
                self.progress(self.source_bytes + copied)
        if copied != size:
            raise SourceChanged(errno.EAGAIN, f"file changed size while archiving ({size} -> {copied} bytes)",
                                str(path))
        self.source_bytes += size
        return crc

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


def _cap(value: int, zip64: bool) -> int:
    return 0xFFFFFFFF if zip64 or value >= 0xFFFFFFFF else value


def _local_header(name: bytes, flags: int, dos_time: int, dos_date: int, size: int, zip64: bool) -> bytes:
    extra = struct.pack("<HHQQ", 1, 16, size, size) if zip64 else b""
    sized = 0xFFFFFFFF if zip64 else size
    return _LOCAL.pack(b"PK\x03\x04", 45 if zip64 else 20, flags, 0, dos_time, dos_date, 0, sized, sized,
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


class _TrailingVerifier(threading.Thread):
    """Reads the archive back while it is being written, a member behind the writer (whose
    local header is final only once its CRC is patched): the SHA-256 of the whole file and
    each member's CRC-32, on the second core, so verifying costs almost no wall time."""

    def __init__(self, path: Path, entries: list[_Written], chunk_size: int):
        super().__init__(name="archive-verify", daemon=True)
        self.path, self.entries, self.chunk_size = path, entries, chunk_size
        self.ready_to = 0  # bytes final on disk (up to the member being written)
        self.final = False
        self.cancelled = False
        self.changed = threading.Condition()
        self.digest: str | None = None
        self.error: BaseException | None = None

    def advance(self, offset: int, *, final: bool = False) -> None:
        with self.changed:
            self.ready_to, self.final = offset, final
            self.changed.notify()

    def cancel(self) -> None:
        with self.changed:
            self.cancelled = True
            self.changed.notify()

    def _wait_for(self, position: int) -> int | None:
        with self.changed:
            while self.ready_to <= position and not self.final and not self.cancelled:
                self.changed.wait()
            return None if self.cancelled else self.ready_to

    def run(self) -> None:
        try:
            self.digest = self._read_back()
        except BaseException as exc:  # handed to the writer's thread
            self.error = exc

    def _read_back(self) -> str | None:
        sha, view = hashlib.sha256(), memoryview(bytearray(self.chunk_size))
        index, crc, position = 0, 0, 0
        with open(self.path, "rb", buffering=0) as fh:
            while True:
                ready = self._wait_for(position)
                if ready is None:
                    return None
                if position >= ready and self.final:
                    break
                n = fh.readinto(view[:min(self.chunk_size, ready - position)])
                if not n:
                    raise ArchiveCorrupt(f"archive {self.path} is shorter than what was written")
                sha.update(view[:n])
                end = position + n
                while index < len(self.entries) and self.entries[index].data_offset < end:
                    entry = self.entries[index]
                    lo, hi = max(entry.data_offset, position), min(entry.data_offset + entry.size, end)
                    if hi > lo:
                        crc = zlib.crc32(view[lo - position:hi - position], crc)
                    if entry.data_offset + entry.size > end:
                        break
                    if crc != entry.crc:
                        raise ArchiveCorrupt(f"archive {self.path}: {entry.name.decode()} reads back with a bad CRC")
                    index, crc = index + 1, 0
                position = end
        if fh_size(self.path) != position or index != len(self.entries):
            raise ArchiveCorrupt(f"archive {self.path} does not read back as written")
        return sha.hexdigest()


def fh_size(path: Path) -> int:
    return os.stat(path).st_size


def _check_headers(fd: int, path: Path, entries: list[_Written], directory_offset: int, directory: bytes) -> None:
    """Every local header and the central directory read back byte for byte as written
    (the verifier has checked the data between them)."""
    with open(path, "rb", buffering=0) as fh:
        for e in entries:
            expected = bytearray(_local_header(e.name, e.flags, e.dos_time, e.dos_date, e.size, e.zip64))
            expected[_CRC_OFFSET:_CRC_OFFSET + 4] = struct.pack("<I", e.crc)
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


def remove_temp_files(folder: Path, names: Iterable[str]) -> list[Path]:
    """Remove the temp files left in `folder` for any of the archive names `names`."""
    removed = []
    prefixes = tuple(f".{n}." for n in names)
    try:
        candidates = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in candidates:
        if entry.name.startswith(prefixes) and entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            _remove_quietly(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


__all__ = ["Member", "ArchiveResult", "ArchiveCorrupt", "SourceChanged", "write_archive",
           "remove_temp_files", "temp_path_for", "is_temp_of", "ZIP64_LIMIT", "COUNT_LIMIT", "TEMP_SUFFIX"]
