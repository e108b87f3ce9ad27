"""`photojobs demo [DIR]`: the whole pipeline on generated sample photos, in a fresh
workspace (on SQLite, or the PostgreSQL database given): photos added and processed (EXIF, thumbnails), an order, its
download archive built, the order-confirmation and download-ready mails written as .eml
files. Then it says what happened and where to look.

    from photojobs.demo import run_demo
    summary = run_demo("photojobs-demo", photos=12)
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

MARKER = ".photojobs-demo"
SAMPLE_SIZE = (2000, 1333)
CUSTOMER = ("ada@example.com", "Ada Lovelace")
ALBUM = "Demo wedding"
MAIL_CONFIG = """
[mail]
transport = "file"   # each message is written to storage/mail/*.eml instead of sent
from = "Demo Studio <studio@example.com>"
"""


def _fresh_workspace(folder: Path) -> None:
    """Create `folder`; a previous demo's folder (it has the marker file) is replaced, any
    other non-empty folder is refused."""
    if folder.exists():
        if (folder / MARKER).is_file():
            shutil.rmtree(folder)
        elif not folder.is_dir() or any(folder.iterdir()):
            raise UsageError(f"{folder} exists and is not an empty folder (or a previous demo)",
                             hint="give another folder: `photojobs demo DIR`")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `photojobs demo`; running it again replaces this folder\n")


def _drain(app: Any, queue: str, concurrency: int = 1) -> Any:
    from .worker import WorkerOptions

    return app.work(WorkerOptions(queues=[queue], concurrency=concurrency, stop_when_empty=True, sleep=0.05))


def run_demo(folder: str | Path = "photojobs-demo", *, photos: int = 12,
             say: Callable[[str], None] = print, db: str | None = None) -> dict[str, Any]:
    """Run the demo in `folder` (on the database `db`: a PostgreSQL URL, or by default an
    SQLite file in the folder); returns a summary (counts, paths, timings)."""
    import photojobs
    from .samples import make_sample_photos
    from .install import init

    started = time.monotonic()
    root = Path(folder).expanduser().resolve()
    _fresh_workspace(root)
    say(f"Workspace: {root}")
    paths = make_sample_photos(root / "shoot", photos, size=SAMPLE_SIZE)
    say(f"1. Generated {len(paths)} sample JPEGs with EXIF (camera, lens, GPS, orientation) in shoot/")
    installed = init(config=str(root / "photojobs.toml"), db=db)
    with open(root / "photojobs.toml", "a") as fh:
        fh.write(MAIL_CONFIG)
    database = f"database {installed['db']}" if db else "SQLite database photojobs.db"
    say(f"2. Wrote photojobs.toml ({database}, storage/, mail to files)")
    quiet = logging.getLogger("photojobs")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the per-job log lines would drown the story
    try:
        with photojobs.connect(root / "photojobs.toml") as app:
            summary = _pipeline(app, root, paths, say)
    finally:
        quiet.setLevel(level)
    summary["seconds"] = round(time.monotonic() - started, 1)
    _where_to_look(root, summary, say)
    return summary


def _pipeline(app: Any, root: Path, paths: list[Path], say: Callable[[str], None]) -> dict[str, Any]:
    from .archives.downloads import create_download, show_download
    from .orders import create_order
    from .photos.store import add_photos, counts

    added = add_photos(app, [root / "shoot"], album=ALBUM)
    say(f"3. photos add: registered {len(added.added)} photos, queued their processing as batch {added.batch_id}")
    report = _drain(app, "photos", concurrency=2)
    by_status = counts(app)
    say(f"4. process-photos: {report.done} processed in {report.seconds:.1f}s with 2 worker processes"
        f" (EXIF, sizes, thumbnails), {by_status.get('failed', 0)} failed")
    order = create_order(app, CUSTOMER[0], name=CUSTOMER[1], album=ALBUM, notify=True)
    say(f"5. orders create: order {order['id']} for {CUSTOMER[1]} <{CUSTOMER[0]}>, {order['photo_count']} photos;"
        " order-confirmation mail queued")
    download = create_download(app, order["id"], notify=True)
    say(f"6. downloads create --notify: download {download['id']} and its archive job, in one transaction")
    report = _drain(app, "downloads")
    download = show_download(app, download["id"])
    if download["status"] != "ready":
        raise UsageError(f"the demo's archive was not built: {download['error']}")
    say(f"7. build-archive: {download['file_count']} photos, {download['size_bytes'] / 1e6:.1f} MB, stored"
        f" (JPEGs do not deflate), verified, mode 0600; download-ready mail queued")
    report = _drain(app, "emails")
    mails = sorted((root / "storage" / "mail").glob("*.eml"))
    say(f"8. send-mail: {report.done} messages written as .eml files ({report.failed} failed)")
    return {"workspace": str(root), "photos": len(paths), "photo_status": counts(app), "order_id": order["id"],
            "download": download, "mail_files": [str(m) for m in mails]}


def _where_to_look(root: Path, summary: dict[str, Any], say: Callable[[str], None]) -> None:
    download = summary["download"]
    archive = Path(download["path"]).relative_to(root)
    thumbs = root / "storage" / "thumbnails"
    say(f"\nDone in {summary['seconds']}s. Where to look:")
    say(f"  archive      {archive}  (unzip -l it; the link would be {download['url']})")
    say(f"  thumbnails   {thumbs.relative_to(root)}/  ({sum(1 for p in thumbs.rglob('*') if p.is_file())} files)")
    for path in summary["mail_files"]:
        say(f"  mail         {Path(path).relative_to(root)}")
    say(f"\n  cd {root}")
    say("  photojobs photos list          photojobs photos show 1 --json")
    say(f"  photojobs orders show {summary['order_id']}         photojobs downloads show {download['id']} --json")
    say("  photojobs status               photojobs mail outbox")


__all__ = ["run_demo"]
