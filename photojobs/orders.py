"""Orders: a customer's email and name, and the photos they bought, in the order chosen.

    order = create_order(app, "ada@example.com", name="Ada", photo_ids=[3, 1, 2])
    order = create_order(app, "ada@example.com", album="wedding")
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

from .errors import NotFound, UsageError
from .storage import orders as order_rows
from .storage import photos as photo_rows

if TYPE_CHECKING:
    from .app import App

MAX_NAME_CHARS = 200


def check_email(email: str) -> str:
    """The address, trimmed, if the mail module would send to it (one plain local@domain,
    no line break that could reach a header); else a UsageError."""
    from .errors import PhotojobsError
    from .mail.message import check_address

    try:
        return check_address((email or "").strip())
    except PhotojobsError:
        raise UsageError(f"--email {email!r} is not a valid email address") from None


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    from .mail.message import LINE_BREAKS_AND_CONTROLS

    value = name.strip()
    if LINE_BREAKS_AND_CONTROLS.search(value):
        raise UsageError("--name must not contain control characters or line breaks")
    if len(value) > MAX_NAME_CHARS:
        raise UsageError(f"--name is longer than {MAX_NAME_CHARS} characters")
    return value or None


def _photo_ids_of(app: "App", photo_ids: Sequence[int] | None, album: str | None) -> list[int]:
    if bool(photo_ids) == (album is not None):
        raise UsageError("give either --photo ID (one or more) or --album NAME")
    if album is not None:
        from .photos.store import find_album

        album = find_album(app, album)
        ids = photo_rows.sellable_in_album(app.backend, album)
        if not ids:
            raise NotFound(f"album {album!r} has no photos that can be sold",
                           hint="see `photojobs photos list --album NAME`")
        return ids
    ordered = list(dict.fromkeys(int(i) for i in photo_ids or ()))
    found = photo_rows.states(app.backend, ordered)
    missing = [i for i in ordered if i not in found]
    if missing:
        raise NotFound(f"no photo with id {missing[0]}", hint="see `photojobs photos list`")
    failed = [i for i in ordered if found[i]["status"] == "failed"]
    if failed:
        reason = found[failed[0]]["error"] or "unknown reason"
        raise UsageError(f"photo {failed[0]} failed processing ({reason}); it cannot be sold")
    return ordered


def create_order(app: "App", email: str, *, name: str | None = None, photo_ids: Sequence[int] | None = None,
                 album: str | None = None, notify: bool = False) -> dict[str, Any]:
    """Create an order for `photo_ids` (in that order, repeats dropped) or for every photo
    of `album` that did not fail (oldest first); returns the order as `show_order` does.
    With `notify`, the order-confirmation mail is queued in the same transaction (its
    outbox id is the result's `confirmation_mail`)."""
    email, name = check_email(email), check_name(name)
    mail_id = None
    with app.transaction() as tx:
        ids = _photo_ids_of(app, photo_ids, album)
        order_id = order_rows.insert(tx, email, name, ids, time.time())
        if notify:
            from .mail import queue_mail

            mail_id = queue_mail(app, "order-confirmation", email, order_id=order_id)
    order = show_order(app, order_id)
    if notify:
        order["confirmation_mail"] = mail_id
    return order


def order_photos(app: "App", order_id: int) -> list[Any]:
    """The order's photo rows, in the order's order, with their position."""
    return order_rows.photos_of(app.backend, order_id)


def get_order_row(app: "App", order_id: int) -> Any:
    row = order_rows.get(app.backend, order_id)
    if row is None:
        raise NotFound(f"no order with id {order_id}", hint="see `photojobs orders list`")
    return row


def show_order(app: "App", order_id: int) -> dict[str, Any]:
    """An order with its photos (id, position, file name, status) and its downloads."""
    from .archives.views import download_view
    from .storage import downloads as download_rows

    row = get_order_row(app, order_id)
    now = time.time()
    photos = [{"position": p["position"], "photo_id": p["id"], "file": _file_name(p["path"]), "status": p["status"],
               "size_bytes": p["size_bytes"]} for p in order_photos(app, order_id)]
    return {"id": row["id"], "email": row["email"], "name": row["name"], "created_at": iso(row["created_at"]),
            "photo_count": len(photos), "photos": photos,
            "downloads": [download_view(app.settings, r, now) for r in download_rows.listed(app.backend, order_id, now=now)]}


def list_orders(app: "App", limit: int | None = None) -> list[dict[str, Any]]:
    """Orders, newest first, with their photo count and latest download's status."""
    return [{"id": r["id"], "email": r["email"], "name": r["name"], "created_at": iso(r["created_at"]),
             "photo_count": r["photo_count"], "download": r["download"]} for r in order_rows.listed(app.backend, limit)]


def _file_name(path: Any) -> str:
    import os

    from .photos.store import source_path

    return os.path.basename(source_path(path))


def iso(stamp: float | None) -> str | None:
    """A UTC ISO 8601 time (as `photos show` prints them), or None."""
    if stamp is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


__all__ = ["create_order", "show_order", "list_orders", "order_photos", "get_order_row", "check_email", "iso"]
