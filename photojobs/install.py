"""`photojobs init` and `photojobs migrate`: the config file, the storage root, the schema."""

from __future__ import annotations

import os
from pathlib import Path

from .storage.sqlite_connection import open_database
from .migrations import migrate
from .settings import CONFIG_NAME, Settings, load
from .storage import _without_password, engine_of, postgres_engine

CONFIG_TEMPLATE = """\
# photojobs configuration. Relative paths are relative to this file.
db = {db!r}
storage = {storage!r}
# durability = "normal"   # "full": an fsync per commit, survives power loss
# imports = ["myapp.jobs"]  # modules whose @job functions are registered too
"""


def init(config: str | None = None, db: str | None = None, storage: str | None = None) -> dict:
    """Write photojobs.toml (if missing), create the storage root and the schema.
    Safe to run twice: an existing config is kept, applied migrations are not re-run."""
    config_path = Path(config or os.environ.get("PHOTOJOBS_CONFIG") or CONFIG_NAME).expanduser().resolve()
    wrote_config = False
    if not config_path.exists():
        config_path.parent.mkdir(parents=True, exist_ok=True)
        rel = lambda value, default: _relative(value, config_path.parent) if value else default  # noqa: E731
        text = CONFIG_TEMPLATE.format(db=rel(db, "photojobs.db"), storage=rel(storage, "storage"))
        fd = os.open(config_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        wrote_config = True
    settings = load(config=config_path, db=db, storage=storage)
    for folder in ("", "thumbnails", "downloads", "logs", "mail"):
        (settings.storage_path / folder).mkdir(parents=True, exist_ok=True)
    applied = migrate_database(settings, create=True)
    return {"config": str(config_path), "wrote_config": wrote_config, "db": _shown_db(settings),
            "storage": str(settings.storage_path), "migrations_applied": applied}


def migrate_database(settings: Settings, create: bool = False) -> list[str]:
    if engine_of(settings.db) == "postgresql":
        postgres_engine()  # psycopg is there, or a clear error
        from .storage.pg_migrations import migrate_url

        return migrate_url(settings.db, create=create)
    conn = open_database(settings, create=create, check_schema=False)
    try:
        return migrate(conn)
    finally:
        conn.close()


def _shown_db(settings: Settings) -> str:
    """The database as printed: a file's path, or a URL with its password masked."""
    return _without_password(settings.db) if engine_of(settings.db) == "postgresql" else str(settings.db_path)


def _relative(value: str, base: Path) -> str:
    if "://" in value:  # a database URL, not a path
        return value
    path = Path(value).expanduser().resolve()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
