"""Albums: re-adding photos with another --album says it moved them; names match ignoring
case; an unknown album is refused with the albums there are."""

from __future__ import annotations

from photojobs.samples import make_sample_photos

from .test_cli import run_json as _json


def test_re_adding_with_another_album_says_it_moved_them(workdir, cli):
    shoot = workdir / "shoot"
    make_sample_photos(shoot, 3, size=(60, 40))
    assert _json(cli, "photos", "add", str(shoot), "--album", "Wedding")["added"] == 3

    again = cli("photos", "add", str(shoot), "--album", "orient2")
    assert again.returncode == 0, again.stderr
    assert "unchanged 3" in again.stdout and "Moved 3 from Wedding to orient2" in again.stdout
    assert {p["album"] for p in _json(cli, "photos", "list")} == {"orient2"}
    moved = _json(cli, "photos", "add", str(shoot), "--album", "Wedding")["moved"]
    assert [(m["from"], m["to"], m["count"]) for m in moved] == [("orient2", "Wedding", 3)]
    # no --album keeps the album; the same album (in any case) moves nothing
    assert "Moved" not in cli("photos", "add", str(shoot)).stdout
    assert "Moved" not in cli("photos", "add", str(shoot), "--album", "WEDDING").stdout
    assert {p["album"] for p in _json(cli, "photos", "list")} == {"Wedding"}


def test_album_names_ignore_case_and_unknown_ones_name_the_albums(workdir, cli):
    make_sample_photos(workdir / "a", 2, size=(60, 40))
    make_sample_photos(workdir / "b", 1, size=(60, 40))
    assert cli("photos", "add", str(workdir / "a"), "--album", "Wedding").returncode == 0
    added = _json(cli, "photos", "add", str(workdir / "b"), "--album", "wedding")  # joins "Wedding"
    assert added["added"] == 1
    assert len(_json(cli, "photos", "list", "--album", "WEDDING")) == 3
    assert {p["album"] for p in _json(cli, "photos", "list")} == {"Wedding"}

    missing = cli("photos", "list", "--album", "weding")
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[0] == "Error: no album 'weding': did you mean 'Wedding'? (albums: 'Wedding')"
    assert cli("process-photos").returncode == 0
    order = cli("orders", "create", "--email", "ada@example.com", "--album", "wedding", "--json")
    assert order.returncode == 0, order.stderr
    refused = cli("orders", "create", "--email", "ada@example.com", "--album", "Birthday")
    assert refused.returncode == 2 and "(albums: 'Wedding')" in refused.stderr
