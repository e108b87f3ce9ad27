"""The CLI: `schedule list` across daylight-saving changes, `schedule run` as a real process."""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import datetime

from tests.conftest import wait_for

from .conftest import add_schedule, jobs_named, runs

AMSTERDAM = """
[schedule]
timezone = "Europe/Amsterdam"
[schedule.night]
cron = "30 2 * * *"
job = "noop"
"""


def _listing(cli, start: str, count: int = 3) -> dict:
    done = cli("schedule", "list", "--from", start, "--count", str(count), "--json")
    assert done.returncode == 0, done.stderr
    return {row["task"]: row for row in json.loads(done.stdout)}


def test_schedule_list_across_the_spring_change_keeps_wall_clock_times(cli, workdir):
    add_schedule(workdir, AMSTERDAM)
    rows = _listing(cli, "2026-03-27T12:00:00Z")
    cleanup = rows["cleanup-downloads"]
    assert cleanup["rule"] == "cron 0 3 * * *" and cleanup["timezone"] == "Europe/Amsterdam"
    assert cleanup["next_runs"] == ["2026-03-28T03:00:00+01:00", "2026-03-29T03:00:00+02:00",
                                    "2026-03-30T03:00:00+02:00"]
    assert cleanup["next_runs_utc"] == ["2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"]
    assert cleanup["next_runs_local"][1] == "Sun 2026-03-29 03:00 CEST"
    # 02:30 does not exist on 29 March (02:00 -> 03:00): that day it runs once, an hour later.
    assert rows["night"]["next_runs"] == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00",
                                          "2026-03-30T02:30:00+02:00"]
    assert rows["prune-failed"]["next_runs"][0] == "2026-03-29T04:00:00+02:00"  # a Sunday


def test_schedule_list_across_the_autumn_change_runs_a_repeated_hour_once(cli, workdir):
    add_schedule(workdir, AMSTERDAM)
    rows = _listing(cli, "2026-10-23T12:00:00Z")
    # 02:30 happens twice on 25 October (03:00 -> 02:00): a daily task runs at the first.
    assert rows["night"]["next_runs"] == ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00",
                                          "2026-10-26T02:30:00+01:00"]
    assert rows["cleanup-downloads"]["next_runs_utc"] == ["2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z",
                                                          "2026-10-26T02:00:00Z"]


def test_schedule_list_as_a_table_and_its_errors(cli, workdir):
    add_schedule(workdir, '[schedule.typo]\nevery = "1h"\njob = "no_such_job"')
    done = cli("schedule", "list", env={"COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert "cleanup-downloads" in done.stdout and "every 1h UTC" in done.stdout
    assert "'no_such_job', which is not registered" in done.stdout
    bad = cli("schedule", "list", "--from", "yesterday")
    assert bad.returncode == 2 and "--from 'yesterday' is not an ISO time" in bad.stderr


def test_schedule_run_refuses_an_unregistered_job_in_one_line(cli, workdir):
    add_schedule(workdir, '[schedule.typo]\nevery = "1h"\njob = "no_such_job"')
    done = cli("schedule", "run", timeout=20)
    assert done.returncode == 3
    assert done.stderr.startswith("Error: schedule task 'typo' runs job 'no_such_job', which is not registered")
    assert len(done.stderr.strip().splitlines()) == 1


def test_two_real_schedulers_enqueue_each_run_once_and_stop_on_sigterm(spawn, every_second):
    procs = [spawn("schedule", "run"), spawn("schedule", "run")]
    wait_for(lambda: len(runs(every_second, "tick")) >= 4, timeout=20, message="four runs of the tick task")
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        outputs.append(out)
    recorded = runs(every_second, "tick")
    jobs = jobs_named(every_second, "noop")
    assert len(jobs) == len(recorded) == len({r[0] for r in recorded}) >= 4
    assert all(json.loads(payload) == {"n": 7} for _, payload in jobs)
    text = "".join(outputs)
    enqueued = re.findall(r"^tick (\S+): enqueued job", text, re.M)
    assert sorted(enqueued) == sorted(r[0] for r in recorded)  # each run by one of the two, once
    assert all("Schedule stopped." in out for out in outputs)


def test_a_scheduler_stopped_for_seconds_catches_up_once(spawn, every_second):
    """SIGSTOP freezes the process as a sleeping laptop would; after SIGCONT the missed
    seconds are coalesced into one run instead of one run each."""
    proc = spawn("schedule", "run")
    wait_for(lambda: len(runs(every_second, "tick")) >= 2, timeout=20, message="two runs")
    proc.send_signal(signal.SIGSTOP)
    stopped_at = time.time()
    frozen_at = len(runs(every_second, "tick"))
    time.sleep(4)  # the "sleep" being simulated
    woke_at = time.time()
    proc.send_signal(signal.SIGCONT)
    wait_for(lambda: len(runs(every_second, "tick")) >= frozen_at + 2, timeout=20, message="runs after waking")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)
    assert proc.returncode == 0
    stamps = [datetime.fromisoformat(r[0].replace("Z", "+00:00")).timestamp() for r in runs(every_second, "tick")]
    asleep = [s for s in stamps if stopped_at + 1 < s < woke_at - 1]
    assert asleep == [], asleep  # the seconds missed while frozen were not each enqueued...
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) >= 3, gaps  # ...but coalesced into the one run made on waking
