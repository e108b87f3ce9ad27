"""mail queue | templates | preview | outbox | resend, and send-mail (drain the emails queue)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _common

mail_app = typer.Typer(help="Mail: queue a templated message, list and preview templates, the outbox.",
                       no_args_is_help=True)

OrderOption = Annotated[Optional[int], typer.Option("--order", min=1, help="The order the mail is about.")]
DownloadOption = Annotated[Optional[int], typer.Option("--download", min=1, help="The download the mail is about.")]


@mail_app.command("queue")
def queue(
    to: Annotated[str, typer.Option("--to", help="Recipient address.")],
    template: Annotated[str, typer.Option("--template", help="Template name (see `mail templates`).")],
    order: OrderOption = None,
    download: DownloadOption = None,
    now: Annotated[bool, typer.Option("--now", help="Send at once, without the queue.")] = False,
    json_out: _common.JsonOption = False,
) -> None:
    """Queue a templated mail (a send_email job on the emails queue), or send it --now."""
    from photojobs.mail import queue_mail
    from photojobs.mail.outbox import Mailer

    with _common.open_app() as app:
        outbox_id = queue_mail(app, template, to, order_id=order, download_id=download, now=now)
        stored = Mailer(app).row(outbox_id)
        row = {key: stored[key] for key in ("id", "status", "job_id", "message_id", "subject")}
    if _common.wants_json(json_out):
        _common.print_json(row)
    elif now:
        _common.say(f"Mail {outbox_id} to {to}: {row['status']} ({row['subject']})")
    else:
        _common.say(f"Queued mail {outbox_id} to {to} as job {row['job_id']} ({row['subject']})")


@mail_app.command("templates")
def templates(json_out: _common.JsonOption = False) -> None:
    """List the mail templates (built-in and from the [mail] templates folder)."""
    from photojobs.mail import list_templates

    rows = list_templates(_common.settings())
    if _common.wants_json(json_out):
        _common.print_json(rows)
        return
    _common.table([{**r, "parts": ", ".join(r["parts"])} for r in rows], ["name", "parts", "source"],
                  empty="No templates.")


@mail_app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(help="Template name.")],
    order: OrderOption = None,
    download: DownloadOption = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Recipient shown (default: the order's).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write FILE.html, FILE.txt, or the whole FILE.eml.")] = None,
) -> None:
    """Render a template with an order or download (or sample data) to the terminal or a file."""
    from photojobs.mail import preview as render_preview, write_preview

    settings = _common.settings()
    if order is None and download is None:
        message = render_preview(settings, name, to=to)
    else:
        with _common.open_app() as app:
            message = render_preview(settings, name, app=app, order_id=order, download_id=download, to=to)
    if out is not None:
        _common.say(f"Wrote {write_preview(message, out)}")
        return
    for header in ("From", "To", "Subject", "Message-ID"):
        typer.echo(f"{header}: {message[header]}")
    text = message.get_body(preferencelist=("plain",))
    typer.echo("")
    typer.echo(text.get_content() if text is not None else "(no text part)")
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        typer.echo(f"(and an HTML part of {len(html.get_content())} characters: --out FILE.html writes it)")


@mail_app.command("outbox")
def outbox(
    status: Annotated[Optional[str], typer.Option("--status", help="pending|sending|sent|failed|unconfirmed")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    json_out: _common.JsonOption = False,
) -> None:
    """List outbox rows, newest first: one per message, with its status and error."""
    from photojobs.mail.outbox import list_outbox

    with _common.open_app() as app:
        rows = list_outbox(app, status, limit)
    if _common.wants_json(json_out):
        _common.print_json(rows)
        return
    _common.table(rows, ["id", "template", "to_addr", "status", "subject", "error"], empty="The outbox is empty.")


@mail_app.command("resend")
def resend(outbox_id: Annotated[int, typer.Argument(help="Outbox id (see `mail outbox`).")]) -> None:
    """Send an outbox message again on purpose (e.g. an 'unconfirmed' or 'failed' one)."""
    from photojobs.mail.outbox import resend as requeue

    with _common.open_app() as app:
        job_id = requeue(app, outbox_id)
    _common.say(f"Queued mail {outbox_id} again as job {job_id}")


def send_mail(
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Send at most N messages.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Keep waiting for new mail.")] = False,
    max_time: _common.MaxTimeOption = None,
) -> None:
    """Send the queued mail (drain the emails queue) and print a summary; exit 1 if one failed."""
    _common.drain("emails", limit=limit, loop=loop, noun="mails", max_time=max_time)


def register(app: typer.Typer) -> None:
    """Add `mail ...` and `send-mail` to the main app."""
    app.add_typer(mail_app, name="mail")
    app.command("send-mail")(send_mail)
