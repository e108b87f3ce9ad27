"""CLI commands: `orders create|list|show`, `downloads create|list|show`, `build-archive`,
`cleanup-downloads` and `demo`."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from . import _common

orders_app = typer.Typer(help="Customers' orders of photos.", no_args_is_help=True)
downloads_app = typer.Typer(help="Download links: a ZIP of an order's photos.", no_args_is_help=True)

ORDER_COLUMNS = ("id", "email", "name", "photo_count", "download", "created_at")
DOWNLOAD_COLUMNS = ("id", "order_id", "status", "file_count", "size", "expires_at", "url", "error")


def _human_bytes(value: Optional[int]) -> Optional[str]:
    if value is None:
        return None
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return None


@orders_app.command("create")
def orders_create(
    email: Annotated[str, typer.Option("--email", help="The customer's email address.")],
    name: Annotated[Optional[str], typer.Option("--name", help="The customer's name.")] = None,
    photo: Annotated[Optional[List[int]], typer.Option("--photo", help="A photo id; repeat, in the order wanted.")] = None,
    album: Annotated[Optional[str], typer.Option("--album", help="Every photo of this album instead.")] = None,
    notify: Annotated[bool, typer.Option("--notify", help="Queue the order-confirmation mail to the customer.")] = False,
    json_out: _common.JsonOption = False,
) -> None:
    """Create an order for some photos (in the order given) or for a whole album."""
    from photojobs.orders import create_order

    with _common.open_app() as app:
        order = create_order(app, email, name=name, photo_ids=photo or None, album=album, notify=notify)
    if _common.wants_json(json_out):
        _common.print_json(order)
    else:
        mailed = f" Order-confirmation mail {order['confirmation_mail']} queued." if notify else ""
        _common.say(f"Order {order['id']} for {order['email']}: {order['photo_count']} photo(s).{mailed}"
                    f" Next: `photojobs downloads create {order['id']}`")


@orders_app.command("list")
def orders_list(
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """List orders, newest first."""
    from photojobs.orders import list_orders

    with _common.open_app() as app:
        rows = list_orders(app, limit=limit)
    if _common.wants_json(json_out):
        _common.print_json(rows)
    else:
        _common.table(rows, ORDER_COLUMNS, empty="No orders.")


@orders_app.command("show")
def orders_show(
    order_id: Annotated[int, typer.Argument(help="Order id (see `orders list`).")],
    json_out: _common.JsonOption = False,
) -> None:
    """Show one order: customer, photos in order, downloads."""
    from photojobs.orders import show_order

    with _common.open_app() as app:
        order = show_order(app, order_id)
    if not _common.wants_json(json_out):
        order["photos"] = ", ".join(f"{p['position']}: #{p['photo_id']} {p['file']}" for p in order["photos"])
        order["downloads"] = ", ".join(f"#{d['id']} {d['status']}" for d in order["downloads"]) or None
    _common.show(order, json_out)


@downloads_app.command("create")
def downloads_create(
    order_id: Annotated[int, typer.Argument(help="The order to make a download of.")],
    expires_days: Annotated[Optional[float], typer.Option("--expires-days", help="Days the link works"
                                                          " (default: [downloads] expires_days, else 7).")] = None,
    notify: Annotated[bool, typer.Option("--notify", help="Mail the customer the link once the archive is ready.")] = False,
    conversion: Annotated[Optional[str], typer.Option("--conversion", help="Archive this thumbnail conversion"
                                                      " (e.g. web) instead of the originals.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Create a download link for an order and queue its archive (one transaction)."""
    from photojobs.archives.downloads import create_download

    with _common.open_app() as app:
        download = create_download(app, order_id, expires_days=expires_days, notify=notify, conversion=conversion)
    if _common.wants_json(json_out):
        _common.print_json(download)
    else:
        _common.say(f"Download {download['id']} queued (expires {download['expires_at']}): {download['url']}\n"
                    "Build it with `photojobs build-archive`.")


def _download_row(d: dict) -> dict:
    return {**d, "size": _human_bytes(d["size_bytes"])}


@downloads_app.command("list")
def downloads_list(
    order: Annotated[Optional[int], typer.Option("--order", help="Only this order's downloads.")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="pending, ready, failed or expired.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """List downloads, newest first."""
    from photojobs.archives.downloads import list_downloads

    with _common.open_app() as app:
        rows = list_downloads(app, order_id=order, status=status, limit=limit)
    if _common.wants_json(json_out):
        _common.print_json(rows)
    else:
        _common.table([_download_row(r) for r in rows], DOWNLOAD_COLUMNS, empty="No downloads.")


@downloads_app.command("show")
def downloads_show(
    download_id: Annotated[int, typer.Argument(help="Download id (see `downloads list`).")],
    json_out: _common.JsonOption = False,
) -> None:
    """Show one download: status, file, size, expiry, URL, error."""
    from photojobs.archives.downloads import show_download

    with _common.open_app() as app:
        download = show_download(app, download_id)
    _common.show(download, json_out)


def build_archive(
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Stop after this many archives.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Keep waiting for new downloads.")] = False,
    max_time: _common.MaxTimeOption = None,
) -> None:
    """Build queued download archives with a progress bar in bytes; exit 1 if one failed."""
    from photojobs.archives.downloads import ArchiveProgress

    measure = None
    if not loop:
        with _common.open_app() as app:
            measure = ArchiveProgress(app)
    _common.drain("downloads", limit=limit, loop=loop, noun="archives", measure=measure, max_time=max_time)


def cleanup_downloads(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be deleted.")] = False,
    max_time: _common.MaxTimeOption = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Delete expired downloads' files, orphan files and stale temp files; report what was freed."""
    from photojobs.archives.cleanup import cleanup_downloads as run

    with _common.open_app() as app, _common.cron_lock(app, "cleanup-downloads", "cleanup-downloads",
                                                      enabled=not dry_run):
        report = run(app, dry_run=dry_run, max_time=max_time)
    if _common.wants_json(json_out):
        _common.print_json(report)
        return
    verb = "Would free" if dry_run else "Freed"
    _common.say(f"{verb} {_human_bytes(report['freed_bytes'])}: {len(report['expired'])} expired download(s),"
                f" {len(report['orphans'])} orphan file(s), {len(report['temp_files'])} temp file(s);"
                f" {report['kept_files']} file(s) kept."
                + (" Stopped at --max-time: the next run goes on." if report["stopped_early"] else ""))


def demo(
    folder: Annotated[Optional[str], typer.Argument(help="Workspace folder (default: ./photojobs-demo).")] = None,
    photos: Annotated[int, typer.Option("--photos", min=1, max=200, help="Sample photos to generate.")] = 12,
    db: Annotated[Optional[str], typer.Option("--db", help="A postgresql:// URL (default: SQLite in the folder).")] = None,
) -> None:
    """Run the whole pipeline on generated sample photos in a fresh workspace, and say where to look."""
    from photojobs.demo import run_demo

    run_demo(folder or "photojobs-demo", photos=photos, say=_common.say, db=db or _common.STATE.db)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(orders_app, name="orders")
    app.add_typer(downloads_app, name="downloads")
    app.command("build-archive")(build_archive)
    app.command("cleanup-downloads")(cleanup_downloads)
    app.command("demo")(demo)
