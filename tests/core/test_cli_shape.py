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

from photojobs.app import Dispatch
from photojobs.settings import load
from tests.conftest import cli_env


def run(args, cwd, env=None, input=None):
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=cwd, env=cli_env(env),
                          capture_output=True, text=True, timeout=60, input=input)


# -- defect 12: the config is found in the current folder or above it ---------------------

def test_commands_run_from_a_subfolder_use_the_projects_config(workdir):
    below = workdir / "storage" / "thumbnails"
    result = run(["dispatch", "noop", "--json"], below)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "noop"
    status = json.loads(run(["status", "--json"], workdir).stdout)  # the project's database has it
    assert status["queues"]["default"]["pending"] == 1
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


# -- output: whole values in a pipe, the URL whole on a terminal ------------------------------

LONG_URL_BASE = "https://photos.example.com/" + "studio-" * 20


def _a_download(workdir):
    import photojobs
    from photojobs.archives.downloads import create_download
    from photojobs.orders import create_order
    from tests.archives.conftest import add_photo_rows, write_photo
    from tests.conftest import set_config

    set_config(workdir, f'base_url = "{LONG_URL_BASE}"')
    (workdir / "shoot").mkdir()
    with photojobs.connect(workdir / "photojobs.toml") as app:
        ids = add_photo_rows(app, [write_photo(workdir / "shoot" / "IMG_0001.jpg")], album="shoot")
        order = create_order(app, "ann@example.com", photo_ids=ids)
        return create_download(app, order["id"])


def test_piped_lists_and_records_print_every_value_whole(workdir):
    download = _a_download(workdir)
    assert len(download["url"]) > 200
    listed = run(["downloads", "list"], workdir)
    header, row = listed.stdout.splitlines()
    columns = header.split("\t")
    assert "url" in columns and row.split("\t")[columns.index("url")] == download["url"]
    shown = run(["downloads", "show", str(download["id"])], workdir)
    assert ["url", download["url"]] in [line.split() for line in shown.stdout.splitlines()]
    assert len(max(shown.stdout.splitlines(), key=len)) > 200  # one line, not wrapped at 80


def test_on_a_narrow_terminal_downloads_show_keeps_the_url_whole(workdir):
    import fcntl
    import os
    import pty
    import struct
    import termios

    download = _a_download(workdir)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "photojobs", "downloads", "show", str(download["id"])],
                            cwd=workdir, env=cli_env({"COLUMNS": "40"}), stdin=follower, stdout=follower,
                            stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    proc.stderr.close()
    output = b"".join(chunks).decode()
    assert download["url"] in output.replace("\r", "")


# -- errors name what governs them -------------------------------------------------------------

def test_an_error_from_an_environment_variable_names_it(workdir):
    for name, value in (("PHOTOJOBS_DURABILITY", "bogus"), ("PHOTOJOBS_LEASE", "soon"), ("PHOTOJOBS_QUEUE", "x")):
        result = run(["status"], workdir, env={name: value})
        assert result.returncode == 3, result.stdout
        assert f"environment variable {name}" in result.stderr and repr(value) in result.stderr, result.stderr


def test_the_lock_error_names_lock_budget(workdir):
    holder = sqlite3.connect(workdir / "photojobs.db", isolation_level=None)  # SQLite's write lock, held on purpose
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run(["dispatch", "noop"], workdir, env={"PHOTOJOBS_LOCK_BUDGET": "0.3", "PHOTOJOBS_BUSY_TIMEOUT": "0.1"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 3, result.stderr
    assert "lock_budget" in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


# -- cron logs: dated lines, rotated files, a schedule run that says when ----------------------

DATED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} ")


def test_a_cron_log_has_dated_lines_and_is_rotated_past_its_size(workdir):
    log = workdir / "storage" / "logs" / "cron-work.log"
    log.write_text("old line\n" * 150_000)  # 1.35 MB: past the 1 MB limit
    result = run(["--log-file", str(log), "work", "--stop-when-empty"], workdir)
    assert result.returncode == 0 and result.stdout == result.stderr == ""
    assert (workdir / "storage" / "logs" / "cron-work.log.1").read_text().startswith("old line\n")
    lines = log.read_text().splitlines()
    assert lines and all(DATED.match(line) for line in lines), lines
    assert "0 done" in lines[-1]
    again = run(["work", "--stop-when-empty", "-v", "--log-file", str(log)], workdir)  # not rotated: small
    assert again.returncode == 0 and not (workdir / "storage" / "logs" / "cron-work.log.2").exists()
    assert len(log.read_text().splitlines()) == 2 * len(lines)
    assert all(DATED.match(line) for line in log.read_text().splitlines())


def test_schedule_run_once_says_when_it_ran_and_what_runs_next(workdir):
    result = run(["schedule", "run", "--once"], workdir)
    assert result.returncode == 0, result.stderr
    first, *_, last = result.stdout.splitlines()
    assert re.match(r"Schedule run at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+: ", first)
    assert re.match(r"next: [\w-]+ at \d{4}-\d\d-\d\d \d\d:\d\d \w+$", last)


# -- start-up: a cron tick with nothing to do imports nothing it does not use ----------------

def test_a_quiet_cron_tick_imports_no_heavy_library(workdir):
    heavy = ("rich", "pydantic", "PIL", "exifread", "jinja2", "smtplib", "sqlite_utils", "multiprocessing",
             "apscheduler.schedulers", "apscheduler.executors")
    for args in (["work", "--stop-when-empty"], ["process-photos"], ["send-mail"], ["schedule", "run", "--once"],
                 ["status"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "photojobs", *args], cwd=workdir,
                                env=cli_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        found = sorted(m for m in imported if m.split(".")[0] in heavy or m in heavy
                       or any(m.startswith(h + ".") for h in heavy))
        assert found == [], (args, found)


def test_a_reader_that_goes_away_is_exit_141_not_a_failed_job(app, cli, workdir) -> None:
    # `photojobs logs | head` exited 1, which means "a job failed" to a script.
    app.dispatch_many([Dispatch("noop", {"n": i}) for i in range(3000)])
    assert cli("work", "--stop-when-empty").returncode == 0  # 6,000 log lines, ~400 KB
    reader = subprocess.Popen([sys.executable, "-m", "photojobs", "logs", "--lines", "6000"], cwd=workdir, env=cli_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline()  # `head -1`: one line, then the pipe is closed
    reader.stdout.close()
    assert reader.wait(timeout=60) == 141
    assert b"Traceback" not in reader.stderr.read()
