"""Fixtures every test area shares: a clean environment, an initialised workspace, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent


@pytest.fixture(autouse=True)
def env_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PHOTOJOBS_"):
            monkeypatch.delenv(key)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with photojobs.toml, an initialised database and storage root; the cwd."""
    work = tmp_path / "work"
    work.mkdir()
    return init_workspace(work, monkeypatch)


def init_workspace(work: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make `work` an initialised workspace (config, database, storage; the sample jobs) and the cwd."""
    from photojobs.install import init

    monkeypatch.chdir(work)
    init(config=str(work / "photojobs.toml"))
    with open(work / "photojobs.toml", "a") as fh:
        fh.write('imports = ["sample_jobs"]\n')
    monkeypatch.syspath_prepend(str(TESTS))
    return work


def set_config(workdir: Path, text: str) -> None:
    """Append settings to the workspace's photojobs.toml (top-level keys before tables)."""
    path = workdir / "photojobs.toml"
    path.write_text(text + "\n" + path.read_text())


@pytest.fixture
def app(workdir: Path):
    import photojobs

    application = photojobs.connect(workdir / "photojobs.toml")
    yield application
    application.close()


def cli_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


@pytest.fixture
def cli(workdir: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run `python -m photojobs ARGS` in the workspace; returns the CompletedProcess."""

    def run(*args: str, env: dict | None = None, timeout: float = 60, input: str | None = None):
        return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=workdir, env=cli_env(env),
                              capture_output=True, text=True, timeout=timeout, input=input)

    return run


@pytest.fixture
def spawn(workdir: Path):
    """Start `python -m photojobs ARGS` in the background; every process is killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "photojobs", *args], cwd=workdir, env=cli_env(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05, message: str = ""):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def storage_rows(workdir: Path, sql: str, params=()) -> list:
    """Inspect a workspace's storage on purpose, through the storage seam (whatever the
    engine), with a connection of its own: the rows of one statement."""
    from photojobs.settings import Settings
    from photojobs.storage import open_backend

    backend = open_backend(Settings(db=str(workdir / "photojobs.db")))
    try:
        return backend.execute(sql, params).fetchall()
    finally:
        backend.close()
