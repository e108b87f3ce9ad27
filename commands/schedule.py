"""schedule run | list, cron print: running photojobs unattended."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Optional

import typer

from . import _common

schedule_app = typer.Typer(help="The schedule: tasks that enqueue jobs at set times ([schedule] in photojobs.toml).",
                           no_args_is_help=True)
cron_app = typer.Typer(help="Cron: crontab lines for this installation.", no_args_is_help=True)


@schedule_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="Enqueue the runs due now (catching up once) and exit: for cron.")] = False,
    json_out: _common.JsonOption = False,
) -> None:
    """Run the schedule until SIGTERM or Ctrl-C; its tasks only enqueue jobs for the workers."""
    from photojobs import schedule

    with _common.open_app() as app:  # the settings, and the log handlers (JSON lines under storage/logs)
        tasks = schedule.load_tasks(app.settings)
        if once:
            results = schedule.run_due(app, tasks)
            if _common.wants_json(json_out):
                _common.print_json([dataclasses.asdict(r) for r in results])
                return
            _common.say(f"Schedule run at {_now()}: {len(results) or 'nothing'} due")
            for result in results:
                _common.say(_describe(result))
            _common.say(_next_up(tasks))
            return
        settings = app.settings
    _common.say(f"Schedule starting at {_now()} with {sum(t.enabled for t in tasks)} task(s); {_next_up(tasks)}")
    schedule.run_forever(settings, on_run=lambda result: _common.say(_describe(result)))
    _common.say("Schedule stopped.")


def _now() -> str:
    from datetime import datetime

    return f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}"


def _next_up(tasks) -> str:
    """"next: cleanup-downloads at 2026-12-02 04:15 CET": the enabled task that runs first."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    upcoming = [(runs[0], task.name) for task in tasks if task.enabled for runs in [task.next_runs(now, 1)] if runs]
    if not upcoming:
        return "no task is enabled"
    when, name = min(upcoming)
    return f"next: {name} at {when:%Y-%m-%d %H:%M %Z}"


def _describe(result) -> str:
    if result.outcome == "enqueued":
        return f"{result.task} {result.run_at}: enqueued job {result.job_id}"
    if result.outcome == "taken":
        return f"{result.task} {result.run_at}: already enqueued by another scheduler"
    if result.outcome == "skipped":
        return f"{result.task} {result.run_at}: skipped, its job is still queued or running"
    return f"{result.task} {result.run_at}: error: {result.error}"


@schedule_app.command("list")
def list_(
    count: Annotated[int, typer.Option("--count", min=1, max=100, help="Next run times to show per task.")] = 3,
    from_: Annotated[Optional[str], typer.Option("--from", help="Compute from this ISO time (default: now).")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Each task: its job, rule, time zone, last run and next run times (daylight saving applied)."""
    from photojobs import schedule

    rows = schedule.listing(_common.settings(), _parse_instant(from_), count)
    if _common.wants_json(json_out):
        _common.print_json(rows)
        return
    view = [{"task": r["task"] + ("" if r["enabled"] else " (off)"), "job": r["job"],
             "rule": f"{r['rule']} {r['timezone']}", "next runs": "\n".join(r["next_runs_local"]) or "-",
             "last run": (r["last_run"] or {}).get("run_at") or "-"} for r in rows]
    _common.table(view, ["task", "job", "rule", "next runs", "last run"], empty="No tasks.")
    for r in rows:
        if r["problem"] and r["enabled"]:
            _common.say(f"[yellow]Warning:[/] {r['problem']}; `schedule run` refuses to start until it is fixed.")


def _parse_instant(text: Optional[str]):
    from datetime import datetime, timezone

    from photojobs.errors import UsageError

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--from {text!r} is not an ISO time such as 2026-03-28T12:00:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@cron_app.command("print")
def print_() -> None:
    """Print crontab lines for this installation: the drain commands and the schedule."""
    import sys

    from photojobs.crontab import installation_crontab

    sys.stdout.write(installation_crontab(_common.settings()))


def register(app: typer.Typer) -> None:
    """Add the schedule and cron commands to the main app."""
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(cron_app, name="cron")
