"""`photojobs cron print`: crontab lines for this installation.

Each line names the executable by its absolute path and the config file by its absolute
path (cron's PATH and working folder are not yours), runs a drain command in cron mode
(a lock, so an overlapping run exits at once, and --max-time, so a run ends before the
next tick) and appends its output, each line dated, to a log under the storage root
(rotated by size: see photojobs.cronlog).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
from pathlib import Path

from .settings import Settings

MARGIN = 10  # seconds a run leaves before the next tick


@dataclasses.dataclass(frozen=True)
class CronEntry:
    when: str  # five crontab fields
    args: tuple[str, ...]  # the photojobs command and its options
    log: str  # log file name under <storage>/logs
    comment: str

    def period(self) -> int:
        """Seconds between two ticks of this entry (every N minutes, or every minute)."""
        minute = self.when.split()[0]
        return 60 * int(minute[2:]) if minute.startswith("*/") else 60


def default_entries(scheduled_queues: tuple[str, ...] = ("default",)) -> list[CronEntry]:
    """The drain commands and the schedule, as cron runs them on a small server."""
    queues = ",".join(dict.fromkeys(scheduled_queues)) or "default"
    entries = [
        CronEntry("* * * * *", ("send-mail",), "send-mail.log", "mail, every minute"),
        CronEntry("*/5 * * * *", ("process-photos",), "process-photos.log", "new photos, every 5 minutes"),
        CronEntry("*/5 * * * *", ("build-archive",), "build-archive.log", "download archives, every 5 minutes"),
        CronEntry("* * * * *", ("work", "--queue", queues, "--stop-when-empty"), "work.log",
                  "the scheduled jobs (clean-up, failed prune, thumbnail sweep)"),
    ]
    drains = [dataclasses.replace(e, args=(*e.args, "--max-time", str(e.period() - MARGIN))) for e in entries]
    return drains + [CronEntry("* * * * *", ("schedule", "run", "--once"), "schedule.log",
                               "the schedule: enqueue the runs that are due (each run once, catching up once)")]


def executable() -> list[str]:
    """How to start this installation's photojobs, with absolute paths."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "photojobs" and argv0.is_file():
        return [os.path.abspath(argv0)]
    if argv0 is not None and argv0.name == "__main__.py":  # python -m photojobs
        return [os.path.abspath(sys.executable), "-m", "photojobs"]
    found = shutil.which("photojobs")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "photojobs"]


def target_options(settings: Settings) -> list[str]:
    """--config PATH when settings came from a file, else --db PATH."""
    if settings.config_path:
        return ["--config", str(Path(settings.config_path).resolve())]
    return ["--db", str(settings.db_path)]


def cron_quote(text: str) -> str:
    """Quote for sh, and escape `%`, which crontab turns into a newline."""
    return shlex.quote(text).replace("%", "\\%")


def command_line(settings: Settings, entry: CronEntry, program: list[str] | None = None) -> str:
    """The command writes its output dated into the log, rotating it (--log-file, see
    photojobs.cronlog); the shell's >> catches what it cannot (an interpreter that fails)."""
    log_file = settings.storage_path / "logs" / f"cron-{entry.log}"
    words = [*(program or executable()), *target_options(settings), "--log-file", str(log_file), *entry.args]
    return " ".join(cron_quote(w) for w in words) + f" >> {cron_quote(str(log_file))} 2>&1"


def crontab_text(settings: Settings, entries: list[CronEntry] | None = None, program: list[str] | None = None) -> str:
    """The whole crontab fragment, with a header saying what it is for."""
    entries = entries if entries is not None else default_entries()
    where = settings.config_path or settings.db_path
    lines = [
        f"# photojobs for {where}",
        "# Install: photojobs cron print | crontab -   (replaces your crontab; or paste into `crontab -e`)",
        "# Each drain run holds a lock (an overlapping run exits at once) and stops before the next tick.",
        "SHELL=/bin/sh",
    ]
    for entry in entries:
        lines += [f"# {entry.comment}", f"{entry.when} {command_line(settings, entry, program)}"]
    return "\n".join(lines) + "\n"


def scheduled_queues(settings: Settings) -> tuple[str, ...]:
    """The queues the enabled schedule tasks' jobs go to ("default" first)."""
    from .app import App
    from .errors import PhotojobsError
    from .schedule import load_tasks

    queues = ["default"]
    with App(settings) as app:
        for task in load_tasks(settings):
            if not task.enabled:
                continue
            try:
                queues.append(task.queue or app.spec(task.job).queue)
            except PhotojobsError:
                continue  # an unregistered job: `schedule run` refuses it and says why
    return tuple(dict.fromkeys(queues))


def installation_crontab(settings: Settings) -> str:
    """The crontab for an installation that exists: before `init` there is no database for
    the lines to run against, so this raises DatabaseMissing (exit 3, with the init hint)."""
    from .app import App

    with App(settings) as app:
        app.backend  # opens the database, or says it is missing or unusable
    return crontab_text(settings, default_entries(scheduled_queues(settings)))
