"""Files written so that a reader sees the old file or the whole new one, never a part:
a temp file in the same folder, fsynced, renamed into place, the folder fsynced. Used by
thumbnails (staged, renamed only while the job holds its lease) and the mail file transport."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a temp file next to `path`, fsync it, rename it into place, and
    fsync the folder, so a reader sees the old file or the whole new one."""
    StagedFiles.write({path: data}, mode).install()


@dataclasses.dataclass
class StagedFiles:
    """Files written to temp names (fsynced) and not yet renamed into place: a job renames
    them only in the transaction that checks it still holds its lease (`install`), and
    otherwise removes them (`discard`), so a stale attempt never replaces a newer one's."""

    temps: list[tuple[str, Path]]

    @classmethod
    def write(cls, files: dict[Path, bytes], mode: int = 0o644) -> "StagedFiles":
        import tempfile

        staged = cls([])
        try:
            for path, data in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                staged.temps.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, mode)
        except BaseException:
            staged.discard()
            raise
        return staged

    def install(self) -> None:
        try:
            for tmp, path in self.temps:
                os.replace(tmp, path)
        except BaseException:
            self.discard()
            raise
        folders = {path.parent for _, path in self.temps}
        self.temps = []
        for folder in folders:
            fsync_dir(folder)

    def discard(self) -> None:
        for tmp, _ in self.temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
