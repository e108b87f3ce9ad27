"""Environment problems are one line and exit 3, never a traceback; a worker process that
fails says so in one line (its traceback only with -v); an unwritable logs folder gives
one warning."""

from __future__ import annotations

import os
import subprocess

import pytest

from ..conftest import set_config


def _one_line_exit_3(done) -> str:
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), done.stderr
    return done.stderr


def test_a_config_file_that_is_not_utf8(cli, workdir):
    path = workdir / "photojobs.toml"
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    assert "not UTF-8 text" in _one_line_exit_3(cli("status"))


@pytest.mark.parametrize("source, expected", [
    ("def broken(:\n", "job module 'userjobs' has a syntax error: invalid syntax ({file}, line 1)"),
    ("import os\nraise RuntimeError('no API key')\n",
     "job module 'userjobs' raised RuntimeError while imported: no API key ({file}, line 2)"),
])
def test_an_imports_module_that_cannot_load_is_named_with_file_and_line(cli, workdir, source, expected):
    (workdir / "userjobs.py").write_text(source)
    set_config(workdir, 'imports = ["userjobs"]')
    config = (workdir / "photojobs.toml").read_text().replace('imports = ["sample_jobs"]\n', "")
    (workdir / "photojobs.toml").write_text(config)
    for args in (["dispatch", "noop"], ["work", "--stop-when-empty"]):
        assert expected.format(file=workdir / "userjobs.py") in _one_line_exit_3(cli(*args))


def test_a_storage_path_that_is_a_file(cli, workdir):
    (workdir / "afile").write_text("x")
    path = workdir / "photojobs.toml"
    path.write_text(path.read_text().replace("storage = 'storage'", "storage = 'afile'"))
    for args in (["dispatch", "noop"], ["work", "--stop-when-empty"], ["init"]):
        assert "is not a folder" in _one_line_exit_3(cli(*args))


def test_a_worker_process_that_fails_says_so_in_one_line_and_its_traceback_only_with_v(cli, workdir):
    for verbose, marker in (([], "a"), (["-v"], "b")):
        assert cli("dispatch", "break_worker", "--payload", f'{{"marker": "{workdir / marker}"}}').returncode == 0
        done = cli(*verbose, "work", "--stop-when-empty")
        assert "worker process stopped - DatabaseUnusable" in done.stderr, done.stderr
        assert ("Traceback" in done.stderr) == bool(verbose), done.stderr


def test_a_logs_folder_that_cannot_be_written_gives_one_warning(cli, workdir):
    logs = workdir / "storage" / "logs"
    for n in range(20):
        assert cli("dispatch", "noop", "--payload", f'{{"n": {n}}}').returncode == 0
    mounted = False
    if os.geteuid() == 0:  # root writes through permissions: a read-only bind mount it is
        mounted = subprocess.run(["mount", "--bind", str(logs), str(logs)]).returncode == 0
        mounted = mounted and subprocess.run(["mount", "-o", "remount,ro,bind", str(logs)]).returncode == 0
        if not mounted:
            pytest.skip("cannot make a read-only bind mount")
    else:
        logs.chmod(0o500)
    try:
        done = cli("-v", "work", "--stop-when-empty", "--concurrency", "2")
    finally:
        if mounted:
            subprocess.run(["umount", str(logs)], check=True)
        logs.chmod(0o700)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Warning: cannot write the log file") == 1, done.stderr
    assert "Logging error" not in done.stderr and done.stderr.count(" done ") >= 20
