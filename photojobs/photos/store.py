"""The photos table: registering files (`photos add`), listing and showing photos.

A photo is (library, path relative to the library's folder): photojobs.libraries
resolves it to this host's file. The path is stored as TEXT when it is valid UTF-8,
else as a BLOB holding the file name's exact bytes, so a photo named with non-UTF-8
bytes can still be opened. Thumbnail paths are stored relative to the storage root;
`thumbnail_path(settings, photo_row, name)` resolves one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .. import libraries
from ..errors import NotFound, UsageError
from ..storage import photos as photo_rows
from .files import display_path, stat_signature
from .scan import Skipped, scan

if TYPE_CHECKING:
    from ..app import App
    from ..settings import Settings
    from ..storage import Transaction

JOB_NAME = "process_photo"
STATUSES = ("pending", "ready", "failed")
CONTRACT_FIELDS = ("id", "path", "library", "album", "status", "width", "height", "orientation", "size_bytes", "sha256",
                   "mime", "camera_make", "camera_model", "lens", "iso", "exposure_time", "f_number",
                   "focal_length", "taken_at", "gps_lat", "gps_lon", "thumbnails", "processed_at", "error")


def source_path(value: str | bytes) -> str:
    """A stored path back as a str the OS functions accept (surrogate-escaped if needed)."""
    return os.fsdecode(value) if isinstance(value, (bytes, bytearray)) else value


def thumbnail_path(settings: "Settings", photo: Any, name: str) -> Path | None:
    """The absolute path of a photo's thumbnail `name`, or None if it has none."""
    thumbs = json.loads(photo["thumbnails"] or "{}")
    entry = thumbs.get(name)
    return settings.storage_path / entry["path"] if entry else None


@dataclasses.dataclass
class AddResult:
    added: list[int] = dataclasses.field(default_factory=list)
    changed: list[int] = dataclasses.field(default_factory=list)
    unchanged: list[int] = dataclasses.field(default_factory=list)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    queued: int = 0
    batch_id: int | None = None
    moved: dict[tuple[str | None, str], list[int]] = dataclasses.field(default_factory=dict)  # (from, to) -> ids

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for s in self.skipped:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        return {"added": len(self.added), "changed": len(self.changed), "unchanged": len(self.unchanged),
                "skipped": len(self.skipped), "skipped_by_reason": reasons, "queued": self.queued,
                "batch_id": self.batch_id, "photo_ids": self.added + self.changed, "warnings": self.warnings,
                "moved": [{"from": old, "to": new, "count": len(ids), "photo_ids": ids}
                          for (old, new), ids in self.moved.items()],
                "skipped_files": [dataclasses.asdict(s) for s in self.skipped]}


def _register(tx: "Transaction", place: tuple[str, str | bytes], path: str, album: str | None, result: AddResult,
              now: float) -> int | None:
    """Insert or refresh one photo row (`place`: its library and relative path); returns
    its id when it needs processing."""
    try:
        size, mtime_ns = stat_signature(path)
    except OSError as exc:
        result.skipped.append(Skipped(display_path(path), f"unreadable ({exc.strerror})"))
        return None
    row = photo_rows.find_by_path(tx, *place)
    if row is None:
        photo_id = photo_rows.insert(tx, *place, album, size, mtime_ns, now)
        result.added.append(photo_id)
        return photo_id
    photo_id = row["id"]
    if album is not None and album != row["album"]:  # said, not silent: "moved 16 from wedding to orient2"
        photo_rows.set_album(tx, photo_id, album)
        result.moved.setdefault((row["album"], album), []).append(photo_id)
    if (row["size_bytes"], row["mtime_ns"]) == (size, mtime_ns):
        result.unchanged.append(photo_id)
        return None
    photo_rows.mark_changed(tx, photo_id, size, mtime_ns)
    result.changed.append(photo_id)
    return photo_id


def add_photos(app: "App", paths: Sequence[str | os.PathLike], album: str | None = None,
               queue: bool = True) -> AddResult:
    """Register the image files under `paths` and dispatch their processing jobs as one
    batch, all in one transaction. An unchanged file already known is a no-op; a changed
    one (size or mtime) goes back to pending and is processed again. Each file is filed
    under its photo library (photojobs.libraries), made if needed and allowed."""
    if not paths:
        raise UsageError("give at least one file or folder")
    if album is not None and (not album.strip() or any(ord(c) < 32 for c in album)):
        raise UsageError("--album must be a non-empty name without control characters")
    found = _scan(app, paths)
    result = AddResult(skipped=list(found.skipped), warnings=list(found.warnings))
    now = time.time()
    roots = libraries.argument_roots(paths)
    with app.transaction() as tx:
        if album is not None:
            album = find_album(app, album, must_exist=False)  # "wedding" joins an existing "Wedding"
        libs = libraries.load(app.settings, tx)
        places = [libraries.place_or_adopt(tx, libs, p, roots) for p in found.files]  # refused before any write
        todo = [pid for pid in (_register(tx, place, p, album, result, now) for place, p in zip(places, found.files))
                if pid is not None]
        if queue and todo:
            _dispatch(app, tx, todo, result, _batch_name(paths, album))
    return result


def _scan(app: "App", paths: Sequence[str | os.PathLike]) -> Any:
    """`scan`; a path that does not exist inside an unmounted library says so."""
    try:
        return scan(paths)
    except NotFound as exc:
        missing = next((os.path.abspath(p) for p in paths if not os.path.lexists(p)), None)
        libs = libraries.of_app(app) if missing else None
        placed = libs.place(missing) if libs else None
        state = libs.unavailable(placed[0]) if placed else None
        if state:
            exc.hint = f"photo library {placed[0]!r} folder {display_path(libs.folder(placed[0]))} is {state}: not mounted?"
        raise


def _batch_name(paths: Sequence[str | os.PathLike], album: str | None) -> str:
    if album:
        return f"photos add --album {album}"
    first = display_path(os.path.abspath(paths[0]))
    return f"photos add {first}" + (f" (+{len(paths) - 1})" if len(paths) > 1 else "")


def _dispatch(app: "App", tx: "Transaction", photo_ids: list[int], result: AddResult,
              batch: str | None, regenerate: bool = False) -> None:
    from ..app import Dispatch

    payload = (lambda pid: {"photo_id": pid, "regenerate_thumbnails": True}) if regenerate else (
        lambda pid: {"photo_id": pid})
    made = app.dispatch_batch([Dispatch(JOB_NAME, payload(pid)) for pid in photo_ids], batch=batch,
                              skip_duplicates=True)  # a photo with a live job keeps that job
    result.queued += sum(j is not None for j in made.ids)
    if made.batch_id is not None:
        result.batch_id = made.batch_id
        photo_rows.set_batch(tx, made.batch_id, [pid for pid, jid in zip(photo_ids, made.ids) if jid is not None])


def queue_unqueued(app: "App", regenerate: bool = False) -> int:
    """Dispatch a job for every photo that needs one and has no live job: pending photos
    (added with --no-queue), and with `regenerate` the ready ones too (failed photos wait
    for `failed retry` or a changed file). Returns how many."""
    result = AddResult()
    with app.transaction() as tx:
        ids = photo_rows.ids_to_process(tx, regenerate)
        if ids:
            _dispatch(app, tx, ids, result, "process-photos --regenerate-thumbnails" if regenerate else None,
                      regenerate)
    return result.queued


def retry_photos(app: "App", photo_ids: Sequence[int]) -> dict[str, Any]:
    """Queue the photos again by photo id (a failed one, or any to redo it), each as a new
    job; one whose job is pending or running is skipped and said. All ids must exist."""
    ids = list(dict.fromkeys(int(i) for i in photo_ids))
    if not ids:
        raise UsageError("give at least one photo id")
    result = AddResult()
    skipped = []
    with app.transaction() as tx:
        found = photo_rows.states(tx, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no photo with id {missing[0]}", hint="see `photojobs photos list`")
        live = app.backend.jobs_by_unique_key([_unique_key(i) for i in ids], live_only=True)
        todo = []
        for photo_id in ids:
            job = live.get(_unique_key(photo_id))
            if job is not None:
                skipped.append({"id": photo_id, "reason": f"job {job[0]} for it is pending or running already"})
            else:
                todo.append(photo_id)
        if todo:
            photo_rows.mark_pending(tx, todo)
            _dispatch(app, tx, todo, result, None)
    return {"queued": todo, "skipped": skipped}


def mark_failed(app: "App", photo_id: int, reason: str) -> None:
    """The failure handler's write: the photo is failed, with the reason a user can read."""
    with app.transaction() as tx:
        photo_rows.mark_failed(tx, photo_id, reason[:2000], time.time())


# -- reading -----------------------------------------------------------------------------------

def _thumbnails_view(settings: "Settings", raw: str | None) -> dict[str, dict]:
    thumbs = json.loads(raw or "{}")
    return {name: {"path": str(settings.storage_path / t["path"]), "width": t["width"], "height": t["height"]}
            for name, t in thumbs.items()}


def photo_view(settings: "Settings", row: Any, full: bool = True,
               libs: libraries.Libraries | None = None) -> dict[str, Any]:
    """A photo as `photos show --json` prints it (the CLI contract's fields, and more):
    its path resolved on this host (through `libs`), its library, its path in it."""
    out: dict[str, Any] = {}
    for field in CONTRACT_FIELDS:
        if field == "path":
            out["path"] = _shown_path(libs, row)
        elif field == "thumbnails":
            out["thumbnails"] = _thumbnails_view(settings, row["thumbnails"])
        else:
            out[field] = row[field]
    out["processed_at"] = _iso(row["processed_at"])
    if full:
        out["library_path"] = display_path(source_path(row["path"]))
        out["created_at"] = _iso(row["created_at"])
        out["batch_id"] = row["batch_id"]
        out["warnings"] = json.loads(row["warnings"] or "[]")
        out["exif"] = json.loads(row["exif"] or "{}")
    return out


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def albums(app: "App") -> list[str]:
    """The album names in use, sorted."""
    return photo_rows.albums(app.backend)


def find_album(app: "App", name: str, must_exist: bool = True) -> str:
    """An album's name as first written: albums match ignoring case ("wedding" is "Wedding").
    An unknown name is a NotFound naming the albums there are, unless `must_exist` is False."""
    wanted = name.strip().casefold()
    known = albums(app)
    for album in known:
        if album.casefold() == wanted:
            return album
    if not must_exist:
        return name.strip()
    import difflib

    folded = {album.casefold(): album for album in known}
    close = difflib.get_close_matches(wanted, list(folded), n=1)
    guess = f": did you mean {folded[close[0]]!r}?" if close else ""
    listed = ", ".join(repr(a) for a in known[:20]) + (", ..." if len(known) > 20 else "")
    raise NotFound(f"no album {name!r}{guess}", hint=f"albums: {listed or 'none yet'}")


def get_photo(app: "App", photo_id: int) -> dict[str, Any]:
    row = photo_rows.get(app.backend, photo_id)
    if row is None:
        raise NotFound(f"no photo with id {photo_id}", hint="see `photojobs photos list`")
    return photo_view(app.settings, row, libs=libraries.of_app(app))


def list_photos(app: "App", album: str | None = None, status: str | None = None,
                limit: int | None = None, after: int | None = None) -> list[dict[str, Any]]:
    """Photos oldest first (of `album`, in `status`, at most `limit`, with an id above `after`)."""
    return [photo for page in photo_pages(app, album, status, limit, after) for photo in page]


def photo_pages(app: "App", album: str | None = None, status: str | None = None, limit: int | None = None,
                after: int | None = None, page: int = 1000,
                fields: Sequence[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """`list_photos` a page at a time (each page its own short read), for a caller that
    writes each page out before reading the next. With `fields` (of CONTRACT_FIELDS), each
    photo has only those (and its last job): what a table shows, read and built faster."""
    album, status = _filters(app, album, status)
    columns = CONTRACT_FIELDS if fields is None else tuple(dict.fromkeys(("id", *fields)))
    if "path" in columns and "library" not in columns:
        columns = (*columns, "library")
    libs = libraries.of_app(app)
    left = limit
    while left is None or left > 0:
        size = min(page, left) if left is not None else page
        rows = photo_rows.listed(app.backend, album, status, size, after, columns=columns)
        if not rows:
            return
        jobs = app.backend.jobs_by_unique_key([_unique_key(r["id"]) for r in rows])
        yield [{**(photo_view(app.settings, r, False, libs) if fields is None else _brief_view(r, columns, libs)),
                "last_job_id": jobs.get(_unique_key(r["id"]), (None, None))[0],
                "last_job_status": jobs.get(_unique_key(r["id"]), (None, None))[1]} for r in rows]
        if len(rows) < size:
            return
        after = rows[-1]["id"]
        left = left - len(rows) if left is not None else None


def _brief_view(row: Any, columns: Sequence[str], libs: libraries.Libraries) -> dict[str, Any]:
    view = {column: row[column] for column in columns}
    if "path" in view:
        view["path"] = _shown_path(libs, row)
    return view


def _shown_path(libs: libraries.Libraries | None, row: Any) -> str:
    """A photo's file on this host, as text (its library-relative path without `libs`)."""
    path = source_path(row["path"]) if libs is None else libs.resolve(row["library"], row["path"])
    return display_path(path)


def count_photos(app: "App", album: str | None = None, status: str | None = None, after: int | None = None) -> int:
    """How many photos `list_photos` gives without a limit."""
    return photo_rows.count_listed(app.backend, *_filters(app, album, status), after)


def _filters(app: "App", album: str | None, status: str | None) -> tuple[str | None, str | None]:
    """The album as first written (matched ignoring case) and a checked status."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    return (find_album(app, album) if album is not None else None), status


def _unique_key(photo_id: int) -> str:
    """The unique key of a photo's processing job (jobs/photos.py gives it)."""
    return f"photo:{photo_id}"


def counts(app: "App", ids: Iterable[int] | None = None) -> dict[str, int]:
    """Photos per status (all, or among `ids`)."""
    return photo_rows.counts(app.backend, None if ids is None else list(ids))
