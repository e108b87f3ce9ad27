"""Hosts for real on one machine: a network namespace per host, joined to the main one by
a veth pair, and a TCP relay in the main namespace from the veth address to the
PostgreSQL server (which listens on 127.0.0.1 only). Cutting a host's link is
`ip link set <its veth> down`: its packets vanish, as when a cable is pulled.
Needs root and iproute2 (CI runs as root); `unavailable()` says why not otherwise.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import threading
from typing import Sequence


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"pjprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


class Host:
    """A namespace `name` whose only way out is its veth link to `gateway` (main namespace)."""

    def __init__(self, tag: str, subnet: int) -> None:
        self.name = f"pj{tag}{os.getpid()}"[:15]
        self.outer = f"pjo{tag}{os.getpid()}"[:15]  # the link's end in the main namespace
        inner = f"pji{tag}{os.getpid()}"[:15]
        self.gateway, self.address = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", self.name)
            _ip("addr", "add", f"{self.gateway}/30", "dev", self.outer)
            _ip("link", "set", self.outer, "up")
            _ip("addr", "add", f"{self.address}/30", "dev", inner, namespace=self.name)
            _ip("link", "set", inner, "up", namespace=self.name)
            _ip("link", "set", "lo", "up", namespace=self.name)
        except subprocess.CalledProcessError:
            self.remove()
            raise

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        _ip("link", "set", self.outer, "down")

    def restore(self) -> None:
        _ip("link", "set", self.outer, "up")

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Relay:
    """Listens on (address, port) and forwards each connection to 127.0.0.1:`target`.
    Closing it is the server going away; a new one on the same port, the server back."""

    def __init__(self, address: str, target: int = 5432, port: int = 0) -> None:
        self.target = target
        self.listener = socket.create_server((address, port))
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.peers: dict[socket.socket, socket.socket] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._pump(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.target))
        for one, other in ((client, server), (server, client)):
            one.setblocking(True)
            self.peers[one] = other
            self.selector.register(one, selectors.EVENT_READ)

    def _pump(self, source: socket.socket) -> None:
        sink = self.peers.get(source)
        try:
            data = source.recv(65536)
            if data and sink is not None:
                sink.sendall(data)  # blocks while a cut link's buffer is full: fine for a test
                return
        except OSError:
            pass
        self._close(source)

    def _close(self, one: socket.socket) -> None:
        other = self.peers.pop(one, None)
        for sock in (one, other):
            if sock is None:
                continue
            self.peers.pop(sock, None)
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for sock in list(self.peers):
            self._close(sock)
        self.listener.close()
