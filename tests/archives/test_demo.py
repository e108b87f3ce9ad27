"""`photojobs demo`: the whole pipeline in a fresh workspace, in seconds."""

import json
import subprocess
import sys
import time
import zipfile

from ..conftest import cli_env


def _demo(*args, cwd):
    return subprocess.run([sys.executable, "-m", "photojobs", "demo", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=120)


def test_demo_runs_the_whole_pipeline_and_says_where_to_look(tmp_path):
    started = time.monotonic()
    out = _demo("ws", "--photos", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 30
    ws = tmp_path / "ws"
    assert "Where to look" in out.stdout and "storage/downloads/order-1-download-1.zip" in out.stdout
    with zipfile.ZipFile(ws / "storage" / "downloads" / "order-1-download-1.zip") as z:
        assert z.testzip() is None
        assert z.namelist() == [f"Order-1/00{i}-sample-000{i}.jpg" for i in range(1, 5)]
    mails = sorted(p.name for p in (ws / "storage" / "mail").glob("*.eml"))
    assert [m.split("-", 1)[1] for m in mails] == ["order-confirmation.eml", "download-ready.eml"]
    shown = subprocess.run([sys.executable, "-m", "photojobs", "downloads", "show", "1", "--json"], cwd=ws,
                           env=cli_env(), capture_output=True, text=True)
    assert json.loads(shown.stdout)["status"] == "ready"
    photos = subprocess.run([sys.executable, "-m", "photojobs", "photos", "list", "--json"], cwd=ws,
                            env=cli_env(), capture_output=True, text=True)
    assert {p["status"] for p in json.loads(photos.stdout)} == {"ready"}


def test_demo_replaces_its_own_folder_but_refuses_any_other(tmp_path):
    assert _demo("ws", "--photos", "1", cwd=tmp_path).returncode == 0
    assert _demo("ws", "--photos", "1", cwd=tmp_path).returncode == 0  # a previous demo is replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    out = _demo("mine", cwd=tmp_path)
    assert out.returncode == 2 and "not an empty folder" in out.stderr
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"
