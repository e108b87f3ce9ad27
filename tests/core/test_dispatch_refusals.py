"""Dispatch refuses what could never run, with a clear message, and writes nothing."""

from __future__ import annotations

import json
import math

import pytest

from photojobs.app import Dispatch
from photojobs.errors import InvalidPayload, UsageError
from tests.api_views import queued_jobs


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("payload, options, error, message", [
    ({}, {"delay": math.nan}, UsageError, "the delay must be a finite number of seconds >= 0"),
    ({}, {"delay": math.inf}, UsageError, "the delay must be a finite number"),
    ({}, {"timeout": -5}, UsageError, "the timeout must be a finite number of seconds > 0"),
    ({}, {"timeout": math.nan}, UsageError, "the timeout must be a finite number"),
    ({}, {"tries": 2**70}, UsageError, "tries must be a whole number"),
    ({}, {"queue": "a,b"}, UsageError, "'a,b' is not a queue name"),
    ({}, {"queue": ""}, UsageError, "is not a queue name"),
    ({"n": 2**63}, {}, InvalidPayload, "n = 9223372036854775808 is beyond the 64-bit integer range"),
    ({"n": -(2**63) - 1}, {}, InvalidPayload, "beyond the 64-bit integer range"),
    ({"n": math.nan}, {}, InvalidPayload, "n is nan, which JSON cannot hold"),
    ({"n": {1, 2}}, {}, InvalidPayload, "n is a set, which is not JSON"),
    ({"n": object()}, {}, InvalidPayload, "n is a object, which is not JSON"),
    ({"n": {1: "x"}}, {}, InvalidPayload, "has a key 1 that is not text"),
    ({"n": _deep(100_000)}, {}, InvalidPayload, "nested more than 64 levels deep"),
])
def test_dispatch_refuses_what_can_never_run(app, payload, options, error, message):
    with pytest.raises(error, match="^noop: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        app.dispatch("noop", payload, **options)
    with pytest.raises(error):
        app.dispatch_many([Dispatch("noop", {}), Dispatch("noop", payload, **options)])
    assert queued_jobs(app) == 0


def test_good_values_at_the_edges_are_accepted(app):
    app.dispatch("noop", {"n": 2**63 - 1}, delay=0, timeout=0.5, tries=1, queue="emails-2_b")
    app.dispatch("noop", {"n": -(2**63)})
    assert queued_jobs(app) == 2


@pytest.mark.parametrize("args, message", [
    (["--delay", "nan"], "the delay must be a finite number of seconds"),
    (["--queue", "a,b"], "'a,b' is not a queue name"),
    (["--payload", '{"n": 99999999999999999999}'], "beyond the 64-bit integer range"),
    (["--payload", '{"n": NaN}'], "which JSON cannot hold"),
    (["--payload", '{"n": ' + "[" * 5000 + "]" * 5000 + "}"], "--payload is nested too deeply"),
    (["--payload", json.dumps(_deep(70))], "nested more than 64 levels deep"),
])
def test_cli_dispatch_refuses_with_one_line_and_exit_2(cli, args, message):
    done = cli("dispatch", "noop", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
