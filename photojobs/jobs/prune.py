"""The `prune_failed` job, so that the schedule can prune the failed table weekly
(core in photojobs.ops.failed)."""

from __future__ import annotations

import logging

from ..registry import job

log = logging.getLogger("photojobs.schedule")


@job("prune_failed", queue="default", tries=3, timeout=300, context=True)
def prune_failed(ctx, hours: float = 168) -> int:
    """Delete failed jobs that failed more than `hours` ago (`photojobs failed prune --hours`)."""
    from ..ops.failed import prune_failed as prune

    removed = prune(ctx.app, hours)
    log.info("pruned %d failed job(s) older than %sh", removed, hours, extra={"event": "prune_failed"})
    return removed
