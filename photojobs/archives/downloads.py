"""Downloads: a ZIP of an order's photos behind an unguessable link that expires.

`create_download` writes the download row (pending, a 256-bit token, an expiry, the URL)
and dispatches its `build_archive` job in the same transaction. `build_download` is the
job's body: the archive is streamed to a temp file in storage/downloads, verified and
renamed, then the row is marked ready (and the download-ready mail queued, if asked)
in one transaction, so a retry after a crash neither rebuilds a ready archive nor mails
twice.

Settings (photojobs.toml), all optional:

    [downloads]
    expires_days = 7        # how long a link works
    conversion = "web"      # archive this thumbnail conversion by default (--conversion
                            #   overrides it); without it, the original files
    grace_seconds = 3600    # cleanup-downloads leaves younger stray files alone (cleanup.py)

`parse_downloads` reads the table once, at load (settings.SECTIONS): `settings.downloads`.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ConfigError, LeaseLost, NotFound, PermanentFailure, RetryLater, UsageError
from ..settings import check_keys, check_number
from ..storage import downloads as download_rows
from ..storage import orders as order_rows
from .views import archive_path, download_url, download_view, effective_status  # noqa: F401 - importable from here too

if TYPE_CHECKING:
    from ..app import App
    from ..settings import Settings

log = logging.getLogger("photojobs.archives")

JOB_NAME = "build_archive"
STATUSES = ("pending", "ready", "failed", "expired")
DEFAULT_EXPIRES_DAYS = 7.0
MIN_EXPIRES_DAYS = 1 / 1440  # a minute
MAX_EXPIRES_DAYS = 3650
DEFAULT_GRACE_SECONDS = 3600.0
DISK_FULL_RETRY_DELAY = 60.0
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
CONTRACT_FIELDS = ("id", "order_id", "status", "path", "size_bytes", "file_count", "expires_at", "url", "error")


def downloads_folder(settings: "Settings") -> Path:
    return settings.storage_path / "downloads"


def archive_name(download_id: int, order_id: int) -> str:
    return f"order-{int(order_id)}-download-{int(download_id)}.zip"


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    expires_days: float = DEFAULT_EXPIRES_DAYS
    conversion: str | None = None  # the thumbnail conversion archived when none is given
    grace_seconds: float = DEFAULT_GRACE_SECONDS


def parse_downloads(table: Mapping[str, Any], settings: "Settings", env: Any = None) -> DownloadSettings:
    """The [downloads] table (settings.SECTIONS); after [thumbnails], whose conversion names
    `conversion` must be one of."""
    check_keys(table, {"expires_days", "conversion", "grace_seconds"}, "[downloads]")
    expires_days = check_number(table.get("expires_days", DEFAULT_EXPIRES_DAYS), "expires_days", "[downloads]",
                                MIN_EXPIRES_DAYS, MAX_EXPIRES_DAYS)
    grace = check_number(table.get("grace_seconds", DEFAULT_GRACE_SECONDS), "grace_seconds", "[downloads]")
    conversion = table.get("conversion")
    names = _conversion_names(settings)
    if conversion is not None and conversion not in names:
        raise ConfigError(f"[downloads] conversion must be a thumbnail conversion ({', '.join(names)}),"
                          f" not {conversion!r}")
    return DownloadSettings(expires_days, conversion, grace)


def _conversion_names(settings: "Settings") -> list[str]:
    return [c.name for c in settings.thumbnails.conversions]


def _check_conversion(settings: "Settings", conversion: str | None) -> None:
    if conversion is None:
        return
    names = _conversion_names(settings)
    if conversion not in names:
        raise UsageError(f"--conversion {conversion!r} is not a thumbnail conversion (known: {', '.join(names)})")


def create_download(app: "App", order_id: int, *, expires_days: float | None = None, notify: bool = False,
                    conversion: str | None = None) -> dict[str, Any]:
    """Create a pending download for `order_id` and queue its archive, in one transaction."""
    import secrets  # here: every command's settings load imports this module ([downloads]), few make a token

    from ..orders import get_order_row

    days = app.settings.downloads.expires_days if expires_days is None else expires_days
    if not 0 < days <= MAX_EXPIRES_DAYS:
        raise UsageError(f"--expires-days must be more than 0 and at most {MAX_EXPIRES_DAYS}")
    if conversion is None:
        conversion = app.settings.downloads.conversion
    _check_conversion(app.settings, conversion)
    now = time.time()
    with app.transaction() as tx:
        get_order_row(app, order_id)
        if not order_rows.has_photos(tx, order_id):
            raise UsageError(f"order {order_id} has no photos")
        download_id = download_rows.insert(tx, order_id, secrets.token_urlsafe(32), conversion, now + days * 86400,
                                           now, notify)
        app.dispatch(JOB_NAME, {"download_id": download_id})
    return show_download(app, download_id)


# -- reading ---------------------------------------------------------------------------------

def servable_download(app: "App", token: str) -> Path | None:
    """The archive behind a download link if the link works now (ready, not expired, its
    file there), else None: the web route that serves <base_url>/downloads/<token> answers
    404. Expiry is checked here, when served; cleanup only collects the files later."""
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        return None
    row = download_rows.by_token(app.backend, token)
    if row is None or effective_status(row, time.time()) != "ready" or not row["path"]:
        return None
    path = archive_path(app.settings, row)
    return path if path is not None and path.is_file() else None


def _row(app: "App", download_id: int) -> Any:
    row = download_rows.get(app.backend, download_id)
    if row is None:
        raise NotFound(f"no download with id {download_id}", hint="see `photojobs downloads list`")
    return row


def show_download(app: "App", download_id: int) -> dict[str, Any]:
    return download_view(app.settings, _row(app, download_id))


def list_downloads(app: "App", *, order_id: int | None = None, status: str | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
    """Downloads, newest first (of one order, or in one status)."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    now = time.time()
    rows = download_rows.listed(app.backend, order_id, status, limit, now=now)  # status as effective_status says
    return [download_view(app.settings, r, now) for r in rows]


# -- building (the build_archive job's body) ---------------------------------------------------

def _members(app: "App", download: Any) -> list[Any]:
    """The archive's members: each photo's original (or conversion), named for the order.
    An original must still be the regular file processing recorded (size and mtime)."""
    from ..libraries import of_app
    from ..photos.store import thumbnail_path
    from .names import member_names, split_extension
    from ..orders import order_photos
    from .zipwriter import Member

    sources, originals = [], []
    libs = of_app(app)
    for photo in order_photos(app, download["order_id"]):
        original = libs.resolve(photo["library"], photo["path"])
        name = os.path.basename(original)
        source: Any = original
        recorded = (photo["size_bytes"], photo["mtime_ns"])
        expected = recorded if None not in recorded else None
        if download["conversion"]:
            source = thumbnail_path(app.settings, photo, download["conversion"])
            if source is None:
                state = "is not processed yet" if photo["status"] == "pending" else f"has no {download['conversion']!r} conversion"
                raise (RetryLater if photo["status"] == "pending" else PermanentFailure)(f"photo {photo['id']} {state}")
            name = split_extension(name)[0] + f"-{download['conversion']}" + split_extension(source.name)[1]
            expected = None
        if source is original:
            libs.require(photo["library"], photo["path"])  # an unmounted library: retry later
        _check_source(photo["id"], source, expected)
        sources.append((source, expected, f"photo {photo['id']}"))
        originals.append(name)
    if not sources:
        raise PermanentFailure(f"order {download['order_id']} has no photos")
    return [Member(n, Path(s), expected, label)
            for n, (s, expected, label) in zip(member_names(download["order_id"], originals), sources)]


def _check_source(photo_id: int, source: Any, expected: tuple[int, int] | None) -> None:
    """Fail early if a photo's file is gone, is no longer a regular file, or differs from
    what was processed (the writer checks again on the opened file)."""
    import stat

    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise PermanentFailure(f"photo {photo_id} is missing on disk: {_shown(source)}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else (
            "a folder" if stat.S_ISDIR(info.st_mode) else "something else")
        raise changed_photo(f"photo {photo_id}", f"{_shown(source)} is not a regular file: it is {kind}")
    if expected is not None and (info.st_size, info.st_mtime_ns) != expected:
        raise changed_photo(f"photo {photo_id}", f"{_shown(source)} has other size or modification time")


def changed_photo(label: str, detail: str) -> PermanentFailure:
    return PermanentFailure(f"{label} changed since it was processed: run photos add again ({detail})")


def _shown(path: Any) -> str:
    from ..photos.files import display_path

    return display_path(path)


LeaseCheck = Callable[[], bool]  # True while this attempt holds its job; asked inside a transaction


def _lease_lost(download_id: int) -> LeaseLost:
    return LeaseLost(f"download {download_id}: this worker lost its lease on the job; its archive was discarded"
                     " (another attempt owns the download)")


def build_download(app: "App", download_id: int, progress: Callable[[int], None] | None = None, *,
                   holds_lease: LeaseCheck | None = None, attempt: tuple[int, int] | None = None) -> dict[str, Any]:
    """Build the download's archive and mark it ready; a no-op if it is ready already.

    From a job, `holds_lease` fences the attempt: the archive is renamed into place and
    marked ready only in a transaction where it still holds the job; otherwise it is
    discarded (LeaseLost) and nothing another attempt made is touched. `attempt` (job id,
    attempt) names the temp file, so an attempt removes only earlier attempts' leftovers.
    """
    from .zipwriter import remove_temp_files, write_archive

    if holds_lease is not None and not holds_lease():  # woken after the lease ran out: someone else's now
        raise _lease_lost(download_id)
    download = _row(app, download_id)
    dest = downloads_folder(app.settings) / archive_name(download_id, download["order_id"])
    built = archive_path(app.settings, download)
    if download["status"] == "ready" and built is not None and built.is_file():
        return download_view(app.settings, download)
    if download["status"] == "expired" or (download["expires_at"] or float("inf")) <= time.time():
        _mark_expired(app, download_id)
        log.info("download %s has expired; not building it", download_id)
        return show_download(app, download_id)
    if download["status"] != "pending":  # failed, and retried from the failed table: try again
        with app.transaction() as tx:
            if holds_lease is not None and not holds_lease():
                raise _lease_lost(download_id)
            download_rows.set_status(tx, download_id, "pending", clear_error=True)
        download = _row(app, download_id)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_temp_files(dest.parent, [dest.name], before=attempt)  # left by earlier attempts (killed or stale)
    members = _members(app, download)
    published: list[bool] = []

    def publish(temp: Path, result: Any) -> None:
        published.append(_publish(app, download, temp, result, holds_lease))

    try:
        write_archive(members, dest, progress=progress, attempt=attempt, publish=publish)
    except LeaseLost:
        raise
    except Exception as exc:
        if holds_lease is not None and not holds_lease():  # whatever went wrong, it is not ours to report
            raise _lease_lost(download_id) from exc
        raise _build_failure(exc, members, dest) from exc
    if not published[0]:
        log.info("download %s was expired or failed meanwhile; its archive was discarded", download_id)
    return show_download(app, download_id)


def _build_failure(exc: Exception, members: list[Any], dest: Path) -> Exception:
    """The job's error for what stopped the writer."""
    from ..photos.files import NotRegularFile
    from .zipwriter import SourceChanged, SourceMismatch

    if isinstance(exc, SourceMismatch):
        return changed_photo(exc.member.label or "a photo", f"{_shown(exc.filename)} {exc.strerror}")
    if isinstance(exc, NotRegularFile):
        label = next((m.label for m in members if str(m.source) == exc.filename), None)
        detail = f"{_shown(exc.filename)} is not a regular file: it {exc.strerror}"
        return changed_photo(label, detail) if label else PermanentFailure(detail)
    if isinstance(exc, SourceChanged):
        return RetryLater(f"a photo changed while it was archived: {_shown(exc.filename)}", delay=5)
    if isinstance(exc, FileNotFoundError):
        return PermanentFailure(f"a photo is missing on disk: {_shown(exc.filename or '?')}")
    if isinstance(exc, (IsADirectoryError, PermissionError)):
        return PermanentFailure(f"cannot read {_shown(exc.filename or '?')}: {exc.strerror}")
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return RetryLater(f"the disk is full writing the archive in {dest.parent}: {exc.strerror}",
                          delay=DISK_FULL_RETRY_DELAY)
    return exc


def _publish(app: "App", download: Any, temp: Path, result: Any, holds_lease: LeaseCheck | None) -> bool:
    """Rename the archive into place and mark the download ready (and queue the download-ready
    mail if asked), in one transaction that first checks the lease: a stale attempt raises
    LeaseLost before touching the final file. False (temp removed) if the download is no
    longer pending (expired or failed meanwhile): the final file is left alone then too."""
    from .zipwriter import install

    with app.transaction() as tx:
        if holds_lease is not None and not holds_lease():
            raise _lease_lost(download["id"])
        current = download_rows.get(tx, download["id"])
        if current is None or current["status"] != "pending":
            os.unlink(temp)
            return False
        install(temp, result)
        stored = os.path.relpath(result.path, app.settings.storage_path)  # relative to the storage root
        download_rows.mark_ready(tx, download["id"], stored, result.size_bytes, result.file_count,
                                 result.sha256, time.time())
        if download["notify"]:
            _queue_ready_mail(app, tx, download)
    return True


def _queue_ready_mail(app: "App", tx: Any, download: Any) -> None:
    """Queue the download-ready mail. If the mail set-up refuses it (a template or config
    error), the archive is still good: it stays ready, with the reason in its error."""
    from ..errors import PhotojobsError
    from ..mail import queue_mail

    email = order_rows.get(tx, download["order_id"])["email"]
    try:
        with tx.savepoint():
            queue_mail(app, "download-ready", email, order_id=download["order_id"], download_id=download["id"])
    except PhotojobsError as exc:
        download_rows.note_error(tx, download["id"], f"ready, but the download-ready mail could not be queued: {exc}"[:2000],
                                 only_pending=False)
        log.warning("download %s: the download-ready mail could not be queued: %s", download["id"], exc)


def _mark_expired(app: "App", download_id: int) -> None:
    with app.transaction() as tx:
        download_rows.set_status(tx, download_id, "expired", only_if=[s for s in STATUSES if s != "expired"])


def note_attempt_error(app: "App", download_id: int, reason: str, *, holds_lease: LeaseCheck | None = None) -> None:
    """A pending download shows why its last attempt failed while it waits for a retry."""
    with app.transaction() as tx:
        if holds_lease is not None and not holds_lease():
            return
        download_rows.note_error(tx, download_id, reason[:2000])


def mark_failed(app: "App", download_id: int, reason: str) -> None:
    """The failure handler's write: failed, with a reason a user can read; no temp file left."""
    from .zipwriter import remove_temp_files

    with app.transaction() as tx:
        order_id = download_rows.fail_pending(tx, download_id, reason[:2000])
    if order_id is not None:
        remove_temp_files(downloads_folder(app.settings), [archive_name(download_id, order_id)])


class ArchiveProgress:
    """`measure(app) -> (bytes done, bytes total)` for the build-archive progress bar: the
    source bytes of the downloads pending when it started, against what is archived so far
    (finished downloads, plus the temp files being written)."""

    unit = "bytes"

    def __init__(self, app: "App"):
        self.sizes: dict[int, int] = {}
        for download_id in download_rows.pending_ids(app.backend):
            self.sizes[download_id] = self._source_bytes(app, download_id)
        self.total = sum(self.sizes.values())

    @staticmethod
    def _source_bytes(app: "App", download_id: int) -> int:
        download = _row(app, download_id)
        try:
            return sum(m.source.stat().st_size for m in _members(app, download))
        except (OSError, PermanentFailure, RetryLater):
            return 0

    def __call__(self, app: "App") -> tuple[int, int]:
        if not self.sizes:
            return 0, 0
        finished = download_rows.finished_among(app.backend, list(self.sizes))
        done = sum(size for i, size in self.sizes.items() if i in finished)
        try:
            with os.scandir(downloads_folder(app.settings)) as entries:
                done += sum(e.stat().st_size for e in entries if e.name.endswith(".tmp") and e.is_file())
        except OSError:
            pass
        return min(done, self.total), self.total


__all__ = ["create_download", "show_download", "list_downloads", "build_download", "mark_failed",
           "note_attempt_error", "ArchiveProgress", "download_url", "downloads_folder", "archive_name"]
