"""failed list|show|retry|forget|flush|prune against failed jobs made by real worker runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TESTS, cli_env

from .conftest import OPS, PYTHONPATH, db_exec, db_rows


def _failed_now(workdir: Path) -> list[dict]:
    """The failed list, read through the library in this process (the CLI's own output is checked elsewhere)."""
    import photojobs
    from photojobs import ops

    with photojobs.connect(workdir / "photojobs.toml") as app:
        return ops.list_failed(app)


def _job(workdir: Path, job_id: int):
    """One job as the backend gives it (None once it is gone)."""
    import photojobs

    with photojobs.connect(workdir / "photojobs.toml") as app:
        return app.backend.get(job_id)


@pytest.fixture(scope="module")
def failed_template(tmp_path_factory) -> tuple[Path, dict]:
    """A database with real failures, made once per module by a real worker run:
    doomed (permanent, 1 attempt), flaky (3 attempts), a photos-queue doomed, a noop that
    succeeds, and fail_while (fails while the file ./flag exists, relative to the cwd)."""
    import photojobs
    from photojobs.install import init

    folder = tmp_path_factory.mktemp("failed-template")
    init(config=str(folder / "photojobs.toml"))
    with open(folder / "photojobs.toml", "a") as fh:
        fh.write('imports = ["sample_jobs", "ops_jobs"]\n')
    for path in (str(TESTS), str(OPS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    (folder / "flag").write_text("x")
    with photojobs.connect(folder / "photojobs.toml") as app:
        ids = {"doomed": app.dispatch("doomed", {"reason": "bad [input]"}),
               "flaky": app.dispatch("flaky", {"fail_times": 5}),
               "photos": app.dispatch("doomed", queue="photos"),
               "noop": app.dispatch("noop"),
               "fail_while": app.dispatch("fail_while", {"flag": "flag", "out": "out"})}
    work = subprocess.run([sys.executable, "-m", "photojobs", "work", "--stop-when-empty", "--queue", "default,photos"],
                          cwd=folder, env=cli_env({"PYTHONPATH": PYTHONPATH}), capture_output=True, text=True,
                          timeout=60)
    assert work.returncode == 1, work.stderr  # a job of this run ended in the failed table
    return folder, ids


@pytest.fixture
def failures(opsdir, failed_template) -> dict:
    """The template's database copied into this test's workspace; returns the job ids."""
    folder, ids = failed_template
    for suffix in ("-wal", "-shm"):
        (opsdir / f"photojobs.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(folder / "photojobs.db", opsdir / "photojobs.db")
    (opsdir / "flag").write_text("x")
    return ids


def test_list_show_and_filters(run, run_json, opsdir, failures):
    ids = failures
    listed = run_json("failed", "list")
    assert {row["id"] for row in listed} == {ids["doomed"], ids["flaky"], ids["photos"], ids["fail_while"]}
    by_id = {row["id"]: row for row in listed}
    assert by_id[ids["flaky"]]["attempts"] == 3
    assert by_id[ids["flaky"]]["error"] == "OSError: transient failure 3"
    assert by_id[ids["doomed"]]["error"] == "PermanentFailure: cannot ever work: bad [input]"
    assert by_id[ids["doomed"]]["failed_at"].endswith("+00:00")
    assert [row["id"] for row in run_json("failed", "list", "--queue", "photos")] == [ids["photos"]]
    assert len(run_json("failed", "list", "--limit", "2")) == 2

    shown = run_json("failed", "show", str(ids["flaky"]))
    assert shown["payload"] == {"fail_times": 5}
    assert [e["attempt"] for e in shown["errors"]] == [1, 2, 3]
    assert [e["message"] for e in shown["errors"]] == [f"transient failure {n}" for n in (1, 2, 3)]
    for error in shown["errors"]:
        assert error["error_class"] == "OSError"
        assert "Traceback (most recent call last)" in error["traceback"]
        assert "raise OSError" in error["traceback"]

    human = run("failed", "show", str(ids["doomed"]))
    assert human.returncode == 0
    assert '"bad [input]"' in human.stdout  # payload shown literally, brackets included
    assert "--- attempt 1" in human.stdout and "PermanentFailure: cannot ever work" in human.stdout
    table = run("failed", "list")
    assert table.returncode == 0 and "[input]" in table.stdout  # not eaten as rich markup


def test_show_and_forget_refuse_what_is_not_failed(run, opsdir, failures):
    ids = failures
    done = run("failed", "show", str(ids["noop"]))
    assert done.returncode == 2
    assert done.stderr.strip() == f"Error: job {ids['noop']} is done, not failed"
    missing = run("failed", "forget", "9999")
    assert missing.returncode == 2
    assert missing.stderr.startswith("Error: no job 9999")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_retry_gives_fresh_tries_and_the_job_runs_again(run, run_json, opsdir, failures):
    ids = failures
    (opsdir / "flag").unlink()  # the cause is fixed
    result = run_json("failed", "retry", str(ids["fail_while"]))
    assert result == {"retried": [ids["fail_while"]], "skipped": []}
    row = _job(opsdir, ids["fail_while"])
    assert (row["status"], row["attempts"], row["finished_at"]) == ("pending", 0, None)
    assert run("work", "--stop-when-empty").returncode == 0
    assert (opsdir / "out").read_text() == "ok"
    assert _job(opsdir, ids["fail_while"])["status"] == "done"
    # the others are still failed
    assert {r["id"] for r in _failed_now(opsdir)} == {ids["doomed"], ids["flaky"], ids["photos"]}


def test_retry_is_all_or_nothing_and_by_queue_or_all(run, run_json, opsdir, failures):
    ids = failures
    refused = run("failed", "retry", str(ids["doomed"]), str(ids["noop"]))
    assert refused.returncode == 2 and "not failed" in refused.stderr
    assert len(_failed_now(opsdir)) == 4  # nothing was retried
    assert run("failed", "retry").returncode == 2  # nothing chosen
    assert run("failed", "retry", "--all", "--queue", "photos").returncode == 2

    assert run_json("failed", "retry", "--queue", "photos")["retried"] == [ids["photos"]]
    assert {r["id"] for r in _failed_now(opsdir)} == {ids["doomed"], ids["flaky"], ids["fail_while"]}
    retried = run_json("failed", "retry", "--all")["retried"]
    assert sorted(retried) == sorted([ids["doomed"], ids["flaky"], ids["fail_while"]])
    assert _failed_now(opsdir) == []
    fresh = [_job(opsdir, job_id) for job_id in (ids["doomed"], ids["flaky"], ids["fail_while"], ids["photos"])]
    assert [(job["status"], job["attempts"]) for job in fresh] == [("pending", 0)] * 4


def test_retry_skips_a_job_whose_unique_key_is_live_again(run, run_json, opsdir):
    first = run_json("dispatch", "doomed", "--unique-key", "only-one")["id"]
    assert run("work", "--stop-when-empty").returncode == 1
    second = run_json("dispatch", "doomed", "--unique-key", "only-one")["id"]  # allowed: the first is not live
    result = run_json("failed", "retry", "--all")
    assert result["retried"] == []
    assert result["skipped"][0]["id"] == first and "only-one" in result["skipped"][0]["reason"]
    assert _job(opsdir, second)["status"] == "pending"


def test_forget_flush_prune(run, run_json, opsdir, failures):
    ids = failures
    assert run("failed", "forget", str(ids["doomed"])).returncode == 0
    assert _job(opsdir, ids["doomed"]) is None
    # its error records too: orphans no command would show, so storage is read on purpose
    assert not db_rows(opsdir, "SELECT 1 FROM job_errors WHERE job_id = ?", [ids["doomed"]])

    # one failure is 3 hours old (set in storage on purpose: the clock cannot be moved), the others are fresh
    db_exec(opsdir, "UPDATE jobs SET finished_at = ? WHERE id = ?", [time.time() - 3 * 3600, ids["flaky"]])
    pruned = run("failed", "prune", "--hours", "2")
    assert pruned.returncode == 0 and "Deleted 1 failed job" in pruned.stdout
    assert {r["id"] for r in _failed_now(opsdir)} == {ids["photos"], ids["fail_while"]}
    assert run("failed", "prune").returncode == 2  # --hours is required

    declined = run("failed", "flush", "--queue", "photos", input="n\n")
    assert declined.returncode == 1 and "Delete 1 failed job(s) of queue photos" in declined.stdout
    assert "Nothing deleted" in declined.stdout
    no_terminal = run("failed", "flush", input="")  # cron: nobody to answer
    assert no_terminal.returncode == 2
    assert no_terminal.stderr.strip() == "Error: refusing without a terminal: pass --yes"
    assert len(_failed_now(opsdir)) == 2
    assert "Deleted 1 failed job" in run("failed", "flush", "--queue", "photos", input="y\n").stdout
    assert "Deleted 1 failed job" in run("failed", "flush", "--yes").stdout
    assert "No failed jobs" in run("failed", "flush").stdout
    assert _failed_now(opsdir) == []
    assert db_rows(opsdir, "SELECT count(*) FROM job_errors")[0][0] == 0  # no orphan error records (on purpose)
    assert _job(opsdir, ids["noop"])["status"] == "done"
