"""The `build_archive` job: a download's ZIP (core in photojobs.archives.downloads).

Queue `downloads`, 2 tries, 10 minutes. When its tries are spent, the download is
marked failed with the reason (and no temp file is left behind).
"""

from __future__ import annotations

from typing import Any

from ..errors import LeaseLost
from ..registry import job


@job("build_archive", queue="downloads", tries=2, timeout=600, backoff=[30], context=True,
     unique=lambda p: f"download:{p['download_id']}")
def build_archive(ctx: Any, download_id: int) -> None:
    """Build download `download_id`'s archive and mark it ready."""
    from ..archives.downloads import build_download, note_attempt_error

    try:
        build_download(ctx.app, download_id, holds_lease=ctx.holds_lease, attempt=(ctx.job.id, ctx.attempt))
    except LeaseLost:
        raise  # another attempt owns the download: its row is not ours to annotate
    except Exception as exc:
        note_attempt_error(ctx.app, download_id, failure_reason(exc), holds_lease=ctx.holds_lease)
        raise


@build_archive.failed
def build_archive_failed(ctx: Any, error: BaseException, download_id: int | None = None, **_: Any) -> None:
    from ..archives.downloads import mark_failed

    if download_id is not None:
        mark_failed(ctx.app, download_id, failure_reason(error))


def failure_reason(error: BaseException) -> str:
    from ..errors import PhotojobsError

    text = str(error) or type(error).__name__
    return text if isinstance(error, PhotojobsError) else f"{type(error).__name__}: {text}"
