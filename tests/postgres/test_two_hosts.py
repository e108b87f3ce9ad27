"""Two hosts for real (network namespaces, see netns.py): one host's link is cut while it
runs a job; its lease expires, the other host takes the job over and finishes it; when
the link comes back, the cut-off host's late result is discarded, never applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from photojobs.settings import load
from photojobs.storage import NewJob, open_backend

from .. import postgres_server
from ..conftest import TESTS, cli_env, wait_for
from . import netns
from .conftest import write_config

pytestmark = [*postgres_server.marks(), pytest.mark.skipif(bool(netns.unavailable()),
                                                             reason=f"two hosts: {netns.unavailable()}")]
JOB_SECONDS = 16.0  # > the lease (5 s, the shortest allowed) + a rescue round (every 5 s) + a busy machine


@pytest.fixture
def hosts(tmp_path: Path, pg_url: str):
    """Two hosts, each with its own installation folder whose db goes through its relay."""
    made = []
    try:
        for index, tag in enumerate(("a", "b")):
            host = netns.Host(tag, subnet=(os.getpid() % 100) * 2 + index)
            made.append(host)
            host.relay = netns.Relay(host.gateway)
            host.folder = tmp_path / f"host-{tag}"
            (host.folder / "storage" / "logs").mkdir(parents=True)  # not empty: an empty root reads as unmounted
            url = pg_url.replace("127.0.0.1:5432", f"{host.gateway}:{host.relay.port}")
            write_config(host.folder, url).write_text("lease = 5\n" + (host.folder / "photojobs.toml").read_text())
        yield made
    finally:
        for host in made:
            if hasattr(host, "relay"):
                host.relay.close()
            host.remove()


def _work(host) -> subprocess.Popen:
    env = cli_env({"PYTHONPATH": str(TESTS)})
    return subprocess.Popen(host.command([sys.executable, "-m", "photojobs", "-q", "work", "--sleep", "0.2"]),
                            cwd=host.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_a_cut_off_host_loses_its_job_to_the_other_and_its_late_result_is_discarded(hosts, pg_url: str,
                                                                                       tmp_path: Path) -> None:
    first, second = hosts
    backend = open_backend(load(env={}, db=pg_url))
    job = lambda: backend.execute("SELECT status, reserved_by, attempts, started_at, finished_at FROM jobs"  # noqa: E731
                                  " WHERE id = :id", {"id": job_id}).fetchone()
    marker = tmp_path / "running"
    job_id = backend.enqueue_one(NewJob("sleepy", {"seconds": JOB_SECONDS, "marker": str(marker)}, "default",
                                        time.time()))
    workers = [_work(first)]
    try:
        wait_for(marker.exists, timeout=30, message="the first host to start the job")
        first_holder = job()["reserved_by"]
        workers.append(_work(second))
        wait_for(lambda: len(backend.workers()) == 2, timeout=30, message="the second host to be up")
        first.cut()
        cut_at = time.monotonic()
        # Its lease (5 s) runs out; the second host takes the job over and runs it again.
        taken = wait_for(lambda: (row := job())["status"] == "reserved" and row["attempts"] == 2 and row,
                         timeout=30, message="the second host to take the job over")
        assert taken["reserved_by"] != first_holder
        first.restore()
        assert time.monotonic() - cut_at < JOB_SECONDS  # the first host's run was still going
        # The first host's run ends (its marker) while the second's goes on: its result must not count.
        wait_for(lambda: Path(f"{marker}.done").exists(), timeout=30, message="the cut-off host's run to end")
        time.sleep(1.0)  # time for its late `complete` to reach the server
        late = job()
        assert (late["status"], late["reserved_by"]) == ("reserved", taken["reserved_by"])
        done = wait_for(lambda: (row := job())["status"] == "done" and row, timeout=30,
                        message="the second host to finish")
        assert done["finished_at"] - done["started_at"] >= JOB_SECONDS - 0.1  # the second host's full run
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        outputs = [proc.communicate(timeout=30) for proc in workers]
    errors = backend.execute("SELECT error_class FROM job_errors WHERE job_id = :id", {"id": job_id}).fetchall()
    assert [e[0] for e in errors] == ["WorkerLost"], outputs
