"""An SQLite database on a network filesystem is refused: its locks do not work there."""

from __future__ import annotations

from pathlib import Path

import pytest

from photojobs.errors import DatabaseUnusable
from photojobs.storage import netfs

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:45 / /srv/shared rw,relatime - nfs4 fileserver:/export rw,vers=4.2
41 40 8:2 / /srv/shared/local rw,relatime - ext4 /dev/sdb1 rw
42 27 0:46 / /mnt/studio\\040photos rw,relatime - cifs //nas/photos rw
"""


def test_the_filesystem_of_a_path_is_its_deepest_mount() -> None:
    assert netfs.filesystem_of(Path("/srv/shared/q/photojobs.db"), MOUNTINFO) == "nfs4"
    assert netfs.filesystem_of(Path("/srv/shared/local/photojobs.db"), MOUNTINFO) == "ext4"
    assert netfs.filesystem_of(Path("/srv/sharedother/photojobs.db"), MOUNTINFO) == "ext4"
    assert netfs.filesystem_of(Path("/mnt/studio photos/photojobs.db"), MOUNTINFO) == "cifs"


def test_an_sqlite_file_on_nfs_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(netfs, "filesystem_of", lambda path, text: "nfs4" if str(path).startswith(str(tmp_path))
                        else "ext4")
    from photojobs.settings import load
    from photojobs.storage import open_backend

    with pytest.raises(DatabaseUnusable, match=r"on a network filesystem \(nfs4\)") as refused:
        open_backend(load(env={}, db=str(tmp_path / "photojobs.db")))
    assert refused.value.exit_code == 3 and "PostgreSQL" in str(refused.value)
    assert not (tmp_path / "photojobs.db").exists()


def test_a_local_sqlite_file_is_used(workdir: Path) -> None:
    import photojobs

    with photojobs.connect(workdir / "photojobs.toml") as app:
        assert app.backend.count_jobs("default", "pending") == 0
