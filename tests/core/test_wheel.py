"""The built wheel works on its own: every command group and the demo run from a fresh
venv that has the wheel installed, not the source tree.

About 15 s (a wheel build, a venv, ~30 CLI runs): the only test that catches a module left
out of the wheel, which an editable install hides.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a build reads: a copy, so the build leaves nothing in the checkout and cannot pick
# up a file that is not in the repository's layout.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "photojobs", "commands")


def build_wheel(out: Path) -> Path:
    tree = out / "src"
    tree.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, tree / name)
    # No build isolation: setuptools comes from the test extra, so nothing is downloaded.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--wheel-dir", str(out / "dist"), str(tree)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (out / "dist").glob("photojobs-*.whl")
    return wheel


SITECUSTOMIZE = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != {root!r}]
sys.path_importer_cache.clear()
"""


def source_modules() -> list[str]:
    """Every module of the source tree, by the name it has once installed."""
    names = []
    for top, package in (("photojobs", "photojobs"), ("commands", "photojobs.commands")):
        for file in sorted((ROOT / top).rglob("*.py")):
            parts = file.relative_to(ROOT / top).with_suffix("").parts
            names.append(".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts)))
    return names


def make_venv(where: Path, wheel: Path) -> Path:
    """A venv that sees this environment's packages (typer, Pillow, ...) but gets
    photojobs only from the wheel (installed with --no-deps, so no download)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)],
                   check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    if sys.prefix != sys.base_prefix:
        # The tests run in a venv of their own: let the new venv see its packages too. A
        # plain path line runs no .pth file there, so an editable photojobs stays out.
        ours = [p for p in (*site.getsitepackages(), sysconfig.get_paths()["purelib"]) if os.path.isdir(p)]
        (purelib / "zz-test-environment.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    # An editable photojobs of the test environment installs an import hook (from a .pth
    # file of the system site-packages) that would quietly fill in any module the wheel
    # lacks from the checkout: sitecustomize runs after every .pth and takes it out again.
    (purelib / "sitecustomize.py").write_text(SITECUSTOMIZE.format(root=str(ROOT)))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    return where


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_") and k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    return make_venv(base / "venv", build_wheel(base))


def test_the_wheel_holds_every_module_of_the_source_tree(installed, tmp_path):
    modules = [m for m in source_modules() if not m.endswith("__main__")]  # that one runs the CLI
    assert {"photojobs.ops", "photojobs.commands", "photojobs.commands.ops"} <= set(modules)
    probe = ("import importlib, json, sys\n"
             "found = {}\n"
             "for name in sys.argv[1:]:\n"
             "    try:\n"
             "        found[name] = importlib.import_module(name).__file__\n"
             "    except ImportError as exc:\n"
             "        found[name] = 'ImportError: ' + str(exc)\n"
             "print(json.dumps(found))\n")
    result = subprocess.run([str(installed / "bin" / "python"), "-c", probe, *modules], cwd=tmp_path,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    outside = {name: file for name, file in found.items() if not Path(file).is_relative_to(installed)}
    assert outside == {}, "modules not installed from the wheel"
    templates = Path(found["photojobs.mail"]).parent / "templates"
    assert any(templates.iterdir()), "the mail templates are package data"


def test_every_command_group_and_the_demo_run_from_the_wheel(installed, tmp_path):
    program = str(installed / "bin" / "photojobs")

    def run(*args: str, cwd: Path, code: int = 0) -> str:
        result = subprocess.run([program, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        return result.stdout

    assert run("--version", cwd=tmp_path).startswith("photojobs ")
    demo = run("demo", "ws", "--photos", "3", cwd=tmp_path)
    assert "Done in" in demo
    ws = tmp_path / "ws"
    for args in (
        ["--help"], ["migrate"], ["dispatch", "prune_failed", "--payload", '{"hours": 1}'],
        ["work", "--stop-when-empty"], ["photos", "add", "shoot"], ["photos", "list"], ["photos", "show", "1"],
        ["process-photos"], ["orders", "list"], ["orders", "show", "1"], ["downloads", "list"],
        ["downloads", "show", "1"], ["build-archive"], ["cleanup-downloads", "--dry-run"],
        ["mail", "templates"], ["mail", "outbox"], ["mail", "preview", "order-confirmation"], ["send-mail"],
        ["status"], ["status", "--json"], ["monitor", "emails,photos", "--max", "100"], ["failed", "list"],
        ["queue", "pause", "photos"], ["queue", "resume", "photos"], ["batch", "list"], ["batch", "show", "1"],
        ["logs", "-n", "3"], ["schedule", "list"], ["schedule", "run", "--once"], ["cron", "print"],
    ):
        run(*args, cwd=ws)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    run("init", cwd=fresh)
    assert (fresh / "photojobs.toml").is_file() and (fresh / "photojobs.db").is_file()
