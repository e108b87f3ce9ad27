"""Settings, resolved once: defaults < photojobs.toml < PHOTOJOBS_* environment < flags.

Top-level scalar keys are fields of `Settings`. Each table (`[logs]`, `[thumbnails]`,
`[downloads]`, `[mail]`, `[schedule]`, `[postgres]`) is parsed once, when the settings
load, by a function in the module that owns it (SECTIONS names them), into a frozen
dataclass: `settings.thumbnails.conversions`, `settings.mail.transport`. A setting lives
next to the code that uses it, and any bad key or value in any table is one ConfigError
at load, for every command.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ConfigError

if TYPE_CHECKING:
    from .archives.downloads import DownloadSettings
    from .logs import LogSettings
    from .mail.config import MailConfig
    from .photos.thumbnails import ThumbnailSettings
    from .schedule_config import ScheduleSettings
    from .storage.pg_settings import PostgresSettings

CONFIG_NAME = "photojobs.toml"
ENV_PREFIX = "PHOTOJOBS_"
DURABILITIES = ("normal", "full")


@dataclasses.dataclass(frozen=True)
class Settings:
    db: str = "photojobs.db"
    storage: str = "storage"
    durability: str = "normal"  # SQLite synchronous=NORMAL (crash-safe) or FULL (power-loss-safe)
    busy_timeout: float = 5.0  # seconds one SQLite statement waits for the write lock
    lock_budget: float = 30.0  # seconds an operation keeps retrying a locked database
    lease: float = 60.0  # seconds a claimed job stays reserved without a renewal
    grace: float = 30.0  # seconds running jobs get to finish after SIGTERM
    keep_done_hours: float = 24.0  # finished jobs are kept this long for `status`
    queue: str = "database"  # "database", or "sync" to run dispatched jobs inline
    base_url: str = "http://localhost:8000"
    imports: tuple[str, ...] = ()
    config_path: str | None = None  # the file these settings came from, if any
    sections: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # table name -> its parsed dataclass

    @property
    def root(self) -> Path:
        """The folder relative paths are resolved against: the config file's, or the cwd."""
        return Path(self.config_path).parent if self.config_path else Path.cwd()

    @property
    def db_path(self) -> Path:
        return (self.root / self.db).resolve()

    @property
    def storage_path(self) -> Path:
        return (self.root / self.storage).resolve()

    def section_of(self, name: str) -> Any:
        """The parsed table `name` (a frozen dataclass); its defaults if these settings were
        made without `load()`."""
        if name in self.sections:
            return self.sections[name]
        if name not in SECTIONS:
            raise KeyError(f"no settings table [{name}]")
        return _parser(name)({}, self, {})

    @property
    def logs(self) -> "LogSettings":
        return self.section_of("logs")

    @property
    def thumbnails(self) -> "ThumbnailSettings":
        return self.section_of("thumbnails")

    @property
    def downloads(self) -> "DownloadSettings":
        return self.section_of("downloads")

    @property
    def mail(self) -> "MailConfig":
        return self.section_of("mail")

    @property
    def schedule(self) -> "ScheduleSettings":
        return self.section_of("schedule")

    @property
    def postgres(self) -> "PostgresSettings":
        return self.section_of("postgres")

    def replace(self, **changes: Any) -> "Settings":
        """A copy with `changes`; the tables stay as parsed at load (paths in them, such as
        [mail] templates, were resolved against the loaded root and storage)."""
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("sections", "config_path")}

# The number settings' ranges, (minimum, maximum), in seconds unless the name says hours.
# A lease under 5 s is renewed too rarely to hold under load (a job would run twice at once);
# under 1 s a lock budget or timeout leaves no room for a busy disk.
RANGES = {
    "busy_timeout": (0.01, 3600.0),
    "lock_budget": (1.0, 86400.0),
    "lease": (5.0, 86400.0),
    "grace": (0.0, 86400.0),
    "keep_done_hours": (0.0, 87600.0),
}
LARGEST = 1e9  # no number setting means more than this: past it, sleeps and timers overflow


def check_number(value: Any, key: str, where: str, minimum: float = 0.0, maximum: float = LARGEST,
                 whole: bool = False) -> Any:
    """A number setting, finite and within [minimum, maximum] (no silent clamping), or a
    ConfigError naming the key and where it came from. Every section's parser uses it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} = {value!r} is not a number")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(f"{where}: {key} = {value!r} is out of range: expected {minimum:g} to {maximum:g}")
    if whole and value != int(value):
        raise ConfigError(f"{where}: {key} = {value!r} is not a whole number")
    return int(value) if whole else float(value)


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = type(Settings.__dataclass_fields__[name].default)
    try:
        if kind is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if kind is float:
            number = float(value) if isinstance(value, str) else value
            return check_number(number, name, source, *RANGES.get(name, (0.0, LARGEST)))
        if kind is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = {float: "a number, at least 0", str: "text", tuple: "a list of names"}.get(kind, kind.__name__)
    raise ConfigError(f"{source}: {name} = {value!r} is not {expected}")


def _from_cwd(name: str, value: Any) -> Any:
    """Paths given on the command line or in the environment are relative to the cwd."""
    if name in ("db", "storage") and not _URL_LIKE.match(value):
        return str(Path(value).expanduser().resolve())
    return value


# scheme:... with a scheme of two letters or more (C:\ is a Windows drive): a URL, even a
# mistyped one (`postgresql:/x`), is left for the storage to judge, not made a file path.
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


def _check_base_url(value: str, source: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{source}: base_url = {value!r} is not an http(s) URL",
                          hint='download links start with it: e.g. base_url = "https://photos.example.com"')


def _unknown_setting(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(_FIELDS), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(_FIELDS)}"


def find_config(explicit: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """--config, else PHOTOJOBS_CONFIG, else photojobs.toml in the cwd or a parent of it."""
    env = os.environ if env is None else env
    chosen = explicit or env.get(ENV_PREFIX + "CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="run `photojobs init` to write one")
        return path.resolve()
    return search_config(Path.cwd())


def search_config(start: Path) -> Path | None:
    """photojobs.toml in `start` or the nearest folder above it, as git finds its .git:
    a command run in storage/ or any subfolder of the project uses the project's file."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r})",
                          hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


# The tables of photojobs.toml: name -> "module:parser", parsed in this order (a parser
# may read a table parsed before it: [downloads] conversion names a [thumbnails] one).
# A parser lives in the module that owns its table and is called as
# parser(table, settings, env) -> a frozen dataclass: `table` the dict from the file ({}
# when it has none), `settings` the top-level settings (with the tables parsed so far),
# `env` the environment. It refuses an unknown key (nested tables too) and a bad value with
# a ConfigError "[table] key ...", which load() prefixes with the file. Parsers run for
# every command, `status` included: they import nothing heavy (no Pillow, jinja2,
# APScheduler or psycopg). A new table is one entry here.
SECTIONS: dict[str, str] = {
    "logs": "photojobs.logs:parse_logs",
    "thumbnails": "photojobs.photos.thumbnails:thumbnail_settings",
    "downloads": "photojobs.archives.downloads:parse_downloads",
    "mail": "photojobs.mail.config:parse_mail",
    "schedule": "photojobs.schedule_config:parse_schedule",
    "postgres": "photojobs.storage.pg_settings:parse_postgres",
    "libraries": "photojobs.libraries:parse_libraries",
}


def _parser(name: str) -> Any:
    module, _, function = SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def check_keys(table: Mapping[str, Any], known: set[str] | frozenset[str], where: str) -> None:
    """Refuse a key of `table` that is not in `known`, naming it and the known ones."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{where} unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _parse_sections(tables: Mapping[str, Any], settings: Settings, env: Mapping[str, str],
                    path: Path | None) -> Settings:
    parsed: dict[str, Any] = {}  # a dict, not a read-only proxy: Settings go to worker processes by pickle
    settings = settings.replace(sections=parsed)  # filled in place: each parser sees the tables before it
    for name in SECTIONS:
        try:
            parsed[name] = _parser(name)(tables.get(name, {}), settings, env)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}" if path else exc.message, hint=exc.hint) from None
    return settings


def load(
    config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Resolve settings once. `flags` are command-line values; None means "not given"."""
    env = os.environ if env is None else env
    path = find_config(config, env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # where each value came from, so an error names it
    tables: dict[str, Any] = {}
    if path:
        for key, value in read_config(path).items():
            if isinstance(value, dict):
                if key not in SECTIONS:
                    raise ConfigError(f"{path}: unknown table [{key}] (known: {', '.join(f'[{t}]' for t in SECTIONS)})")
                tables[key] = value
            elif key in _FIELDS:
                values[key], sources[key] = _coerce(key, value, str(path)), str(path)
            else:
                raise ConfigError(f"{path}: unknown setting {key!r} ({_unknown_setting(key)})")
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            source = f"environment variable {ENV_PREFIX}{name.upper()}"
            values[name], sources[name] = _from_cwd(name, _coerce(name, raw, source)), source
    for name, value in flags.items():
        if name not in _FIELDS:
            raise TypeError(f"unknown setting {name}")
        if value is not None:
            source = "--" + name.replace("_", "-")
            values[name], sources[name] = _from_cwd(name, _coerce(name, value, source)), source
    if "base_url" in values:
        _check_base_url(values["base_url"], sources["base_url"])
    for name, allowed in (("durability", DURABILITIES), ("queue", ("database", "sync"))):
        if name in values and values[name] not in allowed:
            raise ConfigError(f"{sources[name]}: {name} must be one of {', '.join(allowed)}, not {values[name]!r}")
    return _parse_sections(tables, Settings(**values, config_path=str(path) if path else None), env, path)
