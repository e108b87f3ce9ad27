"""Is a registered worker dead now? Certain only on the same host: there a worker whose
pid is gone is dead at once, without waiting for its lease.

"The same host" is the host name, the kernel's boot id and the pid namespace together
(two containers may share a host name; a reboot reuses pids). When any part is unknown
or differs, nothing is concluded and the lease decides, as for another host.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from .app import App
    from .storage import Job


@functools.lru_cache(maxsize=1)
def identity() -> tuple[str, str | None, str | None]:
    """(host name, boot id, pid namespace) of this process; the last two None if unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot_id: str | None = fh.read().strip() or None
    except OSError:
        boot_id = None
    try:
        pid_ns: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = None
    return socket.gethostname(), boot_id, pid_ns


def same_host(row: Mapping[str, Any]) -> bool:
    host, boot_id, pid_ns = identity()
    return boot_id is not None and pid_ns is not None and (row["host"], row["boot_id"], row["pid_ns"]) == (
        host, boot_id, pid_ns)


def process_start(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process, None if it is
    gone. Ticks since boot, not wall time: a clock step cannot make a process look new."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) ": the name may hold spaces
    return fields[0], int(fields[19])


def pid_gone(pid: int, start_ticks: int | None) -> bool:
    """Whether the worker process `pid` (started at `start_ticks`, if recorded) no longer
    runs here: no such process, a zombie, or another process that reuses its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    found = process_start(pid)
    if found is None:
        return not os.path.exists(f"/proc/{pid}")
    state, started = found
    return state in ("Z", "X") or (start_ticks is not None and started != start_ticks)


def is_dead(row: Mapping[str, Any]) -> bool:
    """A workers row whose process is certainly gone: same host, pid gone."""
    return same_host(row) and row["pid"] is not None and pid_gone(int(row["pid"]), row["pid_start"])


def dead_workers(app: "App") -> list[Mapping[str, Any]]:
    """The workers rows of this host whose process is gone."""
    return [row for row in app.backend.workers() if is_dead(row)]


def rescue_dead_workers(app: "App", tries_of: Callable[["Job"], int]) -> int:
    """Take back at once the jobs of this host's dead workers (each counts an attempt, as
    a lost lease does) and forget their rows. Returns how many jobs."""
    from .claims import settle
    from .errors import WorkerLost

    rescued = 0
    for row in dead_workers(app):
        prefix = row["id"] + "/"  # a worker's processes hold jobs as "<worker id>/<slot>.<n>"
        by_token: dict[str, list[Job]] = {}
        for job, token in app.backend.held_by_prefix(prefix):
            by_token.setdefault(token, []).append(job)
        for token, jobs in by_token.items():
            # As their holder, by the claim file: finished jobs done, the running one charged,
            # unstarted ones given back; a row changed since we read it (a finish) is left alone.
            error = WorkerLost(f"the worker holding the job died (pid {row['pid']} is gone)")
            settle(app, token, jobs, error, expired=False, tries_of=tries_of)
            rescued += len(jobs)
        app.backend.unregister_worker(row["id"])
    return rescued
