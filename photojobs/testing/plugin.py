"""The pytest plugin of photojobs (entry point `pytest11`): fixtures for code that dispatches jobs.

- `photojobs_fake_queue`: a FakeQueue recording every dispatch of the test (see
  photojobs.testing.fake_queue);
- `photojobs_sync_app`: an App on a fresh database in the test's tmp_path, in sync mode:
  every dispatch runs its job at once, through the worker's code path.

This module is imported by every pytest run that has photojobs installed, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture
def photojobs_fake_queue() -> Iterator["object"]:
    """Record dispatches instead of enqueuing them; assert on them afterwards."""
    from photojobs.testing import fake_queue

    with fake_queue() as queue:
        yield queue


@pytest.fixture
def photojobs_sync_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator["object"]:
    """A photojobs App on a new database whose dispatches run inline (queue = "sync")."""
    from photojobs.app import App
    from photojobs.settings import load
    from photojobs.install import init

    folder = tmp_path_factory.mktemp("photojobs")
    result = init(config=str(folder / "photojobs.toml"))
    app = App(load(config=result["config"], env={}).replace(queue="sync"))
    try:
        yield app
    finally:
        app.close()
