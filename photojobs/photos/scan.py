"""Finding the image files `photos add` registers: files named, folders walked.

A file is picked by its image extension; anything else is skipped and counted (HEIC files
too, with a warning that names the decoder, where pillow-heif cannot be loaded). Inside a
folder, a symlink whose target lies outside that folder is refused, and a symlink named
as an argument is followed only to a file inside the link's own folder (so adding a shoot
cannot pull in /etc or someone's home); a symlinked folder is not followed (no loops),
and hidden files (".DS_Store", "._IMG_0001.jpg") are left alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Iterable

from ..errors import NotFound
from .files import HEIF_EXTENSIONS, display_path, heif_problem, image_extensions

HEIF_SKIPPED = "HEIC decoder cannot be loaded"


@dataclasses.dataclass
class Skipped:
    path: str
    reason: str


@dataclasses.dataclass
class ScanResult:
    files: list[str] = dataclasses.field(default_factory=list)  # real paths, de-duplicated
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _consider(path: str, root: str | None, extensions: tuple[str, ...], result: ScanResult, seen: set[str]) -> None:
    name = os.path.basename(path)
    if root is not None and name.startswith("."):
        result.skipped.append(Skipped(display_path(path), "hidden file"))
        return
    if not name.lower().endswith(extensions):
        result.skipped.append(Skipped(display_path(path), "not an image file name"))
        return
    real = os.path.realpath(path)
    if root is not None and os.path.islink(path) and not _inside(real, root):
        result.skipped.append(Skipped(display_path(path), "symlink points outside the folder added"))
        return
    if root is None and os.path.islink(path) and not _inside(real, os.path.realpath(os.path.dirname(path) or ".")):
        result.skipped.append(Skipped(display_path(path), "symlink points outside its own folder"))
        return
    if not os.path.isfile(real):
        reason = "broken symlink" if os.path.islink(path) else "not a regular file"
        result.skipped.append(Skipped(display_path(path), reason))
        return
    if real not in seen:
        seen.add(real)
        result.files.append(real)


def _walk(folder: str, extensions: tuple[str, ...], result: ScanResult, seen: set[str]) -> None:
    root = os.path.realpath(folder)

    def on_error(exc: OSError) -> None:
        result.skipped.append(Skipped(display_path(exc.filename or folder), f"unreadable folder ({exc.strerror})"))

    for current, dirs, files in os.walk(folder, onerror=on_error):
        kept = []
        for d in sorted(dirs):
            full = os.path.join(current, d)
            if os.path.islink(full):
                result.skipped.append(Skipped(display_path(full), "symlinked folder not followed"))
            elif not d.startswith("."):
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            _consider(os.path.join(current, name), root, extensions, result, seen)


def scan(paths: Iterable[str | os.PathLike]) -> ScanResult:
    """The image files under `paths` (files or folders, walked recursively), sorted within
    each folder. A path that does not exist raises NotFound before anything is read."""
    paths = [os.fspath(p) for p in paths]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        what = "broken symlink" if os.path.islink(missing[0]) else "no such file or folder"
        raise NotFound(f"{what}: {display_path(missing[0])}")
    extensions = image_extensions()
    result = ScanResult()
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            _walk(path, extensions, result, seen)
        else:
            _consider(path, None, extensions, result, seen)
    _skip_undecodable_heif(result)
    return result


def _skip_undecodable_heif(result: ScanResult) -> None:
    """Where pillow-heif cannot be loaded, HEIC files are skipped with a warning that says so."""
    heif = [f for f in result.files if f.lower().endswith(HEIF_EXTENSIONS)]
    problem = heif_problem() if heif else None
    if not problem:
        return
    result.files = [f for f in result.files if not f.lower().endswith(HEIF_EXTENSIONS)]
    result.skipped.extend(Skipped(display_path(f), HEIF_SKIPPED) for f in heif)
    result.warnings.append(f"{len(heif)} HEIC file{'s' if len(heif) > 1 else ''} skipped:"
                           f" the HEIC decoder (pillow-heif) cannot be loaded: {problem}")
