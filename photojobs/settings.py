"""Settings, resolved once: defaults < photojobs.toml < PHOTOJOBS_* environment < flags.

Top-level scalar keys are fields of `Settings`; tables such as `[mail]`, `[thumbnails]`
or `[schedule]` are kept as plain dicts in `Settings.sections` and read by the module
that owns them, so a setting lives next to the code that uses it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

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
    sections: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

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

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("sections", "config_path")}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = type(Settings.__dataclass_fields__[name].default)
    try:
        if kind is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if kind is float:
            number = float(value)
            if number < 0:
                raise ValueError
            return number
        if kind is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"{source}: {name} = {value!r} is not a valid {kind.__name__}")


def _from_cwd(name: str, value: Any) -> Any:
    """Paths given on the command line or in the environment are relative to the cwd."""
    if name in ("db", "storage") and "://" not in value:
        return str(Path(value).expanduser().resolve())
    return value


def find_config(explicit: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    chosen = explicit or env.get(ENV_PREFIX + "CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", hint="run `photojobs init` to write one")
        return path.resolve()
    default = Path.cwd() / CONFIG_NAME
    return default if default.is_file() else None


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


def load(
    config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Resolve settings once. `flags` are command-line values; None means "not given"."""
    env = os.environ if env is None else env
    path = find_config(config, env)
    values: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    if path:
        for key, value in read_config(path).items():
            if isinstance(value, dict):
                sections[key] = value
            elif key in _FIELDS:
                values[key] = _coerce(key, value, str(path))
            else:
                raise ConfigError(f"{path}: unknown setting {key!r}")
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _from_cwd(name, _coerce(name, raw, ENV_PREFIX + name.upper()))
    for name, value in flags.items():
        if name not in _FIELDS:
            raise TypeError(f"unknown setting {name}")
        if value is not None:
            values[name] = _from_cwd(name, _coerce(name, value, "--" + name.replace("_", "-")))
    if values.get("durability", "normal") not in DURABILITIES:
        raise ConfigError(f"durability must be one of {', '.join(DURABILITIES)}, not {values['durability']!r}")
    if values.get("queue", "database") not in ("database", "sync"):
        raise ConfigError(f"queue must be 'database' or 'sync', not {values['queue']!r}")
    return Settings(**values, config_path=str(path) if path else None, sections=sections)
