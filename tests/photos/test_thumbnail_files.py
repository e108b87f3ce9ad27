"""Thumbnail files and folders get the mode `[thumbnails] file_mode` says: private by default
(like archives), readable by others only when a web server running as another user must
serve them."""

from __future__ import annotations

import json
import stat

import pytest

from photojobs.errors import ConfigError
from photojobs.photos.thumbnails import thumbnail_settings
from photojobs.samples import write_sample_jpeg

from .conftest import append_config


def _modes(workdir, photo: dict) -> tuple[set[int], set[int]]:
    """The modes of a photo's thumbnail files, and of the folders from `thumbnails` down."""
    files = {stat.S_IMODE((workdir / t["path"]).stat().st_mode) for t in photo["thumbnails"].values()}
    folder = workdir / photo["thumbnails"]["thumb"]["path"]
    folders = {stat.S_IMODE(p.stat().st_mode) for p in (folder.parent, folder.parent.parent,
                                                        folder.parent.parent.parent)}
    return files, folders


def test_thumbnails_are_private_by_default_and_file_mode_opens_them(workdir, cli):
    write_sample_jpeg(workdir / "a.jpg", (200, 100))
    assert cli("photos", "add", "a.jpg").returncode == 0
    assert cli("process-photos").returncode == 0
    photo = json.loads(cli("photos", "show", "1", "--json").stdout)
    assert photo["thumbnails"]["thumb"]["path"].endswith("/storage/thumbnails/000/1/thumb.jpg")
    assert _modes(workdir, photo) == ({0o600}, {0o700})

    append_config(workdir, '[thumbnails]\nfile_mode = "0644"')
    done = cli("process-photos", "--regenerate-thumbnails")
    assert done.returncode == 0 and "1 done" in done.stdout, done.stdout + done.stderr
    assert _modes(workdir, photo) == ({0o644}, {0o755})  # the existing folders follow


def test_file_mode_must_be_a_quoted_octal_mode_the_owner_can_write():
    assert thumbnail_settings().file_mode == 0o600 and thumbnail_settings().folder_mode == 0o700
    group = thumbnail_settings({"file_mode": "0640"})
    assert (group.file_mode, group.folder_mode) == (0o640, 0o750)
    assert thumbnail_settings({"file_mode": "0o644"}).folder_mode == 0o755
    for bad in (644, "0755", "0400", "rw-r--r--", "", "01644", "0800"):
        with pytest.raises(ConfigError, match="file_mode"):
            thumbnail_settings({"file_mode": bad})
