"""`photos list` of many photos: a page on a terminal with the way to the next one; piped
or with --json, every photo, streamed a page at a time; --after and --limit page by hand."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

from tests.conftest import cli_env, wait_for


def _photos(workdir, cli, count: int) -> None:
    from PIL import Image

    for album in ("Wedding", "Studio"):
        folder = workdir / album.lower()
        folder.mkdir()
        for n in range(count // 2):
            Image.new("RGB", (16, 12), (n % 250, 40, 90)).save(folder / f"{n:04d}.jpg", "JPEG")
        done = cli("photos", "add", str(folder), "--album", album, "--no-queue")
        assert done.returncode == 0, done.stderr


def _terminal(workdir, *args: str) -> str:
    """Run a command on a pseudo-terminal (120 columns); its output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "photojobs", *args], cwd=workdir, stdin=slave, stdout=slave,
                            stderr=slave, env=cli_env({"COLUMNS": "120", "LINES": "40"}), start_new_session=True)
    os.close(slave)
    output, closed = b"", False

    def finished() -> bool:
        nonlocal output, closed
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side and all was read
                chunk = b""
            output += chunk
            closed = not chunk
        return closed and proc.poll() is not None

    try:
        wait_for(finished, timeout=30, message="the command to finish")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    assert proc.returncode == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


def test_a_terminal_gets_a_page_and_the_way_to_the_next(workdir, cli) -> None:
    _photos(workdir, cli, 240)
    shown = _terminal(workdir, "photos", "list")
    assert "100 of 240 shown; the next page: --after 100" in shown
    assert "│ 100 │" in shown and "│ 101 │" not in shown
    last = _terminal(workdir, "photos", "list", "--album", "studio", "--after", "200")
    assert "│ 240 │" in last and "│ 200 │" not in last and "shown" not in last  # the last page says no more


def test_piped_and_json_list_every_photo_and_page_by_hand(workdir, cli) -> None:
    _photos(workdir, cli, 2400)
    piped = cli("photos", "list")
    lines = piped.stdout.splitlines()
    assert piped.returncode == 0 and lines[0].split("\t")[:3] == ["id", "status", "album"]
    assert [int(line.split("\t")[0]) for line in lines[1:]] == list(range(1, 2401))  # past a page of 1,000
    listed = json.loads(cli("photos", "list", "--json").stdout)
    assert [p["id"] for p in listed] == list(range(1, 2401))
    studio = json.loads(cli("photos", "list", "--album", "STUDIO", "--status", "pending", "--json").stdout)
    assert [p["id"] for p in studio] == list(range(1201, 2401)) and {p["album"] for p in studio} == {"Studio"}
    page = cli("photos", "list", "--album", "studio", "--after", "1500", "--limit", "1001")
    assert [int(line.split("\t")[0]) for line in page.stdout.splitlines()[1:]] == list(range(1501, 2401))
    assert cli("photos", "list", "--status", "ready").stdout.strip() == "No photos."
