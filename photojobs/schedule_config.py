"""The [schedule] table of photojobs.toml, read once when the settings load (settings.SECTIONS):
`settings.schedule.tasks` are the default tasks merged with the table's, checked key by key.

    [schedule]
    timezone = "Europe/Amsterdam"        # every task's zone unless it names its own (default UTC)
    [schedule.<task>]                    # cron = "M H DOM MON DOW" or every = "10m"; job, payload,
                                         # queue, timezone, enabled (schedule.py says more)

Only the standard library is used here (the load of every command pays for it): a cron rule
is checked field by field (numbers, names, ranges, steps) without APScheduler, whose
triggers schedule.py builds when the schedule runs.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from .errors import ConfigError
from .settings import check_keys

DEFAULT_TIMEZONE = "UTC"
DEFAULT_TASKS: dict[str, dict[str, Any]] = {
    "cleanup-downloads": {"cron": "0 3 * * *", "job": "cleanup_downloads"},
    "prune-failed": {"cron": "0 4 * * sun", "job": "prune_failed", "payload": {"hours": 168}},
    "thumbnail-sweep": {"cron": "30 1 * * *", "job": "sweep_thumbnails"},
}
TASK_KEYS = {"cron", "every", "job", "payload", "queue", "timezone", "enabled"}
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# crontab's five fields: (name, lowest, highest, names of the values from the lowest on)
CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()), ("month", 1, 12, MONTHS),
               ("weekday", 0, 7, WEEKDAYS))
_PERIOD = re.compile(r"(\d+)\s*([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """One task as configured; schedule.Task adds its trigger and run times."""

    name: str
    job: str
    payload: dict
    timezone: str
    cron: str | None = None
    every: int | None = None  # seconds
    queue: str | None = None
    enabled: bool = True


@dataclasses.dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = DEFAULT_TIMEZONE
    tasks: tuple[TaskSettings, ...] = ()


def parse_schedule(table: Mapping[str, Any], settings: Any = None, env: Any = None) -> ScheduleSettings:
    """The default tasks merged with [schedule], in order; disabled ones included."""
    section = dict(table)
    default_zone = section.pop("timezone", DEFAULT_TIMEZONE)
    check_zone(default_zone, "[schedule] timezone")
    entries = {name: dict(spec) for name, spec in DEFAULT_TASKS.items()}
    for name, task in section.items():
        if not isinstance(task, dict):
            raise ConfigError(f"[schedule] {name} = {task!r}: expected a table [schedule.{name}]"
                              " (the only plain key is timezone)")
        check_keys(task, TASK_KEYS, f"[schedule.{name}]")
        merged = {**entries.get(name, {}), **task}
        for key in ("cron", "every"):  # a rule given here replaces the default's other kind
            if key in task:
                merged.pop("every" if key == "cron" else "cron", None)
        entries[name] = merged
    return ScheduleSettings(default_zone, tuple(_task(name, spec, default_zone) for name, spec in entries.items()))


def _task(name: str, spec: dict, default_zone: str) -> TaskSettings:
    where = f"[schedule.{name}]"
    if ("cron" in spec) == ("every" in spec):
        raise ConfigError(f"{where} needs exactly one of cron = \"M H DOM MON DOW\" or every = \"10m\"")
    job_name = spec.get("job")
    if not isinstance(job_name, str) or not job_name:
        raise ConfigError(f"{where} needs job = \"<registered job name>\"")
    payload = spec.get("payload", {})
    if not isinstance(payload, dict):
        raise ConfigError(f"{where} payload must be a table, e.g. payload = {{ hours = 168 }}")
    zone = spec.get("timezone", default_zone)
    if zone != default_zone:
        check_zone(zone, f"{where} timezone")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled must be true or false")
    queue = spec.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigError(f"{where} queue must be a queue name")
    every = None
    if "every" in spec:
        try:
            every = parse_every(spec["every"])
        except ValueError:
            raise ConfigError(f"{where} every = {spec['every']!r} is not a period"
                              " (seconds, or text like \"90s\", \"10m\", \"1h30m\", \"1d\")") from None
    cron = spec.get("cron")
    if "cron" in spec:
        try:
            if not isinstance(cron, str):
                raise ValueError("not text")
            check_cron(cron)
        except ValueError as exc:
            raise ConfigError(f"{where} cron = {cron!r} is not a crontab expression: {exc}") from None
    return TaskSettings(name, job_name, payload, zone, cron=cron, every=every, queue=queue, enabled=enabled)


def check_zone(name: Any, where: str) -> None:
    if name == DEFAULT_TIMEZONE:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # imported only when another zone is named

    try:
        if not isinstance(name, str) or not name:
            raise ValueError
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where} = {name!r} is not a known time zone (e.g. \"Europe/Amsterdam\", \"UTC\")") from None


def parse_every(value: Any) -> int:
    """Seconds of an `every` value: a whole number of seconds, or text such as "90s", "1h30m"."""
    if isinstance(value, bool):
        raise ValueError("not a period")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and re.fullmatch(r"\s*(\d+\s*[smhdw]\s*)+", value):
        seconds = sum(int(n) * UNITS[u] for n, u in _PERIOD.findall(value))
    else:
        raise ValueError("not a period")
    if seconds < 1:
        raise ValueError("a period must be at least one second")
    return seconds


def check_cron(expression: str) -> None:
    """A ValueError saying what is wrong with a five-field crontab expression, if anything:
    each field a list of `*`, a value or a range `a-b`, each with an optional `/step`."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"5 fields expected, found {len(fields)}")
    for text, (label, low, high, names) in zip(fields, CRON_FIELDS):
        for part in text.split(","):
            span, slash, step = part.partition("/")
            if slash and not (step.isdigit() and int(step) >= 1):
                raise ValueError(f"{label} {part!r}: the step must be a whole number, at least 1")
            if span == "*" or (label == "day of month" and span.lower() == "last" and not slash):
                continue
            ends = [_cron_value(end, label, low, high, names) for end in span.split("-", 1)]
            if ends[0] > ends[-1]:
                raise ValueError(f"{label} {part!r}: the range runs backwards")


def _cron_value(text: str, label: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    if text.lower() in names:
        return low + names.index(text.lower())
    named = f" or {names[0]}-{names[-1]}" if names else ""
    raise ValueError(f"{label} {text!r} is not {low}-{high}{named}")


def crontab_weekdays(field: str) -> str:
    """Crontab's weekday numbers (0 and 7 Sunday) as names, which APScheduler 3.x reads right
    (its own numbers start at Monday)."""
    if field == "*" or re.search(r"[a-zA-Z]", field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            low, high = (int(x) for x in span.split("-", 1))
        else:
            low = high = int(span)
            if step:
                high = 7
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high):
            raise ValueError(f"weekday {part!r} is out of range 0-7")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(WEEKDAYS[d] for d in sorted(days))
