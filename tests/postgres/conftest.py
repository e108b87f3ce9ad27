"""PostgreSQL-only tests: a workspace whose `db` is the session's PostgreSQL database."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path
from typing import Iterator

import pytest

from .. import postgres_server


def write_config(folder: Path, url: str, extra: str = "") -> Path:
    config = folder / "photojobs.toml"
    config.write_text(f'db = "{url}"\nstorage = "storage"\nimports = ["sample_jobs"]\n{extra}')
    return config


@pytest.fixture
def pg_url() -> str:
    """The session's PostgreSQL database, emptied."""
    return postgres_server.empty_database()


@pytest.fixture
def pg_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    """A workspace (the cwd) whose photojobs.toml points at the emptied session database."""
    from ..conftest import TESTS

    work = tmp_path / "work"
    (work / "storage" / "logs").mkdir(parents=True)  # a root as init leaves it: an empty one reads as unmounted
    write_config(work, pg_url)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(TESTS))
    return work


def _error_response(code: str, message: str) -> bytes:
    fields = b"".join(tag + value.encode() + b"\0" for tag, value in
                      ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))) + b"\0"
    return b"E" + struct.pack("!I", 4 + len(fields)) + fields


def _fake_server(answer) -> Iterator[int]:
    """A server on 127.0.0.1 that reads a start-up message and lets `answer(conn)` reply; its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                length, code = struct.unpack("!II", conn.recv(8, socket.MSG_WAITALL))
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: "no"
                    conn.sendall(b"N")
                    continue
                conn.recv(length - 8, socket.MSG_WAITALL)  # the start-up message's parameters
                break
            answer(conn)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                serve_one(conn)
            except (OSError, struct.error):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


@pytest.fixture
def refusing_server() -> Iterator[int]:
    """A server that asks for a password and refuses it, as a server with password
    authentication does; its port."""

    def refuse(conn: socket.socket) -> None:
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        conn.recv(4096)
        conn.sendall(_error_response("28P01", 'password authentication failed for user "studio"'))

    yield from _fake_server(refuse)


@pytest.fixture
def bouncer_refusing_options() -> Iterator[int]:
    """A pooler that refuses the `options` start-up parameter, in PgBouncer's (1.18) words."""
    refusal = _error_response("08P01", "unsupported startup parameter: options")
    yield from _fake_server(lambda conn: conn.sendall(refusal))
