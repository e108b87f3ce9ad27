"""What a user would check, read through the library API (the data `--json` prints), for
tests that assert outcomes without reaching into storage. A test that inspects storage on
purpose uses tests.conftest.storage_rows and says why."""

from __future__ import annotations

from typing import Any

EVERYTHING = 1_000_000  # a listing limit no test reaches


def outbox_rows(app: Any) -> list[dict]:
    """Every outbox row as `mail outbox --json` shows it, oldest first."""
    from photojobs.mail.outbox import list_outbox

    return list_outbox(app, limit=EVERYTHING)[::-1]


def outbox_row(app: Any, outbox_id: int) -> dict:
    [row] = [r for r in outbox_rows(app) if r["id"] == outbox_id]
    return row


def queued_jobs(app: Any) -> int:
    """Jobs waiting, running or failed, over every queue (`status --json`)."""
    from photojobs import ops

    return sum(q["pending"] + q["delayed"] + q["reserved"] + q["failed"] for q in ops.status(app)["queues"].values())


def pending_jobs(app: Any, queue: str) -> int:
    """Jobs waiting in `queue`, ready or delayed (`status --json`)."""
    from photojobs import ops

    stats = ops.status(app, [queue])["queues"][queue]
    return stats["pending"] + stats["delayed"]
