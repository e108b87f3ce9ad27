"""`photojobs init` and `photojobs migrate`: the config file, the storage root, the schema."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, EnvironmentProblem
from .libraries import empty_folder
from .storage.sqlite_connection import open_database
from .migrations import migrate
from .settings import CONFIG_NAME, Settings, load
from .storage import _without_password, engine_of, postgres_engine

CONFIG_TEMPLATE = """\
# photojobs configuration. Relative paths are relative to this file.
# Top-level keys first: TOML puts every key after a [table] line into that table.
db = {db!r}
storage = {storage!r}
# durability = "normal"   # "full": an fsync per commit, survives power loss
# imports = ["myapp.jobs"]  # modules whose @job functions are registered too
# base_url = "https://photos.example.com"  # download links are <base_url>/downloads/<token>;
#                           #   your web server or app serves them (see README, Downloads)

# [mail]
# transport = "smtp"        # default "file": each message is an .eml under storage/mail/
# from = "Studio <studio@example.com>"
# host = "smtp.example.com"
# port = 587
# tls = "starttls"          # "starttls", "ssl" (implicit TLS, port 465) or "none"
# username = "studio"       # the password comes from PHOTOJOBS_SMTP_PASSWORD, never this file
# rate_per_minute = 0       # 0: no limit

# [thumbnails]
# format = "jpeg"           # or "webp"
# quality = 85
# colour = "keep"           # or "srgb"
# [thumbnails.thumb]        # one table per conversion replaces the defaults
# size = 320                #   (thumb 320, preview 1024, web 2048: the long side in pixels)
# [thumbnails.web]
# size = 2048

# [downloads]
# expires_days = 7          # how long a download link works
# conversion = "web"        # archive this thumbnail conversion instead of the originals
# grace_seconds = 3600      # cleanup-downloads leaves younger stray files alone
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
    made: list[Path] = []
    try:
        settings = load(config=config_path, db=db, storage=storage)
        check_storage_root(settings, setting_up=True)
        for folder in ("", "thumbnails", "downloads", "logs", "mail"):
            target = settings.storage_path / folder
            made += [p for p in (*reversed(target.parents), target) if not p.exists() and p not in made]
            target.mkdir(parents=True, exist_ok=True)
        applied = migrate_database(settings, create=True)
    except BaseException:  # a bad URL, a server down: no config left behind that a re-run would keep
        _undo(config_path if wrote_config else None, made)
        raise
    return {"config": str(config_path), "wrote_config": wrote_config, "db": _shown_db(settings),
            "storage": str(settings.storage_path), "migrations_applied": applied}


def _undo(config_path: Path | None, folders: list[Path]) -> None:
    """Remove what a failed `init` made: the config it wrote, the folders it made (if empty)."""
    if config_path is not None:
        config_path.unlink(missing_ok=True)
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


def check_storage_root(settings: Settings, setting_up: bool = False) -> None:
    """A storage root that exists must be a folder (ConfigError, exit 3, otherwise), and,
    unless `init` is setting it up, not empty: an empty one is a mount point whose share
    (NFS, SMB) is not mounted, and files written there would be this host's alone."""
    path = settings.storage_path
    if not setting_up and empty_folder(path):
        raise EnvironmentProblem(f"storage root {path} is empty: its share is not mounted?",
                                 hint="mount it; a new storage root: run `photojobs init`")
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "" if part == path else f" ({part} is a file)"
                raise ConfigError(f"storage {path} is not a folder{where}",
                                  hint="set `storage` in photojobs.toml to a folder")
            return


def migrate_database(settings: Settings, create: bool = False) -> list[str]:
    if engine_of(settings.db) == "postgresql":
        postgres_engine()  # psycopg is there, or a clear error
        from .storage.pg_migrations import migrate_url

        return migrate_url(settings.db, create=create, section=settings.postgres)
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
