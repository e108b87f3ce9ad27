"""Schedule fixtures: a workspace whose photojobs.toml carries a [schedule], database helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import storage_rows


def add_schedule(workdir: Path, text: str) -> None:
    """Append [schedule] tables to the workspace's photojobs.toml (tables go after top-level keys)."""
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n" + text.strip() + "\n")


def query(workdir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the workspace's database with a connection of its own."""
    return [tuple(row) for row in storage_rows(workdir, sql, params)]


def runs(workdir: Path, task: str) -> list[tuple]:
    """Every recorded run of `task`, read from storage on purpose: the schedule_runs row is
    what keeps two schedulers from enqueuing one run twice (commands show only the latest)."""
    return query(workdir, "SELECT run_at, job_id FROM schedule_runs WHERE task = ? ORDER BY run_at", (task,))


def jobs_named(workdir: Path, name: str) -> list[tuple]:
    """The jobs those runs made, by id, read from storage on purpose to pair each run with its job."""
    return query(workdir, "SELECT id, payload FROM jobs WHERE name = ? ORDER BY id", (name,))


@pytest.fixture
def every_second(workdir: Path) -> Path:
    """A workspace with a task `tick` that enqueues `noop` every second (the defaults stay on)."""
    add_schedule(workdir, """
[schedule.tick]
every = "1s"
job = "noop"
payload = { n = 7 }
timezone = "UTC"
""")
    return workdir
