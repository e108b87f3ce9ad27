"""Connecting to PostgreSQL: one clear line (exit 3) per environment problem, passwords
never shown, the session's safety settings, a bounded pool, migrations applied once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from photojobs.errors import (DatabaseAuthFailed, DatabaseConnectionLost, DatabaseMissing, DatabaseUnreachable,
                              EnvironmentProblem, SchemaTooOld)
from photojobs.settings import load
from photojobs.storage import open_backend

from .. import postgres_server
from ..conftest import cli_env, wait_for
from .conftest import write_config

pytestmark = postgres_server.marks()


def _photojobs(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=folder, env=cli_env(),
                          capture_output=True, text=True, timeout=60)


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once closed


def test_an_unreachable_server_is_one_line_exit_3_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://studio:hunter2@127.0.0.1:{_closed_port()}/photojobs"
    result = _photojobs(tmp_path, "--db", url, "migrate")
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "cannot reach PostgreSQL at postgresql://studio:***@127.0.0.1" in line and "connection refused" in line
    assert "hunter2" not in result.stderr + result.stdout


def test_a_refused_password_is_one_line_exit_3_without_the_password(tmp_path: Path, refusing_server: int) -> None:
    url = f"postgresql://studio:hunter2@127.0.0.1:{refusing_server}/photojobs?sslmode=disable"
    result = _photojobs(tmp_path, "--db", url, "migrate")
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "authentication to postgresql://studio:***@" in line and "password authentication failed" in line
    assert "hunter2" not in result.stderr
    with pytest.raises(DatabaseAuthFailed):
        open_backend(load(env={}, db=url.replace("hunter2", "other")))


def test_a_pooler_refusing_the_session_options_says_what_to_set(tmp_path: Path, bouncer_refusing_options: int) -> None:
    result = _photojobs(tmp_path, "--db", f"postgresql://studio:hunter2@127.0.0.1:{bouncer_refusing_options}/photojobs"
                        "?sslmode=disable", "status")
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "refused the session settings photojobs sends: " in line and "unsupported startup parameter" in line
    assert "add `options` to its ignore_startup_parameters" in line and "hunter2" not in line


def test_a_missing_database_is_named_and_never_created_except_by_init(tmp_path: Path) -> None:
    url = postgres_server.url("photojobs_test_no_such_database")
    with pytest.raises(DatabaseMissing, match="photojobs_test_no_such_database does not exist"):
        open_backend(load(env={}, db=url))
    result = _photojobs(tmp_path, "--db", url, "migrate")
    assert result.returncode == 3 and "does not exist" in result.stderr and "createdb" in result.stderr


def test_init_creates_the_database_and_two_hosts_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    name = f"photojobs_test_init_{int(time.time() * 1000) % 10**9}"
    url = postgres_server.url(name)
    try:
        hosts = [tmp_path / "a", tmp_path / "b"]
        procs = []
        for folder in hosts:
            folder.mkdir()
            procs.append(subprocess.Popen([sys.executable, "-m", "photojobs", "init", "--db", url], cwd=folder,
                                          env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        from photojobs.migrations import MIGRATIONS

        applied = f"applied {len(MIGRATIONS)} migration"
        assert sorted(applied in out for out, _ in outputs) == [False, True]  # one applied, one found it done
        with psycopg.connect(url) as conn:
            assert [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")] == [
                m.__name__ for m in MIGRATIONS]
        assert "up to date" in _photojobs(hosts[0], "migrate").stdout
    finally:
        postgres_server._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_database_without_the_schema_asks_for_init(tmp_path: Path) -> None:
    name = "photojobs_test_empty_schema"
    postgres_server._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    postgres_server._admin(f"CREATE DATABASE {name}")
    try:
        with pytest.raises(SchemaTooOld, match="photojobs init"):
            open_backend(load(env={}, db=postgres_server.url(name)))
    finally:
        postgres_server._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sessions_drop_idle_transactions_and_watch_the_peer(pg_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, pg_url, "[postgres]\nidle_in_transaction_timeout = 0.5\n")
    backend = open_backend(load(config=config, env={}))
    settings = {r[0]: r[1] for r in backend.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN ('idle_in_transaction_session_timeout',"
        " 'tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')").rows}
    assert settings == {"idle_in_transaction_session_timeout": "500", "tcp_keepalives_idle": "5",
                        "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3", "tcp_user_timeout": "10000"}
    with backend._connection() as conn:  # and on this side of the socket
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10000
        finally:
            sock.close()  # the duplicate descriptor only; the connection stays open
    backend.enqueue_one(_job())
    # A host stalls inside a transaction holding the job's row lock: the server ends the
    # session after the timeout, so another host's claim goes through within seconds.
    stalled = psycopg.connect(pg_url, options="-c idle_in_transaction_session_timeout=500")
    stalled.execute("SELECT id FROM jobs FOR UPDATE")
    other = open_backend(load(config=config, env={}))
    claimed = wait_for(lambda: other.claim(["default"], "w2"), timeout=10, message="the row lock to be released")
    assert len(claimed) == 1
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
        stalled.execute("SELECT 1")
    stalled.close()


def _job():
    from photojobs.storage import NewJob

    return NewJob("noop", {}, "default", time.time())


def test_a_lost_connection_is_one_clear_error_and_the_next_call_reconnects(pg_url: str) -> None:
    backend = open_backend(load(env={}, db=pg_url))
    backend.enqueue_one(_job())
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops every session of photojobs
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE application_name = 'photojobs' AND datname = current_database()")
    with pytest.raises(DatabaseConnectionLost, match="lost the connection to postgresql://postgres@127.0.0.1"):
        backend.count_jobs("default", "pending")
    assert backend.count_jobs("default", "pending") == 1


def test_connections_per_process_are_bounded_by_pool_size(pg_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, pg_url + "?application_name=pj_bounded", "[postgres]\npool_size = 2\n")
    settings = load(config=config, env={})
    seen: list[int] = []
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            backend = open_backend(settings)  # one backend per thread, as a web app has
            with backend.transaction() as tx:
                seen.append(tx.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pj_bounded'"
                                       " AND datname = current_database()").fetchone()[0])
                tx.execute("SELECT pg_sleep(0.1)")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=busy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(seen) == 8
    assert max(seen) <= 2


def test_environment_errors_are_photojobs_errors_with_exit_3() -> None:
    for error in (DatabaseUnreachable, DatabaseAuthFailed, DatabaseConnectionLost, DatabaseMissing):
        assert issubclass(error, EnvironmentProblem) and error.exit_code == 3


def test_cron_mode_lock_is_one_run_across_hosts(pg_url: str, tmp_path: Path) -> None:
    from photojobs.locks import AlreadyRunning, cron_lock

    hosts = []
    for name in ("web", "worker"):  # two installations that share only the database
        (tmp_path / name).mkdir()
        hosts.append(load(config=write_config(tmp_path / name, pg_url), env={}))
    with cron_lock(hosts[0], "send-mail", command="send-mail"):
        with pytest.raises(AlreadyRunning, match=r"send-mail is already running \(held by photojobs send-mail on"):
            with cron_lock(hosts[1], "send-mail", command="send-mail"):
                pass
        with cron_lock(hosts[1], "work-default"):  # another lock is free
            pass
    with cron_lock(hosts[1], "send-mail"):  # released when the run ended
        pass


def test_app_db_is_the_open_transactions_connection(pg_url: str) -> None:
    import photojobs
    from photojobs.errors import UsageError

    with photojobs.connect(load(env={}, db=pg_url)) as app:
        with pytest.raises(UsageError, match="app.transaction"):
            app.db
        with app.transaction() as tx:
            assert app.db is tx.connection
            assert app.db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_prepare_false_reaches_every_connection_and_the_server_holds_no_prepared_statement(
        pg_url: str, tmp_path: Path) -> None:
    """Behind PgBouncer in transaction mode (before 1.22, or without max_prepared_statements)
    a statement prepared on one server session is missing on the next: `prepare = false`."""
    from photojobs.errors import ConfigError
    from photojobs.storage.pg_connect import connect

    def prepared_after_repeats(extra: str) -> tuple[int | None, int | None, int]:
        folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        settings = load(config=write_config(folder, pg_url, extra), env={})
        backend = open_backend(settings)
        listener = connect(settings.db, settings.postgres)  # the LISTEN connection's way
        try:
            with backend.transaction() as tx:  # one pooled session: its prepared statements are visible
                for _ in range(8):  # psycopg prepares a statement run more than prepare_threshold times
                    backend.count_jobs("default", "pending")
                held = tx.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
                return tx.connection.prepare_threshold, listener.prepare_threshold, held
        finally:
            listener.close()

    assert prepared_after_repeats("") == (5, 5, 1)  # psycopg's default: the repeated count was prepared
    assert prepared_after_repeats("[postgres]\nprepare = false\n") == (None, None, 0)
    with pytest.raises(ConfigError, match=r"\[postgres\] prepare = 'no' is not true or false"):
        prepared_after_repeats('[postgres]\nprepare = "no"\n')


def test_migrate_and_cron_mode_connect_with_the_postgres_table(pg_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`migrate` repeats one statement per migration (prepared by default after 5): behind
    PgBouncer its connection needs `prepare = false` as much as the pool's."""
    from photojobs.install import migrate_database
    from photojobs.locks import cron_lock
    from photojobs.storage import pg_connect, pg_locks

    made: list[psycopg.Connection] = []
    real_connect = pg_connect.connect

    def noted(url: str, section=None) -> psycopg.Connection:
        made.append(real_connect(url, section))
        return made[-1]

    monkeypatch.setattr(pg_connect, "connect", noted)
    monkeypatch.setattr(pg_locks, "connect", noted)
    settings = load(config=write_config(tmp_path, pg_url, "[postgres]\nprepare = false\n"), env={})
    assert migrate_database(settings) == []  # the session database is migrated: each name checked
    with cron_lock(settings, "send-mail"):
        pass
    assert len(made) == 2 and [conn.prepare_threshold for conn in made] == [None, None]
