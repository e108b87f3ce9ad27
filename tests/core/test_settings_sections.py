"""Every table of photojobs.toml is parsed and checked once, when the settings load: a bad
value or an unknown key (nested tables too) in any table is one line and exit 3 from any
command, `photojobs status` included, naming the file, the table and the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env

# (the table as written, the table's name in the message, the key in the message)
BAD_TABLES = [
    # [logs]
    ('[logs]\nmax_mb = "lots"', "[logs]", "max_mb"),
    ("[logs]\nbackups = 0", "[logs]", "backups"),
    ("[logs]\ncolour = 1", "[logs]", "colour"),
    ("[logs.rotate]\nsize = 1", "[logs]", "rotate"),
    # [thumbnails]
    ('[thumbnails]\nquality = "high"', "[thumbnails]", "quality"),
    ("[thumbnails]\nmax_scans = 0", "[thumbnails]", "max_scans"),
    ("[thumbnails]\nsharpen = true", "[thumbnails]", "sharpen"),
    ('[thumbnails.thumb]\nsize = "big"', "[thumbnails.thumb]", "size"),
    ("[thumbnails.thumb]\nwidth = 100\nheight = 30000", "[thumbnails.thumb]", "height"),
    ("[thumbnails.thumb]\nsize = 320\nblur = 1", "[thumbnails.thumb]", "blur"),
    # [downloads]
    ('[downloads]\nexpires_days = "a week"', "[downloads]", "expires_days"),
    ("[downloads]\nexpires_days = 5000", "[downloads]", "expires_days"),
    ("[downloads]\nexpire_days = 3", "[downloads]", "expire_days"),
    ('[downloads]\nconversion = "poster"', "[downloads]", "conversion"),
    ("[downloads.extra]\nx = 1", "[downloads]", "extra"),
    # [mail]
    ('[mail]\nport = "smtp"', "[mail]", "port"),
    ("[mail]\nport = 70000", "[mail]", "port"),
    ('[mail]\nserver = "smtp.example.com"', "[mail]", "server"),
    ('[mail.smtp]\nhost = "smtp.example.com"', "[mail]", "smtp"),
    # [schedule]
    ('[schedule.nightly]\njob = "noop"\nevery = 60\nenabled = "yes"', "[schedule.nightly]", "enabled"),
    ('[schedule.nightly]\njob = "noop"\ncron = "0 25 * * *"', "[schedule.nightly]", "cron"),
    ('[schedule.nightly]\njob = "noop"\ncron = "0 3 * jam *"', "[schedule.nightly]", "cron"),
    ('[schedule]\nzone = "UTC"', "[schedule]", "zone"),
    ('[schedule.nightly]\njob = "noop"\nevery = 60\nwhen = 1', "[schedule.nightly]", "when"),
    # [postgres]
    ('[postgres]\npool_size = "many"', "[postgres]", "pool_size"),
    ("[postgres]\npool_size = 0", "[postgres]", "pool_size"),
    ("[postgres]\npool = 4", "[postgres]", "pool"),
    ('[postgres.ssl]\nmode = "require"', "[postgres]", "ssl"),
]


@pytest.mark.parametrize("table, section, key", BAD_TABLES, ids=[t.split("\n")[0] + " " + k for t, _, k in BAD_TABLES])
def test_a_bad_table_fails_status_in_one_line_naming_file_table_and_key(workdir, cli, table, section, key):
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n" + table + "\n")
    result = cli("status")
    assert result.returncode == 3, (table, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(workdir / "photojobs.toml") in lines[0] and section in lines[0] and key in lines[0], lines[0]


FULL_CONFIG = """
[logs]
max_mb = 20
backups = 3
[thumbnails]
quality = 80
[thumbnails.thumb]
size = 300
[thumbnails.web]
width = 2000
height = 1500
fit = "cover"
[downloads]
expires_days = 14
conversion = "web"
grace_seconds = 600
[mail]
transport = "smtp"
host = "smtp.example.com"
port = 465
tls = "ssl"
[schedule]
timezone = "Europe/Amsterdam"
[schedule.heartbeat]
every = "10m"
job = "noop"
[schedule.cleanup-downloads]
cron = "15 4 * jan-jun mon-fri"
[postgres]
pool_size = 8
listen = false
"""


def test_every_table_is_parsed_at_load_into_typed_settings(workdir):
    from photojobs.settings import load

    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(FULL_CONFIG)
    settings = load()
    assert (settings.logs.max_bytes, settings.logs.backups) == (20 * 2**20, 3)
    assert [(c.name, c.width, c.height, c.fit, c.quality) for c in settings.thumbnails.conversions] == [
        ("thumb", 300, 300, "contain", 80), ("web", 2000, 1500, "cover", 80)]
    assert (settings.downloads.expires_days, settings.downloads.conversion, settings.downloads.grace_seconds) == (
        14, "web", 600)
    assert (settings.mail.transport, settings.mail.port, settings.mail.tls) == ("smtp", 465, "ssl")
    tasks = {t.name: t for t in settings.schedule.tasks}
    assert tasks["heartbeat"].every == 600 and tasks["heartbeat"].timezone == "Europe/Amsterdam"
    assert tasks["cleanup-downloads"].cron == "15 4 * jan-jun mon-fri"
    assert (settings.postgres.pool_size, settings.postgres.listen) == (8, False)
    assert settings.section_of("logs") is settings.logs


def test_loading_every_table_imports_no_image_mail_schedule_or_postgres_library(workdir):
    """`status` parses every table but pays for none of the libraries that use them."""
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write(FULL_CONFIG)
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "photojobs", "status"], cwd=workdir,
                            env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "photojobs.settings" in imported
    for heavy in ("PIL", "jinja2", "apscheduler", "psycopg", "psycopg_pool", "exifread", "smtplib"):
        assert heavy not in imported, heavy


@pytest.mark.parametrize("line, expected", [
    ('base_url = "photos.example.com"', "base_url = 'photos.example.com' is not an http(s) URL"),
    ('base_url = "not a url"', "is not an http(s) URL"),
    ('dbb = "x.db"', "unknown setting 'dbb' (did you mean 'db'?)"),
    ("colour = 1", "unknown setting 'colour' (known: db, storage,"),
])
def test_top_level_settings_a_user_gets_wrong(workdir, cli, line, expected):
    config = workdir / "photojobs.toml"
    config.write_text(line + "\n" + config.read_text())
    result = cli("status")
    assert result.returncode == 3 and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_base_url_from_the_environment_is_checked_too_and_a_mistyped_url_is_not_made_a_file(workdir, cli):
    result = cli("status", env={"PHOTOJOBS_BASE_URL": "ftp://photos.example.com"})
    assert result.returncode == 3 and "PHOTOJOBS_BASE_URL" in result.stderr
    result = cli("--db", "postgresql:/photos", "status")  # one slash: a typo, never an SQLite file
    assert result.returncode == 3 and "postgresql:/photos" in result.stderr
    assert not list(workdir.glob("postgresql*"))
