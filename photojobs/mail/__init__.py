"""Mail: templates (Jinja2, text + HTML), an outbox, and the `file` / `smtp` transports.

    import photojobs
    from photojobs.mail import Mailable, queue_mail, send

    app = photojobs.connect("photojobs.toml")
    outbox_id = queue_mail(app, "download-ready", "ada@example.com", download_id=5)
    send(app, Mailable("order-confirmation", order_id=3), "ada@example.com", queue=False)

The [mail] settings are documented in photojobs.mail.config. This module imports
nothing heavy: Jinja2 and smtplib are loaded only when a message is built or sent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Mailable:
    """A template and what it is about: an order, a download, extra variables."""

    template: str
    order_id: int | None = None
    download_id: int | None = None
    vars: dict | None = None


def queue_mail(app: Any, template: str, to: str, *, order_id: int | None = None, download_id: int | None = None,
               now: bool = False, vars: dict | None = None) -> int:
    """Queue `template` to `to` (a `send_email` job on the emails queue), or send it at once
    with `now=True`. Returns the outbox id. Refuses (UsageError) an unknown template, order
    or download, an invalid address or a header with a line break."""
    from .outbox import queue_mail as _queue_mail

    return _queue_mail(app, template, to, order_id=order_id, download_id=download_id, now=now, vars=vars)


def send(app: Any, mailable: Mailable, to: str, *, queue: bool = True) -> int:
    """Send a Mailable: queued unless `queue=False`. Returns the outbox id."""
    return queue_mail(app, mailable.template, to, order_id=mailable.order_id, download_id=mailable.download_id,
                      now=not queue, vars=mailable.vars)


def list_templates(settings: Any) -> list[dict]:
    """Every template: name, parts (text, html) and source (built-in or the override folder)."""
    from .templates import Templates

    return [t.as_dict() for t in Templates(settings.mail.templates).list()]


def preview(settings: Any, template: str, *, app: Any = None, order_id: int | None = None,
            download_id: int | None = None, to: str | None = None):
    """Render a template as the message it would send (an EmailMessage). Without an order
    or download a made-up sample is shown; with them, `app` is needed to read the data."""
    from .context import build_context, sample_context
    from .message import build_message, domain_of, new_message_id, parse_sender
    from .templates import Templates

    config = settings.mail
    templates = Templates(config.templates)
    templates.check(template)
    sender = parse_sender(config.sender)[1]
    if order_id is None and download_id is None:
        context, images = sample_context(settings.base_url), []
    else:
        stored = {"order_id": order_id, "download_id": download_id}
        context, images = build_context(app.backend, settings, stored, domain=domain_of(sender),
                                        max_images=config.max_inline_images)
    order = context.get("order") or {}
    to = to or order.get("email") or "customer@example.com"
    rendered = templates.render(template, context, images)
    return build_message(rendered, to=to, to_name=order.get("name"), sender=config.sender,
                         message_id=new_message_id(sender))


def write_preview(message: Any, out: Path) -> Path:
    """Write a preview: FILE.html the HTML part, FILE.txt the text part, else the whole .eml."""
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm", ".txt"):
        part = message.get_body(preferencelist=("html",) if suffix != ".txt" else ("plain",))
        if part is None:
            from ..errors import UsageError

            raise UsageError(f"this template has no {'HTML' if suffix != '.txt' else 'text'} part")
        out.write_text(part.get_content(), encoding="utf-8")
    else:
        out.write_bytes(bytes(message))
    return out


__all__ = ["Mailable", "queue_mail", "send", "list_templates", "preview", "write_preview"]
