"""Connecting to PostgreSQL: the session's safety settings, a bounded pool per process,
errors a user can act on, URLs shown without their password.

A process holds at most `[postgres] pool_size` pooled connections (default 4), plus one
for LISTEN while a worker waits for jobs. Nothing here crosses a fork: the pool belongs
to the process that made it, and a child makes its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

from .pg_settings import DEFAULT_POOL_SIZE, PostgresSettings
from .urls import without_password as masked
from ..errors import (ConfigError, DatabaseAuthFailed, DatabaseConnectionLost, DatabaseMissing, DatabaseUnreachable,
                      DiskFull, EnvironmentProblem)

# The pool's own log lines (each failed reconnection) would repeat what photojobs says once.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
logging.getLogger("psycopg.pool").propagate = False

# libpq parameters set unless the URL gives its own: a host cut off mid-transaction
# releases its locks within seconds (the server drops the idle transaction, and TCP
# gives up on the silent peer), not the kernel's two hours.
SESSION_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # ms
    "application_name": "photojobs",
}
BYTES_MARK = "\uffffbytes:"  # a path that is not UTF-8, kept as hex in a text column


def conninfo(url: str, section: PostgresSettings | None = None) -> dict[str, Any]:
    """The URL's libpq parameters with the session defaults added where it gives none.
    The password may also come from PGPASSWORD or ~/.pgpass (libpq reads them)."""
    try:
        params: dict[str, Any] = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:  # libpq cannot parse it: a typo, not a server
        raise bad_url(url, str(exc)) from None
    for key, value in SESSION_DEFAULTS.items():
        params.setdefault(key, value)
    idle = (section or PostgresSettings()).idle_in_transaction_timeout
    # The same watch on the server's side of the socket: it ends the session (and drops its
    # locks) of a client that went silent, mid-statement as well as idle.
    server = {"idle_in_transaction_session_timeout": int(idle * 1000), "tcp_keepalives_idle": params["keepalives_idle"],
              "tcp_keepalives_interval": params["keepalives_interval"],
              "tcp_keepalives_count": params["keepalives_count"], "tcp_user_timeout": params["tcp_user_timeout"]}
    params["options"] = " ".join([params.get("options", ""), *(f"-c {k}={v}" for k, v in server.items())]).strip()
    return params


def session_options(section: PostgresSettings | None) -> dict[str, Any]:
    """psycopg's own connection options: `[postgres] prepare = false` sends every statement
    unprepared (`prepare_threshold=None`), for a pooler that cannot keep a session's
    prepared statements (PgBouncer in transaction mode before 1.22 or without
    max_prepared_statements). By default psycopg prepares a statement run more than 5 times."""
    prepare = section.prepare if section is not None else True
    return {"autocommit": True, **({} if prepare else {"prepare_threshold": None})}


# libpq refusing a URL parameter's value or name, before it connects
_INVALID_OPTION = re.compile(r'^connection is bad: invalid .*(value|connection option)|^invalid uri query parameter')
_UNREACHABLE = ("connection refused", "could not connect", "timeout expired", "could not translate host name",
                "no route to host", "network is unreachable", "connection timed out", "name or service not known")
_AUTH = ("password authentication failed", "no password supplied", "authentication failed",
         "pg_hba.conf", "role \"")
_LOST = ("server closed the connection", "consuming input failed", "terminating connection", "connection is lost",
         "the connection is closed", "ssl syscall", "connection reset", "broken pipe", "sending query failed",
         "another command is already in progress", "lost synchronization", "server conn crashed")


def bad_url(url: str, reason: str) -> ConfigError:
    """The error for a `db` URL libpq refuses before it reaches a server."""
    reason = reason.strip().splitlines()[0] if reason.strip() else "not understood"
    reason = reason.removeprefix("connection is bad: ")
    return ConfigError(f"db = {masked(url)!r} is not a valid PostgreSQL URL: {masked(reason)}",
                       hint="postgresql://user@host:port/dbname?param=value, with libpq's parameter names and values")


def classify(exc: BaseException, url: str, *,
             connecting: bool = False) -> EnvironmentProblem | ConfigError | None:
    """The PhotojobsError for a psycopg error that is about the environment, or None."""
    text = str(exc).lower()
    where = masked(url)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = first.split(": ", 2)[-1] if first.startswith("connection") else first
    if isinstance(exc, psycopg.errors.DiskFull):  # 53100: the server could not write (a data file, its WAL)
        return DiskFull(f"database {where}: the server's disk is full ({masked(first)})",
                        hint="free space on the database server's disk; workers wait and go on")
    if connecting and (isinstance(exc, psycopg.ProgrammingError) or _INVALID_OPTION.search(text)):
        return bad_url(url, str(exc))
    if isinstance(exc, psycopg.errors.InvalidCatalogName) or ("database \"" in text and "does not exist" in text):
        return DatabaseMissing(f"database {where} does not exist",
                               hint="create it (createdb), then run `photojobs init`")
    if isinstance(exc, psycopg.errors.InvalidAuthorizationSpecification) or any(s in text for s in _AUTH):
        return DatabaseAuthFailed(f"authentication to {where} failed: {masked(first)}",
                                  hint="check the user and the password (URL, PGPASSWORD or ~/.pgpass)")
    if "unsupported" in text and "startup parameter" in text:  # a pooler refusing the session's `options`
        return ConfigError(f"{where} refused the session settings photojobs sends: {masked(first)}",
                           hint="behind PgBouncer: add `options` to its ignore_startup_parameters")
    if connecting or any(s in text for s in _UNREACHABLE):
        if any(s in text for s in _UNREACHABLE) or isinstance(exc, psycopg.OperationalError):
            return DatabaseUnreachable(f"cannot reach PostgreSQL at {where}: {masked(_reason(text, first))}",
                                       hint="check the server runs and the host and port")
    if isinstance(exc, (psycopg.errors.AdminShutdown, psycopg.errors.IdleInTransactionSessionTimeout)) or (
            isinstance(exc, psycopg.OperationalError) and any(s in text for s in _LOST)):
        return DatabaseConnectionLost(f"lost the connection to {where}: {masked(_reason(text, first))}",
                                      hint="the server or the network went away; try again")
    return None


def _reason(text: str, first: str) -> str:
    for needle in (*_UNREACHABLE, *_LOST):
        if needle in text:
            return needle
    return first


class _PathBytesDumper(Dumper):
    """bytes -> text: a photo path that is not UTF-8 (PostgreSQL's text cannot hold it)."""

    oid = psycopg.adapters.types["text"].oid

    def dump(self, obj: Any) -> bytes:
        return (BYTES_MARK + bytes(obj).hex()).encode()


def configure(conn: psycopg.Connection) -> None:
    """Per connection: jsonb read back as its JSON text (as SQLite gives it), bytes as marked text."""
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)
    conn.adapters.register_dumper(bytes, _PathBytesDumper)


def connect(url: str, section: PostgresSettings | None = None) -> psycopg.Connection:
    """One autocommit connection with the session settings; errors as PhotojobsErrors."""
    try:
        conn = psycopg.connect(**conninfo(url, section), **session_options(section))
    except psycopg.Error as exc:
        raise (classify(exc, url, connecting=True) or exc) from None
    configure(conn)
    return conn


class Pool:
    """At most `size` connections of this process, lent for one statement or transaction.

    psycopg_pool's pool, keeping one connection warm. The pool connects in the background
    and retries quietly, so a first connection is made directly: a wrong URL or a server
    that is down fails at once with its reason, not after the pool's timeout.
    """

    def __init__(self, url: str, section: PostgresSettings) -> None:
        from psycopg_pool import ConnectionPool

        self.url, self.section = url, section
        self.timeout = section.pool_timeout
        size = section.pool_size
        connect(url, section).close()
        self.pool = ConnectionPool(kwargs={**conninfo(url, section), **session_options(section)}, min_size=1,
                                   max_size=size, open=False, configure=configure, timeout=self.timeout,
                                   num_workers=1, name=f"photojobs-{os.getpid()}")
        self.pool.open(wait=False)

    def getconn(self) -> psycopg.Connection:
        from psycopg_pool import PoolTimeout

        try:
            return self.pool.getconn()
        except PoolTimeout:
            connect(self.url, self.section).close()  # raises the reason when the server is the problem
            raise DatabaseUnreachable(f"no free connection to {masked(self.url)} within {self.timeout:g} s",
                                      hint="raise [postgres] pool_size, or use fewer threads") from None

    def check(self) -> None:
        """After a lost connection: test the idle ones, replacing the dead (the server may
        have restarted), so the next statement gets a live one."""
        self.pool.check()

    def putconn(self, conn: psycopg.Connection) -> None:
        self.pool.putconn(conn)  # a broken connection or one left in a transaction is discarded

    def close(self) -> None:
        self.pool.close(timeout=1)


_pools: dict[tuple[int, str, PostgresSettings], Pool] = {}
_pools_lock = threading.Lock()


def pool_for(url: str, section: PostgresSettings) -> Pool:
    """This process's pool for `url` (a forked child makes its own; it never touches its parent's)."""
    key = (os.getpid(), url, section)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(url, section)
    return pool


@atexit.register
def _close_pools() -> None:
    for (pid, *_), pool in list(_pools.items()):
        if pid == os.getpid():
            try:
                pool.close()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass


__all__ = ["BYTES_MARK", "DEFAULT_POOL_SIZE", "Pool", "classify", "configure", "connect", "conninfo", "masked",
           "pool_for", "session_options"]
