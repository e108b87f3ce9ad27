"""A worker's outage log: one line when the database goes, one when it is back; a server
that fails again just after coming back (a nearly full disk lets some writes through) is
the same outage, not a new line per flicker, and its back-off goes on growing."""

from __future__ import annotations

import logging

import pytest

from photojobs import outage as outage_module
from photojobs.errors import DiskFull
from photojobs.outage import Outage


def _lines(caplog: pytest.LogCaptureFixture, event: str) -> int:
    return sum(1 for record in caplog.records if getattr(record, "event", None) == event)


def test_a_flickering_outage_is_one_line_and_its_back_off_keeps_growing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="photojobs.worker")
    outage = Outage("a worker process")
    full = DiskFull("database x: the server's disk is full")
    delays = []
    for _ in range(6):  # a write fails, a claim gets through, the next write fails again...
        delays.append(outage.failed(full))
        outage.recovered()
    assert (_lines(caplog, "db_unavailable"), _lines(caplog, "db_back")) == (1, 1)
    assert delays[-1] >= outage_module.MAX_DELAY / 2 > delays[0]  # not a 0.2 s loop while it flickers


def test_an_outage_long_after_the_last_is_logged_again(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    caplog.set_level(logging.WARNING, logger="photojobs.worker")
    monkeypatch.setattr(outage_module, "FLICKER", 0.0)
    outage = Outage("the supervisor")
    for _ in range(2):
        first = outage.failed(DiskFull("full"))
        outage.recovered()
        assert first <= outage_module.FIRST_DELAY * 1.5  # a new outage starts its back-off afresh
    assert (_lines(caplog, "db_unavailable"), _lines(caplog, "db_back")) == (2, 2)
