"""Chaos: the real CLI (`python -m photojobs work --loop`) under kill -9, SIGSTOP past the
lease, a write lock held past lock_budget and a full disk; then the numbers.

    python bench/chaos.py [--quick] [--jobs N] [--only NAME] [--json] [--postgres URL]

Each scenario builds a fresh workspace, queues N mixed jobs of `chaos_run` (each run
appends "start|end job attempt pid" to an append-only file; some jobs raise on their first
attempt; some sleep), runs 4 workers, does its damage, waits until every job is done or
failed (bounded), stops the workers and reports:
  lost         jobs done with no completed run, or rows gone
  stuck        jobs still reserved once the workers stopped
  double_runs  jobs with more than one completed run; `unexplained` counts those whose
               earlier run's process was neither killed, nor stopped past its lease, nor
               died on a fault (each would be a bug)
  locked       "locked" errors in the workers' output
  integrity    PRAGMA integrity_check
Pass: 0 lost, 0 stuck, 0 unexplained double runs, integrity ok.

`--postgres postgresql://postgres@127.0.0.1/postgres` runs the four queue scenarios on
PostgreSQL, each in a database of its own made there (and dropped); `disk_full` then runs
a private cluster on a small tmpfs instead (root only).

`SCENARIOS` lists functions `scenario(base: Path, quick: bool) -> dict`; bench/chaos_effects.py,
if present, adds its own `SCENARIOS` (storage effects: archives, photos add).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
# bench/queue.py would shadow the standard library's queue (multiprocessing needs it): keep
# this folder off the path, here and in any process that copies this one's path.
if sys.path and Path(sys.path[0] or ".").resolve() == BENCH:
    del sys.path[0]

CHAOS_JOBS = '''
import os, time
from photojobs import job

@job("chaos_run", context=True, tries=5, backoff=[0])
def chaos_run(ctx, n: int, seconds: float = 0.0, fail_first: bool = False, log: str = "") -> None:
    line = "%s {n} {a} {p} {g}\\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line % "start").format(n=ctx.job.id, a=ctx.attempt, p=os.getpid(), g=os.getpgid(0)).encode())
        if seconds:
            time.sleep(seconds)
        if fail_first and ctx.attempt == 1:
            raise OSError("a transient failure, on purpose")
        os.write(fd, (line % "end").format(n=ctx.job.id, a=ctx.attempt, p=os.getpid(), g=os.getpgid(0)).encode())
    finally:
        os.close(fd)
'''


sys.path.insert(0, str(BENCH))
try:
    from pg_cluster import PrivateCluster  # bench/pg_cluster.py: disk_full's own server on PostgreSQL
finally:
    sys.path.remove(str(BENCH))

# A postgresql:// URL of an empty database: the scenarios run on PostgreSQL (tests/postgres).
DATABASE_URL: str | None = None


class Workspace:
    """A photojobs installation in `folder`, its workers and what was done to them."""

    def __init__(self, folder: Path, settings: str = "", db_dir: Path | None = None, url: str | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chaos_jobs.py").write_text(CHAOS_JOBS)
        self.runs = folder / "runs.log"
        self.db = (db_dir or folder) / "chaos.db"
        self.url = url or DATABASE_URL
        config = f'db = "{self.url or self.db}"\nimports = ["chaos_jobs"]\nlease = 5\n{settings}\n'
        (folder / "photojobs.toml").write_text(config)
        self.cli("init", check=True)
        self.workers: list[subprocess.Popen | None] = []
        self.logs: list[Path] = []
        # What explains a second run: its earlier run's process was killed, or its worker (a
        # process group: the supervisor's pid) was killed, stopped past its lease or died of a fault.
        self.killed: set[int] = set()
        self.failed_groups: set[int] = set()
        self.kills = 0

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOJOBS_")}
        env["PHOTOJOBS_CONFIG"] = str(self.folder / "photojobs.toml")
        return env

    def cli(self, *args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "photojobs", *args], cwd=self.folder, env=self.env(),
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"photojobs {' '.join(args)}: {result.stderr.strip()}")
        return result

    def queue(self, count: int, rng: random.Random, slow: float = 0.2) -> None:
        """Mixed jobs: instant, or (a share `slow` of them) 0.05-0.3 s; a tenth failing once."""
        sys.path.insert(0, str(self.folder))
        import photojobs

        app = photojobs.connect(self.folder / "photojobs.toml")
        try:
            items = [("chaos_run", {"n": n, "seconds": rng.choice([0.05, 0.3]) if rng.random() < slow else 0.0,
                                    "fail_first": rng.random() < 0.1, "log": str(self.runs)})
                     for n in range(count)]
            for start in range(0, count, 5000):
                app.dispatch_many(items[start:start + 5000])
        finally:
            app.close()

    def start(self, slot: int, concurrency: int = 1) -> None:
        log = self.folder / f"worker-{slot}-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "photojobs", "work", "--loop", "--sleep", "0.1",
                                     "--concurrency", str(concurrency)], cwd=self.folder, env=self.env(),
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        if slot < len(self.workers):
            self.workers[slot] = proc
        else:
            self.workers.append(proc)

    def group(self, proc: subprocess.Popen) -> dict[int, int]:
        """pid -> parent pid of the live processes of a worker's process group."""
        members = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == proc.pid and fields[0] != "Z":
                members[int(stat.parent.name)] = int(fields[1])
        return members

    def children(self, proc: subprocess.Popen) -> list[int]:
        """A worker's job-running processes (the supervisor's, or its start server's, children)."""
        members = self.group(proc)
        server = [pid for pid, parent in members.items() if parent == proc.pid and _is_forkserver(pid)]
        return [pid for pid, parent in members.items() if parent in server or
                (parent == proc.pid and pid not in server and not _is_helper(pid))]

    def kill(self, pid: int, proc: subprocess.Popen | None = None) -> None:
        """kill -9 of a child, or of a supervisor (`proc`: its children die with it)."""
        if proc is not None:
            self.failed_groups.add(proc.pid)
        self.killed.add(pid)
        try:
            os.kill(pid, signal.SIGKILL)
            self.kills += 1
        except ProcessLookupError:
            pass

    def restart_dead(self, concurrency: int = 1) -> None:
        for slot, proc in enumerate(self.workers):
            if proc is not None and proc.poll() is not None:
                if proc.returncode != 0:
                    self.failed_groups.add(proc.pid)
                self.start(slot, concurrency)

    def rows(self, sql: str, params: list | tuple = ()) -> list:
        """A query's rows, read straight from the database file (or the PostgreSQL database)."""
        if self.url:
            import psycopg

            with psycopg.connect(self.url) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(self.db, timeout=60)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def counts(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM jobs GROUP BY status"))

    def held_by(self, proc: subprocess.Popen) -> int:
        """Jobs reserved by a worker (its tokens are host:pid:...)."""
        return self.rows("SELECT count(*) FROM jobs WHERE status = 'reserved' AND reserved_by LIKE ?",
                         [f"%:{proc.pid}:%"])[0][0]

    def drained(self, total: int) -> bool:
        counts = self.counts()
        return counts.get("done", 0) + counts.get("failed", 0) == total

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            if proc is None:
                continue
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            for pid in self.group(proc):  # nothing of a worker outlives it
                os.kill(pid, signal.SIGKILL)

    def report(self, name: str, total: int, seconds: float, **extra) -> dict:
        # PostgreSQL has no integrity_check: its WAL keeps the tables whole through any kill of a client.
        integrity = "ok" if self.url else self.rows("PRAGMA integrity_check")[0][0]
        rows = dict(self.rows("SELECT id, status FROM jobs"))
        ends: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        for line in self.runs.read_text().splitlines() if self.runs.exists() else []:
            kind, job, _attempt, pid, group = line.split()
            if kind == "end":
                ends[int(job)].append((int(pid), int(group)))
        statuses = collections.Counter(rows.values())
        lost = (total - len(rows)) + sum(1 for job, status in rows.items() if status == "done" and not ends[job])
        doubles = {job: pids for job, pids in ends.items() if len(pids) > 1}
        # Explained: every run but one came from a process killed, stopped past its lease or
        # faulted (the stale run may end after the good one: a woken worker finishing late).
        unexplained = [job for job, runs in doubles.items()
                       if sum(pid not in self.killed and group not in self.failed_groups for pid, group in runs) > 1]
        locked = sum(log.read_text(errors="replace").count("locked") for log in self.logs if log.exists())
        result = {"scenario": name, "jobs": total, "seconds": round(seconds, 1), "done": statuses.get("done", 0),
                  "failed": statuses.get("failed", 0), "lost": lost, "stuck": statuses.get("reserved", 0),
                  "pending": statuses.get("pending", 0), "double_runs": len(doubles),
                  "unexplained": len(unexplained), "kills": self.kills, "locked": locked, "integrity": integrity,
                  **extra}
        result["passed"] = (lost == 0 and result["stuck"] == 0 and not unexplained and integrity == "ok"
                            and result["pending"] == 0)
        return result


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_forkserver(pid: int) -> bool:
    return "forkserver" in _cmdline(pid)


def _is_helper(pid: int) -> bool:
    return "resource_tracker" in _cmdline(pid) or "forkserver" in _cmdline(pid)


def _drain(ws: Workspace, total: int, limit: float, during: Callable[[], None] | None = None) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if during is not None:
            during()
        ws.restart_dead()
        if ws.drained(total):
            return True
        time.sleep(0.2)
    return False


# -- scenarios ---------------------------------------------------------------------------------

def kill_storm(base: Path, quick: bool, jobs: int | None = None) -> dict:
    """4 workers; kill -9 of a random supervisor or child every 0.5-2 s, with restarts."""
    rng = random.Random(7)
    total = jobs or (1500 if quick else 20000)
    ws = Workspace(base / "kill_storm")
    ws.queue(total, rng)
    started = time.monotonic()
    for slot in range(4):
        ws.start(slot)
    next_kill = time.monotonic() + rng.uniform(0.5, 2)

    def damage() -> None:
        nonlocal next_kill
        if time.monotonic() < next_kill:
            return
        next_kill = time.monotonic() + rng.uniform(0.5, 2)
        proc = rng.choice([p for p in ws.workers if p is not None and p.poll() is None] or [None])
        if proc is None:
            return
        children = ws.children(proc)
        if children and rng.random() < 0.5:
            ws.kill(rng.choice(children))
        else:
            ws.kill(proc.pid, proc)

    drained = _drain(ws, total, 120 if quick else 600, damage)
    ws.stop_all()
    return ws.report("kill_storm", total, time.monotonic() - started, drained=drained)


def stop_past_lease(base: Path, quick: bool) -> dict:
    """SIGSTOP a whole worker past its lease (others take its jobs), then SIGCONT."""
    rng = random.Random(11)
    total = 400 if quick else 3000
    ws = Workspace(base / "stop_past_lease")
    ws.queue(total, rng, slow=0.5)
    started = time.monotonic()
    for slot in range(4):
        ws.start(slot)
    victim = ws.workers[0]
    assert victim is not None
    deadline = time.monotonic() + 30
    while not ws.held_by(victim) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGSTOP)
    held = ws.held_by(victim)
    ws.failed_groups.add(victim.pid)  # a lease lost while stopped explains a second run
    time.sleep(5 + 4)  # past the lease, and past a rescue by the others
    os.killpg(victim.pid, signal.SIGCONT)
    drained = _drain(ws, total, 120 if quick else 600)
    ws.stop_all()
    return ws.report("stop_past_lease", total, time.monotonic() - started, drained=drained,
                     stopped_holding=held, stopped_exit=victim.returncode)


HOLD_LOCK = ("import sqlite3, sys, time\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute('BEGIN IMMEDIATE')\n"
             "print('held', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n")
# PostgreSQL: a careless migration (or VACUUM FULL) holds the jobs table in an open transaction.
HOLD_TABLE = ("import psycopg, sys, time\n"
              "c = psycopg.connect(sys.argv[1], application_name='chaos lock holder')\n"
              "c.execute('LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE')\n"
              "print('held', c.info.backend_pid, flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "c.commit()\n")


def lock_held(base: Path, quick: bool) -> dict:
    """Another process holds the write lock for 3x lock_budget while 4 workers run."""
    rng = random.Random(13)
    total = 1000 if quick else 5000
    ws = Workspace(base / "lock_held", settings="lock_budget = 2\nbusy_timeout = 0.5")
    ws.queue(total, rng)
    started = time.monotonic()
    for slot in range(4):
        ws.start(slot)
    time.sleep(1.0)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_TABLE if ws.url else HOLD_LOCK, ws.url or str(ws.db), "6"],
                              stdout=subprocess.PIPE, text=True)
    # PostgreSQL names the holder by its server process (the session's backend pid).
    holder_pid = int((holder.stdout.readline().split() + [str(holder.pid)])[1])
    holder.wait(60)
    survived = sum(1 for p in ws.workers if p is not None and p.poll() is None)
    drained = _drain(ws, total, 120 if quick else 600)
    ws.stop_all()
    waited = sum(log.read_text(errors="replace").count("waiting for the database's") for log in ws.logs)
    named = sum(log.read_text(errors="replace").count(f"pid {holder_pid}") for log in ws.logs)
    result = ws.report("lock_held", total, time.monotonic() - started, drained=drained,
                       workers_alive_after_lock=survived, wait_messages=waited, holder_named=named)
    result["passed"] = result["passed"] and survived == 4
    return result


def _fill(filler: Path) -> Path:
    """Write `filler` until its disk is full to the last block; the file, to unlink."""
    try:
        with open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
    except OSError:  # full (perhaps already: then there is no file)
        pass
    return filler


def disk_full(base: Path, quick: bool) -> dict:
    """The database's disk fills up (a small tmpfs, root only) while workers write, then frees."""
    if os.geteuid() != 0:
        return {"scenario": "disk_full", "passed": True, "skipped": "needs root to mount a tmpfs"}
    if DATABASE_URL:
        return _disk_full_postgres(base, quick)
    rng = random.Random(17)
    total = 1000 if quick else 5000
    mount = base / "disk_full_db"
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        ws = Workspace(base / "disk_full", db_dir=mount)
        ws.queue(total, rng)
        started = time.monotonic()
        for slot in range(4):
            ws.start(slot)
        time.sleep(1.0)
        filler = _fill(mount / "filler")
        time.sleep(3.0)  # writes fail now: workers that die of it are restarted
        dead = [p for p in ws.workers if p is not None and p.poll() is not None]
        # A process that met the fault may have died of it, as if killed: that explains a rerun.
        ws.failed_groups.update(p.pid for p in ws.workers if p is not None)
        filler.unlink(missing_ok=True)
        drained = _drain(ws, total, 120 if quick else 600)
        ws.stop_all()
        return ws.report("disk_full", total, time.monotonic() - started, drained=drained,
                         workers_died_of_it=len(dead))
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _disk_full_postgres(base: Path, quick: bool, stop_server: bool = False, name: str = "disk_full") -> dict:
    """The server's disk fills to the last block while workers write (PostgreSQL answers
    53100, or PANICs on a WAL write and restarts or stops), then frees; a server that
    stopped is started again, as systemd would. With `stop_server` it stops (immediate,
    as a crash would) in the middle of the full disk. No worker process is killed here:
    every second run is unexplained."""
    rng = random.Random(17)
    total = 1000 if quick else 5000
    with PrivateCluster(size_mb=64) as cluster:
        ws = Workspace(base / name, url=cluster.url())
        ws.queue(total, rng)
        started = time.monotonic()
        for slot in range(4):
            ws.start(slot)
        time.sleep(1.0)
        filler = _fill(cluster.mount / "filler")
        time.sleep(1.5)  # writes fail now
        if stop_server:
            cluster.stop()
        time.sleep(1.5)
        dead = [p for p in ws.workers if p is not None and p.poll() is not None]
        filler.unlink(missing_ok=True)
        restarts = 0

        def revive() -> None:  # the server may be restarting after a PANIC, or have stopped
            nonlocal restarts
            if not cluster.running():
                time.sleep(2.0)
                if not cluster.running() and cluster.start() is None:
                    restarts += 1

        revive()
        drained = _drain(ws, total, 120 if quick else 600, revive)
        ws.stop_all()
        server_log = cluster.log.read_text(errors="replace")
        said = "".join(log.read_text(errors="replace") for log in ws.logs)
        result = ws.report(name, total, time.monotonic() - started, drained=drained,
                           workers_died_of_it=len(dead), worker_restarts=len(ws.logs) - 4,
                           server_errors=server_log.count("No space left on device"),
                           server_panics=server_log.count("PANIC:"), server_restarts=restarts,
                           outage_lines=said.count("database unavailable"), child_errors=said.count("child_error"),
                           tracebacks=said.count("Traceback"))
    # Each worker rode the outage out: none died of it, no process crashed, no traceback.
    result["passed"] = result["passed"] and not (result["worker_restarts"] or result["child_errors"]
                                                 or result["tracebacks"])
    return result


SCENARIOS: list[Callable[[Path, bool], dict]] = [kill_storm, stop_past_lease, lock_held, disk_full]
def disk_full_server_stops(base: Path, quick: bool) -> dict:
    """PostgreSQL only: disk_full, and the server stops while the disk is full (as when a
    PANIC on a WAL write leaves it unable to recover), to be started again once freed."""
    if os.geteuid() != 0 or not DATABASE_URL:
        return {"scenario": "disk_full_server_stops", "passed": True,
                "skipped": "PostgreSQL only (--postgres), and root to mount a tmpfs"}
    return _disk_full_postgres(base, quick, stop_server=True, name="disk_full_server_stops")


# The ones that also run on PostgreSQL (--postgres), and one of its own.
QUEUE_SCENARIOS = list(SCENARIOS) + [disk_full_server_stops]
sys.path.insert(0, str(BENCH))
try:
    from chaos_effects import SCENARIOS as EFFECTS  # another part of the suite, if present

    SCENARIOS = SCENARIOS + list(EFFECTS)
except ImportError:
    pass
finally:
    sys.path.remove(str(BENCH))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short versions (CI)")
    parser.add_argument("--only", help="run only the scenario of this name")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="run the queue scenarios on PostgreSQL: a server URL"
                        " whose user may create databases")
    args = parser.parse_args()
    results = []
    global DATABASE_URL
    with tempfile.TemporaryDirectory(prefix="photojobs-chaos-") as tmp:
        for scenario in QUEUE_SCENARIOS if args.postgres else SCENARIOS:
            if args.only and scenario.__name__ != args.only:
                continue
            if args.postgres:
                DATABASE_URL = _fresh_database(args.postgres, f"photojobs_chaos_{scenario.__name__}")
            try:
                folder = Path(tmp) / scenario.__name__  # a workspace of its own: scenarios share no files
                folder.mkdir()
                result = scenario(folder, args.quick)
            finally:
                if args.postgres:
                    _fresh_database(args.postgres, f"photojobs_chaos_{scenario.__name__}", drop=True)
            results.append(result)
            print(json.dumps(result) if args.json else _line(result), flush=True)
    return 0 if all(r["passed"] for r in results) else 1


def _fresh_database(server: str, name: str, drop: bool = False) -> str:
    """An empty database `name` on the server of the postgresql:// URL `server` (or none,
    with `drop`); its URL."""
    import urllib.parse

    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop:
            conn.execute(f"CREATE DATABASE {name}")
    return urllib.parse.urlsplit(server)._replace(path=f"/{name}").geturl()


def _line(result: dict) -> str:
    keys = [k for k in result if k not in ("scenario", "passed")]
    return f"{'PASS' if result['passed'] else 'FAIL'} {result['scenario']}: " + ", ".join(
        f"{k} {result[k]}" for k in keys)


if __name__ == "__main__":
    sys.exit(main())
