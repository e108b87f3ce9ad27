"""CLI commands: `photos add|list|show|retry|libraries` and `process-photos`."""

from __future__ import annotations

import sys
from typing import Annotated, List, Optional

import typer

from . import _common

photos_app = typer.Typer(help="Register photos and look at them.", no_args_is_help=True)

LIST_COLUMNS = ("id", "status", "album", "size", "taken_at", "camera", "file", "job", "error")
TABLE_FIELDS = ("status", "album", "width", "height", "taken_at", "camera_model", "path", "error")  # what _table_row reads
TERMINAL_PAGE = 100  # rows a terminal gets at once: rich lays out a table in ~1.5 ms a row


def _table_row(photo: dict) -> dict:
    """A photo squeezed for a terminal table; --json keeps every field."""
    import os

    size = f"{photo['width']}x{photo['height']}" if photo["width"] else None
    error = photo["error"]
    if error and len(error) > 60 and sys.stdout.isatty():  # piped, every value is printed whole
        error = error[:57] + "..."
    return {"id": photo["id"], "status": photo["status"], "album": photo["album"], "size": size,
            "taken_at": (photo["taken_at"] or "")[:16].replace("T", " ") or None,
            "camera": photo["camera_model"], "file": os.path.basename(photo["path"]),
            "job": photo["last_job_id"], "error": error}


@photos_app.command("add")
def add(
    paths: Annotated[List[str], typer.Argument(help="Image files or folders (walked recursively).")],
    album: Annotated[Optional[str], typer.Option("--album", help="Album name for these photos.")] = None,
    no_queue: Annotated[bool, typer.Option("--no-queue", help="Register only; `process-photos` queues them later.")] = False,
    json_out: _common.JsonOption = False,
) -> None:
    """Register image files and queue their processing, in one transaction, as one batch."""
    from photojobs.photos.store import add_photos

    with _common.open_app() as app:
        result = add_photos(app, paths, album=album, queue=not no_queue).summary()
    if _common.wants_json(json_out):
        _common.print_json(result)
        return
    reasons = ", ".join(f"{n} {r}" for r, n in result["skipped_by_reason"].items())
    _common.say(f"Added {result['added']}, changed {result['changed']}, unchanged {result['unchanged']},"
                f" skipped {result['skipped']}" + (f" ({reasons})" if reasons else "")
                + (f"; queued {result['queued']} (batch {result['batch_id']})" if result["queued"] else ""))
    for warning in result["warnings"]:
        _common.say(warning)
    if _common.STATE.verbose and not _common.STATE.quiet:  # plain lines: a path is never markup, never cut
        for skipped in result["skipped_files"]:
            sys.stdout.write(f"  skipped {skipped['path']}: {skipped['reason']}\n")
    for move in result["moved"]:
        _common.say(f"Moved {move['count']} from {move['from'] or '(no album)'} to {move['to']}")


@photos_app.command("list")
def list_(
    album: Annotated[Optional[str], typer.Option("--album", help="Only this album.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="Only pending, ready or failed photos.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many.")] = None,
    after: Annotated[Optional[int], typer.Option("--after", min=0, help="Only photos with a higher id (the next page).")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """List photos, oldest first: a page of 100 on a terminal; piped or with --json, all of them."""
    from photojobs.photos.store import count_photos, list_photos, photo_pages

    with _common.open_app() as app:
        if _common.wants_json(json_out):
            _common.print_json(list_photos(app, album=album, status=status, limit=limit, after=after))
        elif not sys.stdout.isatty():
            pages = photo_pages(app, album=album, status=status, limit=limit, after=after, fields=TABLE_FIELDS)
            _common.stream_lines(([_table_row(r) for r in page] for page in pages), LIST_COLUMNS, empty="No photos.")
        else:
            rows = list_photos(app, album=album, status=status, limit=limit or TERMINAL_PAGE, after=after)
            _common.table([_table_row(r) for r in rows], LIST_COLUMNS, empty="No photos.")
            left = count_photos(app, album=album, status=status, after=after) if rows else 0
            if len(rows) < left:
                _common.say(f"{len(rows)} of {left} shown; the next page: --after {rows[-1]['id']}"
                            " (piped or with --json, every photo is listed)")


@photos_app.command("show")
def show(
    photo_id: Annotated[int, typer.Argument(help="Photo id (see `photos list`).")],
    json_out: _common.JsonOption = False,
) -> None:
    """Show one photo: file facts, EXIF, thumbnails, status."""
    from photojobs.photos.store import get_photo

    with _common.open_app() as app:
        photo = get_photo(app, photo_id)
    if not _common.wants_json(json_out):
        photo["exif"] = f"{len(photo['exif'])} tags (see --json)"
    _common.show(photo, json_out)


@photos_app.command("retry")
def retry(
    photo_ids: Annotated[List[int], typer.Argument(metavar="ID...", help="Photo ids (see `photos list`).")],
    json_out: _common.JsonOption = False,
) -> None:
    """Queue photos again by photo id (a failed one after fixing its file, or to redo one)."""
    from photojobs.photos.store import retry_photos

    with _common.open_app() as app:
        result = retry_photos(app, photo_ids)
    if _common.wants_json(json_out):
        _common.print_json(result)
        return
    if result["queued"]:
        _common.say(f"Queued {len(result['queued'])} photo(s): {', '.join(map(str, result['queued']))};"
                    " run `photojobs process-photos`")
    for skipped in result["skipped"]:
        _common.say(f"Skipped photo {skipped['id']}: {skipped['reason']}")


@photos_app.command("libraries")
def libraries_(json_out: _common.JsonOption = False) -> None:
    """List the photo libraries: each one's folder on this host (from photojobs.toml's
    [libraries], else where it was first seen), whether it is there, and its photos."""
    from photojobs.libraries import listing

    with _common.open_app() as app:
        rows = listing(app.settings, app.backend)
    if _common.wants_json(json_out):
        _common.print_json(rows)
    else:
        _common.table(rows, ("name", "folder", "source", "exists", "photos"), empty="No photo libraries yet.")


def process_photos(
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Stop after this many photos.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Keep waiting for new photos.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Worker processes.")] = 1,
    regenerate_thumbnails: Annotated[bool, typer.Option("--regenerate-thumbnails",
                                                        help="Rebuild every photo's thumbnails.")] = False,
    max_time: _common.MaxTimeOption = None,
) -> None:
    """Process queued photos (EXIF, size, thumbnails) with a progress bar; exit 1 if one failed."""
    from photojobs.photos.store import queue_unqueued

    with _common.open_app() as app:
        queued = queue_unqueued(app, regenerate=regenerate_thumbnails)
    if queued:
        _common.say(f"Queued {queued} photo(s) that had no job.")
    _common.drain("photos", limit=limit, loop=loop, concurrency=concurrency, noun="photos", max_time=max_time)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(photos_app, name="photos")
    app.command("process-photos")(process_photos)
