"""What every command shares: global options, settings, output, the error message."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
from typing import Annotated, Any, Iterable, Iterator, Optional, Sequence

import typer

from photojobs.errors import PhotojobsError
from photojobs.settings import Settings, load


@dataclasses.dataclass
class State:
    config: Optional[str] = None
    db: Optional[str] = None
    json: bool = False
    verbose: int = 0
    quiet: bool = False


# The CLI's own state, set by the callback; read by the error boundary after Typer returns.
STATE = State()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_version(value: bool) -> None:
    if value:
        from photojobs import __version__

        sys.stdout.write(f"photojobs {__version__}\n")
        raise typer.Exit(0)


def global_options(
    config: Annotated[Optional[str], typer.Option("--config", envvar="PHOTOJOBS_CONFIG", show_envvar=True,
                                                   help="Path of photojobs.toml.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database path (overrides config and PHOTOJOBS_DB).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON on commands that list or show.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More output; tracebacks on errors.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
    log_file: Annotated[Optional[str], typer.Option("--log-file", help="Append all output to this file, each line"
                                                    " dated; rotated past 1 MB, 3 kept (`cron print` uses it).")] = None,
) -> None:
    """Background jobs for a photo-sales business: photos, archives, mail and clean-up."""
    STATE.config, STATE.db, STATE.json, STATE.verbose, STATE.quiet = config, db, json_, verbose, quiet
    if log_file:
        from photojobs.cronlog import redirect_output

        redirect_output(log_file)
    import logging

    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.getLogger("photojobs").setLevel(level)


def settings(**flags: Any) -> Settings:
    """Settings resolved once: defaults < photojobs.toml < PHOTOJOBS_* < flags."""
    return load(config=STATE.config, db=STATE.db, **flags)


def open_app(**flags: Any):
    from photojobs.app import App
    from photojobs.logs import configure_cli
    from photojobs.install import check_storage_root

    resolved = settings(**flags)
    check_storage_root(resolved)
    configure_cli(resolved, verbose=STATE.verbose, quiet=STATE.quiet)  # JSON-lines file + console
    return App(resolved)


def wants_json(flag: bool) -> bool:
    return flag or STATE.json


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


# C0 and C1 control characters, DEL, Unicode line/paragraph separators and the bidi
# overrides: shown escaped, so a file name cannot move the cursor, recolour the terminal
# or reorder what is shown (JSON output escapes what JSON requires and stays exact).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str, keep_newlines: bool = False) -> str:
    """`text` with every control character escaped (\\x1b, \\u2028), for a terminal."""
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def say(message: str) -> None:
    """A human message on stdout, silenced by -q. Plain text (a "[photos]" in it is kept),
    unless it closes a rich markup tag ("[yellow]Warning:[/]"): rich is imported only then."""
    if STATE.quiet:
        return
    message = terminal_text(message, keep_newlines=True)
    if "[/" in message:
        console().print(message, soft_wrap=True)
        return
    sys.stdout.write(message + "\n")
    sys.stdout.flush()  # in order with the log lines on stderr (a cron log has both)


def console(stderr: bool = False) -> Any:
    """A rich Console; when its stream is not a terminal it has no width to fit, so a
    table is never cut or wrapped in a pipe or a log file."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 100_000)


def _plain(value: Any) -> str:
    """A value on one line, whole."""
    if value is None:
        return ""
    if value.__class__ is int:  # most cells of a long listing: nothing to escape
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return terminal_text(str(value).replace("\t", " ").replace("\n", ", "))


def table(rows: Sequence[dict], columns: Iterable[str], title: str | None = None, empty: str = "Nothing.") -> None:
    """Print rows as a rich table on a terminal; piped, as tab-separated lines under a header
    line, every value whole (a URL, path or hash is never cut). `empty` when there are none."""
    if not rows:
        say(empty)
        return
    columns = list(columns)
    if not sys.stdout.isatty():
        lines = ["\t".join(columns)] + ["\t".join(_plain(row.get(c)) for c in columns) for row in rows]
        sys.stdout.write((f"# {title}\n" if title else "") + "\n".join(lines) + "\n")
        return
    from rich.table import Table
    from rich.text import Text  # plain text: a value like "[photos]" is not markup

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(Text("" if row.get(c) is None else terminal_text(str(row.get(c)))) for c in columns))
    console().print(t)


def stream_lines(pages: Iterable[Sequence[dict]], columns: Iterable[str], empty: str = "Nothing.") -> None:
    """`table` piped, a page at a time: the header line, then each page's rows as it comes
    (a long listing starts at once and never sits whole in memory)."""
    columns, started = list(columns), False
    for rows in pages:
        if not started and rows:
            sys.stdout.write("\t".join(columns) + "\n")
            started = True
        sys.stdout.write("".join("\t".join(_plain(row.get(c)) for c in columns) + "\n" for row in rows))
    if not started:
        say(empty)


def show(value: dict, as_json: bool) -> None:
    """Print one record: JSON, or "key  value" lines. Each value is written whole on its
    line, on a terminal too (the terminal may wrap it, but a URL copies whole)."""
    if wants_json(as_json):
        print_json(value)
        return
    width = max((len(str(key)) for key in value), default=0) + 2
    lines = []
    for key, val in value.items():
        text = json.dumps(val, default=str, ensure_ascii=False) if isinstance(val, (dict, list)) else val
        text = "" if text is None else terminal_text(str(text), keep_newlines=True)
        lines.append(f"{key:<{width}}" + text.replace("\n", "\n" + " " * width))
    sys.stdout.write("\n".join(lines) + "\n")


def confirm(question: str) -> bool:
    """Ask yes/no; with no terminal to answer on (cron, stdin at its end) refuse, exit 2."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        if sys.stdin is not None and sys.stdin.isatty():
            raise  # Ctrl-C or Ctrl-D at the prompt
        from photojobs.errors import UsageError

        sys.stdout.write("\n")
        raise UsageError("refusing without a terminal: pass --yes") from None


def report_error(exc: PhotojobsError) -> None:
    if STATE.verbose:
        import traceback

        traceback.print_exception(exc)
    sys.stderr.write(f"Error: {terminal_text(str(exc))}\n")


__all__ = ["PhotojobsError", "JsonOption", "STATE", "settings", "open_app", "print_json", "say", "table", "show"]


def drain(queue: str, *, limit: int | None, loop: bool, concurrency: int = 1, noun: str = "jobs",
          measure: Any = None, max_time: float | None = None) -> None:
    """Run a worker on one queue with a progress bar, print a summary, exit 1 if a job failed.

    The shared body of process-photos, build-archive and send-mail. `measure(app)`, if
    given, returns (completed, total) in the command's own unit (bytes, photos) for the bar.
    """
    from photojobs.ops.queues import paused_backlog, pending_count
    from photojobs.worker import WorkerOptions

    options = WorkerOptions(queues=[queue], concurrency=concurrency, max_jobs=limit, stop_when_empty=not loop,
                            max_time=max_time, wait_for_lock=loop)
    command = DRAIN_COMMANDS.get(queue, f"drain-{queue}")
    with open_app() as app, cron_lock(app, command, command, enabled=not loop):
        waiting = paused_backlog(app, queue)
        if waiting is not None:
            say(f"Queue {queue} is paused: {waiting} job(s) wait; `photojobs queue resume {queue}` lets them run"
                + (" (waiting until then)" if loop else ""))
            if not loop:
                raise typer.Exit(0)
        report = _run_with_progress(app, options, queue, noun, measure)
        left, ready = pending_count(app, queue), pending_count(app, queue, ready_only=True)
    say(_drain_summary(report, noun, left if not loop else 0, ready and not loop and (
        limit is None or report.done + report.failed + report.retried < limit) and (
        max_time is None or report.seconds < max_time)))
    raise typer.Exit(report.exit_code)


def _drain_summary(report: Any, noun: str, left: int, interrupted: bool) -> str:
    """`interrupted` (ready jobs left, though no --limit or --max-time ended the run): a
    signal such as Ctrl-C, or a `queue restart`, stopped it."""
    rate = f" ({report.done / report.seconds:.1f}/s)" if report.seconds > 0.5 else ""
    waiting = f"{left} left (pending, will run next time)"
    if interrupted:
        parts = [f"{report.done} done"] + [f"{report.failed} failed"] * bool(report.failed) + [
            f"{report.retried} to retry"] * bool(report.retried)
        return f"interrupted: {', '.join(parts)}, {waiting}"
    return (f"{noun.capitalize()}: {report.done} done, {report.failed} failed, {report.retried} to retry"
            + (f", {waiting}" if left else "") + f" in {report.seconds:.1f}s{rate}")


MaxTimeOption = Annotated[Optional[float], typer.Option(
    "--max-time", min=0.001, help="Stop after this many seconds (cron: end before the next tick).")]


DRAIN_COMMANDS = {"emails": "send-mail", "photos": "process-photos", "downloads": "build-archive"}


@contextlib.contextmanager
def cron_lock(app: Any, name: str, command: str, enabled: bool = True) -> Iterator[None]:
    """Cron mode: hold the lock `name`; if another run holds it, say so and exit 0 at once."""
    if not enabled:
        yield
        return
    from photojobs.locks import AlreadyRunning, cron_lock as hold

    app.backend  # a missing database is reported before anything is written to storage
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(hold(app.settings, name, command=command))
        except AlreadyRunning as exc:
            say(str(exc))
            raise typer.Exit(0) from None
        yield


def _run_with_progress(app: Any, options: Any, queue: str, noun: str, measure: Any) -> Any:
    if STATE.quiet or not sys.stderr.isatty():
        return app.work(options)
    import time

    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    ready = app.backend.count_jobs(queue, "pending", ready_at=time.time())
    total = min(ready, options.max_jobs or ready)
    # A measure in bytes (build-archive) reads better as "1.2/4.3 GB" than as a count.
    counted = DownloadColumn() if getattr(measure, "unit", None) == "bytes" else MofNCompleteColumn()
    columns = [TextColumn(f"[bold]{noun}"), BarColumn(), counted, TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
    from rich.console import Console

    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(noun, total=total or None, rate="")

        def update(report: Any) -> None:
            if measure is not None:
                completed, units = measure(app)
                progress.update(task, completed=completed, total=units)
            else:
                progress.update(task, completed=report.done + report.failed)
            elapsed = progress.tasks[0].elapsed or 0
            if elapsed > 0:
                progress.update(task, rate=f"{(report.done + report.failed) / elapsed:.1f} {noun}/s")

        return app.work(options, on_progress=update)
