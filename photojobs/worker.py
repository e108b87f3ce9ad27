"""The worker: a supervisor process and N child processes that claim and run jobs.

Children do the work; the supervisor owns what a child cannot do for itself: it renews
the leases of the jobs children hold, kills a child whose job ran past its timeout (even
inside C code), records that attempt, replaces dead or recycled children, and turns
SIGTERM/SIGINT into a graceful stop (a second signal stops at once).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable, Sequence

from .claims import settle, sweep
from .errors import DatabaseLocked, JobTimeout, UsageError, WorkerLost
from .liveness import identity, process_start, rescue_dead_workers
from .lock_wait import LockWaiter
from .outage import Outage
from .settings import Settings
from .storage import Backend, open_backend

if TYPE_CHECKING:  # multiprocessing and the child's code load with the first child:
    import multiprocessing  # a cron run that finds no work starts faster without them

    from .worker_child import Slot

log = logging.getLogger("photojobs.worker")

DEFAULT_QUEUES = ("emails", "photos", "downloads", "default")
HARD_KILL_MARGIN = 1.0  # seconds past a timeout before SIGKILL; the soft timeout comes first
TICK = 0.05


@dataclasses.dataclass
class WorkerOptions:
    queues: Sequence[str] = DEFAULT_QUEUES
    concurrency: int = 1
    tries: int | None = None
    timeout: float | None = None
    sleep: float = 1.0
    max_jobs: int | None = None
    max_time: float | None = None
    memory_mb: float | None = None
    stop_when_empty: bool = False
    # A long-running worker (`work`, every --loop) waits out a write lock held past
    # lock_budget; a cron drain gives up with exit 3 (its claim files keep its jobs' record).
    wait_for_lock: bool = True

    def __post_init__(self) -> None:
        self.queues = tuple(q.strip() for q in self.queues if q.strip())
        if not self.queues:
            raise UsageError("--queue names no queue")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        for name in ("tries", "max_jobs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("timeout", "max_time", "memory_mb"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"--{name.replace('_mb', '').replace('_', '-')} must be positive")
        if self.sleep < 0:
            raise UsageError("--sleep must not be negative")


@dataclasses.dataclass
class WorkReport:
    done: int = 0
    failed: int = 0
    retried: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def start_context():
    """How children start: never by a bare fork of the supervisor, whose SQLite connection
    (and the CLI's) would cross into them (SQLite's locks are per process: a child forked
    with an open connection can corrupt the database).

    Linux: forkserver, a clean server process (started once per worker, with the job code
    imported: about a second on a busy machine) that forks each child in tens of
    milliseconds. Other systems (macOS laptops): spawn, a fresh interpreter per child, the
    start method that is safe there (~0.6 s a child), which matters only when children are
    replaced often. See bench/README.md (Chaos) for the figures."""
    import multiprocessing

    if sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload((["__main__"] if _main_is_rerun() else []) + ["photojobs.worker_child",
                                                                                 "photojobs.jobs"])
        return ctx
    return multiprocessing.get_context("spawn")


def _main_is_rerun() -> bool:
    """Whether each child would run the main module again: a script run by its path (the
    `photojobs` script, a web app's) is, so the server imports it once for all of them;
    `python -m photojobs` runs photojobs.__main__, which children skip."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    return bool(getattr(main, "__file__", None)) and not name.endswith("__main__")


class Child:
    def __init__(self, index: int, token: str, process: multiprocessing.Process, slot: Slot):
        self.index, self.token, self.process, self.slot = index, token, process, slot
        self.killed_for: int | None = None  # the job id it was killed for running too long
        self.started = time.monotonic()
        self.reaped = False


class Worker:
    def __init__(self, settings: Settings, options: WorkerOptions,
                 on_progress: Callable[[WorkReport], None] | None = None, *, app_class: type):
        self.settings = settings
        # The App class each process builds (App.work passes its own): given, not imported,
        # so the worker does not import the module that starts it.
        self.app_class = app_class
        self.options = options
        self.on_progress = on_progress
        self.report = WorkReport()
        self.children: list[Child] = []
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._signals = 0
        self._stopping = False
        self._stop_deadline: float | None = None
        self._ctx: "multiprocessing.context.BaseContext | None" = None  # made with the first child
        self._claimed = None
        self._incarnation = 0
        self._finished = [0, 0, 0]  # done, failed, retried by children that have exited
        self.started_at = time.time()  # a `queue restart` after this stops the worker
        self._crashes = 0  # children in a row that died at start-up, holding no job
        self._outage = Outage("the supervisor")
        self._published = 0.0
        self._gave_up: DatabaseLocked | None = None  # a child found the database locked (cron mode)
        self._logging: list | None = None

    # -- life cycle -------------------------------------------------------------------------

    def run(self) -> WorkReport:
        from .registry import registry

        registry.load(self.settings.imports, str(self.settings.root))  # import errors surface here, before any start
        started = time.monotonic()
        backend = open_backend(self.settings)
        if self.options.wait_for_lock:
            backend.on_lock_wait = LockWaiter(backend.lock_holder, self.settings.lock_budget,
                                              f"the worker {self.id}", tend=self._tend_while_waiting)
        self.app = self.app_class(self.settings, backend)
        try:
            self._rescue(backend)
            if self.options.stop_when_empty and not backend.has_ready(self.options.queues):
                return self.report
            previous = self._install_signals()
            try:
                self._register(backend)
                for index in range(self.options.concurrency):
                    self._spawn(index)
                self._supervise(backend, started)
            finally:
                backend.on_lock_wait = None  # on the way out, a held lock is no reason to stay
                self._stop_children(backend)  # first: a failing supervisor never leaves children running
                self._restore_signals(previous)
                self._outage.attempt(lambda: self._unregister(backend), None)
        finally:
            self.report.seconds = time.monotonic() - started
            backend.close()
        if self._gave_up is not None:
            raise self._gave_up
        return self.report

    def _spawn(self, index: int) -> Child:
        self._incarnation += 1
        token = f"{self.id}/{index}.{self._incarnation}"
        from .worker_child import Slot, child_main, logging_setup

        if self._ctx is None:
            self._ctx = start_context()
            self._claimed = self._ctx.Value("q", 0)
            self._logging = logging_setup()
        slot = Slot(self._ctx)
        # Not daemonic (a job may start processes of its own): _stop_children ends them instead.
        process = self._ctx.Process(target=child_main, name=f"photojobs-worker-{index}",
                                    args=(self.app_class, self.settings, self.options, slot, token, self._claimed,
                                          self._logging),
                                    daemon=False)
        process.start()
        child = Child(index, token, process, slot)
        if index < len(self.children):
            self.children[index] = child
        else:
            self.children.append(child)
        return child

    def _supervise(self, backend: Backend, started: float) -> None:
        from multiprocessing.connection import wait

        renew_every = max(self.settings.lease / 3, 0.2)
        next_renew = next_rescue = time.monotonic() + renew_every
        next_prune = next_control = time.monotonic()
        while True:
            now = time.monotonic()
            if self.options.max_time and now - started >= self.options.max_time:
                self.stop()
            self._tend()
            for child in list(self.children):
                if child.process.exitcode is not None:
                    self._reap(backend, child)
            self._publish()
            if all(c.process.exitcode is not None for c in self.children) and self._all_reaped():
                return
            # While the database server is gone (PostgreSQL), each step is skipped and retried.
            if now >= next_renew:
                self._outage.attempt(lambda: backend.renew([c.token for c in self.children
                                                            if c.process.exitcode is None]), None)
                self._outage.attempt(lambda: self._heartbeat(backend), None)
                next_renew = now + renew_every
            if now >= next_rescue:
                self._outage.attempt(lambda: self._rescue(backend), None)
                next_rescue = now + 5.0
            if now >= next_control:
                self._outage.attempt(lambda: self._check_restart(backend), None)
                next_control = now + 1.0
            if now >= next_prune:
                self._outage.attempt(lambda: self._prune(backend), None)
                next_prune = now + 300.0
            wait([c.process.sentinel for c in self.children if c.process.exitcode is None], timeout=TICK)

    def _prune(self, backend: Backend) -> None:
        backend.prune(time.time() - self.settings.keep_done_hours * 3600)
        sweep(self.settings, backend.holders(), older_than=self.settings.lease + 3600)

    def _all_reaped(self) -> bool:
        return all(c.reaped for c in self.children)

    def _reap(self, backend: Backend, child: Child) -> None:
        """A child exited: account for its jobs, maybe replace it."""
        from .worker_child import LOCKED, RECYCLE

        if child.reaped:
            return
        child.reaped = True
        child.process.join()
        code = child.process.exitcode
        done, failed, retried = child.slot.counts()
        job_id = child.slot.job_id()
        if code == LOCKED:
            # A run that does not wait: leave the claim to the next worker's rescue (its file
            # says what ran), stop, and exit 3.
            self._gave_up = self._gave_up or DatabaseLocked(
                f"database {self.settings.db_path} stayed locked past lock_budget ({self.settings.lock_budget:g}s)",
                hint="another process holds its write lock; try again, or raise lock_budget")
            self.stop()
        else:
            if child.slot.abandoned():
                exc: Exception | None = None  # a stop that could not wait: given back, attempt not counted
            elif child.killed_for and child.killed_for == job_id:
                exc = JobTimeout("the job ran past its timeout and was killed")
            else:
                exc = WorkerLost(f"the worker process died while running the job (exit code {code})")
            # While the database server is gone, left to the leases (a later rescue settles them).
            counts = self._outage.attempt(
                lambda: settle(self.app, child.token, backend.reserved_by(child.token), exc, expired=False,
                               tries_of=self._tries, running=job_id or None), {"failed": 0, "retry": 0})
            failed += counts["failed"]
            retried += counts["retry"]
        self._finished[0] += done
        self._finished[1] += failed
        self._finished[2] += retried
        child.slot.reset_counts()
        crashed_at_start = code not in (0, RECYCLE, LOCKED) and not job_id and time.monotonic() - child.started < 2
        self._crashes = self._crashes + 1 if crashed_at_start else 0
        if self._crashes >= 5:
            log.error("worker processes keep dying at start-up; stopping", extra={"event": "crash_loop"})
            self.stop()
        # Exit code 0: it stopped by itself (empty queue in cron mode, or --max-jobs reached).
        if not self._stopping and code != 0:
            self._spawn(child.index)

    def _tries(self, job) -> int:
        from .runner import limits

        return limits(self.app, job, self.options.tries, self.options.timeout)[0]

    def _enforce_timeout(self, child: Child) -> None:
        job_id, deadline = child.slot.current()
        if job_id and deadline and time.time() > deadline + HARD_KILL_MARGIN and child.killed_for is None:
            child.killed_for = job_id
            log.warning("job killed", extra={"event": "timeout", "job": {"id": job_id}})
            child.process.kill()

    def _tend(self) -> None:
        """What supervision needs no database for; also run while waiting for a held lock."""
        if self._stopping and self._stop_deadline and time.monotonic() >= self._stop_deadline:
            self._kill_all()
        for child in self.children:
            if child.process.exitcode is None:
                self._enforce_timeout(child)

    def _tend_while_waiting(self, waited: float) -> None:
        """Between tries for a held lock: supervise; once stopping with no child left, stop
        waiting past lock_budget (the claim files and leases settle what is left)."""
        self._tend()
        if (self._stopping and waited > self.settings.lock_budget
                and all(c.process.exitcode is not None for c in self.children)):
            raise DatabaseLocked(f"database {self.settings.db_path} stayed locked past lock_budget while stopping",
                                 hint="its jobs go back when their leases run out")

    def _kill_all(self) -> None:
        """Past the grace period, or a second signal: stop children now; the loop reaps them
        and gives their jobs back."""
        for child in self.children:
            if child.process.exitcode is None:
                child.slot.abandon()  # its job goes back to pending, attempt not counted
                child.process.kill()
        self._stop_deadline = None

    def _stop_children(self, backend: Backend) -> None:
        """On the way out, normal or not: no child outlives its supervisor. Children still
        running here (the supervisor is failing) are killed, then accounted for if the
        database lets us; otherwise their leases run out and their claim files tell the
        worker that rescues them what they did."""
        self._stopping = True
        live = [c for c in self.children if c.process.exitcode is None]
        for child in live:
            child.process.kill()
        for child in self.children:
            child.process.join()
        for child in live:
            try:
                self._reap(backend, child)
            except Exception as exc:  # the failure we are leaving on may be the database's
                log.error("could not record a stopped worker process's jobs; their leases will run out",
                          extra={"event": "stop_error", "error": f"{type(exc).__name__}: {exc}"})
                break

    def stop(self) -> None:
        """Stop claiming; running jobs get the grace period to finish."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_deadline = time.monotonic() + self.settings.grace
        for child in self.children:
            child.slot.request_stop()

    def _publish(self) -> None:
        done, failed, retried = self._finished
        for child in self.children:
            if not child.reaped:
                d, f, r = child.slot.counts()
                done, failed, retried = done + d, failed + f, retried + r
        changed = (done, failed, retried) != (self.report.done, self.report.failed, self.report.retried)
        self.report.done, self.report.failed, self.report.retried = done, failed, retried
        now = time.monotonic()
        # Also every half second: a long job (an archive) shows its progress while it runs.
        if self.on_progress and (changed or now - self._published > 0.5):
            self._published = now
            self.on_progress(self.report)

    def _rescue(self, backend: Backend) -> None:
        """Jobs whose lease expired (their worker was killed): the running one counts an
        attempt and runs again; its claim's finished jobs are done, unstarted ones go back."""
        rescuer = f"{self.id}/rescue"
        by_token: dict[str, list] = {}
        for job, token in backend.rescue_expired(rescuer):  # now held by the rescuer
            by_token.setdefault(token, []).append(job)
        for token, jobs in by_token.items():
            settle(self.app, token, jobs, WorkerLost("the worker holding the job stopped renewing its lease"),
                   expired=True, tries_of=self._tries, holder=rescuer)
        # A worker of this host whose process is gone: its jobs now, not after its lease.
        rescue_dead_workers(self.app, self._tries)

    # -- signals -----------------------------------------------------------------------------

    def _install_signals(self) -> dict:
        previous: dict = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # run from a thread (a web app's): the caller stops it with stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_signals(self, previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("stopping", extra={"event": "stopping", "signal": signal.Signals(signum).name})
            self.stop()
        else:
            self._stop_deadline = time.monotonic()  # the loop kills the children now

    # -- the workers table, for `status` ---------------------------------------------------------

    def _register(self, backend: Backend) -> None:
        host, boot_id, pid_ns = identity()
        started = process_start(os.getpid())
        backend.register_worker(self.id, host, os.getpid(), self.options.queues, self.options.concurrency,
                                boot_id=boot_id, pid_ns=pid_ns, pid_start=started[1] if started else None)

    def _heartbeat(self, backend: Backend) -> None:
        backend.heartbeat(self.id, [c.slot.current()[0] for c in self.children if c.process.exitcode is None])

    def _check_restart(self, backend: Backend) -> None:
        """`photojobs queue restart` (a deploy): finish the current jobs and exit."""
        requested = backend.restart_requested_at()
        if not self._stopping and requested is not None and requested > self.started_at:
            log.info("restart requested", extra={"event": "restart"})
            self.stop()

    def _unregister(self, backend: Backend) -> None:
        backend.unregister_worker(self.id)
