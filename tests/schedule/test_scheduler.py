"""The scheduler in-process: unique runs across schedulers, coalesced catch-up, config errors."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from photojobs import schedule
from photojobs.errors import ConfigError
from photojobs.settings import load
from tests.api_views import queued_jobs
from tests.conftest import wait_for

from .conftest import add_schedule, jobs_named, runs

UTC = timezone.utc


def _settings(workdir):
    return load(config=workdir / "photojobs.toml")


def _task(settings, name):
    return next(t for t in schedule.load_tasks(settings) if t.name == name)


def test_two_schedulers_on_one_database_enqueue_each_run_once(every_second):
    settings = _settings(every_second)
    seen: list[list[schedule.RunResult]] = [[], []]
    lock = threading.Lock()

    def recorder(index):
        def on_run(result):
            with lock:
                seen[index].append(result)
        return on_run

    stop = threading.Event()
    threads = [threading.Thread(target=schedule.run_forever, args=(settings, recorder(i), stop)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(runs(every_second, "tick")) >= 4, timeout=15, message="four ticks enqueued")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)  # both stopped when asked
    recorded = runs(every_second, "tick")
    jobs = jobs_named(every_second, "noop")
    assert len(jobs) == len(recorded) == len({r[0] for r in recorded})
    assert sorted(r[1] for r in recorded) == [j[0] for j in jobs]
    both = [r for r in seen[0] + seen[1] if r.task == "tick"]
    enqueued = [r.run_at for r in both if r.outcome == "enqueued"]
    assert sorted(enqueued) == [r[0] for r in recorded]  # each run by one scheduler, once
    assert {r.outcome for r in both} <= {"enqueued", "taken"}  # the other saw it recorded, or lost the race


def test_the_same_run_enqueued_twice_is_one_job(app):
    task = schedule.Task("nightly", "noop", {}, "UTC", cron="0 3 * * *")
    run_at = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)
    first = schedule.enqueue_run(app, task, run_at)
    again = schedule.enqueue_run(app, task, run_at.astimezone(timezone(timedelta(hours=2))))  # same instant
    assert (first.outcome, again.outcome) == ("enqueued", "taken")
    assert first.run_at == again.run_at == "2026-03-29T03:00:00Z"
    assert queued_jobs(app) == 1 and app.backend.get(first.job_id)["name"] == "noop"


def test_a_daily_task_missed_three_times_while_asleep_runs_once(workdir):
    """A laptop asleep from before 03:00 three days ago: the scheduler wakes with its daily
    run three days overdue, and enqueues one run (the latest missed), not three."""
    add_schedule(workdir, '[schedule.daily]\ncron = "0 3 * * *"\njob = "noop"\ntimezone = "UTC"')
    settings = _settings(workdir)
    daily = _task(settings, "daily")
    now = datetime.now(UTC)
    latest_missed = daily.latest_run(now - timedelta(days=1), now)
    slept_through = latest_missed - timedelta(days=2)
    results = []
    scheduler = schedule.Scheduler(settings, tasks=[daily], on_run=results.append)
    scheduler.start(now=slept_through - timedelta(minutes=1))  # it started, then the laptop slept
    try:
        scheduler.tick(now)  # the first tick after waking
        scheduler.tick(now + timedelta(seconds=10))  # room for a wrong second or third run to show up
        wait = scheduler.seconds_to_next(now)
    finally:
        scheduler.stop()
    assert [r.run_at for r in results] == [schedule.run_key(latest_missed)]
    assert [r[0] for r in runs(workdir, "daily")] == [schedule.run_key(latest_missed)]
    assert len(jobs_named(workdir, "noop")) == 1
    assert wait == min(schedule.WAKE_EVERY, (latest_missed + timedelta(days=1) - now).total_seconds())


def test_a_restarted_scheduler_catches_up_once_from_its_last_recorded_run(app, workdir):
    add_schedule(workdir, '[schedule.daily]\ncron = "0 3 * * *"\njob = "noop"\ntimezone = "UTC"')
    settings = _settings(workdir)
    daily = _task(settings, "daily")
    now = datetime.now(UTC)
    latest = daily.latest_run(now - timedelta(days=1), now)
    schedule.enqueue_run(app, daily, latest - timedelta(days=4))  # its last run, four days ago
    results = []
    scheduler = schedule.Scheduler(settings, tasks=[daily], on_run=results.append)
    scheduler.start()
    try:
        scheduler.tick()
        scheduler.tick()
    finally:
        scheduler.stop()
    assert [r.run_at for r in results] == [schedule.run_key(latest)]
    assert len(jobs_named(workdir, "noop")) == 2


def test_run_once_enqueues_what_is_due_and_a_second_call_nothing(app, workdir):
    add_schedule(workdir, '[schedule.daily]\ncron = "0 3 * * *"\njob = "noop"\ntimezone = "UTC"')
    settings = _settings(workdir)
    tasks = [t for t in schedule.load_tasks(settings) if t.name == "daily"]
    daily = tasks[0]
    now = datetime.now(UTC)
    latest = daily.latest_run(now - timedelta(days=1), now)
    schedule.enqueue_run(app, daily, latest - timedelta(days=3))
    first = schedule.run_due(app, tasks, now)
    second = schedule.run_due(app, tasks, now + timedelta(seconds=30))
    assert [(r.run_at, r.outcome) for r in first] == [(schedule.run_key(latest), "enqueued")]
    assert second == []


def test_a_task_whose_job_is_still_queued_is_recorded_as_skipped(app):
    task = schedule.Task("sweep", "sweep_thumbnails", {}, "UTC", every=60)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.enqueue_run(app, task, t0).outcome == "enqueued"
    second = schedule.enqueue_run(app, task, t0 + timedelta(minutes=1))
    assert second.outcome == "skipped" and second.job_id is None  # its unique key is live


def test_a_task_naming_an_unregistered_job_is_refused_clearly(workdir):
    add_schedule(workdir, '[schedule.typo]\nevery = "1h"\njob = "no_such_job"')
    with pytest.raises(ConfigError, match="schedule task 'typo' runs job 'no_such_job', which is not registered"):
        schedule.Scheduler(_settings(workdir)).start()


@pytest.mark.parametrize("table, message", [
    ('[schedule.x]\njob = "noop"', "exactly one of cron"),
    ('[schedule.x]\njob = "noop"\ncron = "0 3 * *"', "not a crontab expression"),
    ('[schedule.x]\njob = "noop"\ncron = "0 25 * * *"', "not a crontab expression"),
    ('[schedule.x]\njob = "noop"\nevery = "soon"', "is not a period"),
    ('[schedule.x]\njob = "noop"\nevery = 0', "is not a period"),
    ('[schedule.x]\njob = "noop"\nevery = 60\ntimezone = "Mars/Olympus"', "not a known time zone"),
    ('[schedule.x]\njob = "noop"\nevery = 60\nwhen = 1', "unknown key 'when'"),
    ('[schedule]\ntimezone = "Nowhere"', "not a known time zone"),
    ('[schedule.x]\ncron = "* * * * *"', "needs job"),
])
def test_bad_schedule_tables_are_refused_with_a_message(workdir, table, message):
    add_schedule(workdir, table)
    with pytest.raises(ConfigError, match=message):
        schedule.load_tasks(_settings(workdir))


def test_defaults_can_be_changed_and_switched_off(workdir):
    add_schedule(workdir, """
[schedule]
timezone = "Europe/Amsterdam"
[schedule.cleanup-downloads]
every = "6h"
[schedule.thumbnail-sweep]
enabled = false
""")
    tasks = {t.name: t for t in schedule.load_tasks(_settings(workdir))}
    assert tasks["cleanup-downloads"].rule == "every 6h" and tasks["cleanup-downloads"].cron is None
    assert tasks["prune-failed"].payload == {"hours": 168} and tasks["prune-failed"].timezone == "Europe/Amsterdam"
    assert tasks["thumbnail-sweep"].enabled is False


@pytest.mark.parametrize("field, names", [
    ("0", "sun"), ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"), ("*/2", "sun,tue,thu,sat"),
    ("5-7", "sun,fri,sat"), ("sun", "sun"), ("*", "*"), ("1,3", "mon,wed"),
])
def test_crontab_weekday_numbers_mean_what_they_mean_in_crontab(field, names):
    assert schedule.crontab_weekdays(field) == names


def test_a_sunday_rule_fires_on_sundays():
    task = schedule.Task("weekly", "noop", {}, "UTC", cron="0 4 * * 0")
    runs_ = task.next_runs(datetime(2026, 3, 25, tzinfo=UTC), 2)
    assert [r.strftime("%a %H:%M") for r in runs_] == ["Sun 04:00", "Sun 04:00"]


@pytest.mark.parametrize("value, seconds", [(90, 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1d", 86400)])
def test_every_accepts_seconds_and_units(value, seconds):
    assert schedule.parse_every(value) == seconds


def test_a_run_that_meets_a_locked_database_is_tried_again(workdir, monkeypatch):
    import sqlite3

    from tests.conftest import set_config

    set_config(workdir, "lock_budget = 1\nbusy_timeout = 0.1")
    monkeypatch.setattr(schedule, "RETRY_AFTER", 0.5)
    daily = schedule.Task("daily", "noop", {}, "UTC", cron="0 3 * * *")
    results = []
    scheduler = schedule.Scheduler(_settings(workdir), tasks=[daily], on_run=results.append)
    now = datetime.now(UTC)
    due = daily.latest_run(now - timedelta(days=1), now)
    scheduler.start(now=due - timedelta(minutes=1))
    blocker = sqlite3.connect(workdir / "photojobs.db", isolation_level=None)  # SQLite's write lock, held on purpose
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the budget
        scheduler.tick(now)
        assert scheduler.seconds_to_next(now) <= 0.5  # the retry comes soon, not at the next daily run
        blocker.execute("ROLLBACK")
        scheduler.tick(now + timedelta(seconds=0.5))
    finally:
        blocker.close()
        scheduler.stop()
    assert [r.outcome for r in results] == ["error", "enqueued"]
    assert "locked" in results[0].error and results[0].run_at == results[1].run_at == schedule.run_key(due)
    assert len(jobs_named(workdir, "noop")) == 1


def test_a_payload_that_does_not_fit_the_job_is_refused_before_starting(workdir):
    add_schedule(workdir, '[schedule.bad]\nevery = "1h"\njob = "noop"\npayload = { n = "seven" }')
    with pytest.raises(ConfigError, match="schedule task 'bad': noop: n must be int"):
        schedule.Scheduler(_settings(workdir)).start()


def test_catch_up_keeps_interval_runs_on_the_shared_grid(app):
    """A restarted scheduler's catch-up lands on the same run times another scheduler uses,
    so the two keep sharing run keys after it."""
    task = schedule.Task("every7", "noop", {}, "UTC", every=7)
    now = datetime(2026, 3, 29, 12, 0, 0, tzinfo=UTC)
    grid = {r.timestamp() for r in task.next_runs(now - timedelta(hours=1), 600)}
    missed = task.latest_run(now - timedelta(minutes=5, seconds=3), now)
    assert missed.timestamp() in grid and now - missed < timedelta(seconds=7)
    assert task.latest_run(missed, now) is None
