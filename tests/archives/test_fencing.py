"""A stale attempt never destroys a good result: a worker stopped (SIGSTOP) past its lease
wakes after another worker built the same download, and discards its own archive."""

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile

import pytest

from photojobs.archives.downloads import create_download, show_download
from photojobs.orders import create_order

from ..conftest import cli_env, set_config, wait_for
from .conftest import downloads_dir, temp_files

# A real `build-archive` worker that stops itself and its supervisor (the whole process
# group, as a frozen VM or a laptop lid would) at a chosen point of the build. A job module
# (`imports`), so the worker's child processes, which start afresh, load the patch too.
STOP_AT = """
import multiprocessing, os, signal
from photojobs.archives import downloads, zipwriter

def freeze():
    if multiprocessing.parent_process() is None:  # the supervisor (its progress bar measures the archive too)
        return
    open({marker!r}, "w").close()
    os.killpg(0, signal.SIGSTOP)

if {where!r} == "before_write":
    real_members = downloads._members
    def members_then_stop(app, download):
        found = real_members(app, download)
        freeze()
        return found
    downloads._members = members_then_stop
else:
    real_add = zipwriter._StreamWriter.add
    def add_then_stop(self, member):
        real_add(self, member)
        if len(self.entries) == 1:
            freeze()
    zipwriter._StreamWriter.add = add_then_stop
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("where", ["before_write", "mid_write"])
def test_a_worker_stopped_past_its_lease_discards_its_archive_and_keeps_the_good_one(app, photos, workdir, where):
    set_config(workdir, "lease = 5")
    ids, paths = photos(3, padding=300_000)
    order = create_order(app, "ada@example.com", photo_ids=ids)
    download = create_download(app, order["id"])
    marker = workdir / "stopped"
    (workdir / "stop_stale.py").write_text(STOP_AT.format(marker=str(marker), where=where))
    stale = subprocess.Popen([sys.executable, "-m", "photojobs", "-v", "build-archive"],  # -v: "job done" lines too
                             cwd=workdir, env=cli_env({"PHOTOJOBS_IMPORTS": "sample_jobs,stop_stale"}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(marker.exists, timeout=30, message="the stale worker to stop itself")
        wait_for(lambda: _state(stale.pid) == "T", message="the stale worker to be stopped")
        job = app.backend.read("SELECT id, lease_until FROM jobs WHERE name = 'build_archive'")[0]
        wait_for(lambda: time.time() > job["lease_until"] + 0.2, timeout=10, message="its lease to run out")
        # `work`, not `build-archive`: the stale run still holds build-archive's cron lock
        fresh = subprocess.run([sys.executable, "-m", "photojobs", "work", "--queue", "downloads", "--max-jobs", "1"],
                               cwd=workdir, env=cli_env(),
                               capture_output=True, text=True, timeout=60)
        assert fresh.returncode == 0, fresh.stderr
        good = show_download(app, download["id"])
        assert good["status"] == "ready" and os.path.isfile(good["path"])
        recorded = good["sha256"]
        os.killpg(stale.pid, signal.SIGCONT)
        _, err = stale.communicate(timeout=60)
    finally:
        if stale.poll() is None:
            os.killpg(stale.pid, signal.SIGKILL)
            stale.communicate(timeout=10)
    after = show_download(app, download["id"])
    assert after["status"] == "ready" and after["path"] == good["path"]
    assert os.path.isfile(after["path"]) and _sha256(after["path"]) == recorded == after["sha256"]
    with zipfile.ZipFile(after["path"]) as z:
        assert z.testzip() is None and len(z.namelist()) == 3
    assert "discarded" in err and "lease" in err, err
    assert re.search(r"lease_lost\s+build_archive#", err) and not re.search(r" done\s+build_archive#", err), err
    assert temp_files(workdir) == []
    assert sorted(os.listdir(downloads_dir(workdir))) == [os.path.basename(after["path"])]
    row = app.backend.read("SELECT status, attempts FROM jobs WHERE id = ?", [job["id"]])[0]
    assert (row["status"], row["attempts"]) == ("done", 2)
    with sqlite3.connect(workdir / "photojobs.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
