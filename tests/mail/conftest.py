"""Mail fixtures: a real SMTP server (aiosmtpd on 127.0.0.1, a free port), a test CA
(trustme), a workspace with a [mail] table, and orders/photos/downloads to write about."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

PASSWORD = "s3cret-Pa55word"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    data: bytes
    peer: tuple
    tls: bool


class Recorder:
    """An aiosmtpd handler that keeps accepted messages and can be told to refuse."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.data_replies: list[str] = []  # replies to DATA, in order; then 250
        self.rcpt_replies: dict[str, str] = {}  # address -> reply
        self.on_accept: Callable[[object], None] | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            reply = self.data_replies.pop(0) if self.data_replies else "250 2.0.0 OK queued"
        if reply.startswith("250"):
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content, session.peer,
                                          session.ssl is not None))
            if self.on_accept is not None:
                self.on_accept(session)
        return reply


@dataclasses.dataclass
class Server:
    port: int
    recorder: Recorder
    controller: object

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages


@pytest.fixture(scope="session")
def ca():
    import trustme

    return trustme.CA()


@pytest.fixture
def smtp_server(ca) -> Callable[..., Server]:
    """start(tls=None|"starttls"|"ssl", auth=False, cert_ca=ca, cert_hosts=...) -> a running Server."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    started: list = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"studio" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    def start(tls: str | None = None, auth: bool = False, cert_ca=None, cert_hosts=("127.0.0.1", "localhost")) -> Server:
        import ssl

        recorder = Recorder()
        kwargs: dict = {"server_hostname": "mail.test"}
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            (cert_ca or ca).issue_cert(*cert_hosts).configure_cert(context)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if auth:
            kwargs.update(authenticator=authenticate, auth_required=True)
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port,
                                ssl_context=context if tls == "ssl" else None, **kwargs)
        controller.start()
        started.append(controller)
        return Server(port, recorder, controller)

    yield start
    for controller in started:
        controller.stop()


def write_mail_config(workdir: Path, **values) -> None:
    """Append a [mail] table (and top-level keys given as top_*) to photojobs.toml."""
    path = workdir / "photojobs.toml"
    top = {k[4:]: v for k, v in values.items() if k.startswith("top_")}
    mail = {k: v for k, v in values.items() if not k.startswith("top_")}

    def toml(v):
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(v).lower() if isinstance(v, bool) else str(v)

    head = "".join(f"{k} = {toml(v)}\n" for k, v in top.items())
    body = "\n[mail]\n" + "".join(f"{k.replace('from_', 'from')} = {toml(v)}\n" for k, v in mail.items())
    path.write_text(head + path.read_text() + body)


@pytest.fixture
def connect(workdir: Path):
    """connect(queue=None) -> an App on the workspace (after write_mail_config); closed at teardown."""
    import photojobs

    apps = []

    def make(**flags):
        application = photojobs.connect(workdir / "photojobs.toml", **flags)
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.close()


@pytest.fixture
def make_order(workdir: Path):
    """make_order(app, email=..., name=..., photos=2, thumbnails=False, download=False) -> ids."""

    def make(app, email="ada@example.com", name="Ada Lovelace", photos=2, thumbnails=False, download=False) -> dict:
        now = time.time()
        ids: dict = {"photos": []}
        # Rows only, written on purpose: the mail tests need an order's rows (photos that were
        # never files, a ready download), not the pipeline that would make them.
        with app.transaction() as conn:
            ids["order"] = conn.execute("INSERT INTO orders (email, name, created_at) VALUES (?, ?, ?) RETURNING id",
                                        [email, name, now]).fetchone()[0]
            for i in range(photos):
                thumbs = None
                if thumbnails:
                    thumbs = _thumbnails(app.settings.storage_path, ids["order"], i)
                photo_id = conn.execute(
                    "INSERT INTO photos (path, album, status, width, height, thumbnails, created_at)"
                    " VALUES (?, 'shoot', 'ready', 6000, 4000, ?, ?) RETURNING id",
                    [f"/photos/o{ids['order']}/IMG_{100 + i}.jpg", thumbs, now]).fetchone()[0]
                conn.execute("INSERT INTO order_photos (order_id, position, photo_id) VALUES (?, ?, ?)",
                             [ids["order"], i, photo_id])
                ids["photos"].append(photo_id)
            if download:
                ids["download"] = conn.execute(
                    "INSERT INTO downloads (order_id, token, status, size_bytes, file_count, expires_at, created_at,"
                    " ready_at) VALUES (?, ?, 'ready', 12345678, ?, ?, ?, ?) RETURNING id",
                    [ids["order"], f"tok{ids['order']}abcdef", photos, now + 7 * 86400, now, now]).fetchone()[0]
        return ids

    return make


def _thumbnails(storage: Path, order_id: int, index: int) -> str:
    import json

    from PIL import Image

    folder = storage / "thumbnails"
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, width in (("small", 320), ("medium", 1024)):
        path = folder / f"o{order_id}-{index}-{name}.jpg"
        Image.new("RGB", (width, width * 2 // 3), (200, 100 + index * 40, 50)).save(path, "JPEG")
        entries[name] = {"path": str(path.relative_to(storage)), "width": width, "height": width * 2 // 3}
    return json.dumps(entries)
