"""A disk that fills up and a worker killed mid-write: no ready download, no temp file left."""

import os
import signal
import subprocess
import sys
import time
import zipfile

from photojobs.archives.cleanup import cleanup_downloads
from photojobs.archives.downloads import create_download, show_download
from photojobs.orders import create_order

from ..conftest import cli_env, storage_rows, wait_for
from .conftest import downloads_dir, temp_files

FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["photojobs", "build-archive"]
from photojobs.commands import main
main()
"""

# A job module (`imports`), so the worker's child processes, which start afresh, load it too.
PAUSE_MID_WRITE = """
import time
from photojobs.archives import zipwriter
real_add = zipwriter._StreamWriter.add
def add_then_pause(self, member):
    real_add(self, member)
    if len(self.entries) == 2:
        open({marker!r}, "w").close()
        time.sleep(120)
zipwriter._StreamWriter.add = add_then_pause
"""
BUILD_ARCHIVE = """
import sys
sys.argv = ["photojobs", "build-archive"]
from photojobs.commands import main
main()
"""


def _python(workdir, code, env=None, **popen):
    return subprocess.Popen([sys.executable, "-c", code], cwd=workdir, env=cli_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _bring_retry_forward(app):
    """Skip the backoff's wait, in storage on purpose (no command makes a delayed job due)."""
    storage_rows(app.settings.db_path.parent, "UPDATE jobs SET available_at = 0 WHERE status = 'pending'")


def test_a_full_disk_retries_then_fails_with_the_reason(app, photos, workdir):
    ids, _ = photos(4, padding=400_000)  # an archive of ~1.8 MB
    order = create_order(app, "ada@example.com", photo_ids=ids)
    download = create_download(app, order["id"])
    db_bytes = max(os.path.getsize(p) for p in workdir.glob("photojobs.db*"))
    limit = max(1_000_000, db_bytes + 300_000)
    proc = _python(workdir, FULL_DISK.format(limit=limit))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # one try of two: retried later, not failed yet
    shown = show_download(app, download["id"])
    assert shown["status"] == "pending" and "disk is full" in shown["error"]
    assert os.listdir(downloads_dir(workdir)) == []
    _bring_retry_forward(app)
    proc = _python(workdir, FULL_DISK.format(limit=limit))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1  # the last try failed
    shown = show_download(app, download["id"])
    assert shown["status"] == "failed" and "disk is full" in shown["error"] and shown["path"] is None
    assert os.listdir(downloads_dir(workdir)) == []


def test_a_worker_killed_mid_write_leaves_no_ready_download_and_the_retry_cleans_up(app, photos, workdir):
    with open(workdir / "photojobs.toml", "r+") as fh:  # a short lease, so the kill is noticed fast
        text = fh.read()
        fh.seek(0)
        fh.write("lease = 5\n" + text)
    ids, paths = photos(3, padding=300_000)
    order = create_order(app, "ada@example.com", photo_ids=ids)
    download = create_download(app, order["id"])
    marker = workdir / "paused"
    (workdir / "pause_mid_write.py").write_text(PAUSE_MID_WRITE.format(marker=str(marker)))
    proc = _python(workdir, BUILD_ARCHIVE, env={"PHOTOJOBS_IMPORTS": "sample_jobs,pause_mid_write"},
                   start_new_session=True)
    try:
        wait_for(marker.exists, timeout=30, message="the build to reach its second photo")
        (temp,) = temp_files(workdir)
        assert (downloads_dir(workdir) / temp).stat().st_size > 600_000
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert show_download(app, download["id"])["status"] == "pending"
    assert not list(downloads_dir(workdir).glob("*.zip"))
    report = cleanup_downloads(app, dry_run=True, grace=0)
    assert [os.path.basename(t["path"]) for t in report["temp_files"]] == [temp]
    assert temp_files(workdir) == [temp]  # the dry run changed nothing
    # the dead worker's lease, read from storage on purpose: the job shows as reserved until rescued
    wait_for(lambda: storage_rows(workdir, "SELECT max(lease_until) FROM jobs")[0][0] < time.time(), timeout=20,
             message="the dead worker's lease to run out")
    retry = subprocess.run([sys.executable, "-m", "photojobs", "build-archive"], cwd=workdir, env=cli_env(),
                           capture_output=True, text=True, timeout=60)
    assert retry.returncode == 0, retry.stderr  # the lost attempt is counted and retried later
    _bring_retry_forward(app)
    retry = subprocess.run([sys.executable, "-m", "photojobs", "build-archive"], cwd=workdir, env=cli_env(),
                           capture_output=True, text=True, timeout=60)
    assert retry.returncode == 0, retry.stderr
    shown = show_download(app, download["id"])
    assert shown["status"] == "ready", shown
    assert temp_files(workdir) == []  # the retry removed what the killed attempt left
    with zipfile.ZipFile(shown["path"]) as z:
        assert z.testzip() is None
        assert [z.read(n) for n in z.namelist()] == [p.read_bytes() for p in paths]
