"""The CLI's shape as a user meets it: where it finds its config, global options anywhere,
help and errors in the user's words, output that scripts can read whole."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

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
