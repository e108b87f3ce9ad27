"""`cron print` parsed back and run, and the cron/ folder's files checked by their own parsers."""

from __future__ import annotations

import configparser
import getpass
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photojobs.schedule import Task
from photojobs.settings import Settings
from tests.conftest import ROOT, cli_env

CRON = ROOT / "cron"
DRAINS = {"send-mail", "process-photos", "build-archive", "work"}


def parse_crontab(text: str) -> list[dict]:
    """Crontab lines back into (fields, argv, log file); comments and VAR=value lines skipped."""
    entries = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields, command = line.split(None, 5)[:5], line.split(None, 5)[5]
        Task("parsed", "noop", {}, "UTC", cron=" ".join(fields)).trigger()  # five valid crontab fields
        assert re.search(r"(?<!\\)%", command) is None, f"unescaped % in {line!r}"
        words = shlex.split(command.replace("\\%", "%"))
        assert words[-3] == ">>" and words[-1] == "2>&1", line
        entries.append({"when": " ".join(fields), "argv": words[:-3], "log": words[-2], "command": command})
    return entries


def _photojobs_args(argv: list[str]) -> list[str]:
    """The words after the executable (`photojobs`, or `python -m photojobs`), without --log-file FILE."""
    args = argv[3:] if argv[1:3] == ["-m", "photojobs"] else argv[1:]
    if "--log-file" in args:
        at = args.index("--log-file")
        args = args[:at] + args[at + 2:]
    return args


def test_cron_print_lines_parse_back_with_absolute_paths(cli, workdir):
    done = cli("cron", "print")
    assert done.returncode == 0, done.stderr
    entries = parse_crontab(done.stdout)
    commands = {}
    for entry in entries:
        assert os.path.isabs(entry["argv"][0]) and os.access(entry["argv"][0], os.X_OK)
        args = _photojobs_args(entry["argv"])
        assert args[:2] == ["--config", str(workdir / "photojobs.toml")]
        assert Path(entry["log"]).parent == workdir / "storage" / "logs"
        commands[args[2]] = (entry["when"], args[3:])
    assert DRAINS | {"schedule"} <= set(commands)
    for name in DRAINS:
        when, args = commands[name]
        period = 300 if when.startswith("*/5") else 60
        max_time = float(args[args.index("--max-time") + 1])
        assert 0 < max_time < period, (name, max_time)  # ends before the next tick
    assert commands["schedule"][1] == ["run", "--once"]
    assert "--stop-when-empty" in commands["work"][1]


def test_a_printed_line_runs_under_sh_from_another_folder(cli, workdir, tmp_path):
    """The lines work where cron runs them: /bin/sh, another working folder, a bare PATH;
    a folder with a space and a % in its name is quoted and escaped."""
    odd = tmp_path / "my photos 100%"
    odd.mkdir()
    init = subprocess.run([sys.executable, "-m", "photojobs", "--config", str(odd / "photojobs.toml"), "init"],
                          env=cli_env(), capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    printed = subprocess.run([sys.executable, "-m", "photojobs", "--config", str(odd / "photojobs.toml"),
                              "cron", "print"], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    entries = {(_photojobs_args(e["argv"]) + ["", "", ""])[2]: e for e in parse_crontab(printed.stdout)}
    assert "\\%" in entries["work"]["command"]
    env = {k: v for k, v in cli_env().items() if k in ("PYTHONPATH", "HOME")} | {"PATH": "/usr/bin:/bin"}
    for name in ("work", "schedule"):
        command = entries[name]["command"].replace("\\%", "%")  # what cron hands to the shell
        ran = subprocess.run(["/bin/sh", "-c", command], cwd="/", env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
        log = Path(entries[name]["log"])
        assert log.is_file() and log.parent == odd / "storage" / "logs"
    assert "0 done" in (odd / "storage" / "logs" / "cron-work.log").read_text()


def test_crontab_example_parses_and_names_every_drain_command():
    entries = parse_crontab((CRON / "crontab.example").read_text())
    names = {_photojobs_args(e["argv"])[2] for e in entries}
    assert DRAINS | {"schedule"} <= names
    for entry in entries:
        assert os.path.isabs(entry["argv"][0]) and os.path.isabs(entry["log"])


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(CRON / name)
    return parser


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value.strip())
    assert match, value
    return float(match.group(1)) * (60 if match.group(2) in ("min", "m") else 1)


def test_systemd_units_stop_within_the_grace_period_plus_a_margin():
    grace = Settings().grace
    worker = _unit("photojobs-worker.service")["Service"]
    assert "work --loop" in worker["ExecStart"] and "--concurrency" in worker["ExecStart"]
    assert worker["Restart"] == "always" and worker["KillSignal"] == "SIGTERM" and worker["KillMode"] == "mixed"
    assert grace + 5 <= _seconds(worker["TimeoutStopSec"]) <= grace + 60
    scheduler = _unit("photojobs-scheduler.service")["Service"]
    assert scheduler["ExecStart"].endswith("schedule run") and scheduler["KillSignal"] == "SIGTERM"
    assert scheduler["Restart"] == "always"


def _installable_copy(src: Path, dest: Path, root: Path) -> Path:
    """The file with /srv/photojobs moved to `root`, its executable real and its user this one."""
    text = src.read_text().replace("/srv/photojobs/venv/bin/photojobs", str(root / "venv" / "bin" / "photojobs"))
    text = text.replace("/srv/photojobs", str(root)).replace("User=photojobs", f"User={getpass.getuser()}")
    text = text.replace("Group=photojobs\n", "").replace("user=photojobs", f"user={getpass.getuser()}")
    dest.write_text(text)
    return dest


@pytest.fixture
def install_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "storage" / "logs").mkdir(parents=True)
    exe = root / "venv" / "bin" / "photojobs"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return root


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path, install_root):
    units = [_installable_copy(CRON / n, tmp_path / n, install_root)
             for n in ("photojobs-worker.service", "photojobs-scheduler.service")]
    done = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "photojobs-" in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr
    # and the check can fail: a broken copy is reported
    broken = tmp_path / "photojobs-broken.service"
    broken.write_text(units[0].read_text().replace("TimeoutStopSec=45", "TimeoutStopSec=soon"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "TimeoutStopSec" in bad.stderr or "time value" in bad.stderr or bad.returncode != 0


def test_supervisor_reads_the_program_sections(tmp_path, install_root):
    from supervisor.options import ServerOptions

    conf = _installable_copy(CRON / "photojobs.conf", tmp_path / "photojobs.conf", install_root)
    main = tmp_path / "supervisord.conf"
    main.write_text(f"[supervisord]\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/supervisord.pid\n"
                    f"[include]\nfiles={conf}\n")
    options = ServerOptions()
    options.realize(args=["-c", str(main)])
    programs = {p.name: p for group in options.process_group_configs for p in group.process_configs}
    workers = [p for name, p in programs.items() if name.startswith("photojobs-worker_")]
    assert len(workers) == 2  # numprocs
    grace = Settings().grace
    import signal

    for worker in workers:
        assert "work --loop" in worker.command
        assert worker.stopsignal == signal.SIGTERM and grace + 5 <= worker.stopwaitsecs <= grace + 60
        assert worker.autorestart and worker.killasgroup
    scheduler = programs["photojobs-scheduler"]
    assert scheduler.command.endswith("schedule run") and scheduler.stopsignal == signal.SIGTERM
