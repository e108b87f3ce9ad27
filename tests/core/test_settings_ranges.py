"""Every number setting is finite and in range, or refused with exit 3 naming the key and
where it came from (the file, the environment variable, the flag); nothing is clamped."""

from __future__ import annotations

import pytest

from photojobs.errors import ConfigError
from photojobs.settings import load
from tests.conftest import set_config


@pytest.mark.parametrize("line", ["lease = 0", "lease = 4.9", "lease = nan", "lease = inf", "lock_budget = 0.5",
                                  "grace = -1", "busy_timeout = nan", "keep_done_hours = inf", "lease = 'soon'"])
def test_a_bad_number_in_the_file_is_refused_naming_key_and_file(workdir, cli, line):
    set_config(workdir, line)
    result = cli("status")
    assert result.returncode == 3, (line, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    key = line.split()[0]
    assert len(lines) == 1 and f"{key} = " in lines[0] and str(workdir / "photojobs.toml") in lines[0], lines


@pytest.mark.parametrize("table, key", [("[mail]\ntimeout = nan", "[mail]: timeout"),
                                        ("[mail]\nconnect_timeout = 0.5", "[mail]: connect_timeout"),
                                        ("[mail]\nrate_per_minute = inf", "[mail]: rate_per_minute"),
                                        ("[logs]\nmax_mb = nan", "[logs]: max_mb"),
                                        ("[logs]\nbackups = 0", "[logs]: backups"),
                                        ("[downloads]\ngrace_seconds = nan", "[downloads]: grace_seconds")])
def test_a_bad_number_in_a_table_is_refused_naming_it(workdir, cli, table, key):
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n" + table + "\n")
    result = cli("cleanup-downloads", "--dry-run")
    assert result.returncode == 3, (table, result.stdout, result.stderr)
    assert key in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_environment_and_flags_are_named_as_the_source(workdir, cli):
    result = cli("status", env={"PHOTOJOBS_LEASE": "nan"})
    assert result.returncode == 3 and "PHOTOJOBS_LEASE: lease = nan" in result.stderr, result.stderr
    with pytest.raises(ConfigError, match="--lock-budget: lock_budget = inf"):
        load(lock_budget=float("inf"))


def test_values_in_range_are_kept_as_given(workdir):
    set_config(workdir, "lease = 5\nlock_budget = 1\ngrace = 0\nkeep_done_hours = 0")
    settings = load()
    assert (settings.lease, settings.lock_budget, settings.grace, settings.keep_done_hours) == (5, 1, 0, 0)
