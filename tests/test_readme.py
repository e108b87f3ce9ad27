"""README's examples marked `<!-- runs -->` run as written.

A block so marked is run by its language: `sh` with `sh -e` (every line must succeed),
with `photojobs` on PATH and a folder of real photos in ~/shoots/wedding; `python` as a
script in an initialised workspace; `toml` added to a workspace's photojobs.toml, which
must then load and drive `schedule list` and `schedule run --once`. Unmarked blocks are
synopses or fragments (`...`) and are not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKED = re.compile(r"<!-- runs -->\n```(\w+)\n(.*?)^```", re.S | re.M)


def examples(language: str) -> list[str]:
    return [body for lang, body in MARKED.findall(README.read_text()) if lang == language]


def env_with_photojobs(tmp_path: Path, home: Path | None = None) -> dict:
    """A clean environment whose `photojobs` is this interpreter's photojobs."""
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    shim = shims / "photojobs"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m photojobs "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_") and k != "PYTHONPATH"}
    env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    if home is not None:
        env["HOME"] = str(home)
    return env


def photojobs(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["photojobs", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict]:
    work = tmp_path / "work"
    work.mkdir()
    env = env_with_photojobs(tmp_path)
    assert photojobs(["init"], work, env).returncode == 0
    return work, env


def test_every_mark_is_on_a_block_and_each_language_has_one():
    text = README.read_text()
    assert len(re.findall(r"^<!-- runs -->$", text, re.M)) == len(MARKED.findall(text)) >= 3
    assert all(examples(language) for language in ("sh", "python", "toml"))


def test_the_shell_examples_run(tmp_path):
    from photojobs.samples import make_sample_photos

    home = tmp_path / "home"
    make_sample_photos(home / "shoots" / "wedding", 3, size=(600, 400))
    work = tmp_path / "work"
    work.mkdir()
    env = env_with_photojobs(tmp_path, home)
    for block in examples("sh"):
        result = subprocess.run(["sh", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, (block, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
    status = json.loads(photojobs(["status", "--json"], work, env).stdout)
    assert status["queues"]["photos"]["pending"] == 0 and status["queues"]["downloads"]["pending"] == 0


def test_the_python_examples_run(workspace):
    work, env = workspace
    for index, block in enumerate(examples("python")):
        script = work / f"readme_example_{index}.py"
        script.write_text(block)
        result = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, (block, result.stderr)


def test_the_toml_examples_load_and_the_schedule_runs(workspace):
    work, env = workspace
    config = work / "photojobs.toml"
    base = config.read_text()
    for block in examples("toml"):
        config.write_text(base + "\n" + block)
        listing = photojobs(["schedule", "list", "--json"], work, env)
        assert listing.returncode == 0, listing.stderr
        assert [row["problem"] for row in json.loads(listing.stdout) if row["problem"]] == []
        once = photojobs(["schedule", "run", "--once"], work, env)
        assert once.returncode == 0, (block, once.stdout, once.stderr)
