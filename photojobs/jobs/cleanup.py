"""The `cleanup_downloads` job, so that the scheduler can enqueue the daily clean-up
(core in photojobs.archives.cleanup)."""

from __future__ import annotations

import logging
from typing import Any

from ..registry import job

log = logging.getLogger("photojobs.archives")


@job("cleanup_downloads", queue="default", tries=2, timeout=600, context=True, unique=lambda p: "cleanup_downloads")
def cleanup_downloads(ctx: Any, dry_run: bool = False) -> None:
    """Delete expired downloads' files, orphan and stale temp files in storage/downloads."""
    from ..archives.cleanup import cleanup_downloads as run

    report = run(ctx.app, dry_run=dry_run)
    log.info("downloads cleaned up: %s expired, %s orphan files, %s temp files, %s bytes freed",
             len(report["expired"]), len(report["orphans"]), len(report["temp_files"]), report["freed_bytes"])
