"""Helpers for the photo tests: real images made with Pillow, with real EXIF."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from photojobs.samples import SampleExif, build_exif, stored_pixels, upright_picture


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """A JPEG with a raw APP1 segment inserted right after its SOI marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def plain_jpeg(size=(64, 48), colour="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def oriented_jpeg(path: Path, size: tuple[int, int], orientation: int, **exif) -> Image.Image:
    """Write a JPEG that displays as `size` with this EXIF orientation; return the upright picture."""
    picture = upright_picture(size)
    stored = stored_pixels(picture, orientation)
    stored.save(path, "JPEG", quality=92, exif=build_exif(SampleExif(orientation=orientation, **exif)).tobytes())
    return picture


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) of two same-sized images."""
    assert a.size == b.size, (a.size, b.size)
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def photo_app(workdir: Path):
    """An App on the workspace; `photo_app.reload()` re-reads photojobs.toml."""
    import photojobs

    class Holder:
        def __init__(self) -> None:
            self.app = photojobs.connect(workdir / "photojobs.toml")

        def reload(self):
            self.app.close()
            self.app = photojobs.connect(workdir / "photojobs.toml")
            return self.app

    holder = Holder()
    yield holder
    holder.app.close()


def append_config(workdir: Path, text: str) -> None:
    """Append TOML tables (e.g. [thumbnails]) at the end of the workspace's config."""
    with open(workdir / "photojobs.toml", "a") as fh:
        fh.write("\n" + text + "\n")
