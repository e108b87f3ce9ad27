"""The chaos suite's short versions (bench/chaos.py --quick): the real CLI under kill -9,
SIGSTOP past the lease, a held write lock and a full disk. Pass: nothing lost or stuck,
no second run without a kill or lost lease to explain it, `PRAGMA integrity_check` ok."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_chaos():
    spec = importlib.util.spec_from_file_location("photojobs_chaos", BENCH / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


chaos = _load_chaos()


@pytest.mark.parametrize("scenario", chaos.SCENARIOS, ids=lambda s: s.__name__)
def test_chaos_scenario(scenario, tmp_path):
    result = scenario(tmp_path, True)
    if result.get("skipped"):
        pytest.skip(result["skipped"])
    assert result["passed"], result
