"""Photo libraries: where the photographer's files live, outside the storage root.

A photo is recorded as (library name, path relative to the library's folder). Each host
says where a library's folder is on it with `[libraries]` in photojobs.toml:

    [libraries]
    studio = "/mnt/studio"          # name ([a-z0-9_-]+) = absolute folder on this host

so hosts that mount one share at different paths agree on every photo. The database's
`libraries` table records each library's folder where it was first seen: the fallback
for a host whose photojobs.toml does not name it (a laptop has no [libraries] at all).

Without [libraries], `photos add` files each path under the recorded library whose
folder holds it, or makes a new library rooted at the folder added ("default" first),
so a later move of that folder is one line in photojobs.toml and no rewrite of rows.
With [libraries], a path outside every configured folder is refused: hosts that share
a database must say where things are.

A folder is checked only when a photo of it is read: `status` works while a share is
not mounted, and a job that meets an unmounted library retries later. Unmounted means
missing, or empty: a share's mount point stays, an empty folder, when the share is not
mounted, and a folder that holds a library's photos is never empty.

A host's [libraries] names a library the database does not know yet: `photos add` records
it. When the database has a library of a close name, or of the same folder, that this host
does not name, that is a typo or a rename, not a new library: refused, so the same files
are not added twice under two names.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import time
from typing import Any, Sequence

from .errors import ConfigError, RetryLater, UsageError
from .migrations import DEFAULT_LIBRARY as DEFAULT
from .migrations import default_library_plan, stored  # noqa: F401 - importable from here too
from .photos.files import display_path as _shown

NAME = re.compile(r"[a-z0-9_-]+\Z")
UNAVAILABLE_RETRY_DELAY = 300.0  # s: a share being remounted, not a broken photo


class LibraryUnavailable(RetryLater):
    """A photo library's folder is missing on this host (a share not mounted?)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, delay=UNAVAILABLE_RETRY_DELAY)


@dataclasses.dataclass(frozen=True)
class LibrarySettings:
    """The [libraries] table: name -> absolute folder on this host, normalised."""

    folders: tuple[tuple[str, str], ...] = ()


def parse_libraries(table: Any, settings: Any = None, env: Any = None) -> LibrarySettings:
    """Read when the settings load (settings.SECTIONS): a bad name or a relative folder is
    a ConfigError for every command. Folders are not checked to exist (a share may be down)."""
    found = []
    for name, folder in table.items():
        if not NAME.match(name):
            raise ConfigError(f"[libraries] {name!r} is not a library name: use lowercase letters, digits, - and _")
        if not isinstance(folder, str) or not os.path.isabs(os.path.expanduser(folder)):
            raise ConfigError(f"[libraries] {name} = {folder!r} is not an absolute folder")
        found.append((name, os.path.normpath(os.path.expanduser(folder))))
    return LibrarySettings(tuple(found))


def configured(settings: Any) -> dict[str, str]:
    """This host's [libraries]: name -> absolute folder."""
    return dict(settings.section_of("libraries").folders)


def _text(value: str | bytes) -> str:
    """A stored path as a str the OS functions accept (surrogate-escaped if needed)."""
    return os.fsdecode(value) if isinstance(value, (bytes, bytearray)) else value


def _inside(path: str, folder: str) -> bool:
    return folder == os.sep or path == folder or path.startswith(folder + os.sep)


def _relative(path: str, folder: str) -> str:
    return path[len(folder):].lstrip(os.sep)


def empty_folder(folder: str | os.PathLike) -> bool:
    """Whether a folder holds nothing (an empty mount point: a photo library's or the
    storage root's share not mounted); False if it is missing or cannot be read."""
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False


@dataclasses.dataclass
class Libraries:
    """This host's view of the libraries: photojobs.toml's, then the database's."""

    configured: dict[str, str]
    recorded: dict[str, str]
    config: str = "photojobs.toml"  # where `configured` comes from, for messages
    _forms: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict, repr=False)
    _seen: set[str] = dataclasses.field(default_factory=set, repr=False)

    def folder(self, name: str) -> str | None:
        return self.configured.get(name) or self.recorded.get(name)

    def folders(self) -> dict[str, str]:
        return {**self.recorded, **self.configured}

    def resolve(self, library: str, relpath: str | bytes) -> str:
        """The file of (library, relpath) on this host; not checked to exist. A library
        this host does not know resolves to its relative path under "?<name>"; an absolute
        path (a row written by SQL of its own) stands as it is."""
        folder = self.folder(library)
        relative = _text(relpath)
        if os.path.isabs(relative):
            return relative
        if folder is None:
            return os.path.join(f"?{library}", relative)
        return os.path.join(folder, relative) if relative else folder

    def require(self, library: str, relpath: str | bytes) -> str:
        """`resolve` for reading the file: LibraryUnavailable (a RetryLater) when the
        library is unknown here or its folder is missing."""
        folder = self.folder(library)
        if os.path.isabs(_text(relpath)):
            return _text(relpath)
        if folder is None:
            raise LibraryUnavailable(f"photo library {library!r} is unknown on this host:"
                                     " add it to [libraries] in photojobs.toml")
        state = self.unavailable(library)
        if state:
            raise LibraryUnavailable(f"photo library {library!r} folder {_shown(folder)} is {state}"
                                     " (not mounted?); the job retries later")
        return self.resolve(library, relpath)

    def unavailable(self, library: str) -> str | None:
        """Why a library that has photos cannot be read here ("missing", "empty"), or None.
        A folder seen with files is not checked again by this object."""
        folder = self.folder(library)
        if folder in self._seen:
            return None
        if folder is None or not os.path.isdir(folder):
            return "missing"
        if empty_folder(folder):
            return "empty"
        self._seen.add(folder)
        return None

    def place(self, path: str) -> tuple[str, str | bytes] | None:
        """(library, stored relative path) of an absolute file path, by the longest folder
        that holds it (the configured ones only, when photojobs.toml has [libraries]); None if
        none does. Folders are compared as given and with symlinks resolved."""
        candidates = self.configured if self.configured else self.folders()
        best: tuple[int, str, str] | None = None
        for name, folder in candidates.items():
            if folder not in self._forms:  # a few system calls: once per folder, not per file
                self._forms[folder] = tuple(dict.fromkeys((folder, os.path.realpath(folder))))
            for form in self._forms[folder]:
                if _inside(path, form) and (best is None or len(form) > best[0]):
                    best = (len(form), name, form)
        if best is None:
            return None
        return best[1], stored(_relative(path, best[2]))

    def outside_error(self, path: str) -> UsageError:
        listed = ", ".join(f"{n} = {_shown(f)}" for n, f in sorted(self.configured.items()))
        unnamed = {n: f for n, f in self.recorded.items() if n not in self.configured}
        holder = Libraries({}, unnamed).place(path)
        hint = (f'the database has it in library {holder[0]!r}: add {holder[0]} = "{_shown(unnamed[holder[0]])}"'
                " to [libraries] in photojobs.toml") if holder else "add its folder to [libraries] in photojobs.toml"
        return UsageError(f"{_shown(path)} is outside every photo library ({listed})", hint=hint)

    def check_new(self, db: Any, name: str, relpath: str | bytes) -> None:
        """Refuse to record the configured library `name` (for a file at `relpath` in it) when
        the database has a library this host's [libraries] does not name that is the same
        folder, that knows this file but no longer finds it (moved here), or of a close name."""
        from .storage import photos as photo_rows

        unnamed = {n: f for n, f in self.recorded.items() if n not in self.configured}
        folder = os.path.realpath(self.configured[name])
        same = [n for n, f in sorted(unnamed.items()) if os.path.realpath(f) == folder]
        moved = [n for n in sorted(unnamed) if photo_rows.find_by_path(db, n, relpath) is not None
                 and not os.path.lexists(self.resolve(n, relpath))]
        if same or moved:
            what = "is the folder" if same else "holds the photos of the folder"
            other = (same or moved)[0]
            raise ConfigError(f"{self.config}: [libraries] {name} {what} the database has as library {other!r}",
                              hint=f"rename {name} to {other}: a new name would add its photos again")
        close = difflib.get_close_matches(name, sorted(unnamed), n=1, cutoff=0.75)
        if close:
            raise ConfigError(f"{self.config}: [libraries] names {name!r}, which the database does not know, and not"
                              f" {close[0]!r}, which it does: a typo?",
                              hint=f"rename it to {close[0]}, or name {close[0]} too to make {name} a new library")

    def new_name(self, folder: str) -> str:
        """A free name for a library rooted at `folder`: "default" first, else the folder's name."""
        taken = set(self.folders())
        if DEFAULT not in taken:
            return DEFAULT
        base = re.sub(r"[^a-z0-9_-]+", "-", os.path.basename(folder).lower()).strip("-") or "library"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name


def load(settings: Any, db: Any) -> Libraries:
    """The libraries as this host sees them (`db`: a backend or a transaction)."""
    from .storage import libraries as library_rows

    return Libraries(configured(settings), {n: _text(f) for n, f in library_rows.recorded(db).items()},
                     str(settings.config_path or "photojobs.toml"))


def of_app(app: Any) -> Libraries:
    return load(app.settings, app.backend)


def argument_roots(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The folder a new library would be rooted at for each `photos add` argument: the
    folder itself, or a file's folder (symlinks resolved, as the scan gives files)."""
    roots = []
    for p in paths:
        full = os.path.abspath(os.fspath(p))
        roots.append(os.path.realpath(full if os.path.isdir(full) else os.path.dirname(full)))
    return roots


def place_or_adopt(tx: Any, libs: Libraries, path: str, roots: Sequence[str]) -> tuple[str, str | bytes]:
    """(library, stored relative path) for a file `photos add` found: in its library, or,
    without [libraries] in photojobs.toml, in a new one rooted at the outermost argument
    folder that holds it (recorded in `tx`, and in `libs` for the next files)."""
    from .storage import libraries as library_rows

    placed = libs.place(path)
    if placed is not None:
        if placed[0] in libs.configured and placed[0] not in libs.recorded:
            libs.check_new(tx, *placed)
            library_rows.record(tx, placed[0], stored(libs.configured[placed[0]]), time.time())
            libs.recorded[placed[0]] = libs.configured[placed[0]]
        return placed
    if libs.configured:
        raise libs.outside_error(path)
    holding = [r for r in roots if _inside(path, r)] or [os.path.dirname(path)]
    folder = min(holding, key=len)
    name = libs.new_name(folder)
    if not library_rows.record(tx, name, stored(folder), time.time()):  # taken a moment ago: read again
        libs.recorded = {n: _text(f) for n, f in library_rows.recorded(tx).items()}
        return place_or_adopt(tx, libs, path, roots)
    libs.recorded[name] = folder
    placed = libs.place(path)
    assert placed is not None  # noqa: S101 - the folder just recorded holds it
    return placed


def listing(settings: Any, db: Any) -> list[dict[str, Any]]:
    """Every library this host knows: name, folder here, where that comes from, whether
    the folder is there (for a library with photos: and not empty, as a mount point without
    its share is), and its photo count (`photojobs photos libraries`)."""
    from .storage import libraries as library_rows

    libs = load(settings, db)
    counts = library_rows.photo_counts(db)
    names = sorted(set(libs.folders()) | set(counts))
    return [{"name": n, "folder": _shown(libs.folder(n)) if libs.folder(n) else None,
             "source": "photojobs.toml" if n in libs.configured else "database" if n in libs.recorded else None,
             "exists": not libs.unavailable(n) if counts.get(n) else os.path.isdir(libs.folder(n) or ""),
             "photos": counts.get(n, 0)} for n in names]


__all__ = ["DEFAULT", "Libraries", "LibraryUnavailable", "argument_roots", "configured", "default_library_plan",
           "listing", "load", "of_app", "place_or_adopt", "stored"]
