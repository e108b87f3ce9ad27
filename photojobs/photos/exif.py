"""EXIF with exifread: the fields a photo shop shows, plus the full tag set as JSON.

Reading never raises for bad metadata: a malformed or cyclic EXIF block, a GPS value
with a zero denominator or an orientation outside 1-8 leaves a warning and a None (or 1
for the orientation); the photo is still processed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from typing import Any, BinaryIO, Iterator

from ..errors import JobControl

NO_EXIF_MESSAGES = ("no exif", "exif not found", "file format not recognized")
MAX_TAG_TEXT = 500  # longer printable values are cut in the JSON tag set


@dataclasses.dataclass
class ExifData:
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    iso: int | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    taken_at: str | None = None  # ISO 8601, with its UTC offset when the file has one
    gps_lat: float | None = None
    gps_lon: float | None = None
    orientation: int = 1
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not any(m in message.lower() for m in NO_EXIF_MESSAGES):
            self.messages.append(message)


@contextlib.contextmanager
def _exifread_warnings() -> Iterator[_Collector]:
    """Collect exifread's logged warnings instead of letting them reach stderr."""
    logger = logging.getLogger("exifread")
    collector = _Collector()
    old_propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        logger.propagate = old_propagate


def read_exif(source: bytes | BinaryIO) -> ExifData:
    """Parse EXIF from a file's bytes (or an open binary file)."""
    import exifread

    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    result = ExifData()
    with _exifread_warnings() as collector:
        try:
            tags = exifread.process_file(fh, details=False, extract_thumbnail=False)
        except JobControl:  # the job's timeout, not bad metadata
            raise
        except Exception as exc:  # exifread on hostile input: anything can escape
            tags = {}
            result.warnings.append(f"EXIF unreadable: {type(exc).__name__}: {exc}")
    result.warnings.extend(f"EXIF: {m}" for m in dict.fromkeys(collector.messages))
    if not tags and not result.warnings and _has_exif_block(fh):
        result.warnings.append("EXIF block present but malformed; no tags read")
    _fill(result, tags)
    return result


def _has_exif_block(fh: BinaryIO) -> bool:
    """Whether the file's head carries an APP1 EXIF header (that exifread found unreadable)."""
    try:
        fh.seek(0)
        head = fh.read(128 * 1024)
    except (OSError, ValueError):
        return False
    return b"Exif\x00\x00" in head


def _fill(result: ExifData, tags: dict[str, Any]) -> None:
    steps = [
        ("camera_make", lambda: _text(tags, "Image Make")),
        ("camera_model", lambda: _text(tags, "Image Model")),
        ("lens", lambda: _text(tags, "EXIF LensModel") or _text(tags, "MakerNote LensModel")),
        ("iso", lambda: _iso(tags)),
        ("exposure_time", lambda: _exposure(tags)),
        ("f_number", lambda: _number(tags, "EXIF FNumber")),
        ("focal_length", lambda: _number(tags, "EXIF FocalLength")),
        ("taken_at", lambda: _taken_at(tags, result.warnings)),
        ("orientation", lambda: _orientation(tags, result.warnings)),
    ]
    for field, read in steps:
        try:
            value = read()
        except JobControl:
            raise
        except Exception as exc:
            result.warnings.append(f"EXIF {field} unreadable: {type(exc).__name__}: {exc}")
            continue
        if value is not None:
            setattr(result, field, value)
    try:
        result.gps_lat, result.gps_lon = _gps(tags, result.warnings)
    except JobControl:
        raise
    except Exception as exc:
        result.warnings.append(f"EXIF GPS unreadable: {type(exc).__name__}: {exc}")
    result.tags = _tag_set(tags)


def _values(tags: dict[str, Any], key: str) -> list[Any] | None:
    tag = tags.get(key)
    if tag is None:
        return None
    values = getattr(tag, "values", None)
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        return [values]
    return list(values)


def _text(tags: dict[str, Any], key: str) -> str | None:
    values = _values(tags, key)
    if not values:
        return None
    value = values[0] if len(values) == 1 else "".join(str(v) for v in values)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = "".join(c for c in str(value) if c.isprintable() and c != "\ufffd").strip()
    return text[:200] or None


def _ratio(value: Any) -> float | None:
    """A float from an exifread Ratio or number; None for a zero denominator."""
    den = getattr(value, "den", None)
    if den is not None:
        if den == 0:
            return None
        return value.num / den
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _number(tags: dict[str, Any], key: str) -> float | None:
    values = _values(tags, key)
    if not values:
        return None
    number = _ratio(values[0])
    return None if number is None else round(number, 4)


def _iso(tags: dict[str, Any]) -> int | None:
    for key in ("EXIF ISOSpeedRatings", "EXIF PhotographicSensitivity", "EXIF ISOSpeed"):
        values = _values(tags, key)
        if values and isinstance(values[0], int) and values[0] > 0:
            return values[0]
    return None


def _exposure(tags: dict[str, Any]) -> str | None:
    values = _values(tags, "EXIF ExposureTime")
    if not values:
        return None
    value = values[0]
    num, den = getattr(value, "num", None), getattr(value, "den", None)
    if num is None or not den:
        return None
    if num == 0:
        return "0"
    if num >= den:
        return f"{num / den:g}"
    return f"1/{round(den / num):d}" if den % num == 0 or den / num > 10 else f"{num}/{den}"


def _taken_at(tags: dict[str, Any], warnings: list[str]) -> str | None:
    from datetime import datetime

    for date_key, offset_key in (("EXIF DateTimeOriginal", "EXIF OffsetTimeOriginal"),
                                 ("EXIF DateTimeDigitized", "EXIF OffsetTimeDigitized"),
                                 ("Image DateTime", "EXIF OffsetTime")):
        text = _text(tags, date_key)
        if not text or text.startswith("0000"):
            continue
        try:
            when = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            warnings.append(f"EXIF {date_key.split()[-1]} is not a date: {text[:40]!r}")
            continue
        offset = _text(tags, offset_key)
        stamp = when.isoformat()
        if offset and _valid_offset(offset):
            stamp += offset
        elif offset:
            warnings.append(f"EXIF {offset_key.split()[-1]} is not a UTC offset: {offset[:20]!r}")
        return stamp
    return None


def _valid_offset(text: str) -> bool:
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return False
    hours, minutes = text[1:3], text[4:6]
    return hours.isdigit() and minutes.isdigit() and int(hours) <= 14 and int(minutes) < 60


def _orientation(tags: dict[str, Any], warnings: list[str]) -> int:
    values = _values(tags, "Image Orientation")
    if not values:
        return 1
    value = values[0]
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    warnings.append(f"EXIF orientation {value!r} is outside 1-8; treated as 1")
    return 1


def _gps(tags: dict[str, Any], warnings: list[str]) -> tuple[float | None, float | None]:
    lat = _coordinate(tags, "GPS GPSLatitude", "GPS GPSLatitudeRef", "NS", 90, warnings)
    lon = _coordinate(tags, "GPS GPSLongitude", "GPS GPSLongitudeRef", "EW", 180, warnings)
    if lat is None or lon is None:
        return None, None
    return lat, lon


def _coordinate(tags: dict[str, Any], key: str, ref_key: str, refs: str, limit: float,
                warnings: list[str]) -> float | None:
    values = _values(tags, key)
    if not values:
        return None
    parts = [_ratio(v) for v in values[:3]]
    if len(parts) != 3 or any(p is None for p in parts):
        warnings.append(f"EXIF {key.split()[-1]} has a zero denominator or is incomplete; ignored")
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    ref = (_text(tags, ref_key) or refs[0]).upper()[:1]
    if ref == refs[1]:
        degrees = -degrees
    if abs(degrees) > limit:
        warnings.append(f"EXIF {key.split()[-1]} {degrees:.4f} is out of range; ignored")
        return None
    return round(degrees, 7)


def _tag_set(tags: dict[str, Any]) -> dict[str, str]:
    """Every tag as its printable text (binary blobs such as thumbnails left out)."""
    out: dict[str, str] = {}
    for key, tag in tags.items():
        if isinstance(tag, (bytes, bytearray)) or key.startswith("JPEGThumbnail"):
            continue
        try:
            text = str(getattr(tag, "printable", tag))
        except JobControl:
            raise
        except Exception:
            continue
        out[key] = text.replace("\x00", "")[:MAX_TAG_TEXT]
    return out
