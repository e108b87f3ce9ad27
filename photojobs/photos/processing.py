"""Processing one photo: file facts, EXIF, displayed size, thumbnails, the row updated.

Idempotent: thumbnails are written to a temp file and renamed, and a conversion whose
fingerprint (source sha256 + its settings) is unchanged and whose file exists is not
made again. A file that can never be processed raises PermanentFailure (no retry); an
I/O error that may pass raises RetryLater.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .. import libraries
from ..atomic import StagedFiles
from ..errors import LeaseLost, PermanentFailure, RetryLater
from ..storage import photos as photo_rows
from . import thumbnails as thumbs_mod
from .exif import read_exif
from .files import classified_io, open_regular_file, read_facts

if TYPE_CHECKING:
    from ..app import App


def thumbnail_folder(photo_id: int, settings: thumbs_mod.ThumbnailSettings) -> Path:
    """A photo's thumbnail folder, relative to the storage root (1000 photos a shard)."""
    return Path(settings.folder) / f"{photo_id // 1000:03d}" / str(photo_id)


def _mime(facts_mime: str | None, image: Any) -> str:
    from PIL import Image

    return facts_mime or Image.MIME.get(image.format or "", "application/octet-stream")


def _stale(settings: thumbs_mod.ThumbnailSettings, storage: Path, sha256: str, old_prints: dict,
           old_thumbs: dict, regenerate: bool) -> set[str]:
    """Names of the conversions to (re)build."""
    stale = set()
    for conversion in settings.conversions:
        entry = old_thumbs.get(conversion.name)
        if (regenerate or entry is None or old_prints.get(conversion.name) != settings.fingerprint(conversion, sha256)
                or not (storage / entry["path"]).is_file()):
            stale.add(conversion.name)
    return stale


def _make_folders(storage: Path, folder: Path, mode: int) -> None:
    """The thumbnail folders from the [thumbnails] folder down to `folder`, each with `mode`
    (set again where an older setting left another)."""
    current = storage
    for part in folder.parts:
        current = current / part
        try:
            current.mkdir(mode)
        except FileExistsError:
            pass
        if current.stat().st_mode & 0o7777 != mode:
            current.chmod(mode)  # mkdir's mode is cut by the umask; an existing folder keeps its own


def _write_thumbnails(made: dict[str, thumbs_mod.Thumbnail], photo_id: int,
                      settings: thumbs_mod.ThumbnailSettings, storage: Path) -> tuple[StagedFiles, dict[str, dict]]:
    """Thumbnails written to temp files (renamed into place by the fenced transaction)."""
    by_name = {c.name: c for c in settings.conversions}
    folder = thumbnail_folder(photo_id, settings)
    relative = {name: folder / f"{name}.{by_name[name].extension}" for name in made}
    try:
        _make_folders(storage, folder, settings.folder_mode)
        staged = StagedFiles.write({storage / relative[name]: thumb.data for name, thumb in made.items()},
                                   settings.file_mode)
    except OSError as exc:
        raise RetryLater(f"cannot write thumbnails in {storage / folder}: {exc.strerror or exc}") from exc
    return staged, {name: {"path": str(relative[name]), "width": thumb.width, "height": thumb.height}
                    for name, thumb in made.items()}


def _remove_dropped(old_thumbs: dict, keep: dict, storage: Path) -> None:
    """Delete thumbnail files no longer part of the photo (a conversion removed or its format changed)."""
    kept_paths = {t["path"] for t in keep.values()}
    for entry in old_thumbs.values():
        if entry.get("path") and entry["path"] not in kept_paths:
            target = storage / entry["path"]
            if storage in target.resolve().parents:
                try:
                    target.unlink()
                except OSError:
                    pass


def process_photo(app: "App", photo_id: int, regenerate: bool = False,
                  holds_lease: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Process one registered photo; returns the fields written.

    From a job, `holds_lease` fences the attempt: its thumbnails are renamed into place
    and the row marked ready only in a transaction where it still holds the job; a stale
    attempt discards them (LeaseLost), so it cannot replace a newer attempt's."""
    row = photo_rows.get(app.backend, photo_id)
    if row is None:
        raise PermanentFailure(f"photo {photo_id} does not exist (removed after it was queued?)")
    path = libraries.of_app(app).require(row["library"], row["path"])  # an unmounted library: retry later
    facts = read_facts(path)
    exif = read_exif(facts.data) if facts.data is not None else _exif_from_file(path)
    settings = app.settings.thumbnails
    source = facts.data if facts.data is not None else path
    with classified_io(path):
        image = thumbs_mod.open_image(source, settings.max_pixels, settings.max_scans)
    storage = app.settings.storage_path
    with image:
        exif = _exif_from_decoder(image, exif)
        orientation = thumbs_mod.pending_orientation(image, exif.orientation)
        width, height = thumbs_mod.displayed_size(image.size, orientation)
        mime = _mime(facts.mime, image)
        old_prints = json.loads(row["fingerprint"] or "{}")
        old_thumbs = json.loads(row["thumbnails"] or "{}")
        stale = _stale(settings, storage, facts.sha256, old_prints, old_thumbs, regenerate)
        with classified_io(path):
            made = thumbs_mod.render(image, orientation, settings, only=stale) if stale else {}
    current = {c.name for c in settings.conversions}
    staged, written = _write_thumbnails(made, photo_id, settings, storage)
    thumbnails = {name: entry for name, entry in old_thumbs.items() if name in current and name not in written}
    thumbnails.update(written)
    prints = {c.name: settings.fingerprint(c, facts.sha256) for c in settings.conversions}
    fields = {
        "status": "ready", "width": width, "height": height, "orientation": exif.orientation,
        "size_bytes": facts.size_bytes, "mtime_ns": facts.mtime_ns, "sha256": facts.sha256, "mime": mime,
        "camera_make": exif.camera_make, "camera_model": exif.camera_model, "lens": exif.lens, "iso": exif.iso,
        "exposure_time": exif.exposure_time, "f_number": exif.f_number, "focal_length": exif.focal_length,
        "taken_at": exif.taken_at, "gps_lat": exif.gps_lat, "gps_lon": exif.gps_lon,
        "exif": json.dumps(exif.tags, ensure_ascii=False), "thumbnails": json.dumps(thumbnails),
        "fingerprint": json.dumps(prints), "warnings": json.dumps(exif.warnings, ensure_ascii=False),
        "processed_at": time.time(), "error": None,
    }
    try:
        with app.transaction() as tx:
            if holds_lease is not None and not holds_lease():
                raise LeaseLost(f"photo {photo_id}: this worker lost its lease on the job; its thumbnails were"
                                " discarded (another attempt owns the photo)")
            updated = photo_rows.save_processed(tx, photo_id, fields)
            if updated:
                try:
                    staged.install()
                except OSError as exc:
                    raise RetryLater(f"cannot write thumbnails in {storage}: {exc.strerror or exc}") from exc
    finally:
        staged.discard()  # a no-op once installed
    if not updated:
        raise PermanentFailure(f"photo {photo_id} was removed while it was processed")
    _remove_dropped(old_thumbs, thumbnails, storage)
    fields["rebuilt"] = sorted(written)
    return fields


def _exif_from_decoder(image: Any, exif: Any) -> Any:
    """The EXIF pillow-heif found, where exifread found none: exifread misses the EXIF of
    HEIF files that libheif wrote (it ignores the item locations' base offset).
    pillow-heif resets the orientation in its copy to 1 and keeps the file's aside."""
    raw = image.info.get("exif")
    if image.format not in thumbs_mod.DECODER_ORIENTED or exif.tags or not isinstance(raw, bytes):
        return exif
    found = read_exif(raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
    if not found.tags:
        return exif
    original = image.info.get("original_orientation")
    found.orientation = original if isinstance(original, int) and 1 <= original <= 8 else found.orientation
    return found


def _exif_from_file(path: str) -> Any:
    with classified_io(path), open_regular_file(path) as f:
        return read_exif(f)


__all__ = ["process_photo", "thumbnail_folder"]
