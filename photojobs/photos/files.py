"""File facts (size, mtime, sha256, mime type) and the classification of read errors.

An error that no retry can fix (missing file, permission, empty file) becomes a
PermanentFailure; an I/O error that may pass (EIO, a stale NFS handle, a busy device)
becomes RetryLater.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Iterator

from ..errors import PermanentFailure, RetryLater

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
HEIF_EXTENSIONS = (".heic", ".heif")

# Read the whole file into memory below this size: one read serves the hash, the EXIF
# and the decoder, and an OSError from the decoder is then surely a decode error.
IN_MEMORY_LIMIT = 256 * 1024 * 1024

_PERMANENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ELOOP,
                     errno.ENAMETOOLONG}


@dataclasses.dataclass
class FileFacts:
    size_bytes: int
    mtime_ns: int
    sha256: str
    mime: str | None
    data: bytes | None  # the content, when it fits IN_MEMORY_LIMIT


def heif_problem() -> str | None:
    """Why the HEIC decoder (pillow-heif, a dependency) cannot be loaded here, or None."""
    try:
        import pillow_heif  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from its bundled libheif
        return str(exc) or type(exc).__name__
    return None


def heif_available() -> bool:
    return heif_problem() is None


def image_extensions() -> tuple[str, ...]:
    return IMAGE_EXTENSIONS + HEIF_EXTENSIONS


def display_path(path: str | bytes | os.PathLike) -> str:
    """A path as text for people and JSON: non-UTF-8 bytes shown as \\xNN escapes."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


class NotRegularFile(OSError):
    """A photo's path names something other than a regular file (a symlink, a FIFO, a folder)."""


def open_regular(path: str | bytes | os.PathLike) -> int:
    """Open `path` for reading without following a symlink and only if it is a regular file;
    returns the descriptor. O_NONBLOCK keeps a FIFO swapped in from blocking the open; the
    type is checked on the opened descriptor (fstat), so a swap after the check cannot win."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and os.path.islink(path)):  # EMLINK: FreeBSD
            raise NotRegularFile(errno.ELOOP, "is a symlink, not followed", os.fsdecode(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("is a FIFO" if stat.S_ISFIFO(info.st_mode) else "is a folder" if stat.S_ISDIR(info.st_mode)
                    else "is not a regular file")
            raise NotRegularFile(errno.EINVAL, kind, os.fsdecode(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular_file(path: str | bytes | os.PathLike) -> io.BufferedReader:
    """`open_regular` as a binary file object."""
    return os.fdopen(open_regular(path), "rb")


def unchanged_since_recorded(info: os.stat_result, size_bytes: int | None, mtime_ns: int | None) -> bool:
    """Whether a file's stat matches the size and mtime recorded when it was processed
    (not its inode: that differs between the hosts that mount one library)."""
    return (info.st_size, info.st_mtime_ns) == (size_bytes, mtime_ns)


def io_failure(exc: OSError, path: str | bytes | os.PathLike) -> Exception:
    """PermanentFailure or RetryLater for an OSError met while reading `path`."""
    where = display_path(path)
    if isinstance(exc, NotRegularFile):
        return PermanentFailure(f"cannot read {where}: it {exc.strerror}")
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return PermanentFailure(f"source file is missing: {where}")
    if exc.errno in _PERMANENT_ERRNOS:
        return PermanentFailure(f"cannot read {where}: {exc.strerror or exc}")
    return RetryLater(f"I/O error reading {where}: {exc.strerror or exc}")


@contextlib.contextmanager
def classified_io(path: str | bytes | os.PathLike) -> Iterator[None]:
    """Turn OSErrors raised inside into PermanentFailure or RetryLater."""
    try:
        yield
    except OSError as exc:
        raise io_failure(exc, path) from exc


def sniff_mime(head: bytes) -> str | None:
    """The mime type an image file's first bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"hevc"):
        return "image/heic" if head[8:12] != b"mif1" else "image/heif"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def read_facts(path: str | bytes | os.PathLike) -> FileFacts:
    """Size, mtime, sha256 and sniffed mime type of a file; its bytes if it is not huge.

    Raises PermanentFailure for a missing, unreadable or empty file, RetryLater for an
    I/O error that may pass.
    """
    with classified_io(path):
        with open_regular_file(path) as f:
            st = os.fstat(f.fileno())
            if st.st_size == 0:
                raise PermanentFailure(f"empty file (0 bytes): {display_path(path)}")
            if st.st_size <= IN_MEMORY_LIMIT:
                data = f.read()
                digest = hashlib.sha256(data).hexdigest()
                head = data[:32]
            else:
                data = None
                head = f.read(32)
                f.seek(0)
                digest = hashlib.file_digest(f, "sha256").hexdigest()
    if data is not None and len(data) != st.st_size:
        raise RetryLater(f"{display_path(path)} changed while it was read")
    return FileFacts(st.st_size, st.st_mtime_ns, digest, sniff_mime(head), data)


def stat_signature(path: str | bytes | os.PathLike) -> tuple[int, int]:
    """(size, mtime_ns): what `photos add` compares to tell a changed file."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
