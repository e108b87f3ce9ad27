"""init, migrate, dispatch, work: the queue's own commands."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from . import _common


def init(
    db: Annotated[Optional[str], typer.Option("--db", help="Database path.")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Storage root for thumbnails, downloads, logs.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Write photojobs.toml and create the database schema; safe to run twice."""
    from photojobs.install import init as run_init

    result = run_init(config=_common.STATE.config, db=db or _common.STATE.db, storage=storage)
    if _common.wants_json(json_out):
        _common.print_json(result)
        return
    verb = "Wrote" if result["wrote_config"] else "Kept"
    _common.say(f"{verb} {result['config']}")
    applied = result["migrations_applied"]
    _common.say(f"Database {result['db']}: " + (f"applied {len(applied)} migration(s)" if applied else "up to date"))


def migrate() -> None:
    """Apply pending schema migrations (after an upgrade)."""
    from photojobs.install import migrate_database

    applied = migrate_database(_common.settings())
    _common.say(f"Applied {', '.join(applied)}" if applied else "Schema is up to date.")


def dispatch(
    job: Annotated[str, typer.Argument(help="Job name, e.g. process_photo.")],
    payload: Annotated[Optional[str], typer.Option("--payload", help="JSON object of the job's arguments.")] = None,
    queue: Annotated[Optional[str], typer.Option("--queue", help="Queue (default: the job's own).")] = None,
    delay: Annotated[Optional[float], typer.Option("--delay", min=0, help="Seconds before it may run.")] = None,
    unique_key: Annotated[Optional[str], typer.Option("--unique-key", help="Refuse if a live job has this key.")] = None,
    json_out: _common.JsonOption = False,
) -> None:
    """Queue one job."""
    from photojobs.app import parse_payload

    with _common.open_app() as app:
        job_id = app.dispatch(job, parse_payload(payload), queue=queue, delay=delay, unique_key=unique_key)
    if _common.wants_json(json_out):
        _common.print_json({"id": job_id, "name": job})
    else:
        _common.say(f"Dispatched {job} as job {job_id}")


def work(
    queue: Annotated[str, typer.Option("--queue", help="Queues in strict priority order.")] = "emails,photos,downloads,default",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Worker processes.")] = 1,
    tries: Annotated[Optional[int], typer.Option("--tries", min=1, help="Tries for jobs that set none.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.001, help="Seconds for jobs that set none.")] = None,
    sleep: Annotated[float, typer.Option("--sleep", min=0, help="Seconds to wait when no job is ready.")] = 1.0,
    max_jobs: Annotated[Optional[int], typer.Option("--max-jobs", min=1, help="Stop after this many jobs.")] = None,
    max_time: Annotated[Optional[float], typer.Option("--max-time", min=0.001, help="Stop after this many seconds.")] = None,
    memory: Annotated[Optional[float], typer.Option("--memory", min=1, help="Recycle a process over this many MB.")] = None,
    stop_when_empty: Annotated[bool, typer.Option("--stop-when-empty", help="Exit when no job is ready (cron).")] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Keep waiting for jobs (the default).")] = False,
) -> None:
    """Run a worker: claim jobs by queue priority and run them until stopped."""
    from photojobs.errors import UsageError
    from photojobs.worker import WorkerOptions

    if loop and stop_when_empty:
        raise UsageError("--loop and --stop-when-empty exclude each other")
    options = WorkerOptions(queues=queue.split(","), concurrency=concurrency, tries=tries, timeout=timeout,
                            sleep=sleep, max_jobs=max_jobs, max_time=max_time, memory_mb=memory,
                            stop_when_empty=stop_when_empty)
    with _common.open_app() as app, _common.cron_lock(app, "work-" + "-".join(options.queues), "work",
                                                     enabled=stop_when_empty):
        _warn_unknown_queues(app, options.queues)
        report = app.work(options)
    _common.say(f"{report.done} done, {report.failed} failed, {report.retried} to retry"
                f" in {report.seconds:.1f}s")
    raise typer.Exit(report.exit_code)


def _warn_unknown_queues(app, queues) -> None:
    """A queue no job type or job names yet may be one a web app dispatches to by name:
    warn (a typo would idle forever) rather than refuse."""
    from photojobs.errors import UsageError
    from photojobs.ops.common import check_known_queues

    try:
        check_known_queues(app, queues)
    except UsageError as exc:
        sys.stderr.write(f"Warning: {exc}; waiting on it anyway\n")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(migrate)
    app.command()(dispatch)
    app.command()(work)
