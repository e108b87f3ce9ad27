"""The chaos suite on PostgreSQL (bench/chaos.py, quick versions): kill -9 storm,
SIGSTOP past the lease, a table lock held past lock_budget, the server's disk full (a
private cluster on a small tmpfs: root only), and that server stopping meanwhile. Nothing lost or stuck, no
second run that a kill or a lost lease does not explain."""

from __future__ import annotations

import pytest

from .. import postgres_server
from ..chaos.test_chaos import chaos

pytestmark = postgres_server.marks()


@pytest.mark.parametrize("scenario", chaos.QUEUE_SCENARIOS, ids=lambda s: s.__name__)
def test_chaos_scenario_on_postgresql(scenario, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chaos, "DATABASE_URL", postgres_server.fresh_database(scenario.__name__))
    result = scenario(tmp_path, True)
    if result.get("skipped"):
        pytest.skip(result["skipped"])
    assert result["passed"], result
    if scenario is chaos.lock_held:  # the workers said they waited, and for whom
        assert result["wait_messages"] and result["holder_named"] == result["wait_messages"], result
    if scenario in (chaos.disk_full, chaos.disk_full_server_stops):  # the outage, said once per process
        assert result["server_errors"] and 0 < result["outage_lines"] <= 8, result
    if scenario is chaos.disk_full_server_stops:  # stopped, started again, and the workers went on
        assert result["server_restarts"] == 1 and result["worker_restarts"] == 0, result
