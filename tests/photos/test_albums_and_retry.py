"""Albums: re-adding photos with another --album says it moved them; names match ignoring
case; an unknown album is refused with the albums there are. `photos list` shows each
photo's last job and `photos retry` takes photo ids."""

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


def test_photos_list_shows_the_last_job_and_retry_takes_a_photo_id(workdir, cli):
    from photojobs.samples import write_sample_jpeg

    shoot = workdir / "shoot"
    make_sample_photos(shoot, 1, size=(60, 40))
    (shoot / "broken.jpg").write_text("not a jpeg yet")
    assert cli("photos", "add", str(shoot)).returncode == 0
    assert cli("process-photos").returncode == 1
    listed = {p["path"].rsplit("/", 1)[1]: p for p in _json(cli, "photos", "list")}
    broken = listed["broken.jpg"]
    assert broken["status"] == "failed" and broken["last_job_status"] == "failed"
    failed_jobs = _json(cli, "failed", "list")
    assert [j["id"] for j in failed_jobs] == [broken["last_job_id"]]
    assert str(broken["last_job_id"]) in cli("photos", "list").stdout

    write_sample_jpeg(shoot / "broken.jpg", (60, 40))  # fixed in place; retried by photo id
    retried = _json(cli, "photos", "retry", str(broken["id"]))
    assert retried == {"queued": [broken["id"]], "skipped": []}
    again = _json(cli, "photos", "retry", str(broken["id"]))
    assert again["queued"] == [] and "pending or running already" in again["skipped"][0]["reason"]
    assert cli("process-photos").returncode == 0
    now = {p["id"]: p for p in _json(cli, "photos", "list")}[broken["id"]]
    assert now["status"] == "ready" and now["last_job_id"] > broken["last_job_id"]
    assert _json(cli, "failed", "list") == []  # the failed job was superseded
    missing = cli("photos", "retry", "999")
    assert missing.returncode == 2 and "no photo with id 999" in missing.stderr


def test_photos_add_verbose_lists_the_skipped_files(workdir, cli):
    shoot = workdir / "shoot"
    make_sample_photos(shoot, 1, size=(60, 40))
    (shoot / "notes [draft].txt").write_text("hi")
    (shoot / "raw.cr2").write_bytes(b"raw")
    quiet = cli("photos", "add", str(shoot))
    assert "skipped 2" in quiet.stdout and "notes [draft].txt" not in quiet.stdout
    (shoot / "second.txt").write_text("hi")
    verbose = cli("-v", "photos", "add", str(shoot))
    listed = [line.strip() for line in verbose.stdout.splitlines() if line.startswith("  skipped ")]
    assert len(listed) == 3
    assert any(line.startswith(f"skipped {shoot / 'notes [draft].txt'}: ") for line in listed), listed
