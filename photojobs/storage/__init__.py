"""Storage: the one place that speaks SQL.

    backend = open_backend(settings)     # the engine the `db` setting names
    with backend.transaction() as tx:    # a Transaction: tx.execute(sql, {"name": value})
        photos.insert(tx, ...)           # a domain repository (storage/photos.py, ...)
        backend.enqueue([...])           # joins the same transaction

`base.Backend` is the contract every engine keeps (tests/contract runs it on each);
`sqlite.SqliteBackend` is the engine today. A `db` setting that is a path is SQLite; a
`postgresql://` URL names the PostgreSQL engine, which is not there yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import AttemptError, Backend, Enqueued, Job, NewJob, RetriedFailed, Transaction

if TYPE_CHECKING:
    from ..settings import Settings

ENGINES = ("sqlite", "postgresql")


def engine_of(db: str) -> str:
    """Which engine a `db` setting names: a URL's scheme, else "sqlite" (a file path)."""
    if "://" not in db:
        return "sqlite"
    scheme = db.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "postgresql"
    raise ConfigError(f"db = {_without_password(db)!r}: unknown database scheme {scheme!r}",
                      hint="give a file path (SQLite) or a postgresql:// URL")


def open_backend(settings: "Settings") -> Backend:
    """The backend for `settings.db`, connected (the database must exist: `photojobs init`)."""
    engine = engine_of(settings.db)
    if engine == "postgresql":
        raise ConfigError(f"db = {_without_password(settings.db)!r}: PostgreSQL is not supported yet",
                          hint="use a SQLite file path for now")
    from .sqlite import SqliteBackend

    return SqliteBackend(settings)


def _without_password(url: str) -> str:
    """A URL as it may be shown: `postgresql://user:secret@host` -> `postgresql://user:***@host`."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return scheme + sep + credentials + at + host


__all__ = ["AttemptError", "Backend", "ENGINES", "Enqueued", "Job", "NewJob", "RetriedFailed", "Transaction",
           "engine_of", "open_backend"]
