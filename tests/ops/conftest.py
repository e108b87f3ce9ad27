"""Fixtures of the ops tests: a workspace that also imports tests/ops/ops_jobs.py, and the
CLI with --json parsed."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import TESTS, storage_rows, set_config as set_top  # noqa: F401 (re-exported for the ops tests)

OPS = Path(__file__).parent
PYTHONPATH = os.pathsep.join([str(TESTS), str(OPS)])


@pytest.fixture
def opsdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = workdir / "photojobs.toml"
    config.write_text(config.read_text().replace('imports = ["sample_jobs"]', 'imports = ["sample_jobs", "ops_jobs"]'))
    monkeypatch.syspath_prepend(str(OPS))
    return workdir


@pytest.fixture
def run(opsdir: Path, cli):
    """`run("failed", "list")` -> CompletedProcess, with ops_jobs importable."""

    def call(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return cli(*args, env={"PYTHONPATH": PYTHONPATH}, input=input, timeout=timeout)

    return call


@pytest.fixture
def run_json(run):
    """Run a command with --json; assert it exited 0 and return the parsed output."""

    def call(*args: str):
        result = run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return call


@pytest.fixture
def start(opsdir: Path, spawn):
    def call(*args: str):
        return spawn(*args, env={"PYTHONPATH": PYTHONPATH})

    return call


@pytest.fixture
def ops_app(opsdir: Path):
    import photojobs

    application = photojobs.connect(opsdir / "photojobs.toml")
    yield application
    application.close()


def db_rows(workdir: Path, sql: str, params=()) -> list:
    """Read storage on purpose (what no command shows); each use says why."""
    return storage_rows(workdir, sql, params)


def db_exec(workdir: Path, sql: str, params=()) -> None:
    """Change storage on purpose (what no command can make: a moved clock, a made-up worker); each use says why."""
    storage_rows(workdir, sql, params)


class LineReader:
    """Read a process's stdout lines in a thread, so a test can wait for one with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)

    def wait_for(self, predicate, timeout: float = 15.0) -> str:
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line within {timeout}s; saw: {self.seen[-10:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line
