"""What the queue is doing: per-queue depth, age and throughput, the live workers; monitor.

Counts come from the storage: pending (ready now), delayed (pending, not yet due),
reserved (running), failed (not superseded by a later success); done and failed in the last hour; mean and p95 run time of
the jobs done in the last hour (done rows are kept `keep_done_hours`; their figures come
from a count per queue and minute, storage/rollup.py, the p95 within a sqrt(2) bucket). A worker is live
while its heartbeat is younger than three leases, unless it ran on this host and its
process is gone: then it is dead at once (photojobs.liveness), and the next worker to
start on this host, or any running one within seconds, takes its jobs back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Sequence

from ..errors import UsageError
from .common import check_known_queues, iso, parse_queue_list

if TYPE_CHECKING:
    from ..app import App

WINDOW = 3600.0  # seconds: "the last hour"
STANDARD_QUEUES = ("emails", "photos", "downloads", "default")

_COUNTED = ("pending", "delayed", "reserved", "failed")


def _empty(queue: str) -> dict:
    return {"queue": queue, "pending": 0, "delayed": 0, "reserved": 0, "failed": 0, "paused": False,
            "oldest_pending_s": None, "done_last_hour": 0, "failed_last_hour": 0, "mean_s": None, "p95_s": None}


def queue_stats(app: "App", queues: Sequence[str] | None = None) -> dict[str, dict]:
    """Per queue: pending, delayed, reserved, failed, paused, oldest_pending_s, done and failed
    in the last hour, mean_s and p95_s (run time of the jobs done in the last hour)."""
    now = time.time()
    paused = set(app.backend.paused())
    stats: dict[str, dict] = {}
    for queue, counts in app.backend.queue_stats(now, now - WINDOW).items():
        entry = _empty(queue)
        entry.update({key: counts[key] or 0 for key in _COUNTED})
        entry["done_last_hour"], entry["failed_last_hour"] = counts["done_since"] or 0, counts["failed_since"] or 0
        if counts["oldest_ready"] is not None:
            entry["oldest_pending_s"] = round(max(0.0, now - counts["oldest_ready"]), 3)
        for key in ("mean_s", "p95_s"):
            entry[key] = round(counts[key], 6) if counts[key] is not None else None
        stats[queue] = entry
    names = list(queues) if queues is not None else sorted(set(STANDARD_QUEUES) | set(stats) | paused)
    result = {}
    for name in names:
        result[name] = stats.get(name) or _empty(name)
        result[name]["paused"] = name in paused
    return result


def workers(app: "App") -> tuple[list[dict], list[dict], int]:
    """The live workers (heartbeat younger than 3 leases), the dead ones (this host's, pid
    gone) and how many stale rows there are."""
    from ..liveness import is_dead

    now = time.time()
    live, dead, stale = [], [], 0
    running: dict[str, set[int]] = {}  # worker id -> the jobs its processes hold now
    for job_id, token in app.backend.reservations():
        running.setdefault(token.split("/")[0], set()).add(job_id)
    for row in app.backend.workers():
        age = now - (row["heartbeat_at"] or 0)
        gone = is_dead(row)
        if age > 3 * app.settings.lease and not gone:
            stale += 1
            continue
        # the heartbeat's list is up to a third of a lease old; the claims are current
        current = sorted(running.get(row["id"], set()) or
                         {int(j) for j in (row["current_jobs"] or "").split(",") if j.strip()})
        (dead if gone else live).append({"id": row["id"], "host": row["host"], "pid": row["pid"],
                     "queues": [q for q in (row["queues"] or "").split(",") if q],
                     "concurrency": row["concurrency"], "current_jobs": current,
                     "started_at": iso(row["started_at"]), "heartbeat_age_s": round(max(age, 0.0), 1)})
    return live, dead, stale


def status(app: "App", queues: Sequence[str] | None = None) -> dict:
    """The whole picture: {"queues": {name: stats}, "workers": [live], "dead_workers": [...],
    "stale_workers": n, "at": iso}."""
    live, dead, stale = workers(app)
    return {"at": iso(time.time()), "queues": queue_stats(app, queues), "workers": live, "dead_workers": dead,
            "stale_workers": stale}


def monitor(app: "App", queues: str | Sequence[str], max_pending: int | None = None,
            max_age: float | None = None) -> dict:
    """Check queues against thresholds: more than `max_pending` jobs ready, or the oldest
    ready job waiting more than `max_age` seconds.

    Returns {"ok": bool, "alerts": [one per queue and metric], "lines": [one per queue over a
    threshold, for people], "queues": {name: stats}}."""
    names = parse_queue_list(queues) if isinstance(queues, str) else parse_queue_list(",".join(queues))
    check_known_queues(app, names)  # a misspelt queue would be "OK" forever
    if max_pending is None and max_age is None:
        raise UsageError("give a threshold: --max N (jobs pending) and/or --max-age S (seconds waited)")
    if (max_pending is not None and max_pending < 0) or (max_age is not None and max_age < 0):
        raise UsageError("thresholds must be zero or more")
    stats = queue_stats(app, names)
    alerts = []
    for name, entry in stats.items():
        if max_pending is not None and entry["pending"] > max_pending:
            alerts.append({"queue": name, "metric": "pending", "value": entry["pending"], "threshold": max_pending,
                           "reason": f"{entry['pending']} job{'s' * (entry['pending'] != 1)} pending (max {max_pending})"})
        age = entry["oldest_pending_s"]
        if max_age is not None and age is not None and age > max_age:
            alerts.append({"queue": name, "metric": "oldest_pending_s", "value": age, "threshold": max_age,
                           "reason": f"the oldest pending job has waited {age:.0f}s (max {max_age:g}s)"})
    lines: dict[str, list[str]] = {}
    for alert in alerts:
        lines.setdefault(alert["queue"], []).append(alert["reason"])
    return {"ok": not alerts, "alerts": alerts, "lines": [f"{q}: {'; '.join(r)}" for q, r in lines.items()],
            "queues": stats}
