"""The `send_email` job: deliver one outbox row (queue "emails", 60 s, 3 tries).

A 4xx reply or a refused, lost or silent connection is retried with backoff; a 5xx
reply, an invalid address, a header with a line break or a missing template fail at
once. The outbox row keeps a retry from sending a message twice (photojobs.mail.outbox).
"""

from __future__ import annotations

from ..registry import job


@job("send_email", queue="emails", tries=3, timeout=60, backoff=[30, 120], context=True,
     unique=lambda payload: f"outbox:{payload['outbox_id']}")
def send_email(ctx, outbox_id: int) -> None:
    """Send outbox row `outbox_id` through the configured transport."""
    from ..mail.outbox import deliver

    deliver(ctx.app, outbox_id, holds_lease=ctx.holds_lease)


@send_email.failed
def mark_outbox_failed(ctx, error: BaseException, outbox_id: int, **_: object) -> None:
    """Runs once when the job lands in the failed table: the outbox row says why."""
    from ..mail.outbox import mark_failed

    mark_failed(ctx.app, outbox_id, error)
