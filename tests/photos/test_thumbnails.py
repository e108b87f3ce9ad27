"""Thumbnails from real images: sizes, upright (pixel comparison), colour modes, bombs."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms

from photojobs.errors import ConfigError, PermanentFailure
from photojobs.photos.exif import read_exif
from photojobs.photos.thumbnails import (Conversion, make_thumbnails, open_image, render, thumbnail_settings)

from .conftest import difference, open_bytes, oriented_jpeg

DEFAULTS = thumbnail_settings()


def small_settings(**table):
    return thumbnail_settings({"thumb": {"size": 64}, "preview": {"size": 160}, **table})


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_made_upright(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    upright = oriented_jpeg(path, (240, 160), orientation)
    exif = read_exif(path.read_bytes())
    assert exif.orientation == orientation
    made = make_thumbnails(path.read_bytes(), exif.orientation, small_settings())
    assert (made["preview"].width, made["preview"].height) == (160, 107)
    assert (made["thumb"].width, made["thumb"].height) == (64, 43)
    for name, thumb in made.items():
        image = open_bytes(thumb.data)
        assert difference(image, upright.resize(image.size, Image.Resampling.LANCZOS)) < 8, name
        # and not merely similar: the same picture turned the wrong way is far off
        assert difference(image, upright.rotate(180).resize(image.size)) > 20


def test_default_sizes_on_the_long_side_without_upscaling(tmp_path):
    path = tmp_path / "portrait.jpg"
    oriented_jpeg(path, (1200, 1800), 1)
    made = make_thumbnails(path.read_bytes(), 1, DEFAULTS)
    sizes = {name: (t.width, t.height) for name, t in made.items()}
    assert sizes == {"web": (1200, 1800), "preview": (683, 1024), "thumb": (213, 320)}
    assert all(open_bytes(t.data).format == "JPEG" for t in made.values())


def test_draft_decodes_a_jpeg_at_a_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    oriented_jpeg(path, (2400, 1600), 1)
    image = open_image(path.read_bytes(), DEFAULTS.max_pixels)
    made = render(image, 1, thumbnail_settings({"web": {"size": 1000}, "thumb": {"size": 100}}))
    assert image.size == (1200, 800)  # libjpeg scaled the DCT by 1/2: it never made 2400x1600
    assert (made["web"].width, made["web"].height) == (1000, 667)


@pytest.mark.parametrize("orientation", [1, 6])
def test_three_eighths_scale_decodes_smaller_and_right(tmp_path, orientation):
    path = tmp_path / "big.jpg"
    upright = oriented_jpeg(path, (2400, 1600), orientation)
    image = open_image(path.read_bytes(), DEFAULTS.max_pixels)
    made = render(image, orientation, thumbnail_settings({"web": {"size": 880}}))
    assert image.size == ((900, 600) if orientation == 1 else (600, 900))  # 3/8 of 2400x1600, not 1/2
    web = open_bytes(made["web"].data)
    assert web.size == (880, 587)
    assert difference(web, upright.resize(web.size, Image.Resampling.LANCZOS)) < 6


@pytest.mark.parametrize("resample", ["quality", "fast"])
def test_resample_setting(tmp_path, resample):
    path = tmp_path / "a.jpg"
    upright = oriented_jpeg(path, (800, 600), 1)
    settings = thumbnail_settings({"resample": resample, "thumb": {"size": 100}, "web": {"size": 400}})
    made = make_thumbnails(path.read_bytes(), 1, settings)
    assert difference(open_bytes(made["thumb"].data), upright.resize((100, 75), Image.Resampling.LANCZOS)) < 6
    default = thumbnail_settings({"thumb": {"size": 100}, "web": {"size": 400}})
    assert default.resample == "quality" and default.conversions[0].quality == 85
    same = settings.fingerprint(settings.conversions[0], "x") == default.fingerprint(settings.conversions[0], "x")
    assert same == (resample == "quality")


def test_cover_fit_webp_and_quality(tmp_path):
    path = tmp_path / "wide.jpg"
    oriented_jpeg(path, (400, 200), 6)
    settings = thumbnail_settings({"square": {"width": 100, "height": 100, "fit": "cover", "format": "webp",
                                              "quality": 60}, "web": {"size": 300}})
    made = make_thumbnails(path.read_bytes(), 6, settings)
    square = open_bytes(made["square"].data)
    assert square.format == "WEBP" and square.size == (100, 100)
    assert (made["web"].width, made["web"].height) == (300, 150)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (200, 100), (0, 255, 255, 0)).save(path, "JPEG")  # red in CMYK
    made = make_thumbnails(path.read_bytes(), 1, small_settings())
    image = open_bytes(made["preview"].data)
    assert image.mode == "RGB" and image.size == (160, 80)
    r, g, b = image.getpixel((80, 40))
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    deep = Image.linear_gradient("L").resize((256, 128)).convert("I").point(lambda v: v * 257).convert("I;16")
    assert deep.getextrema()[1] > 65000
    deep.save(path)
    assert Image.open(path).mode.startswith("I")
    made = make_thumbnails(path.read_bytes(), 1, small_settings())
    image = open_bytes(made["preview"].data)
    assert image.mode == "L"
    top, bottom = image.getpixel((80, 2)), image.getpixel((80, image.height - 3))
    assert top < 20 and bottom > 230  # the whole range kept, not clipped to white


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "logo.png"
    image = Image.new("P", (200, 100), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (100, 0, 200, 100))
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    settings = thumbnail_settings({"jpeg": {"size": 100}, "webp": {"size": 100, "format": "webp"}})
    made = make_thumbnails(path.read_bytes(), 1, settings)
    flat = open_bytes(made["jpeg"].data).convert("RGB")
    assert flat.getpixel((10, 25)) == pytest.approx((255, 255, 255), abs=6)  # transparent -> white
    assert flat.getpixel((90, 25))[2] > 230  # blue kept
    alpha = open_bytes(made["webp"].data)
    assert alpha.mode == "RGBA" and alpha.getpixel((10, 25))[3] == 0


def test_icc_profile_is_kept_or_converted(tmp_path):
    path = tmp_path / "icc.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    oriented_jpeg(path, (200, 100), 1)
    Image.open(path).save(path, "JPEG", icc_profile=profile, exif=Image.open(path).info["exif"])
    kept = make_thumbnails(path.read_bytes(), 1, small_settings())
    assert open_bytes(kept["thumb"].data).info.get("icc_profile") == profile
    converted = make_thumbnails(path.read_bytes(), 1, small_settings(colour="srgb"))
    assert not open_bytes(converted["thumb"].data).info.get("icc_profile")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A 160-byte PNG whose header claims width x height: decoding it would take gigabytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    for width, height in ((30000, 30000), (100000, 100000)):
        started = time.monotonic()
        with pytest.raises(PermanentFailure, match="bomb|over the limit"):
            make_thumbnails(_png_header_only(width, height), 1, DEFAULTS)
        assert time.monotonic() - started < 0.5


def test_pixel_limit_is_a_setting(tmp_path):
    path = tmp_path / "a.jpg"
    oriented_jpeg(path, (100, 100), 1)
    with pytest.raises(PermanentFailure):
        make_thumbnails(path.read_bytes(), 1, thumbnail_settings({"max_pixels": 4000}))


def test_truncated_and_non_images_fail_permanently(tmp_path):
    path = tmp_path / "t.jpg"
    oriented_jpeg(path, (400, 300), 1)
    data = path.read_bytes()
    with pytest.raises(PermanentFailure, match="truncated|damaged"):
        make_thumbnails(data[: len(data) // 2], 1, DEFAULTS)
    with pytest.raises(PermanentFailure, match="not an image"):
        make_thumbnails(b"this is a text file, named .jpg\n", 1, DEFAULTS)


def test_settings_parsing_and_fingerprints():
    assert [(c.name, c.width) for c in DEFAULTS.conversions] == [("thumb", 320), ("preview", 1024), ("web", 2048)]
    custom = thumbnail_settings({"format": "webp", "quality": 70, "small": {"size": 200}})
    assert custom.conversions == (Conversion("small", 200, 200, "contain", "webp", 70),)
    for bad in ({"thumb": {"size": 0}}, {"thumb": {"size": 100, "fit": "stretch"}}, {"thumb": {"sise": 100}},
                {"format": "gif"}, {"max_pixels": -1}, {"colour": "cmyk"}, {"folder": "../out"}, {"bogus": 1},
                {"resample": "nearest"}):
        with pytest.raises(ConfigError):
            thumbnail_settings(bad)
    thumb = DEFAULTS.conversions[0]
    first = DEFAULTS.fingerprint(thumb, "a" * 64)
    assert first == DEFAULTS.fingerprint(thumb, "a" * 64)
    assert first != DEFAULTS.fingerprint(thumb, "b" * 64)
    assert first != thumbnail_settings({"thumb": {"size": 320, "quality": 90}}).fingerprint(
        thumbnail_settings({"thumb": {"size": 320, "quality": 90}}).conversions[0], "a" * 64)
    assert first != thumbnail_settings({"colour": "srgb"}).fingerprint(thumb, "a" * 64)
