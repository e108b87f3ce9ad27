"""The outbox: one row per message, so a retry never sends a message twice.

A row's life: pending -> sending -> sent, or failed. The row is created with its
Message-ID when the mail is queued; `deliver` marks it 'sending' at the last moment
before the message is handed to the server (after the server accepted the envelope)
and 'sent' once the server said so. A retry that finds:
- 'sent': does nothing;
- 'sending' (the previous attempt died while handing the message over, so the server
  may have it): marks it 'unconfirmed' and does not send it again (`mail resend ID`
  does, on purpose). The file transport rewrites the same file, so it just resends;
- 'pending' or 'failed' (never handed over, or a retry from the failed table): sends.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from ..errors import LeaseLost, NotFound, PermanentFailure, UsageError
from ..storage import outbox as outbox_rows
from .config import MailConfig
from .message import build_message, check_address, domain_of, new_message_id, parse_sender
from .transports import DeliveryDeferred, DeliveryRefused, DeliveryUncertain, make_transport, scrub, secret_forms

log = logging.getLogger("photojobs.mail")

STATUSES = ("pending", "sending", "sent", "failed", "unconfirmed")
JOB_NAME = "send_email"


class Mailer:
    """One installation's mail set-up: config, templates, transport (all read lazily)."""

    def __init__(self, app: Any, transport: Any = None, env: Any = None):
        self.app = app
        self.env = env
        self.config: MailConfig = app.settings.mail
        self._transport = transport
        self._templates = None

    @property
    def templates(self):
        if self._templates is None:
            from .templates import Templates

            self._templates = Templates(self.config.templates)
        return self._templates

    @property
    def transport(self):
        if self._transport is None:
            self._transport = make_transport(self.config, self.env)
        return self._transport

    @property
    def sender_address(self) -> str:
        return parse_sender(self.config.sender)[1]

    def compose(self, template: str, to: str, stored: dict, message_id: str, *, images: bool = True):
        """Render `template` for the ids in `stored` and build the message (all checks here)."""
        from .context import build_context

        self.templates.check(template)
        context, inline = build_context(self.app.backend, self.app.settings, stored,
                                        domain=domain_of(self.sender_address),
                                        max_images=self.config.max_inline_images if images else 0)
        rendered = self.templates.render(template, context, inline)
        order = context.get("order") or {}
        to_name = order.get("name") if str(order.get("email", "")).lower() == to.lower() else None
        return build_message(rendered, to=to, to_name=to_name, sender=self.config.sender, message_id=message_id)

    def row(self, outbox_id: int) -> Any | None:
        return outbox_rows.get(self.app.backend, outbox_id)

    def secrets(self) -> list[str]:
        return secret_forms(self.config.username, self.config.password(self.env))


def _rate_delay(app: Any, rate: int, now: float) -> float:
    """Seconds to delay a new send_email job so at most `rate` start in any minute."""
    if rate <= 0:
        return 0.0
    due = app.backend.due_times(JOB_NAME, now - 60, rate)
    if len(due) < rate:
        return 0.0
    return max(0.0, due[-1] + 60 - now)


def queue_mail(app: Any, template: str, to: str, *, order_id: int | None = None, download_id: int | None = None,
               now: bool = False, vars: dict | None = None) -> int:
    """Create an outbox row and dispatch a `send_email` job for it (or, with `now`, send at
    once without the queue). Returns the outbox id.

    The message is rendered once here, so a missing template or order, an invalid address
    or a header carrying a line break is refused at once (a UsageError)."""
    mailer = Mailer(app)
    to = check_address(to)
    stored = {k: v for k, v in (("order_id", order_id), ("download_id", download_id), ("vars", vars)) if v}
    message_id = new_message_id(mailer.sender_address)
    msg = mailer.compose(template, to, stored, message_id, images=False)  # the checks, not the bytes
    created = time.time()
    with app.transaction() as tx:
        outbox_id = outbox_rows.insert(tx, template, to, str(msg["Subject"]), json.dumps(stored), message_id, created)
        if not now:
            delay = _rate_delay(app, mailer.config.rate_per_minute, created)
            job_id = app.dispatch(JOB_NAME, {"outbox_id": outbox_id}, delay=delay or None)
            outbox_rows.update(tx, outbox_id, {"job_id": job_id})
    if now:
        try:
            deliver(app, outbox_id, mailer=mailer)
        except Exception as exc:
            mark_failed(app, outbox_id, exc, mailer=mailer)
            raise
    return outbox_id


def _set(app: Any, outbox_id: int, fields: dict[str, Any], when: tuple[str, ...] = (),
         holds_lease: Callable[[], bool] | None = None) -> int:
    """Update the row (if its status is one of `when`). With `holds_lease`, only while the
    job's attempt still holds its lease: a stale attempt's update would overwrite a newer
    attempt's outcome, so it raises LeaseLost instead."""
    with app.transaction() as tx:
        if holds_lease is not None and not holds_lease():
            raise LeaseLost(f"outbox row {outbox_id}: this worker lost its lease on the job; its result was"
                            " discarded (another attempt owns the message)")
        return outbox_rows.update(tx, outbox_id, fields, when)


def _wait_for_rate(app: Any, rate: int, budget: float = 10.0) -> None:
    """A last guard at send time: wait (briefly) while `rate` messages went out this minute."""
    if rate <= 0:
        return
    deadline = time.monotonic() + budget
    while True:
        now = time.time()
        sent = outbox_rows.sent_times(app.backend, now - 60, rate)
        if len(sent) < rate:
            return
        wait = sent[-1] + 60 - now
        if time.monotonic() + wait > deadline:
            raise DeliveryDeferred(f"the mail rate limit ({rate} a minute) is reached", delay=wait)
        time.sleep(max(wait, 0.01))


def _send_key(row: Any) -> str:
    """Names one send of a row: a retry rewrites its .eml, while each `mail resend` is a
    new file beside the earlier ones."""
    return f"{row['id']:06d}-{row['template']}" + (f"-resend{row['resends']}" if row["resends"] else "")


def deliver(app: Any, outbox_id: int, *, mailer: Mailer | None = None, transport: Any = None,
            holds_lease: Callable[[], bool] | None = None) -> str:
    """Send one outbox row, at most once. Returns 'sent', 'already sent' or 'unconfirmed'.
    From a job, `holds_lease` fences every write to the row (and the hand-over itself)."""
    mailer = mailer or Mailer(app, transport)
    row = mailer.row(outbox_id)
    if row is None:
        raise PermanentFailure(f"no outbox row {outbox_id}")
    status = row["status"]
    if status in ("sent", "unconfirmed"):
        log.info("mail not resent", extra={"event": "mail_skipped", "outbox": outbox_id, "status": status})
        return "already sent" if status == "sent" else status
    if status == "sending" and not mailer.transport.idempotent:
        _set(app, outbox_id, {"status": "unconfirmed",
                              "error": "a previous attempt stopped while handing the message to the server; not resent"
                                       " (`photojobs mail resend` sends it again)"}, ("sending",), holds_lease)
        log.warning("mail may have been sent already; not resent",
                    extra={"event": "mail_unconfirmed", "outbox": outbox_id, "message_id": row["message_id"]})
        return "unconfirmed"
    msg = mailer.compose(row["template"], row["to_addr"], json.loads(row["context"] or "{}"), row["message_id"])
    _wait_for_rate(app, mailer.config.rate_per_minute)

    def mark_sending() -> None:
        taken = _set(app, outbox_id, {"status": "sending", "subject": str(msg["Subject"]), "sent_at": time.time(),
                                      "error": None}, ("pending", "failed", "sending"), holds_lease)
        if taken != 1:
            raise PermanentFailure(f"outbox row {outbox_id} is being sent by someone else")

    try:
        result = mailer.transport.send(msg, mailer.sender_address, [row["to_addr"]], before_data=mark_sending,
                                       key=_send_key(row))
    except DeliveryUncertain as exc:
        _set(app, outbox_id, {"status": "unconfirmed", "error": str(exc)}, ("sending",), holds_lease)
        log.warning("mail may have been sent; not resent", extra={"event": "mail_unconfirmed", "outbox": outbox_id})
        return "unconfirmed"
    except DeliveryDeferred as exc:
        _set(app, outbox_id, {"status": "pending", "sent_at": None, "error": str(exc)}, ("pending", "sending", "failed"),
             holds_lease)
        raise
    except DeliveryRefused as exc:
        _set(app, outbox_id, {"status": "failed", "sent_at": None, "error": str(exc)}, ("pending", "sending", "failed"),
             holds_lease)
        raise
    _set(app, outbox_id, {"status": "sent", "sent_at": time.time(), "error": None}, holds_lease=holds_lease)
    log.info("mail sent", extra={"event": "mail_sent", "outbox": outbox_id, "message_id": row["message_id"],
                                 "result": result})
    return "sent"


def mark_failed(app: Any, outbox_id: int, error: BaseException | str, *, mailer: Mailer | None = None) -> None:
    """The send_email job's failure handler: a row never handed over is 'failed'; one that
    was being handed over when the last attempt died is 'unconfirmed'."""
    try:
        secrets = (mailer or Mailer(app)).secrets()
    except Exception:  # a broken [mail] table must not hide the failure
        secrets = []
    text = scrub(str(error) or type(error).__name__, secrets)
    _set(app, outbox_id, {"status": "unconfirmed", "error": text}, ("sending",))
    _set(app, outbox_id, {"status": "failed", "error": text}, ("pending", "failed"))


def list_outbox(app: Any, status: str | None = None, limit: int = 50) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return [outbox_view(r) for r in outbox_rows.listed(app.backend, status, limit)]


def outbox_view(row: Any) -> dict:
    """An outbox row as --json prints it: ISO times, the template's context as an object."""
    from ..ops.common import iso

    try:
        context = json.loads(row["context"] or "{}")
    except ValueError:
        context = row["context"]
    return {**dict(row), "context": context, "created_at": iso(row["created_at"]), "sent_at": iso(row["sent_at"])}


def resend(app: Any, outbox_id: int) -> int:
    """Send a row again on purpose (an 'unconfirmed' or 'failed' one): a new send_email job."""
    row = Mailer(app).row(outbox_id)
    if row is None:
        raise NotFound(f"no outbox row {outbox_id}", hint="see `photojobs mail outbox`")
    if row["status"] == "sending":
        raise UsageError(f"outbox row {outbox_id} is being sent right now")
    with app.transaction() as tx:
        outbox_rows.mark_resent(tx, outbox_id)
        job_id = app.dispatch(JOB_NAME, {"outbox_id": outbox_id})
        outbox_rows.update(tx, outbox_id, {"job_id": job_id})
    return job_id
