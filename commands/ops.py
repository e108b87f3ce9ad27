"""Operating the queue: failed, status, monitor, queue pause|resume|clear|restart, batch, logs."""

from __future__ import annotations

import sys
from typing import Annotated, Any, List, Optional

import typer

from . import _common

failed_app = typer.Typer(help="Jobs in the failed table: list, show, retry, forget, flush, prune.",
                         no_args_is_help=True)
queue_app = typer.Typer(help="Pause, resume or clear a queue; restart every worker.", no_args_is_help=True)
batch_app = typer.Typer(help="Batches of jobs dispatched together, with their progress.", no_args_is_help=True)

QueueOption = Annotated[Optional[str], typer.Option("--queue", help="Only this queue.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts, cron).")]


def _ask_before_delete(count: int, nothing: str, question: str) -> bool:
    """Whether to go on deleting: False (saying `nothing`) when there is nothing; exit 1 if declined."""
    if count == 0:
        _common.say(nothing)
        return False
    if not _common.confirm(question):
        _common.say("Nothing deleted")
        raise typer.Exit(1)
    return True


def _ops():
    from photojobs import ops

    return ops


# -- failed ------------------------------------------------------------------------------------

@failed_app.command("list")
def failed_list(
    queue: QueueOption = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many, most recent first.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """List failed jobs, most recent first."""
    with _common.open_app() as app:
        rows = _ops().list_failed(app, queue=queue, limit=limit)
    if _common.wants_json(json_out):
        _common.print_json(rows)
        return
    _common.table(rows, ["id", "name", "queue", "attempts", "failed_at", "error"],
                  empty="No failed jobs.")


@failed_app.command("show")
def failed_show(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The failed job's id.")],
    json_out: _common.JsonOption = False,
) -> None:
    """Show a failed job: payload, and every attempt's error with its traceback."""
    with _common.open_app() as app:
        job = _ops().show_failed(app, job_id)
    if _common.wants_json(json_out):
        _common.print_json(job)
        return
    errors = job.pop("errors")
    superseded_by = job.pop("superseded_by")
    _common.show(job, False)
    if superseded_by is not None:
        _common.say(f"\nSuperseded by job {superseded_by}, which succeeded: not in `failed list` any more.")
    for error in errors:
        sys.stdout.write(f"\n--- attempt {error['attempt']} at {error['at']}: {error['error_class']}:"
                         f" {error['message']}\n{(error['traceback'] or '').rstrip()}\n")


@failed_app.command("retry")
def failed_retry(
    job_ids: Annotated[Optional[List[int]], typer.Argument(metavar="[ID]...", help="Failed job ids.")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Retry every failed job.")] = False,
    queue: Annotated[Optional[str], typer.Option("--queue", help="Retry the failed jobs of this queue.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Put failed jobs back as pending with fresh tries (one transaction)."""
    with _common.open_app() as app:
        result = _ops().retry_failed(app, job_ids or (), all_jobs=all_jobs, queue=queue)
    if _common.wants_json(json_out):
        _common.print_json(result)
        return
    retried = result["retried"]
    _common.say(f"Retrying {len(retried)} job(s)" + (f": {', '.join(map(str, retried[:20]))}" if retried else "")
                + ("..." if len(retried) > 20 else ""))
    for skipped in result["skipped"]:
        _common.say(f"Skipped job {skipped['id']}: {skipped['reason']}")


@failed_app.command("forget")
def failed_forget(job_id: Annotated[int, typer.Argument(metavar="ID", help="The failed job's id.")]) -> None:
    """Delete one failed job and its error records."""
    with _common.open_app() as app:
        _ops().forget_failed(app, job_id)
    _common.say(f"Forgot failed job {job_id}")


@failed_app.command("flush")
def failed_flush(
    queue: QueueOption = None,
    yes: YesOption = False,
) -> None:
    """Delete every failed job (of one queue with --queue), after asking."""
    from photojobs.ops.failed import count_flushable

    with _common.open_app() as app:
        if not yes:
            count = count_flushable(app, queue)
            where = f" of queue {queue}" if queue else ""
            if not _ask_before_delete(count, f"No failed jobs{where}",
                                      f"Delete {count} failed job(s){where} and their error records?"):
                return
        count = _ops().flush_failed(app, queue=queue)
    _common.say(f"Deleted {count} failed job(s)")


@failed_app.command("prune")
def failed_prune(
    hours: Annotated[float, typer.Option("--hours", min=0, help="Delete jobs that failed more than N hours ago.")],
) -> None:
    """Delete failed jobs older than --hours."""
    with _common.open_app() as app:
        count = _ops().prune_failed(app, hours)
    _common.say(f"Deleted {count} failed job(s) older than {hours:g}h")


# -- status and monitor -----------------------------------------------------------------------

def _seconds(value: Any) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def _status_view(data: dict) -> Any:
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    def new_table(title: str, columns: list[str]) -> Table:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in columns:
            t.add_column(column, justify="left" if column in ("queue", "host", "queues", "current jobs") else "right",
                         no_wrap=column in ("queue", "host"))
        return t

    # The words of --json and README: pending (ready now), delayed, reserved (running), failed.
    queues = new_table(f"Queues at {data['at']}", ["queue", "pending", "delayed", "reserved", "failed", "oldest",
                                                    "done/h", "failed/h", "mean", "p95"])
    for name, q in data["queues"].items():
        label = escape(name) + (" [yellow](paused)[/yellow]" if q["paused"] else "")
        queues.add_row(label, str(q["pending"]), str(q["delayed"]), str(q["reserved"]),
                       f"[red]{q['failed']}[/red]" if q["failed"] else "0", _seconds(q["oldest_pending_s"]),
                       str(q["done_last_hour"]), str(q["failed_last_hour"]), _seconds(q["mean_s"]), _seconds(q["p95_s"]))
    dead = data["dead_workers"]
    title = (f"Workers: {len(data['workers'])} live" + (f", {len(dead)} dead" if dead else "")
             + (f", {data['stale_workers']} stale" if data["stale_workers"] else ""))
    workers = new_table(title, ["host", "pid", "queues", "procs", "current jobs", "heartbeat"])
    for w in data["workers"] + dead:
        beat = "[red]dead: pid gone[/red]" if w in dead else f"{w['heartbeat_age_s']:.0f}s ago"
        workers.add_row(escape(w["host"] or ""), str(w["pid"]), escape(",".join(w["queues"])), str(w["concurrency"]),
                        ", ".join(map(str, w["current_jobs"])), beat)
    return Group(queues, workers) if data["workers"] or dead else Group(queues, title)


def _status_plain(data: dict) -> None:
    """`status` piped or in a cron log: the view's tables as tab-separated lines (no rich)."""
    queues = [{"queue": name + (" (paused)" if q["paused"] else ""), "pending": q["pending"], "delayed": q["delayed"],
               "reserved": q["reserved"], "failed": q["failed"], "oldest": _seconds(q["oldest_pending_s"]),
               "done/h": q["done_last_hour"], "failed/h": q["failed_last_hour"], "mean": _seconds(q["mean_s"]),
               "p95": _seconds(q["p95_s"])} for name, q in data["queues"].items()]
    _common.table(queues, ["queue", "pending", "delayed", "reserved", "failed", "oldest", "done/h", "failed/h", "mean",
                           "p95"],
                  title=f"Queues at {data['at']}")
    dead = data["dead_workers"]
    title = (f"Workers: {len(data['workers'])} live" + (f", {len(dead)} dead" if dead else "")
             + (f", {data['stale_workers']} stale" if data["stale_workers"] else ""))
    workers = [{"host": w["host"], "pid": w["pid"], "queues": ",".join(w["queues"]), "procs": w["concurrency"],
                "current jobs": ", ".join(map(str, w["current_jobs"])),
                "heartbeat": "dead: pid gone" if w in dead else f"{w['heartbeat_age_s']:.0f}s ago"}
               for w in data["workers"] + dead]
    _common.table(workers, ["host", "pid", "queues", "procs", "current jobs", "heartbeat"], title=title,
                  empty=f"# {title}")


def status(
    json_out: _common.JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C (piped: a new block each time).")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between refreshes with --watch.")] = 1.0,
) -> None:
    """Queue depth (pending, delayed, reserved, failed), oldest wait, throughput and run times; workers."""
    from photojobs.errors import UsageError

    as_json = _common.wants_json(json_out)
    if watch and as_json:
        raise UsageError("--watch and --json exclude each other")
    with _common.open_app() as app:
        if not watch:
            data = _ops().status(app)
            if as_json:
                _common.print_json(data)
            elif sys.stdout.isatty():
                _common.console().print(_status_view(data))
            else:
                _status_plain(data)
            return
        _watch(app, interval)


def _watch(app: Any, interval: float) -> None:
    import signal
    import threading

    from rich.console import Console
    from rich.live import Live

    # Ctrl-C sets a flag the loop checks, so it never lands inside a database call or a redraw.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    ops = _ops()
    try:
        if not sys.stdout.isatty():  # piped or to a file: a block each time, as `vmstat 1` does
            while True:
                _status_plain(ops.status(app))
                sys.stdout.flush()
                if stop.wait(interval):
                    return
        with Live(_status_view(ops.status(app)), console=Console(highlight=False), auto_refresh=False) as live:
            while not stop.wait(interval):
                live.update(_status_view(ops.status(app)), refresh=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def monitor(
    queues: Annotated[str, typer.Argument(help="Comma-separated queues, e.g. emails,photos.")],
    max_pending: Annotated[Optional[int], typer.Option("--max", min=0, help="Alert over N jobs pending.")] = None,
    max_age: Annotated[Optional[float], typer.Option("--max-age", min=0,
                                                     help="Alert when the oldest pending job waited over S seconds.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Exit 1 with a line per queue over a threshold (for cron mail or alerting); else 0."""
    with _common.open_app() as app:
        result = _ops().monitor(app, queues, max_pending=max_pending, max_age=max_age)
    if _common.wants_json(json_out):
        _common.print_json(result)
    else:
        for line in result["lines"]:
            sys.stdout.write(line + "\n")
        if result["ok"]:
            _common.say(f"OK: {', '.join(result['queues'])} within thresholds")
    raise typer.Exit(0 if result["ok"] else 1)


# -- queue -------------------------------------------------------------------------------------

QueueArgument = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")]


@queue_app.command("pause")
def queue_pause(queue: QueueArgument) -> None:
    """Pause a queue: workers skip it on their next claim; its jobs are kept."""
    with _common.open_app() as app:
        changed = _ops().pause_queue(app, queue)
    _common.say(f"Paused queue {queue}" if changed else f"Queue {queue} was paused already")


@queue_app.command("resume")
def queue_resume(queue: QueueArgument) -> None:
    """Resume a paused queue."""
    with _common.open_app() as app:
        changed = _ops().resume_queue(app, queue)
    _common.say(f"Resumed queue {queue}" if changed else f"Queue {queue} was not paused")


@queue_app.command("clear")
def queue_clear(
    queue: QueueArgument,
    yes: YesOption = False,
) -> None:
    """Delete a queue's pending jobs (running jobs finish; failed ones stay)."""
    from photojobs.ops.queues import count_clearable

    with _common.open_app() as app:
        if not yes:
            count = count_clearable(app, queue)
            if not _ask_before_delete(count, f"Queue {queue} has no pending jobs",
                                      f"Delete {count} pending job(s) of queue {queue}?"):
                return
        deleted = _ops().clear_queue(app, queue)
    _common.say(f"Deleted {deleted} pending job(s) of queue {queue}")


@queue_app.command("restart")
def queue_restart() -> None:
    """Make every running worker finish its current job and exit (for deploys)."""
    with _common.open_app() as app:
        _ops().request_restart(app)
    _common.say("Asked every worker to restart: each exits after its current job"
                " (noticed within a third of the lease)")


# -- batch -------------------------------------------------------------------------------------

@batch_app.command("list")
def batch_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, most recent first.")] = 50,
    unfinished: Annotated[bool, typer.Option("--unfinished", help="Only batches with jobs left to run.")] = False,
    json_out: _common.JsonOption = False,
) -> None:
    """List batches with total, done, failed and progress."""
    with _common.open_app() as app:
        rows = _ops().list_batches(app, limit=limit, unfinished_only=unfinished)
    if _common.wants_json(json_out):
        _common.print_json(rows)
        return
    for row in rows:
        row["progress"] = f"{row['progress'] * 100:.0f}%"
    _common.table(rows, ["id", "name", "total", "pending", "reserved", "done", "failed", "progress",
                                   "created_at"], empty="No batches.")


@batch_app.command("show")
def batch_show(
    batch_id: Annotated[int, typer.Argument(metavar="ID", help="The batch's id.")],
    json_out: _common.JsonOption = False,
) -> None:
    """Show one batch: counts, progress and its failed jobs."""
    with _common.open_app() as app:
        batch = _ops().show_batch(app, batch_id)
    if _common.wants_json(json_out):
        _common.print_json(batch)
        return
    failed = batch.pop("failed_jobs")
    batch["progress"] = f"{batch['progress'] * 100:.1f}%"
    _common.show(batch, False)
    if failed:
        _common.table(failed, ["id", "name", "attempts", "failed_at", "error"], title="Failed jobs")


# -- logs --------------------------------------------------------------------------------------

def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    filter_text: Annotated[Optional[str], typer.Option("--filter", help="Only lines containing TEXT.")] = None,
    job: Annotated[Optional[int], typer.Option("--job", help="Only lines about this job id.")] = None,
    level: Annotated[Optional[str], typer.Option("--level", help="Minimum level: debug, info, warning, error.")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many past lines to print first.")] = 50,
    json_out: _common.JsonOption = False,
) -> None:
    """Read the job log (storage/logs/photojobs.jsonl; on PostgreSQL every host's
    storage/logs/HOSTNAME/, merged): starts, successes, retries, failures. --follow: this host's."""
    from photojobs import logs as joblog

    settings = _common.settings()
    path = joblog.log_path(settings)
    match = joblog.make_matcher(filter_text, job, level)
    as_json = _common.wants_json(json_out)

    def emit(entry: dict) -> None:
        import json

        text = json.dumps(entry, ensure_ascii=False, default=str) if as_json else joblog.format_entry(entry)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    for entry in joblog.read_all_entries(joblog.log_paths(settings), match, limit=lines) if lines else []:
        emit(entry)
    if not follow:
        if not path.exists() and not as_json:
            _common.say(f"No log yet at {path}")
        return
    try:
        for entry in joblog.follow(path, match):
            emit(entry)
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(failed_app, name="failed")
    app.command()(status)
    app.command()(monitor)
    app.add_typer(queue_app, name="queue")
    app.add_typer(batch_app, name="batch")
    app.command()(logs)
