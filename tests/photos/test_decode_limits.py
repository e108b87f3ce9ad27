"""What a hostile or broken image may cost a worker: a timeout stays a timeout, and a JPEG
with thousands of scans, one with no image data, or an image whose decoding needs more
memory than `max_decode_mb` fails permanently from its header, before any decoding."""

from __future__ import annotations

import io
import json
import random
import struct
import time
import zlib

import pytest
from PIL import Image, ImageFile

from photojobs.errors import PermanentFailure
from photojobs.photos.limits import jpeg_layout
from photojobs.photos.thumbnails import make_thumbnails, open_image, thumbnail_settings
from photojobs.samples import upright_picture

from .conftest import append_config, difference, open_bytes
from .jpeg_scans import many_scan_jpeg

SMALL = thumbnail_settings({"thumb": {"size": 64}})


def _cli_json(cli, *args):
    done = cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_timeout_while_decoding_is_a_timeout_under_the_jobs_policy(workdir, cli, app):
    # A valid JPEG of 60,000 scans (max_scans raised so it is decoded), its work spread over
    # many reads so that the soft timeout lands inside the decoder. Decoding it takes ~5 s
    # on a fast core with Pillow 13 (12,000 scans took 8 s with an older libjpeg-turbo, and
    # 0.85 s with Pillow 13: under the 1 s timeout, so the job passed). Each attempt is
    # cut at 1 s, so a slow machine does not make the test slower.
    append_config(workdir, "[thumbnails]\nmax_scans = 100000")
    data = many_scan_jpeg(upright_picture((1024, 1024)), 60000, eob_run=32)
    for name in ("retried.jpg", "failed.jpg"):
        (workdir / name).write_bytes(data)
    assert _cli_json(cli, "photos", "add", "retried.jpg", "failed.jpg", "--no-queue")["added"] == 2
    retried = app.dispatch("process_photo", {"photo_id": 1}, timeout=1, tries=2)
    failed = app.dispatch("process_photo", {"photo_id": 2}, timeout=1, tries=1)
    done = cli("work", "--stop-when-empty", "--queue", "photos", timeout=90)
    assert done.returncode == 1, done.stdout + done.stderr  # one job failed
    errors = {job_id: [tuple(r) for r in app.backend.read(
        "SELECT error_class, message FROM job_errors WHERE job_id = ? ORDER BY id", [job_id])]
        for job_id in (retried, failed)}
    # counted as a timeout, not as "damaged image data: JobTimeout" (a permanent failure)
    assert errors[retried] == [("JobTimeout", "the job ran past its timeout")], errors
    assert errors[failed] == [("JobTimeout", "the job ran past its timeout")], errors
    status = {r["id"]: (r["status"], r["attempts"]) for r in app.backend.read("SELECT * FROM jobs")}
    assert status[retried] == ("pending", 1)  # tried again after its back-off
    assert status[failed] == ("failed", 1)
    photos = {p["id"]: p for p in _cli_json(cli, "photos", "list")}
    assert photos[1]["status"] == "pending" and photos[1]["error"] is None
    assert photos[2]["status"] == "failed" and "timeout" in photos[2]["error"]


def test_a_jpeg_with_more_scans_than_max_scans_fails_before_decoding():
    picture = upright_picture((256, 256))
    many = many_scan_jpeg(picture, 500)
    assert jpeg_layout(many, 10**6).scans == 500
    started = time.monotonic()
    with pytest.raises(PermanentFailure, match=r"more than 100 scans .*max_scans in \[thumbnails\]"):
        open_image(many, SMALL.max_pixels)  # the default: 100
    assert time.monotonic() - started < 0.5
    with pytest.raises(PermanentFailure, match="more than 50 scans"):
        make_thumbnails(many, 1, thumbnail_settings({"max_scans": 50, "thumb": {"size": 64}}))
    # the same file is a valid JPEG: with the limit raised it decodes to the picture
    made = make_thumbnails(many, 1, thumbnail_settings({"max_scans": 500, "thumb": {"size": 64}}))
    thumb = open_bytes(made["thumb"].data)
    assert difference(thumb, picture.convert("L").resize(thumb.size, Image.Resampling.BOX)) < 12
    # a progressive JPEG as Pillow (libjpeg) writes it has about 10 scans and passes
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", progressive=True)
    assert 5 <= jpeg_layout(buffer.getvalue(), 10**6).scans <= 12
    assert make_thumbnails(buffer.getvalue(), 1, SMALL)["thumb"].width == 64


def _jpeg_without_data(width: int, height: int, keep: int = 0) -> bytes:
    """A Pillow JPEG whose frame says width x height, with `keep` bytes of its scan data, then EOI."""
    buffer = io.BytesIO()
    upright_picture((64, 48)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    scan = data.index(b"\xff\xda")
    start = scan + 2 + struct.unpack(">H", data[scan + 2:scan + 4])[0]
    return bytes(data[:start + keep]) + b"\xff\xd9"


def test_a_jpeg_with_no_image_data_fails(tmp_path):
    # 65500x1365 is under Pillow's pixel limit: libjpeg would decode it to a grey picture
    started = time.monotonic()
    with pytest.raises(PermanentFailure, match="no image data: the JPEG declares 65500x1365 pixels but holds none"):
        make_thumbnails(_jpeg_without_data(65500, 1365), 1, SMALL)
    with pytest.raises(PermanentFailure, match="no image data: 20 bytes cannot code a 6000x4000 JPEG"):
        make_thumbnails(_jpeg_without_data(6000, 4000, keep=20), 1, SMALL)
    assert time.monotonic() - started < 0.5
    path = tmp_path / "ok.jpg"
    upright_picture((64, 48)).save(path, "JPEG")
    assert make_thumbnails(str(path), 1, SMALL)["thumb"].width == 64  # read through mmap from a path


def test_missing_data_is_an_error_even_if_a_job_module_allows_truncated_images(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    buffer = io.BytesIO()
    upright_picture((400, 300)).save(buffer, "JPEG")
    data = buffer.getvalue()
    with pytest.raises(PermanentFailure, match="truncated"):
        make_thumbnails(data[: len(data) * 2 // 3], 1, SMALL)


def _png(width: int, height: int, mode_bits: tuple[int, int], idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, mode_bits[0], mode_bits[1], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decode_memory_is_bounded_before_decoding():
    # a 16-bit grey PNG: 2 bytes a pixel decoded, 9 more for the conversions to 8 bits
    deep = Image.linear_gradient("L").resize((3000, 3000)).convert("I").point(lambda v: v * 257)
    buffer = io.BytesIO()
    deep.convert("I;16").save(buffer, "PNG")
    limited = thumbnail_settings({"max_decode_mb": 64, "thumb": {"size": 64}})
    with pytest.raises(PermanentFailure, match=r"3000x3000 I;16 image needs about 99 MB, over the limit of 64 MB"):
        make_thumbnails(buffer.getvalue(), 1, limited)
    assert make_thumbnails(buffer.getvalue(), 1, SMALL)["thumb"].height == 64  # the default: 512 MB
    # refused before decoding: the same header over garbage data gives the memory reason
    garbage = _png(3000, 3000, (16, 0), b"\x78\x9c" + random.Random(7).randbytes(40000))
    with pytest.raises(PermanentFailure, match="damaged|truncated"):
        make_thumbnails(garbage, 1, SMALL)
    with pytest.raises(PermanentFailure, match="needs about 99 MB"):
        make_thumbnails(garbage, 1, limited)


def test_a_progressive_jpeg_counts_its_full_size_coefficients():
    # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes a pixel a
    # component at full size), however small the scale it decodes at
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), "grey").save(buffer, "JPEG", progressive=True, subsampling=0)
    with pytest.raises(PermanentFailure, match="4000x3000 RGB image needs about 70 MB"):
        make_thumbnails(buffer.getvalue(), 1, thumbnail_settings({"max_decode_mb": 64, "thumb": {"size": 64}}))
    baseline = io.BytesIO()
    Image.new("RGB", (4000, 3000), "grey").save(baseline, "JPEG", subsampling=0)
    assert make_thumbnails(baseline.getvalue(), 1, thumbnail_settings({"max_decode_mb": 64,
                                                                        "thumb": {"size": 64}}))["thumb"]


# A job module (`imports`): the worker's child, which runs the job, writes its own peak
# memory (VmHWM) when the photo is done. Its parent's RUSAGE_CHILDREN would not see it: the
# child is the start server's, not the worker's.
PEAK_OF_CHILD = """
from photojobs.photos import processing
real = processing.process_photo
def process_then_note_peak(*args, **kwargs):
    try:
        return real(*args, **kwargs)
    finally:
        with open("/proc/self/status") as fh:
            peak = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
        with open({out!r}, "w") as fh:
            fh.write(str(int(peak) // 1024))
processing.process_photo = process_then_note_peak
"""


def test_a_worker_refusing_a_memory_hungry_png_stays_small(workdir):
    import subprocess
    import sys

    from ..conftest import cli_env

    # 4000x4000 16-bit grey: a small file whose decoding holds about 176 MB (measured: the child peaks at 210)
    deep = Image.linear_gradient("L").resize((4000, 4000)).convert("I").point(lambda v: v * 257)
    deep.convert("I;16").save(workdir / "deep.png", compress_level=1)
    del deep
    append_config(workdir, "[thumbnails]\nmax_decode_mb = 64")
    subprocess.run([sys.executable, "-m", "photojobs", "photos", "add", "deep.png"], cwd=workdir, env=cli_env(),
                   check=True, capture_output=True)
    peak_file = workdir / "peak_mb"
    (workdir / "note_peak.py").write_text(PEAK_OF_CHILD.format(out=str(peak_file)))
    done = subprocess.run([sys.executable, "-m", "photojobs", "process-photos"], cwd=workdir,
                          env=cli_env({"PHOTOJOBS_IMPORTS": "sample_jobs,note_peak"}), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr  # the photo failed
    peak_mb = int(peak_file.read_text())
    assert peak_mb < 120, f"the worker's child peaked at {peak_mb} MB"  # 210 MB when it decodes it
    photo = json.loads(subprocess.run([sys.executable, "-m", "photojobs", "photos", "show", "1", "--json"],
                                      cwd=workdir, env=cli_env(), capture_output=True, text=True).stdout)
    assert photo["status"] == "failed" and "needs about" in photo["error"] and "max_decode_mb" in photo["error"]


def test_a_png_whose_data_ends_early_fails():
    # a complete deflate stream of 301 bytes where 30,100 are needed, then IEND: Pillow
    # decodes it to a black picture
    short = _png(100, 100, (8, 2), zlib.compress(b"\x00" * 301))
    with pytest.raises(PermanentFailure, match="no image data: 13 bytes of compressed data cannot hold a 100x100"):
        make_thumbnails(short, 1, SMALL)
    flat = io.BytesIO()
    Image.new("RGB", (3000, 3000), "white").save(flat, "PNG", optimize=True)  # about as compressed as PNG gets
    assert make_thumbnails(flat.getvalue(), 1, SMALL)["thumb"].width == 64
