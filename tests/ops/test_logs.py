"""The job log: JSON lines written by real worker runs, rotation with several processes,
`photojobs logs` with its filters and --follow."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import stat

from photojobs.logs import JsonLinesHandler

from .conftest import LineReader


def _jsonl(run):
    """`logs --json` prints one JSON object a line (so --follow can stream them)."""

    def call(*args):
        result = run("logs", *args, "--json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    return call


def _log(opsdir):
    return opsdir / "storage" / "logs" / "photojobs.jsonl"


def test_every_outcome_is_logged_as_json_and_readably(run, ops_app, opsdir):
    logs = _jsonl(run)
    ok = ops_app.dispatch("noop")
    flaky = ops_app.dispatch("flaky", {"fail_times": 1})
    doomed = ops_app.dispatch("doomed", {"reason": "broken"})
    work = run("-v", "work", "--stop-when-empty")
    assert work.returncode == 1
    assert f"done     noop#{ok} [default] try 1" in work.stderr  # the console's readable lines
    assert f"failed   doomed#{doomed} [default] try 1" in work.stderr

    path = _log(opsdir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    events = [(e["event"], e["job"]["id"], e["job"]["attempt"]) for e in entries if "job" in e]
    assert ("started", ok, 1) in events and ("done", ok, 1) in events
    assert ("retry", flaky, 1) in events and ("done", flaky, 2) in events
    assert ("failed", doomed, 1) in events
    retry = next(e for e in entries if e.get("event") == "retry")
    assert retry["level"] == "WARNING" and retry["error"] == "OSError: transient failure 1"
    assert retry["job"] == {"id": flaky, "name": "flaky", "queue": "default", "attempt": 1}
    done = next(e for e in entries if e.get("event") == "done")
    assert isinstance(done["duration"], float) and done["time"].endswith("+00:00") and done["pid"] > 0

    # without -v the console shows only what went wrong; the file has everything
    ops_app.dispatch("noop")
    ops_app.dispatch("doomed", {"reason": "again"})
    quiet = run("work", "--stop-when-empty")
    assert "started" not in quiet.stderr and "done " not in quiet.stderr
    assert "failed   doomed#" in quiet.stderr and "again" in quiet.stderr
    assert run("-q", "work", "--stop-when-empty").stderr == ""

    only_flaky = logs("--job", str(flaky))
    assert [e["event"] for e in only_flaky] == ["started", "retry", "started", "done"]
    errors = logs("--level", "error")
    assert [(e["event"], e["job"]["id"]) for e in errors][0] == ("failed", doomed)
    assert [e["event"] for e in errors] == ["failed", "failed"]
    assert [e["event"] for e in logs("--filter", "BROKEN")] == ["failed"]
    assert len(logs("-n", "2")) == 2
    readable = run("logs", "--job", str(doomed))
    assert readable.stdout.splitlines()[-1].endswith("- PermanentFailure: cannot ever work: broken")
    # each line carries its date: a log spans days
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ ", readable.stdout.splitlines()[-1])
    assert run("logs", "--level", "loud").returncode == 2


def test_logs_without_a_log_yet(run):
    result = run("logs")
    assert result.returncode == 0 and "No log yet" in result.stdout
    assert run("logs", "--json").stdout == ""


def test_follow_sees_lines_written_after_it_started(start, run, ops_app, opsdir):
    first = ops_app.dispatch("noop")
    assert run("work", "--stop-when-empty").returncode == 0
    follower = start("logs", "--follow", "--json", "-n", "1")
    reader = LineReader(follower.stdout)
    # the last past line comes first: the follower is running and at the end of the file
    reader.wait_for(lambda line: json.loads(line)["job"]["id"] == first)
    later = ops_app.dispatch("doomed")
    assert run("work", "--stop-when-empty").returncode == 1
    line = reader.wait_for(lambda line: json.loads(line)["job"]["id"] == later and "failed" in line)
    assert json.loads(line)["error"] == "PermanentFailure: cannot ever work: no"
    assert follower.poll() is None


def _write_lines(path: str, writer: int, count: int) -> None:
    handler = JsonLinesHandler(path, max_bytes=20_000, backups=100)
    logger = logging.getLogger(f"rotation-test-{writer}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for n in range(count):
        logger.info("line", extra={"event": "test", "job": {"id": writer * 100_000 + n}, "padding": "x" * 50})
    handler.close()


def test_rotation_with_several_processes_loses_and_mangles_no_line(tmp_path):
    path = tmp_path / "logs" / "photojobs.jsonl"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_lines, args=(str(path), w, 600)) for w in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(30)
        assert p.exitcode == 0
    files = [path] + sorted(path.parent.glob("photojobs.jsonl.*[0-9]"))
    assert len(files) > 5  # it rotated many times
    ids = []
    for file in files:
        for line in file.read_text().splitlines():
            ids.append(json.loads(line)["job"]["id"])  # every line is whole JSON
    assert sorted(ids) == sorted(w * 100_000 + n for w in range(4) for n in range(600))
    # rotated files stay near the limit: each rotation happened once, not once per process
    sizes = [f.stat().st_size for f in files[1:]]
    assert max(sizes) < 40_000
    assert not any(f.suffix == ".lock" for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert os.path.exists(str(path) + ".lock")
