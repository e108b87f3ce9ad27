"""The chaos suite's kill storm and stop-past-the-lease on PostgreSQL (bench/chaos.py,
quick versions): nothing lost or stuck, no second run that a kill or a lost lease does
not explain. (Its held-lock and full-disk scenarios are SQLite's own.)"""

from __future__ import annotations

import pytest

from .. import postgres_server
from ..chaos.test_chaos import chaos

pytestmark = postgres_server.marks()


@pytest.mark.parametrize("scenario", [chaos.kill_storm, chaos.stop_past_lease], ids=lambda s: s.__name__)
def test_chaos_scenario_on_postgresql(scenario, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chaos, "DATABASE_URL", postgres_server.fresh_database(scenario.__name__))
    result = scenario(tmp_path, True)
    assert result["passed"], result
