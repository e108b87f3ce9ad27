"""The CLI's shape as a user meets it: where it finds its config, global options anywhere,
help and errors in the user's words, output that scripts can read whole."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import typer

from photojobs.settings import load
from tests.conftest import cli_env


def run(args, cwd, env=None, input=None):
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=cwd, env=cli_env(env),
                          capture_output=True, text=True, timeout=60, input=input)


# -- defect 12: the config is found in the current folder or above it ---------------------

def test_commands_run_from_a_subfolder_use_the_projects_config(workdir):
    below = workdir / "storage" / "thumbnails"
    result = run(["dispatch", "noop"], below)
    assert result.returncode == 0, result.stderr
    jobs = sqlite3.connect(workdir / "photojobs.db").execute("SELECT name FROM jobs").fetchall()
    assert jobs == [("noop",)]
    assert not (below / "photojobs.db").exists()
    status = run(["status", "--json"], below)
    assert status.returncode == 0 and json.loads(status.stdout)["queues"]["default"]["pending"] == 1


def test_the_nearest_config_wins_and_its_paths_stay_relative_to_it(tmp_path, monkeypatch):
    (tmp_path / "photojobs.toml").write_text('db = "data/jobs.db"\nstorage = "files"\n')
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    settings = load()
    assert settings.config_path == str(tmp_path / "photojobs.toml")
    assert settings.db_path == tmp_path / "data" / "jobs.db" and settings.storage_path == tmp_path / "files"
    (tmp_path / "a" / "photojobs.toml").write_text('db = "near.db"\n')
    assert load().db_path == tmp_path / "a" / "near.db"
    assert load(env={"PHOTOJOBS_CONFIG": str(tmp_path / "photojobs.toml")}).db_path == tmp_path / "data" / "jobs.db"


# -- defect 13: cron print needs an installation --------------------------------------------

def test_cron_print_before_init_exits_3_with_the_init_hint(tmp_path):
    result = run(["cron", "print"], tmp_path)
    assert result.returncode == 3, result.stdout
    assert "photojobs init" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_cron_print_after_init_names_the_config(workdir):
    result = run(["cron", "print"], workdir)
    assert result.returncode == 0, result.stderr
    assert f"--config {workdir / 'photojobs.toml'}" in result.stdout


# -- global options before or after the command --------------------------------------------

def test_global_options_work_after_the_command_too(workdir, tmp_path):
    before = run(["--json", "status"], workdir)
    after = run(["status", "--json"], workdir)
    assert before.returncode == after.returncode == 0
    assert json.loads(after.stdout)["queues"].keys() == json.loads(before.stdout)["queues"].keys()
    quiet = run(["dispatch", "noop", "-q"], workdir)
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_config = run(["dispatch", "noop", "--config", str(workdir / "photojobs.toml"), "--json"], elsewhere)
    assert by_config.returncode == 0, by_config.stderr
    assert json.loads(by_config.stdout)["name"] == "noop"
    assert sqlite3.connect(workdir / "photojobs.db").execute("SELECT count(*) FROM jobs").fetchone()[0] == 2
    by_db = run(["status", "--db", str(workdir / "photojobs.db"), "--json"], elsewhere)
    assert json.loads(by_db.stdout)["queues"]["default"]["pending"] == 2
    for verbose in (["work", "-v"], ["work", "-vv"], ["work", "--verbose"]):
        missing = run(verbose, elsewhere)  # no database there: -v adds the traceback
        assert missing.returncode == 3 and "Traceback" in missing.stderr, verbose


def test_a_value_that_looks_like_a_global_option_stays_a_value(workdir):
    result = run(["logs", "--filter", "-v", "--json"], workdir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# -- help and errors in the user's words -----------------------------------------------------

def _every_help_text() -> dict[str, str]:
    from photojobs.commands import cli_command

    texts = {}

    def walk(command, path, parent=None):
        ctx = typer.Context(command, info_name=path.split()[-1], parent=parent)
        texts[path] = command.get_help(ctx)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}", ctx)

    walk(cli_command(), "photojobs")
    return texts


def test_help_speaks_the_users_words():
    texts = _every_help_text()
    assert {"photojobs photos add", "photojobs failed retry", "photojobs work"} <= texts.keys()
    for path, text in texts.items():
        assert not re.search(r"<\w[\w\[\], |]*>", text), (path, text)  # <str>, <list[int]>, <float range>
        assert "{" not in text and "[default: 0]" not in text and "x>=" not in text, (path, text)
    assert "photos add [OPTIONS] PATH..." in texts["photojobs photos add"]
    assert "--album NAME" in texts["photojobs photos add"]
    assert "[ID]..." in texts["photojobs failed retry"]
    assert "--max-time SECONDS" in texts["photojobs work"] and "at least 1" in texts["photojobs work"]


def test_bad_values_are_explained_without_library_texts(workdir):
    cases = {("photos", "show", "abc"): "'abc' is not a whole number",
             ("work", "--timeout", "soon"): "'soon' is not a number",
             ("work", "--concurrency", "0"): "must be at least 1, not 0",
             ("failed", "retry", "x"): "'ID': 'x' is not a whole number"}
    for args, expected in cases.items():
        result = run(list(args), workdir)
        assert result.returncode == 2, args
        assert expected in result.stderr, (args, result.stderr)
        assert "Input should" not in result.stderr and len(result.stderr.splitlines()) == 1
