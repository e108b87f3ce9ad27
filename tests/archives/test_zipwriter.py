"""The ZIP writer: readable by zipfile and unzip, stored, ZIP64 when needed, atomic, private."""

import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from photojobs.archives import zipwriter
from photojobs.archives.zipwriter import Member, write_archive

from .conftest import write_photo


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    files = [write_photo(folder / f"p{i}.jpg", seed=i, padding=pad) for i, pad in enumerate([0, 3_000_000, 10])]
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    return [*files, empty]


def _members(paths, names=None):
    return [Member(names[i] if names else f"Order-1/{i + 1:03d}-{p.name}", p) for i, p in enumerate(paths)]


def _check(archive: Path, members):
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert [i.filename for i in infos] == [m.name for m in members]
        for info, member in zip(infos, members):
            assert info.compress_type == zipfile.ZIP_STORED
            assert z.read(info) == member.source.read_bytes()
    if shutil.which("unzip"):
        out = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_archive_holds_the_exact_bytes_stored(tmp_path, sources):
    members = _members(sources, ["Order-1/001-p0.jpg", "Order-1/002-Café ☕.jpg", "Order-1/003-p2.jpg", "Order-1/004-e.jpg"])
    result = write_archive(members, tmp_path / "out.zip")
    _check(tmp_path / "out.zip", members)
    assert result.file_count == 4 and not result.zip64
    assert result.size_bytes == os.path.getsize(tmp_path / "out.zip")
    assert result.source_bytes == sum(p.stat().st_size for p in sources)
    import hashlib

    assert result.sha256 == hashlib.sha256((tmp_path / "out.zip").read_bytes()).hexdigest()
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert z.getinfo("Order-1/002-Café ☕.jpg").flag_bits & 0x800  # UTF-8 name flag


def test_archive_is_private_and_no_temp_is_left(tmp_path, sources):
    os.umask(0o022)
    write_archive(_members(sources), tmp_path / "out.zip")
    assert stat.S_IMODE(os.stat(tmp_path / "out.zip").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]


def test_zip64_forced_by_lower_limits(tmp_path, sources, monkeypatch):
    monkeypatch.setattr(zipwriter, "ZIP64_LIMIT", 1000)  # sizes and offsets past 1000 bytes
    monkeypatch.setattr(zipwriter, "COUNT_LIMIT", 2)  # more than 2 members
    members = _members(sources)
    result = write_archive(members, tmp_path / "big.zip")
    assert result.zip64
    data = (tmp_path / "big.zip").read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # ZIP64 end record and locator
    _check(tmp_path / "big.zip", members)
    with zipfile.ZipFile(tmp_path / "big.zip") as z:
        assert z.infolist()[2].header_offset > 1000


def test_a_missing_source_leaves_nothing(tmp_path, sources):
    members = _members([*sources, tmp_path / "gone.jpg"])
    with pytest.raises(FileNotFoundError):
        write_archive(members, tmp_path / "out.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_big_members_are_read_twice_and_come_out_the_same(tmp_path, sources, monkeypatch):
    monkeypatch.setattr(zipwriter, "WHOLE_FILE_LIMIT", 1000)  # every member but the small ones streams
    members = _members(sources)
    write_archive(members, tmp_path / "out.zip", chunk_size=4096, read_back=True)
    _check(tmp_path / "out.zip", members)


def test_a_source_that_grows_while_read_is_refused(tmp_path, sources, monkeypatch):
    real_read_whole = zipwriter._read_whole

    def read_after_growth(source, buffer, size, path):
        with open(path, "ab") as fh:
            fh.write(b"more")
        return real_read_whole(source, buffer, size, path)

    monkeypatch.setattr(zipwriter, "_read_whole", read_after_growth)
    with pytest.raises(zipwriter.SourceChanged):
        write_archive(_members(sources), tmp_path / "out.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_a_big_source_rewritten_between_its_two_reads_is_refused(tmp_path, sources, monkeypatch):
    monkeypatch.setattr(zipwriter, "WHOLE_FILE_LIMIT", 1000)
    real_crc_of = zipwriter._crc_of

    def crc_then_rewrite(source, buffer, chunk_size):
        crc = real_crc_of(source, buffer, chunk_size)
        with open(sources[1], "r+b") as fh:  # same size, other bytes
            fh.seek(5000)
            fh.write(b"changed")
        return crc

    monkeypatch.setattr(zipwriter, "_crc_of", crc_then_rewrite)
    with pytest.raises(zipwriter.SourceChanged):
        write_archive(_members(sources[1:2]), tmp_path / "out.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("where", ["data", "header"])
def test_bytes_that_do_not_read_back_as_written_are_caught(tmp_path, sources, monkeypatch, where):
    real_add = zipwriter._StreamWriter.add

    def add_then_corrupt(self, member):
        real_add(self, member)
        entry = self.entries[-1]
        if where == "data":
            at, byte = entry.data_offset + 100, member.source.read_bytes()[100]
        else:
            at, byte = entry.offset + 30, entry.name[0]  # the name's first byte
        os.pwrite(self.fd, bytes([byte ^ 0x20]), at)

    monkeypatch.setattr(zipwriter._StreamWriter, "add", add_then_corrupt)
    with pytest.raises(zipwriter.ArchiveCorrupt):  # headers are always checked; data with read_back
        write_archive(_members(sources[:2]), tmp_path / "out.zip", read_back=where == "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_replacing_keeps_the_old_archive_until_the_new_one_is_complete(tmp_path, sources):
    write_archive(_members(sources[:1]), tmp_path / "out.zip")
    with pytest.raises(FileNotFoundError):
        write_archive(_members([sources[1], tmp_path / "gone.jpg"]), tmp_path / "out.zip")
    _check(tmp_path / "out.zip", _members(sources[:1]))


def test_remove_temp_files_only_touches_that_archive(tmp_path):
    keep = [tmp_path / "a.zip", tmp_path / ".b.zip.123.tmp", tmp_path / ".a.zip.x"]
    gone = [tmp_path / ".a.zip.0a1b.tmp"]
    for p in keep + gone:
        p.write_bytes(b"x")
    assert zipwriter.remove_temp_files(tmp_path, ["a.zip"]) == gone
    assert all(p.exists() for p in keep)
