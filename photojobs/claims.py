"""A worker child's record of its current claim, so that a worker killed whole loses nothing.

A child claims several fast jobs at a time and records their successes together, so when
the whole worker is killed (kill -9 of the supervisor takes its children along) the
database alone cannot say which jobs of the claim had finished, which one was running and
which had not started. Each child appends that to a small file under
`<storage>/claims/` (a write per start and per success, no fsync: it must survive the
process, not the machine). Whoever settles the claim (the supervisor reaping a child, or
any worker rescuing an expired lease) then records the finished jobs as done, charges an
attempt to the running job only, and gives the unstarted ones back untouched. Without
the file (another host's worker, a power loss) every job of the claim is charged, as
before: at least once, never lost.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .app import App
    from .storage import Job
    from .settings import Settings


def claims_dir(settings: "Settings") -> Path:
    return settings.storage_path / "claims"


def claim_path(settings: "Settings", token: str) -> Path:
    return claims_dir(settings) / (re.sub(r"[^A-Za-z0-9_.-]", "_", token) + ".claim")


class ClaimLog:
    """The child's side: truncated at each claim (the previous claim's outcomes are in the
    database by then), then one line per job start and per success."""

    def __init__(self, settings: "Settings", token: str):
        self.path = claim_path(settings, token)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def new_claim(self) -> None:
        if os.fstat(self._fd).st_nlink == 0:  # swept while this child idled: start a new file
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.ftruncate(self._fd, 0)

    def started(self, job_id: int) -> None:
        os.write(self._fd, b"s%d\n" % job_id)

    def finished(self, job_id: int, duration: float) -> None:
        os.write(self._fd, b"d%d %.6f\n" % (job_id, duration))

    def close(self) -> None:
        """A clean exit: every outcome is recorded and every unused job given back."""
        os.close(self._fd)
        self.path.unlink(missing_ok=True)


@dataclasses.dataclass
class ClaimRecord:
    finished: dict[int, float]  # job id -> duration
    running: int | None  # started and not finished when the child stopped


def read_claim(settings: "Settings", token: str) -> ClaimRecord | None:
    try:
        text = claim_path(settings, token).read_bytes().decode("ascii", "replace")
    except OSError:
        return None
    finished: dict[int, float] = {}
    running = None
    for line in text.splitlines():
        try:
            if line.startswith("s"):
                running = int(line[1:])
            elif line.startswith("d"):
                job_id, duration = line[1:].split()
                finished[int(job_id)] = float(duration)
                running = None if running == int(job_id) else running
        except ValueError:
            continue  # a line cut short by the kill
    return ClaimRecord(finished, running)


def settle(app: "App", token: str, jobs: list["Job"], running_error: Exception | None, *,
           expired: bool, tries_of: Callable[["Job"], int], running: int | None = None,
           holder: str | None = None) -> dict[str, int]:
    """Account for the jobs `token` held when its process stopped, as `holder` (who holds
    them now: `token` itself, or the worker that took them over with `rescue_expired`).

    Finished jobs are marked done; the running one (from the claim file, else `running`)
    gets `running_error` as a failed attempt, or is given back if that is None (a stop
    that abandoned it); jobs it never started go back to pending with the attempt not
    counted. With no claim file and `expired` (a rescue that knows nothing of the claim),
    every job gets `running_error`, as the job that may have been running.
    Returns counts: done, retry, failed, released."""
    from .runner import record_failure

    counts = {"done": 0, "retry": 0, "failed": 0, "released": 0}
    holder = holder or token
    record = read_claim(app.settings, token)
    backend = app.backend
    if record is not None:
        running = record.running
        done = [(j.id, record.finished[j.id]) for j in jobs if j.id in record.finished]
        if done:
            backend.complete(done, holder)
            counts["done"] = len(done)
    held = [j for j in jobs if record is None or j.id not in record.finished]
    charged = held if (record is None and expired) else [j for j in held if j.id == running]
    if running_error is None:
        charged = []
    for job in charged:
        outcome = record_failure(app, job, holder, running_error, None, tries=tries_of(job))
        counts[outcome] = counts.get(outcome, 0) + 1
    charged_ids = {j.id for j in charged}
    rest = [j.id for j in held if j.id not in charged_ids]
    if rest:
        counts["released"] = backend.release(holder, rest)
    claim_path(app.settings, token).unlink(missing_ok=True)
    return counts


def sweep(settings: "Settings", live_tokens: set[str], older_than: float) -> None:
    """Remove claim files left by children killed while they held nothing."""
    folder = claims_dir(settings)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    live = {claim_path(settings, t).name for t in live_tokens}
    cutoff = time.time() - older_than
    for entry in entries:
        try:
            if entry.name not in live and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            continue
