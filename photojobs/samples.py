"""Sample photos: JPEGs made with Pillow that carry real EXIF (camera, lens, exposure,
date with its UTC offset, GPS, orientation), for `photojobs demo`, tests and benchmarks.

`make_sample_photos(folder, count, size=(w, h))` is the stable entry point; the picture
is asymmetric (a bright corner top-left, a bar along the top edge) so that a reader can
tell whether a thumbnail is upright.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

DEFAULT_SIZE = (1200, 800)

# Tag numbers (EXIF 2.32 / TIFF 6), so that this module needs no lookup table.
MAKE, MODEL, ORIENTATION, DATETIME, SOFTWARE = 0x010F, 0x0110, 0x0112, 0x0132, 0x0131
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
EXPOSURE_TIME, F_NUMBER, ISO, DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x829A, 0x829D, 0x8827, 0x9003, 0x9011
FOCAL_LENGTH, LENS_MAKE, LENS_MODEL = 0x920A, 0xA433, 0xA434
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_VERSION = 1, 2, 3, 4, 0

CAMERAS = [
    ("Canon", "Canon EOS R6", "RF24-105mm F4 L IS USM"),
    ("NIKON CORPORATION", "NIKON Z 6_2", "NIKKOR Z 50mm f/1.8 S"),
    ("SONY", "ILCE-7M3", "FE 85mm F1.8"),
    ("FUJIFILM", "X-T4", "XF35mmF1.4 R"),
]
PLACES = [(48.858370, 2.294481), (-33.856784, 151.215297), (40.689247, -74.044502), (35.658581, 139.745433)]


@dataclasses.dataclass
class SampleExif:
    """What a sample photo's EXIF says. None leaves a field out."""

    make: str | None = "Canon"
    model: str | None = "Canon EOS R6"
    lens: str | None = "RF24-105mm F4 L IS USM"
    iso: int | None = 400
    exposure_time: Fraction | None = Fraction(1, 250)
    f_number: Fraction | None = Fraction(4)
    focal_length: Fraction | None = Fraction(50)
    taken_at: datetime | None = datetime(2024, 6, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    gps: tuple[float, float] | None = (48.858370, 2.294481)
    orientation: int | None = 1


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    seconds = Fraction(round((minutes_float - minutes) * 60 * 10000), 10000)
    return Fraction(degrees), Fraction(minutes), seconds


def _rational(value: Any) -> Any:
    from PIL.TiffImagePlugin import IFDRational

    if isinstance(value, tuple):
        return tuple(_rational(v) for v in value)
    if isinstance(value, Fraction):
        return IFDRational(value.numerator, value.denominator)
    return value


def build_exif(info: SampleExif) -> Any:
    """A PIL.Image.Exif carrying `info` (IFD0, the Exif sub-IFD and the GPS sub-IFD)."""
    from PIL import Image

    exif = Image.Exif()
    for tag, value in ((MAKE, info.make), (MODEL, info.model), (ORIENTATION, info.orientation)):
        if value is not None:
            exif[tag] = value
    exif[SOFTWARE] = "photojobs samples"
    sub = exif.get_ifd(EXIF_IFD)
    if info.taken_at is not None:
        exif[DATETIME] = sub[DATETIME_ORIGINAL] = info.taken_at.strftime("%Y:%m:%d %H:%M:%S")
        if info.taken_at.utcoffset() is not None:
            minutes = int(info.taken_at.utcoffset().total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            sub[OFFSET_TIME_ORIGINAL] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    for tag, value in ((EXPOSURE_TIME, info.exposure_time), (F_NUMBER, info.f_number),
                       (FOCAL_LENGTH, info.focal_length), (ISO, info.iso), (LENS_MODEL, info.lens)):
        if value is not None:
            sub[tag] = _rational(value)
    if info.make is not None and info.lens is not None:
        sub[LENS_MAKE] = info.make
    if info.gps is not None:
        lat, lon = info.gps
        gps = exif.get_ifd(GPS_IFD)
        gps[GPS_VERSION] = b"\x02\x03\x00\x00"
        gps[GPS_LAT_REF], gps[GPS_LAT] = ("N" if lat >= 0 else "S"), _rational(_dms(lat))
        gps[GPS_LON_REF], gps[GPS_LON] = ("E" if lon >= 0 else "W"), _rational(_dms(lon))
    return exif


def upright_picture(size: tuple[int, int], seed: int = 0, grain: float = 0.12) -> Any:
    """An RGB picture as the viewer should see it: smooth colour, fine grain, and marks
    that make its orientation plain (white top-left corner, red bar along the top).

    `grain` (0-1) is how much per-pixel colour noise is mixed in: 0.25 gives files as
    large and as slow to decode as a camera's (about 8 MB for 24 megapixels at quality 90).
    """
    from PIL import Image, ImageDraw

    width, height = size
    rng = random.Random(seed)
    small = (max(2, width // 64), max(2, height // 64))
    channels = [Image.effect_noise(small, 60 + 10 * i).resize(size, Image.Resampling.BICUBIC) for i in range(2)]
    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(size)
    picture = Image.merge("RGB", (channels[0], gradient, channels[1]))
    if grain > 0.15:
        noise = Image.merge("RGB", [Image.effect_noise(size, 40) for _ in range(3)])
    else:
        noise = Image.effect_noise(size, 18).convert("RGB")
    picture = Image.blend(picture, noise, grain)
    draw = ImageDraw.Draw(picture)
    mark = max(2, min(width, height) // 5)
    draw.rectangle((0, 0, mark, mark), fill=(255, 255, 255))
    draw.rectangle((mark, 0, width - 1, max(1, height // 20)), fill=(220, 20, 20))
    return picture


# The transpose that turns an upright picture into what a camera with this orientation
# stores: the inverse of the transpose a reader applies (ImageOps.exif_transpose).
_STORE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
          6: "ROTATE_90", 7: "TRANSVERSE", 8: "ROTATE_270"}


def stored_pixels(upright: Any, orientation: int | None) -> Any:
    """The pixels a file with `orientation` holds so that it displays as `upright`."""
    from PIL import Image

    name = _STORE.get(orientation or 1)
    return upright if name is None else upright.transpose(getattr(Image.Transpose, name))


def write_sample_jpeg(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, exif: SampleExif | None = None,
                      seed: int = 0, quality: int = 90, icc_profile: bytes | None = None,
                      grain: float = 0.12) -> Path:
    """Write one JPEG that displays as a `size` (width, height) picture, with `exif`."""
    info = exif if exif is not None else SampleExif()
    pixels = stored_pixels(upright_picture(size, seed, grain), info.orientation)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"quality": quality, "exif": build_exif(info).tobytes()}
    if icc_profile:
        options["icc_profile"] = icc_profile
    pixels.save(path, "JPEG", **options)
    return path


def sample_exif(index: int) -> SampleExif:
    """Varied but deterministic EXIF for the index-th sample photo."""
    make, model, lens = CAMERAS[index % len(CAMERAS)]
    taken = datetime(2024, 6, 1, 9, 0, 0, tzinfo=timezone(timedelta(hours=2))) + timedelta(minutes=7 * index)
    return SampleExif(
        make=make, model=model, lens=lens,
        iso=(100, 200, 400, 800, 1600, 3200)[index % 6],
        exposure_time=Fraction(1, (60, 125, 250, 500, 1000)[index % 5]),
        f_number=(Fraction(14, 10), Fraction(28, 10), Fraction(4), Fraction(56, 10), Fraction(8))[index % 5],
        focal_length=Fraction((24, 35, 50, 85, 105)[index % 5]),
        taken_at=taken,
        gps=PLACES[index % len(PLACES)],
        orientation=(1, 1, 6, 1, 8, 1, 3, 1)[index % 8],
    )


def make_sample_photos(folder: str | Path, count: int, size: tuple[int, int] = DEFAULT_SIZE) -> list[Path]:
    """Write `count` sample JPEGs (displayed as `size` pixels, width x height) into `folder`,
    each with real EXIF; returns their paths. Existing files of the same name are replaced."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_sample_jpeg(folder / f"sample-{i + 1:04d}.jpg", size, exif=sample_exif(i), seed=i)
            for i in range(count)]


__all__ = ["SampleExif", "build_exif", "make_sample_photos", "stored_pixels", "upright_picture", "write_sample_jpeg"]
