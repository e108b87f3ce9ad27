"""The `db` setting picks the storage engine: a path is SQLite, a postgresql:// URL is
PostgreSQL; a server that cannot be reached is one line a user can act on."""

from __future__ import annotations

import pytest

from photojobs.errors import ConfigError, DatabaseUnreachable
from photojobs.storage import engine_of, open_backend


def test_a_path_is_sqlite_and_a_postgresql_url_names_postgresql() -> None:
    assert engine_of("photojobs.db") == engine_of("/srv/photo jobs/q.db") == "sqlite"
    assert engine_of("postgresql://u@db/photojobs") == engine_of("postgres://db/x") == "postgresql"
    with pytest.raises(ConfigError, match="unknown database scheme 'mysql'"):
        engine_of("mysql://root:hunter2@db/x")


def test_an_unreachable_postgresql_server_is_one_line_without_its_password(workdir, cli) -> None:
    from photojobs.settings import load

    with pytest.raises(DatabaseUnreachable, match="cannot reach PostgreSQL") as refused:
        open_backend(load(db="postgresql://studio:s3cret@127.0.0.1:1/photojobs"))
    assert "s3cret" not in str(refused.value) and "studio:***@127.0.0.1" in str(refused.value)
    result = cli("--db", "postgresql://studio:s3cret@127.0.0.1:1/photojobs", "status")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "cannot reach PostgreSQL" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
