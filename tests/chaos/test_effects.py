"""The chaos suite's effect scenarios, short (bench/chaos_effects.py; the full run is
bench/chaos.py): a full storage disk during archive builds, kill -9 during `photos add`,
a stale archive attempt. Each drives the real CLI; pass means nothing marked ready that
is not complete, no temp file left, every file registered once, integrity ok."""

from __future__ import annotations

import importlib.util
import json

import pytest

from ..conftest import ROOT


def _load_scenarios() -> list:
    # Loaded by path: putting bench/ on sys.path would shadow the stdlib (bench/queue.py).
    spec = importlib.util.spec_from_file_location("chaos_effects", ROOT / "bench" / "chaos_effects.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SCENARIOS


SCENARIOS = _load_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_effect_scenario(scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = scenario(tmp_path, True)
    if result["passed"] is None:
        pytest.skip(result["skipped"])
    assert result["passed"], json.dumps(result)
