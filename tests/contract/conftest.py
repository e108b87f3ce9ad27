"""The storage contract: every engine keeps it. A new engine adds a parameter to
`ENGINES` and a branch to `make_database`, not tests.

Tests here talk to storage only through `photojobs.storage` (the Backend protocol and
the domain repositories): no raw SQL, no engine-specific imports.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from photojobs.settings import Settings, load
from photojobs.storage import AttemptError, Backend, NewJob, open_backend

from .. import postgres_server

ENGINES = ["sqlite", pytest.param("postgresql", marks=postgres_server.marks())]


def make_database(engine: str, folder: Path, template: Path, **settings: object) -> Settings:
    """A fresh, migrated database for `engine` (a copy of `template` for SQLite); its settings."""
    if engine == "sqlite":
        shutil.copyfile(template / "photojobs.db", folder / "photojobs.db")
        (folder / "photojobs.toml").write_text('db = "photojobs.db"\nstorage = "storage"\n')
        return load(config=folder / "photojobs.toml", **settings)
    if engine == "postgresql":  # the session's database, emptied
        (folder / "photojobs.toml").write_text(f'db = "{postgres_server.empty_database()}"\nstorage = "storage"\n')
        return load(config=folder / "photojobs.toml", **settings)
    raise AssertionError(f"no database maker for engine {engine!r}")


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database made by `photojobs init`, copied for each test (init costs ~0.2 s)."""
    from photojobs.install import init

    folder = tmp_path_factory.mktemp("template")
    init(config=str(folder / "photojobs.toml"))
    return folder


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(engine: str, tmp_path: Path, template: Path) -> Settings:
    return make_database(engine, tmp_path, template, lease=60)


@pytest.fixture
def connect(settings: Settings):
    """Open another connection to the same database (another process would)."""
    opened: list[Backend] = []

    def open_one(**changes: object) -> Backend:
        backend = open_backend(settings.replace(**changes) if changes else settings)
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(connect: Callable[..., Backend]) -> Backend:
    return connect()


def new_job(name: str = "noop", queue: str = "default", *, delay: float = 0.0, unique_key: str | None = None,
            payload: dict | None = None, **extra: object) -> NewJob:
    import time

    return NewJob(name, payload if payload is not None else {}, queue, time.time() + delay, unique_key, **extra)


def enqueue(backend: Backend, *jobs: NewJob) -> list[int]:
    ids = backend.enqueue(list(jobs)).ids
    assert None not in ids
    return ids  # type: ignore[return-value]


def boom(message: str = "boom") -> AttemptError:
    return AttemptError("OSError", message, "Traceback: ...")
