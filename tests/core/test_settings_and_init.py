"""Settings precedence, init, and the database's safety rules."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from photojobs.errors import ConfigError
from photojobs.settings import load
from tests.conftest import cli_env, storage_rows


def test_precedence_defaults_file_env_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load().lease == 60.0
    (tmp_path / "photojobs.toml").write_text("lease = 10\ngrace = 5\n[mail]\ntransport = 'file'\n")
    assert load().lease == 10.0 and load().mail.transport == "file"
    assert load(env={"PHOTOJOBS_LEASE": "20"}).lease == 20.0
    assert load(env={"PHOTOJOBS_LEASE": "20"}, lease=30).lease == 30.0
    assert load(env={"PHOTOJOBS_LEASE": "20"}).grace == 5.0


def test_bad_config_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photojobs.toml").write_text("lease = 'soon'\n")
    with pytest.raises(ConfigError, match="lease"):
        load()
    (tmp_path / "photojobs.toml").write_text("durability = 'sometimes'\n")
    with pytest.raises(ConfigError, match="durability"):
        load()
    (tmp_path / "photojobs.toml").write_text("this is not toml\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load()


def run(args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=cwd, env=cli_env(kw.get("env")),
                          capture_output=True, text=True, timeout=60)


def test_init_twice_changes_nothing_and_files_are_private(tmp_path):
    first = run(["init"], tmp_path)
    assert first.returncode == 0, first.stderr
    config = (tmp_path / "photojobs.toml").read_text()
    db = tmp_path / "photojobs.db"
    # the migration records and the journal mode, read from storage on purpose: init's own effects
    before = storage_rows(tmp_path, "SELECT name, applied_at FROM migrations")
    second = run(["init"], tmp_path)
    assert second.returncode == 0 and "up to date" in second.stdout
    assert (tmp_path / "photojobs.toml").read_text() == config
    assert storage_rows(tmp_path, "SELECT name, applied_at FROM migrations") == before
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "photojobs.toml").st_mode) == 0o600
    assert storage_rows(tmp_path, "PRAGMA journal_mode")[0][0] == "wal"
    assert (tmp_path / "storage" / "logs").is_dir()


def test_missing_database_exits_3_and_creates_nothing(tmp_path):
    for args in (["work", "--stop-when-empty"], ["dispatch", "noop"], ["--db", "elsewhere.db", "work"]):
        result = run(args, tmp_path)
        assert result.returncode == 3, (args, result.stderr)
        assert "photojobs init" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_corrupt_database_exits_3(tmp_path):
    (tmp_path / "photojobs.db").write_bytes(b"this is no database" * 100)
    result = run(["work", "--stop-when-empty"], tmp_path)
    assert result.returncode == 3
    assert "corrupt" in result.stderr and "Traceback" not in result.stderr


def test_old_schema_asks_for_migrate(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    # a database left behind by older code, made by forgetting a migration in storage, on purpose
    storage_rows(tmp_path, "DELETE FROM migrations WHERE name = 'm002_domain'")
    result = run(["work", "--stop-when-empty"], tmp_path)
    assert result.returncode == 3 and "photojobs migrate" in result.stderr


def test_verbose_shows_the_traceback(tmp_path):
    result = run(["-v", "work"], tmp_path)
    assert result.returncode == 3 and "Traceback" in result.stderr


def test_cron_path_imports_no_image_or_mail_library(workdir):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "photojobs", "work", "--stop-when-empty"],
                            cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    for heavy in ("PIL", "exifread", "jinja2", "smtplib", "sqlite_utils", "apscheduler"):
        assert heavy not in imported, heavy


def test_the_config_init_writes_documents_every_table_with_examples_that_load(tmp_path):
    """Uncommenting the examples `init` wrote gives a config every feature accepts."""
    import re

    from photojobs.settings import load

    assert run(["init"], tmp_path).returncode == 0
    config = tmp_path / "photojobs.toml"
    text = config.read_text()
    for table in ("[mail]", "[thumbnails]", "[downloads]", "base_url ="):
        assert f"# {table}" in text, table
    uncommented = "\n".join(re.sub(r"^# (?=\[|\w+ = )", "", line).split("  #")[0].rstrip()
                            for line in text.splitlines() if not line.startswith("# imports"))
    config.write_text(uncommented + "\n")
    settings = load(config=config)
    assert settings.base_url == "https://photos.example.com"
    mail = settings.mail
    assert (mail.transport, mail.host, mail.port, mail.tls) == ("smtp", "smtp.example.com", 587, "starttls")
    assert [(c.name, c.width) for c in settings.thumbnails.conversions] == [("thumb", 320), ("web", 2048)]
    assert settings.downloads.expires_days == 7 and settings.downloads.conversion == "web"


def test_the_readme_settings_example_loads(tmp_path):
    import re

    from photojobs.settings import load

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [example] = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[downloads]" in b]
    (tmp_path / "photojobs.toml").write_text(example)
    settings = load(config=tmp_path / "photojobs.toml")
    assert settings.mail.transport == "smtp"
    assert len(settings.thumbnails.conversions) == 2
    assert settings.downloads.conversion == "web"


@pytest.mark.parametrize("table, message", [
    ("[log]\nmax_mb = 5", "unknown table [log]"),
    ("[logs]\nmax_bm = 5", "[logs] unknown key 'max_bm'"),
    ("[downloads]\nexpire_days = 3", "[downloads] unknown key 'expire_days'"),
])
def test_a_misspelt_table_or_key_is_refused_in_one_line(cli, workdir, table, message):
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n" + table + "\n")
    result = cli("status")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
