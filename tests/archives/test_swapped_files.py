"""A photo swapped after processing (for a symlink, a FIFO, or other content) never goes
into a download: the download fails at once, naming the photo and what to do."""

import os
import time
import zipfile

import pytest

from photojobs.archives.downloads import create_download, show_download
from photojobs.orders import create_order
from photojobs.archives.zipwriter import Member, SourceMismatch, write_archive
from photojobs.photos.files import NotRegularFile

from .conftest import downloads_dir, run_downloads, temp_files


@pytest.fixture
def order(app, photos):
    ids, paths = photos(3, padding=50_000)
    return create_order(app, "ada@example.com", photo_ids=ids), ids, paths


def _swap_for_symlink(path, target):
    path.unlink()
    path.symlink_to(target)


def _swap_for_fifo(path, target):
    path.unlink()
    os.mkfifo(path)


def _change_content(path, target):
    stamp = path.stat().st_mtime_ns
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    os.utime(path, ns=(stamp + 5_000_000_000, stamp + 5_000_000_000))


@pytest.mark.parametrize("swap", [_swap_for_symlink, _swap_for_fifo, _change_content])
def test_a_photo_swapped_after_processing_fails_the_download(app, order, workdir, swap):
    created, ids, paths = order
    download = create_download(app, created["id"])
    swap(paths[1], "/etc/passwd")
    started = time.monotonic()
    report = run_downloads(app)
    assert time.monotonic() - started < 30  # a FIFO does not block the job until its timeout
    assert report.failed == 1
    shown = show_download(app, download["id"])
    assert shown["status"] == "failed" and shown["path"] is None
    assert shown["error"].startswith(f"photo {ids[1]} changed since it was processed: run photos add again")
    assert not list(downloads_dir(workdir).glob("*.zip")) and temp_files(workdir) == []


def test_the_writer_itself_refuses_a_symlink_or_fifo_swapped_in_after_the_check(tmp_path):
    good = tmp_path / "a.jpg"
    good.write_bytes(b"\xff\xd8\xff" + b"x" * 1000)
    link = tmp_path / "b.jpg"
    link.symlink_to("/etc/passwd")
    fifo = tmp_path / "c.jpg"
    os.mkfifo(fifo)
    for source in (link, fifo):
        with pytest.raises(NotRegularFile):
            write_archive([Member("a.jpg", good), Member("b.jpg", source)], tmp_path / "out.zip")
    info = good.stat()
    write_archive([Member("a.jpg", good, (info.st_size, info.st_mtime_ns))], tmp_path / "out.zip")
    with pytest.raises(SourceMismatch):
        write_archive([Member("a.jpg", good, (info.st_size, info.st_mtime_ns - 1), "photo 1")], tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as z:  # the good archive was kept, no temp file left
        assert z.namelist() == ["a.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.jpg", "c.jpg", "out.zip"]
