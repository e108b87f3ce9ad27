"""The schedule: tasks from `[schedule]` in photojobs.toml that only enqueue; APScheduler 3.x's
triggers compute their times, and one loop (`run_due`) enqueues what is due.

    [schedule]
    timezone = "Europe/Amsterdam"        # every task's zone unless it names its own (default UTC)

    [schedule.cleanup-downloads]         # a default task, moved to 04:15
    cron = "15 4 * * *"

    [schedule.heartbeat]                 # a task of your own
    every = "10m"                        # an exact period: 90, "90s", "10m", "2h", "1d", "1h30m"
    job = "noop"
    payload = { n = 1 }
    timezone = "UTC"

    [schedule.thumbnail-sweep]
    enabled = false                      # switch a default task off

A cron expression has five fields with crontab's meaning (weekday 0 and 7 are Sunday).
Each time a task fires, its run (task, run time in UTC) is inserted into `schedule_runs`
and its job dispatched in the same transaction: the table's primary key turns a second
scheduler's insert of the same run into a no-op, so two schedulers (two hosts, a restart)
never enqueue a run twice. Missed runs are coalesced: after a laptop slept, or when a
scheduler starts after its last recorded run, a task catches up once, not once per miss.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .app import App, Dispatch
from .errors import ConfigError, InvalidPayload, PhotojobsError, UnknownJob
from .schedule_config import UNITS, TaskSettings, crontab_weekdays, parse_every  # noqa: F401 - re-exported
from .settings import Settings
from .storage import schedule_runs

log = logging.getLogger("photojobs.schedule")

UTC = timezone.utc
WAKE_EVERY = 10.0  # seconds: the clock is re-read this often, so a resumed laptop is noticed soon
RETRY_AFTER = 30.0  # seconds before a run that could not be enqueued is tried again
ONCE_WINDOW = 300.0  # seconds `run --once` looks back for a task that has never run


# -- triggers ---------------------------------------------------------------------------------

class ZonedCronTrigger(CronTrigger):
    """A CronTrigger whose times are real instants in their zone across daylight-saving changes.

    A wall time that does not exist (the hour skipped in spring) runs an hour later on that
    day; a fixed-time task whose wall time happens twice (the hour repeated in autumn) runs
    once, at the first occurrence, as cron does. Tasks with `*` in the minute or hour run
    in both occurrences of the repeated hour, since time goes on.
    """

    skip_repeated_hour = True

    def get_next_fire_time(self, previous_fire_time, now):
        while True:
            fire = super().get_next_fire_time(previous_fire_time, now)
            if fire is None:
                return None
            fire = fire.astimezone(UTC).astimezone(self.timezone)  # a time in the spring gap becomes real
            if self.skip_repeated_hour and _second_occurrence(fire):
                previous_fire_time = now = fire
                continue
            return fire


def _second_occurrence(moment: datetime) -> bool:
    """Whether this local time is the second of two instants with the same wall time."""
    return moment.fold == 1 and moment.utcoffset() != moment.replace(fold=0).utcoffset()


def describe_every(seconds: int) -> str:
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# -- tasks ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Task(TaskSettings):
    """A configured task (schedule_config.TaskSettings) with its APScheduler trigger."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def rule(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {describe_every(self.every or 0)}"

    def trigger(self) -> CronTrigger | IntervalTrigger:
        if self.cron:
            fields = self.cron.split()
            if len(fields) != 5:
                raise ValueError(f"5 fields expected, found {len(fields)}")
            fields[4] = crontab_weekdays(fields[4])
            trigger = ZonedCronTrigger.from_crontab(" ".join(fields), timezone=self.zone)
            trigger.skip_repeated_hour = not (fields[0].startswith("*") or fields[1].startswith("*"))
            return trigger
        # Anchored at a fixed instant, so every scheduler computes the same run times.
        anchor = datetime(2000, 1, 1, tzinfo=self.zone)
        return IntervalTrigger(seconds=self.every, start_date=anchor, timezone=self.zone)

    def next_runs(self, start: datetime, count: int) -> list[datetime]:
        """The next `count` run times at or after `start`, in the task's zone."""
        trigger, runs, previous = self.trigger(), [], None
        while len(runs) < count:
            fire = trigger.get_next_fire_time(previous, start)
            if fire is None:
                break
            runs.append(fire.astimezone(UTC).astimezone(self.zone))
            previous = start = fire
        return runs

    def latest_run(self, after: datetime, until: datetime) -> datetime | None:
        """The last run time in (after, until], if any: the one a catch-up enqueues.

        Searched from `until` backwards in growing windows, so a minutely task that missed
        a month costs a day's steps, not a month's.
        """
        if self.every:
            anchor = datetime(2000, 1, 1, tzinfo=self.zone).timestamp()
            steps = (until.timestamp() - anchor) // self.every
            latest = datetime.fromtimestamp(anchor + steps * self.every, tz=self.zone)
            return latest if latest > after else None
        for window in (timedelta(days=1), timedelta(days=32), None):
            start = after if window is None else max(after, until - window)
            latest = self._last_fire_between(start, until)
            if latest is not None or start == after:
                return latest
        return None

    def _last_fire_between(self, after: datetime, until: datetime) -> datetime | None:
        trigger, latest, previous = self.trigger(), None, None
        start = after + timedelta(microseconds=1)
        while True:
            fire = trigger.get_next_fire_time(previous, start)
            if fire is None or fire > until:
                return latest
            latest = previous = start = fire


def load_tasks(settings: Settings) -> list[Task]:
    """The tasks of `settings.schedule` (the defaults merged with [schedule], checked at load),
    in order, disabled ones included. A cron rule APScheduler refuses though its fields
    passed the load's check is a ConfigError here."""
    tasks = [Task(**vars(spec)) for spec in settings.schedule.tasks]
    for task in (t for t in tasks if t.cron):
        try:
            task.trigger()
        except ValueError as exc:
            where = f"{settings.config_path}: " if settings.config_path else ""
            raise ConfigError(f"{where}[schedule.{task.name}] cron = {task.cron!r} is not a crontab expression:"
                              f" {exc}") from None
    return tasks


def check_jobs(app: App, tasks: Iterable[Task]) -> None:
    """Refuse a schedule whose enabled tasks name unregistered jobs or payloads that do not fit."""
    problems = [p for p in (job_problem(app, t) for t in tasks if t.enabled) if p]
    if problems:
        raise ConfigError("; ".join(problems),
                          hint="register the job (photojobs.jobs or `imports`), or set enabled = false in its table")


def job_problem(app: App, task: Task) -> str | None:
    """Why the task cannot enqueue its job, or None."""
    try:
        app.spec(task.job).validate(task.payload)
    except UnknownJob:
        return f"schedule task {task.name!r} runs job {task.job!r}, which is not registered"
    except InvalidPayload as exc:
        return f"schedule task {task.name!r}: {exc}"
    return None


# -- runs -------------------------------------------------------------------------------------

@dataclasses.dataclass
class RunResult:
    task: str
    run_at: str  # the run's scheduled time, UTC, ISO 8601
    job_id: int | None = None
    outcome: str = "enqueued"  # enqueued | taken (another scheduler did it) | skipped (a live job) | error
    error: str | None = None


def run_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def enqueue_run(app: App, task: Task, run_at: datetime) -> RunResult:
    """Record the run and dispatch its job in one transaction; a run already recorded is left alone."""
    key = run_key(run_at)
    with app.transaction() as tx:
        if not schedule_runs.record(tx, task.name, key, time.time()):
            return RunResult(task.name, key, None, "taken")
        job_id = app.dispatch_many([Dispatch(task.job, task.payload, queue=task.queue)], skip_duplicates=True)[0]
        schedule_runs.set_job(tx, task.name, key, job_id)
    return RunResult(task.name, key, job_id, "enqueued" if job_id else "skipped")


def last_runs(app: App) -> dict[str, dict]:
    """Each task's latest recorded run: run_at, enqueued_at, job_id."""
    return {task: {"run_at": row["run_at"], "enqueued_at": row["enqueued_at"], "job_id": row["job_id"]}
            for task, row in schedule_runs.latest(app.backend).items()}


def parse_key(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def run_due(app: App, tasks: Iterable[Task], now: datetime | None = None, *, since: datetime | None = None,
            keep_going: bool = False) -> list[RunResult]:
    """Enqueue each enabled task's latest due run once: `schedule run --once`, and every
    tick of the long-running `schedule run`.

    A task looks back to its last recorded run, so a host that was down catches up once;
    one that never ran looks back to `since` (default ONCE_WINDOW seconds). With
    `keep_going`, a run that cannot be enqueued (a locked database) is reported as an
    "error" result and left unrecorded, so a later call tries it again.
    """
    now = now or datetime.now(UTC)
    tasks = [t for t in tasks if t.enabled]
    check_jobs(app, tasks)
    recorded = last_runs(app)
    results = []
    for task in tasks:
        last = recorded.get(task.name)
        after = parse_key(last["run_at"]) if last else since or now - timedelta(seconds=ONCE_WINDOW)
        due = task.latest_run(after, now)
        if due is None:
            continue
        try:
            results.append(enqueue_run(app, task, due))
        except PhotojobsError as exc:
            if not keep_going:
                raise
            results.append(RunResult(task.name, run_key(due), None, "error",
                                     f"{exc}; retrying in {RETRY_AFTER:.0f}s"))
    return results


# -- the long-running schedule ----------------------------------------------------------------

class Scheduler:
    """`schedule run`: each tick calls `run_due`, the code `schedule run --once` runs, then
    the loop sleeps until the next run is due. APScheduler's triggers compute the times;
    nothing else of it runs, so one engine decides what is due and coalesces what was missed.
    """

    def __init__(self, settings: Settings, tasks: list[Task] | None = None,
                 on_run: Callable[[RunResult], None] | None = None):
        self.settings = settings
        self.tasks = [t for t in (tasks if tasks is not None else load_tasks(settings)) if t.enabled]
        self.on_run = on_run
        self.app = App(settings)
        self.started: datetime | None = None
        self._failed_at: datetime | None = None  # the last tick that could not enqueue a run

    def start(self, now: datetime | None = None) -> None:
        """Check the jobs. A task that never ran catches up no further back than this start."""
        check_jobs(self.app, self.tasks)
        self.started = now or datetime.now(UTC)

    def tick(self, now: datetime | None = None) -> list[RunResult]:
        """Enqueue what is due now; report each run (log and `on_run`)."""
        now = now or datetime.now(UTC)
        results = run_due(self.app, self.tasks, now, since=self.started, keep_going=True)
        self._failed_at = now if any(r.outcome == "error" for r in results) else None
        for result in results:
            self._report(result)
        return results

    def seconds_to_next(self, now: datetime | None = None) -> float:
        """How long to sleep: until the next run is due, a failed run's retry, or WAKE_EVERY
        (the clock is re-read that often: a wait does not count time a laptop slept)."""
        now = now or datetime.now(UTC)
        wait = WAKE_EVERY
        if self._failed_at is not None:
            wait = min(wait, RETRY_AFTER - (now - self._failed_at).total_seconds())
        after = now + timedelta(microseconds=1)
        for task in self.tasks:
            upcoming = task.next_runs(after, 1)
            if upcoming:
                wait = min(wait, (upcoming[0] - now).total_seconds())
        return max(wait, 0.0)

    def _report(self, result: RunResult) -> None:
        extra = {"event": "scheduled", "task": result.task, "run_at": result.run_at, "outcome": result.outcome,
                 "error": result.error}
        if result.job_id is not None:
            job_name = next((t.job for t in self.tasks if t.name == result.task), None)
            extra["job"] = {"id": result.job_id, "name": job_name}
        log.log(logging.WARNING if result.error else logging.INFO, "%s %s: %s", result.task, result.run_at,
                result.outcome, extra=extra)
        if self.on_run:
            self.on_run(result)

    def stop(self) -> None:
        self.app.close()


def run_forever(settings: Settings, on_run: Callable[[RunResult], None] | None = None,
                stop: threading.Event | None = None) -> None:
    """Run the schedule until SIGTERM or SIGINT (or `stop` is set), then stop cleanly."""
    stop = stop or threading.Event()
    scheduler = Scheduler(settings, on_run=on_run)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        scheduler.start()
        log.info("schedule started with %d task(s)", len(scheduler.tasks))
        while not stop.is_set():
            scheduler.tick()
            stop.wait(scheduler.seconds_to_next())
    finally:
        scheduler.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def listing(settings: Settings, start: datetime | None = None, count: int = 3) -> list[dict]:
    """Each task with its rule, zone, job, last run and next `count` run times."""
    start = start or datetime.now(UTC)
    tasks = load_tasks(settings)
    with App(settings) as app:
        recorded = last_runs(app)
        rows = []
        for task in tasks:
            runs = task.next_runs(start, count) if task.enabled else []
            rows.append({
                "task": task.name, "job": task.job, "payload": task.payload, "queue": task.queue,
                "rule": task.rule, "timezone": task.timezone, "enabled": task.enabled,
                "next_runs": [r.isoformat() for r in runs],
                "next_runs_utc": [run_key(r) for r in runs],
                "next_runs_local": [f"{r:%a %Y-%m-%d %H:%M %Z}" for r in runs],
                "last_run": recorded.get(task.name),
                "problem": job_problem(app, task),
            })
    return rows
