"""File names with control characters are shown escaped in tables (`photos list/show`),
so a name cannot drive the terminal; --json keeps the exact name."""

from __future__ import annotations

import json

from photojobs.samples import write_sample_jpeg

NAME = "evil\x1b[2J\x1b]0;pwned\x07\u2028\u202e.jpg"


def test_control_characters_in_file_names_are_escaped_for_the_terminal(cli, workdir):
    path = write_sample_jpeg(workdir / NAME, (40, 30))
    assert cli("photos", "add", str(path), "--no-queue").returncode == 0
    for args in (["photos", "list"], ["photos", "show", "1"]):
        shown = cli(*args, env={"COLUMNS": "400"})
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout and "\u2028" not in shown.stdout
        assert "\u202e" not in shown.stdout
        assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\u2028\\u202e.jpg" in shown.stdout
    exact = json.loads(cli("photos", "show", "1", "--json").stdout)
    assert exact["path"] == str(path)
    assert json.loads(cli("photos", "list", "--json").stdout)[0]["path"] == str(path)
