"""A PostgreSQL 15 cluster of a chaos scenario's own (bench/chaos.py, disk_full on
PostgreSQL): initdb and pg_ctl run as the `postgres` OS user, 127.0.0.1 on a free port,
the data directory on a tmpfs of its own size. Root only (mount, runuser)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateCluster:
    """A PostgreSQL 15 cluster of the scenario's own, run as the `postgres` OS user on
    127.0.0.1 and a free port, its data directory on a tmpfs of `size_mb` (root only).
    `with` tears it all down (pg_ctl stop -m immediate, umount), also when a scenario fails."""

    def __init__(self, size_mb: int) -> None:
        self.size_mb = size_mb
        self.top = Path(tempfile.mkdtemp(prefix="photojobs-pgdisk-"))  # /tmp: the postgres user can reach it
        self.top.chmod(0o755)
        self.mount, self.data, self.log = self.top / "disk", self.top / "disk" / "data", self.top / "server.log"
        self.port = _free_port()
        self.mounted = False

    def url(self, database: str = "chaos") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              check=check, timeout=120)

    def __enter__(self) -> "PrivateCluster":
        self.mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0700,uid=postgres,gid=postgres",
                        "tmpfs", str(self.mount)], check=True)
        self.mounted = True
        self.log.touch()
        subprocess.run(["chown", "postgres:postgres", str(self.log), str(self.top)], check=True)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--wal-segsize=1", "--no-sync", "-E", "UTF8", "--locale=C")
        self.start()
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chaos")
        return self

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.top}"
                   " -c max_connections=60 -c shared_buffers=16MB -c min_wal_size=2MB -c max_wal_size=8MB")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", options, "start")

    def running(self) -> bool:
        """Whether the server runs (it may be restarting after a PANIC), or has stopped."""
        return self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self, check: bool = True) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=check)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop(check=False)
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", str(self.mount)], check=False)
            subprocess.run(["rm", "-rf", str(self.top)], check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
