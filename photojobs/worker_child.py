"""A worker's child process: claim, run, record, in a loop.

It tells the supervisor what it is running through a few doubles of shared memory (no
system call per job), and claims more than one job at a time only while jobs are fast,
so long jobs spread over all children while no-op jobs do not pay a transaction each.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import signal
import time
from typing import TYPE_CHECKING

from .claims import ClaimLog
from .lock_wait import LockWaiter
from .outage import SERVER_GONE, Outage
from .runner import DONE, FAILED, LOST, RETRY, execute, install_alarm, limits

if TYPE_CHECKING:
    from .settings import Settings
    from .worker import WorkerOptions

log = logging.getLogger("photojobs.worker")

RECYCLE = 100  # exit code: "replace me" (over --memory)
LOCKED = 101  # exit code: the database stayed locked past lock_budget (a run that does not wait)
MAX_BATCH = 64
FAST_BATCH_SECONDS = 0.05  # a batch that ran faster than this may grow
FLUSH_SECONDS = 0.05  # successes are recorded together, at most this late
LEASE_POLL = 0.1  # how often a child whose claim's lease ran low looks for its renewal

# slot fields
_JOB, _DEADLINE, _DONE, _FAILED, _RETRIED, _STOP, _ABANDON = range(7)


class Slot:
    """Shared memory between the supervisor and one child."""

    def __init__(self, ctx) -> None:
        self._a = ctx.RawArray(ctypes.c_double, 7)

    def begin(self, job_id: int, deadline: float) -> None:
        self._a[_DEADLINE] = 0.0
        self._a[_JOB] = job_id
        self._a[_DEADLINE] = deadline

    def end(self) -> None:
        self._a[_DEADLINE] = 0.0
        self._a[_JOB] = 0.0

    def current(self) -> tuple[int, float]:
        deadline = self._a[_DEADLINE]
        job = int(self._a[_JOB])
        return (job, deadline) if deadline == self._a[_DEADLINE] else (job, 0.0)

    def job_id(self) -> int:
        return int(self._a[_JOB])

    def count(self, outcome: str) -> None:
        if outcome != LOST:  # nothing of a lost attempt was recorded: its job's new holder counts it
            self._a[{DONE: _DONE, FAILED: _FAILED, RETRY: _RETRIED}[outcome]] += 1

    def counts(self) -> tuple[int, int, int]:
        return int(self._a[_DONE]), int(self._a[_FAILED]), int(self._a[_RETRIED])

    def reset_counts(self) -> None:
        self._a[_DONE] = self._a[_FAILED] = self._a[_RETRIED] = 0.0

    def request_stop(self) -> None:
        self._a[_STOP] = 1.0

    def stop_requested(self) -> bool:
        return self._a[_STOP] != 0.0

    def abandon(self) -> None:
        self._a[_ABANDON] = 1.0

    def abandoned(self) -> bool:
        return self._a[_ABANDON] != 0.0


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the supervisor dies, so no job runs unsupervised."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildLoop:
    def __init__(self, app_class: type, settings: "Settings", options: "WorkerOptions", slot: Slot, token: str,
                 claimed) -> None:
        self.options, self.slot, self.token, self.claimed = options, slot, token, claimed
        self.app = app_class(settings)  # after the start: this process's own connection
        self.backend = self.app.backend
        if options.wait_for_lock:
            self.backend.on_lock_wait = LockWaiter(self.backend.lock_holder, settings.lock_budget,
                                                   f"worker process {os.getpid()}")
        self.claim_log = ClaimLog(settings, token)
        self.batch = 1
        self.pending_done: list[tuple[int, float]] = []
        self.flush_at = 0.0
        self.lease_until = 0.0  # the claim's lease as last seen (its start: a lower bound)
        self.outage = Outage("a worker process")

    def stopping(self) -> bool:
        return self.slot.stop_requested()

    def _reserve_quota(self) -> int:
        """How many jobs this claim may take under --max-jobs (0: the worker is done)."""
        if self.options.max_jobs is None:
            return self.batch
        with self.claimed.get_lock():
            left = self.options.max_jobs - self.claimed.value
            take = max(0, min(self.batch, left))
            self.claimed.value += take
        return take

    def _return_quota(self, unused: int) -> None:
        if self.options.max_jobs is not None and unused:
            with self.claimed.get_lock():
                self.claimed.value -= unused

    def run(self) -> int:
        """Claim and run until stopped; while the database server is gone, wait and go on."""
        while True:
            try:
                return self._run()
            except SERVER_GONE as exc:
                self._pause(self.outage.failed(exc))
            if not self._recover(self.outage):
                return 0

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _recover(self, outage: Outage) -> bool:
        """Once the server answers: give back the claimed jobs not run (a job cut off while
        being recorded runs again: at least once), record the successes held back. False
        if told to stop meanwhile (the supervisor gives back what this process holds).
        The outage ends at the next claim that commits: a server that answers but cannot
        write (a full disk) keeps the back-off growing and says so once."""
        while not self.stopping():
            try:
                finished = {job_id for job_id, _ in self.pending_done}
                self.backend.release(self.token, [j.id for j in self.backend.reserved_by(self.token)
                                                  if j.id not in finished])
                self.flush()
            except SERVER_GONE as exc:
                self._pause(outage.failed(exc))
                continue
            return True
        return False

    def _run(self) -> int:
        while not self.stopping():
            quota = self._reserve_quota()
            if quota == 0:
                break
            jobs = self.claim(quota)
            self._return_quota(quota - len(jobs))
            if not jobs:
                if self.options.stop_when_empty:
                    break
                self.idle()
                continue
            started = time.monotonic()
            self.run_batch(jobs)
            self.adapt(time.monotonic() - started, len(jobs))
            if self.options.memory_mb and _rss_mb() > self.options.memory_mb:
                self.flush()
                log.info("worker recycled", extra={"event": "recycle", "rss_mb": round(_rss_mb())})
                self.claim_log.close()
                return RECYCLE
        self.flush()
        self.claim_log.close()
        return 0

    def claim(self, quota: int) -> list:
        """Record the last claim's successes and claim more, in one transaction; only then
        start the claim file afresh (a kill between the two leaves the new jobs unstarted)."""
        before = time.time()
        with self.backend.transaction():
            if self.pending_done:
                self.backend.complete(self.pending_done, self.token)
            jobs = self.backend.claim(self.options.queues, self.token, quota)
        # Forgotten only once committed: a claim that fails (a full disk, a lost server) rolls
        # the successes back too, and the recovery must record them, not give them back to run again.
        self.pending_done, self.flush_at = [], 0.0
        self.outage.recovered()
        self.lease_until = before + self.app.settings.lease
        self.claim_log.new_claim()
        return jobs

    def run_batch(self, jobs: list) -> None:
        for index, job in enumerate(jobs):
            may_start = None if self.stopping() else self._may_start(job)
            if may_start is None:
                self.flush()
                self.backend.release(self.token, [j.id for j in jobs[index:]])
                self._return_quota(len(jobs) - index)
                return
            if not may_start:  # a rescue gave it back: another worker may run it now
                self._return_quota(1)
                continue
            job_limits = limits(self.app, job, self.options.tries, self.options.timeout)
            self.slot.begin(job.id, time.time() + job_limits[1])
            self.claim_log.started(job.id)
            outcome, duration = execute(self.app, job, self.token, job_limits=job_limits)
            if outcome == DONE:
                self.claim_log.finished(job.id, duration)
                self.pending_done.append((job.id, duration))
                if not self.flush_at:
                    self.flush_at = time.monotonic() + FLUSH_SECONDS
                if time.monotonic() >= self.flush_at:
                    self.flush()
            self.slot.end()
            self.slot.count(outcome)

    def _may_start(self, job) -> bool | None:
        """Whether to start this job of the claim: still ours, with a third of the lease to
        spare. A claim that sat out a held write lock may have lost its lease meanwhile, and
        a rescue given its unstarted jobs back: starting one would run it twice. Reads only
        (they pass a held lock); waits for the supervisor's renewal or a rescue. None: the
        worker is stopping meanwhile."""
        margin = self.app.settings.lease / 3
        while time.time() + margin >= self.lease_until:
            lease = self.backend.lease_of(job.id)
            if lease is None or lease[0] != self.token:
                return False
            self.lease_until = time.time() + lease[1]  # seconds left, by the database's clock
            if time.time() + margin < self.lease_until:
                break
            if self.stopping():
                return None
            time.sleep(LEASE_POLL)
        return True

    def flush(self) -> None:
        if self.pending_done:
            self.backend.complete(self.pending_done, self.token)
            self.pending_done = []
        self.flush_at = 0.0

    def adapt(self, seconds: float, count: int) -> None:
        if seconds < FAST_BATCH_SECONDS:
            self.batch = min(MAX_BATCH, self.batch * 2)
        elif seconds / max(count, 1) > FAST_BATCH_SECONDS / 4:
            self.batch = 1

    def idle(self) -> None:
        """Sleep up to --sleep (with jitter), waking early when another process may have queued work."""
        self.backend.wait_for_jobs(self.options.sleep * (0.75 + random.random() / 2), interrupted=self.stopping)


def _watch_parent() -> None:
    """Portable: SIGKILL this child as soon as the supervisor is gone, however it went.

    The start method gives the child a pipe whose other end only the supervisor holds; it
    reads as closed the moment the supervisor exits. Where there is none, the parent pid
    changing (the child was re-parented) says the same, a little later."""
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    first_parent = os.getppid()

    def watch() -> None:
        while True:
            if sentinel is not None:
                if wait([sentinel], timeout=None):
                    break
            else:
                time.sleep(0.2)
                if os.getppid() != first_parent:
                    break
        os.kill(os.getpid(), signal.SIGKILL)  # as PR_SET_PDEATHSIG would: its jobs are settled by lease

    threading.Thread(target=watch, name="photojobs-parent-watch", daemon=True).start()


def child_main(app_class: type, settings: "Settings", options: "WorkerOptions", slot: Slot, token: str, claimed,
               logging_setup: list) -> None:
    _die_with_parent()
    _watch_parent()
    # The supervisor decides about stopping; the child only notes a signal (Ctrl-C reaches
    # the whole process group) and finishes its current job.
    signal.signal(signal.SIGTERM, lambda *_: slot.request_stop())
    signal.signal(signal.SIGINT, lambda *_: slot.request_stop())
    restore_logging(logging_setup)
    from .errors import DatabaseLocked
    from .registry import registry

    registry.load(settings.imports, str(settings.root))  # a fresh process: the job modules again
    install_alarm()
    try:
        code = ChildLoop(app_class, settings, options, slot, token, claimed).run()
    except DatabaseLocked as exc:  # a cron run gives up; its claim file tells the next worker what it did
        log.warning("database locked past lock_budget; this run stops", extra={"event": "locked", "error": str(exc)})
        code = LOCKED
    except Exception as exc:  # one line (the supervisor replaces it); the traceback only with -v
        _report_crash(exc)
        code = 1
    os._exit(code)


def logging_setup() -> list:
    """The "photojobs" logger's handlers, as a child started afresh can rebuild them."""
    from . import logs
    from .logs import ConsoleHandler, JsonLinesHandler

    logger = logging.getLogger("photojobs")
    setup: list = [("level", logger.level), ("verbose", logs.VERBOSE)]
    for handler in logger.handlers:
        if isinstance(handler, JsonLinesHandler):
            setup.append(("file", str(handler.path), handler.max_bytes, handler.backups, handler.level,
                          handler.failed))
        elif isinstance(handler, ConsoleHandler):
            setup.append(("console", handler.level, handler.busy_level))
    return setup


def restore_logging(setup: list) -> None:
    from . import logs
    from .logs import ConsoleHandler, JsonLinesHandler

    logger = logging.getLogger("photojobs")
    for entry in setup:
        if entry[0] == "level":
            logger.setLevel(entry[1])
        elif entry[0] == "verbose":
            logs.VERBOSE = entry[1]  # tracebacks with -v, in a child started afresh too
        elif entry[0] == "file":
            file_handler = JsonLinesHandler(entry[1], entry[2], entry[3], level=entry[4])
            if entry[5]:
                file_handler.fail_quietly()  # the supervisor has warned already
            logger.addHandler(file_handler)
        elif entry[0] == "console":
            handler = ConsoleHandler(level=entry[1])
            handler.busy_level = entry[2]
            logger.addHandler(handler)


def _report_crash(exc: Exception) -> None:
    from . import logs

    log.error("worker process stopped", extra={"event": "child_error", "error": f"{type(exc).__name__}: {exc}"})
    if logs.VERBOSE:
        import traceback

        traceback.print_exception(exc)
