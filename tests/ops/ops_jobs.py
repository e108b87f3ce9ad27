"""Jobs for the ops tests (registered through `imports = ["sample_jobs", "ops_jobs"]`)."""

from __future__ import annotations

from pathlib import Path

from photojobs import PermanentFailure, job


@job("fail_while", tries=2, backoff=[0])
def fail_while(flag: str, out: str = "") -> None:
    """Fail while the file `flag` exists; once it is gone, write `out` and succeed."""
    if Path(flag).exists():
        raise PermanentFailure(f"flag {Path(flag).name} is still there")
    if out:
        Path(out).write_text("ok")


@job("photo_job", queue="photos")
def photo_job(tag: str = "") -> None:
    pass


@job("hold_while", timeout=120)
def hold_while(flag: str, marker: str) -> None:
    """Write `marker`, then wait (at most a minute) while the file `flag` exists."""
    import time

    Path(marker).write_text("started")
    deadline = time.monotonic() + 60
    while Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
