"""EXIF read with exifread from real JPEGs: values, and bad metadata that only warns."""

from __future__ import annotations

import struct
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from photojobs.photos.exif import read_exif
from photojobs.samples import SampleExif, build_exif, make_sample_photos, write_sample_jpeg

from .conftest import plain_jpeg, with_app1


def test_sample_exif_values(tmp_path):
    info = SampleExif(make="NIKON CORPORATION", model="NIKON Z 6_2", lens="NIKKOR Z 50mm f/1.8 S", iso=1600,
                      exposure_time=Fraction(1, 500), f_number=Fraction(28, 10), focal_length=Fraction(50),
                      taken_at=datetime(2023, 12, 31, 23, 59, 58, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
                      gps=(-33.856784, -151.215297), orientation=6)
    path = write_sample_jpeg(tmp_path / "a.jpg", (120, 80), exif=info)
    exif = read_exif(path.read_bytes())
    assert (exif.camera_make, exif.camera_model, exif.lens) == ("NIKON CORPORATION", "NIKON Z 6_2", "NIKKOR Z 50mm f/1.8 S")
    assert (exif.iso, exif.exposure_time, exif.f_number, exif.focal_length) == (1600, "1/500", 2.8, 50.0)
    assert exif.taken_at == "2023-12-31T23:59:58-05:30"
    assert abs(exif.gps_lat - -33.856784) < 1e-5 and abs(exif.gps_lon - -151.215297) < 1e-5
    assert exif.orientation == 6
    assert exif.tags["Image Model"] == "NIKON Z 6_2" and "GPS GPSLatitude" in exif.tags
    assert exif.warnings == []


def test_date_without_offset_and_missing_fields(tmp_path):
    info = SampleExif(lens=None, iso=None, gps=None, taken_at=datetime(2020, 1, 2, 3, 4, 5), orientation=None)
    exif = read_exif(write_sample_jpeg(tmp_path / "b.jpg", (60, 40), exif=info).read_bytes())
    assert exif.taken_at == "2020-01-02T03:04:05"
    assert exif.lens is None and exif.iso is None and exif.gps_lat is None and exif.orientation == 1


def test_no_exif_is_not_a_warning(tmp_path):
    exif = read_exif(plain_jpeg())
    assert exif.warnings == [] and exif.camera_make is None and exif.orientation == 1


def _exif_bytes(**changes) -> bytes:
    exif = build_exif(SampleExif())
    gps = exif.get_ifd(0x8825)
    for key, value in changes.items():
        if key == "gps_lat":
            gps[2] = value
        elif key == "orientation":
            exif[0x0112] = value
    return exif.tobytes()


def test_gps_with_zero_denominators_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "gps.jpg"
    bad = (IFDRational(48, 1), IFDRational(51, 0), IFDRational(0, 0))
    Image.new("RGB", (32, 24)).save(path, exif=_exif_bytes(gps_lat=bad))
    exif = read_exif(path.read_bytes())
    assert exif.gps_lat is None and exif.gps_lon is None
    assert any("zero denominator" in w for w in exif.warnings)
    assert exif.camera_model == "Canon EOS R6"  # the rest still read


def test_orientation_outside_1_to_8_is_treated_as_1(tmp_path):
    for value in (0, 9, 300):
        path = tmp_path / f"o{value}.jpg"
        Image.new("RGB", (32, 24)).save(path, exif=_exif_bytes(orientation=value))
        exif = read_exif(path.read_bytes())
        assert exif.orientation == 1
        assert any("outside 1-8" in w for w in exif.warnings)


def _ifd(entries, next_ifd):
    out = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", next_ifd)


def test_cyclic_exif_ends_quickly_with_a_warning():
    # IFD0 (at 8) -> IFD1 (at 26) -> IFD0 again: a loop that a naive reader follows forever.
    tiff = b"II*\x00" + struct.pack("<I", 8) + _ifd([(0x0112, 3, 1, 3)], 26) + _ifd([(0x0100, 3, 1, 5)], 8)
    started = time.monotonic()
    exif = read_exif(with_app1(plain_jpeg(), b"Exif\x00\x00" + tiff))
    assert time.monotonic() - started < 1
    assert exif.orientation == 3
    assert any("loop" in w.lower() for w in exif.warnings)


def test_self_referencing_exif_sub_ifd_does_not_hang():
    tiff = b"II*\x00" + struct.pack("<I", 8) + _ifd([(0x0112, 3, 1, 6), (0x8769, 4, 1, 8)], 8)
    exif = read_exif(with_app1(plain_jpeg(), b"Exif\x00\x00" + tiff))
    assert exif.orientation == 6


def test_malformed_exif_leaves_a_warning():
    for payload in (b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + bytes(20), bytes(range(256)) * 3,
                    b"II*\x00" + struct.pack("<I", 8) + _ifd([(0x010F, 2, 0x7FFFFFFF, 100)], 0)):
        exif = read_exif(with_app1(plain_jpeg(), b"Exif\x00\x00" + payload))
        assert exif.warnings, payload[:16]
        assert exif.camera_make is None or exif.camera_make.isprintable()


def test_make_sample_photos_is_varied_and_readable(tmp_path):
    paths = make_sample_photos(tmp_path / "shoot", 8, size=(90, 60))
    assert [p.name for p in paths][:2] == ["sample-0001.jpg", "sample-0002.jpg"]
    readings = [read_exif(p.read_bytes()) for p in paths]
    assert {r.orientation for r in readings} == {1, 3, 6, 8}
    assert len({r.camera_model for r in readings}) == 4
    assert all(r.gps_lat is not None and r.taken_at.endswith("+02:00") for r in readings)
