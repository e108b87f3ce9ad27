"""Storage: the one place that speaks SQL.

    backend = open_backend(settings)     # the engine the `db` setting names
    with backend.transaction() as tx:    # a Transaction: tx.execute(sql, {"name": value})
        photos.insert(tx, ...)           # a domain repository (storage/photos.py, ...)
        backend.enqueue([...])           # joins the same transaction

`base.Backend` is the contract every engine keeps (tests/contract runs it on each);
A `db` setting that is a path is SQLite (`sqlite.SqliteBackend`); a `postgresql://` URL
is PostgreSQL (`postgres.PostgresBackend`, with psycopg from the `postgres` extra).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .urls import without_password as _without_password
from .base import AttemptError, Backend, Enqueued, Job, NewJob, RetriedFailed, Transaction

if TYPE_CHECKING:
    from ..settings import Settings

ENGINES = ("sqlite", "postgresql")


def engine_of(db: str) -> str:
    """Which engine a `db` setting names: a URL's scheme, else "sqlite" (a file path)."""
    if "://" not in db:
        # "postgresql:/host/db" (settings may have made it /cwd/postgresql:/host/db): not a file to create
        url = re.search(r"(?i)(?:^|/)(postgres(?:ql)?(?:\+\w+)?:(?:/.*)?)\Z", db)
        if url:
            raise ConfigError(f"db = {_without_password(url.group(1))!r} is not a PostgreSQL URL",
                              hint="postgresql://user@host/dbname, with two slashes")
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
        return postgres_engine().PostgresBackend(settings)
    from .sqlite import SqliteBackend

    return SqliteBackend(settings)


def postgres_engine():  # noqa: ANN201 - the module photojobs.storage.postgres
    """The PostgreSQL engine's module; psycopg is an extra (`photojobs[postgres]`)."""
    try:
        from . import postgres
    except ImportError as exc:
        if "psycopg" not in str(exc):
            raise
        raise ConfigError("db is a postgresql:// URL but psycopg is not installed",
                          hint="pip install 'photojobs[postgres]'") from None
    return postgres


__all__ = ["AttemptError", "Backend", "ENGINES", "Enqueued", "Job", "NewJob", "RetriedFailed", "Transaction",
           "engine_of", "open_backend"]
