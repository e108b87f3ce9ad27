"""HEIC as phones write it: stored pixels, irot/imir transforms in the container, and the
same orientation in EXIF. libheif applies the transforms while decoding, so the EXIF
orientation must not be applied again (a portrait iPhone photo came out sideways)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from photojobs.photos.thumbnails import make_thumbnails, open_image, pending_orientation, thumbnail_settings
from photojobs.samples import SampleExif, build_exif, stored_pixels, upright_picture

from .conftest import difference, open_bytes, oriented_jpeg

pillow_heif = pytest.importorskip("pillow_heif")

SETTINGS = thumbnail_settings({"thumb": {"size": 64}, "preview": {"size": 160}})


def phone_heic(path: Path, size: tuple[int, int], orientation: int) -> Image.Image:
    """Write a HEIC that displays as `size` the way a phone does: the sensor's pixels, the
    irot/imir transforms pillow-heif's encoder derives from the EXIF orientation it is
    given, and that EXIF orientation kept in the file. Returns the upright picture."""
    picture = upright_picture(size)
    stored = stored_pixels(picture, orientation).convert("RGB")
    heif = pillow_heif.from_bytes("RGB", stored.size, stored.tobytes())
    heif.save(path, quality=90, exif=build_exif(SampleExif(orientation=orientation)).tobytes())
    return picture


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_of_a_phone_heic_is_made_upright_once(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.heic"
    upright = phone_heic(path, (240, 160), orientation)
    data = path.read_bytes()
    transforms = pillow_heif.open_heif(io.BytesIO(data))[0]._c_image.transformations
    assert bool(transforms) == (orientation != 1)  # the container's irot/imir say it ...
    image = open_image(data, SETTINGS.max_pixels)
    assert image.info["original_orientation"] == (orientation if orientation != 1 else None)  # ... and EXIF
    assert image.size == (240, 160)  # the decoder rotated it already
    assert pending_orientation(image, orientation) == 1
    # the file's EXIF orientation (as read from an iPhone's file) meets the decoder's output
    made = make_thumbnails(data, orientation, SETTINGS)
    assert (made["preview"].width, made["preview"].height) == (160, 107)
    for name, thumb in made.items():
        picture = open_bytes(thumb.data)
        assert difference(picture, upright.resize(picture.size, Image.Resampling.LANCZOS)) < 8, name
        assert difference(picture, upright.rotate(180).resize(picture.size)) > 20


def test_a_portrait_phone_heic_is_processed_upright(workdir, cli):
    shoot = workdir / "shoot"
    shoot.mkdir()
    phone_heic(shoot / "IMG_0001.HEIC", (240, 320), 6)  # stored 320x240, displayed portrait
    oriented_jpeg(shoot / "IMG_0002.jpg", (240, 320), 6)
    assert cli("photos", "add", str(shoot)).returncode == 0
    done = cli("process-photos")
    assert done.returncode == 0 and "2 done" in done.stdout, done.stdout + done.stderr
    photos = json.loads(cli("photos", "list", "--json").stdout)
    assert len(photos) == 2
    for photo in photos:
        shown = json.loads(cli("photos", "show", str(photo["id"]), "--json").stdout)
        assert (shown["width"], shown["height"], shown["orientation"]) == (240, 320, 6), shown["path"]
        assert shown["camera_model"] == "Canon EOS R6", shown["path"]
        preview = shown["thumbnails"]["preview"]
        assert (preview["width"], preview["height"]) == (240, 320), shown["path"]


def _broken_heif_decoder(workdir: Path) -> dict:
    """An environment whose `import pillow_heif` fails, as on a platform without its wheel."""
    shim = workdir.parent / "shim" / "pillow_heif"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text(
        'raise ImportError("libheif.so.1: cannot open shared object file: No such file or directory")\n')
    tests = Path(__file__).parent.parent
    return {"PYTHONPATH": f"{shim.parent}{os.pathsep}{tests}"}


def test_heic_files_skipped_by_name_when_the_decoder_cannot_be_loaded(workdir, cli):
    shoot = workdir / "shoot"
    shoot.mkdir()
    for n in range(5):
        phone_heic(shoot / f"IMG_{n:04d}.HEIC", (64, 48), 1)
    oriented_jpeg(shoot / "IMG_0100.jpg", (64, 48), 1)
    (shoot / "notes.txt").write_text("not a photo")
    broken = _broken_heif_decoder(workdir)
    added = cli("photos", "add", str(shoot), env=broken)
    assert added.returncode == 0, added.stderr
    assert ("5 HEIC files skipped: the HEIC decoder (pillow-heif) cannot be loaded: libheif.so.1: cannot open"
            " shared object file") in added.stdout
    assert "Added 1," in added.stdout and "1 not an image file name" in added.stdout
    as_json = json.loads(cli("photos", "add", str(shoot), "--json", env=broken).stdout)
    assert as_json["skipped_by_reason"]["HEIC decoder cannot be loaded"] == 5
    assert as_json["warnings"] == [added.stdout.splitlines()[-1]]
    # registered where the decoder worked, processed where it cannot be loaded: the reason names it
    assert json.loads(cli("photos", "add", str(shoot / "IMG_0000.HEIC"), "--no-queue", "--json").stdout)["added"] == 1
    done = cli("process-photos", env=broken)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout + done.stderr
    photos = {p["path"].rsplit("/", 1)[-1]: p for p in json.loads(cli("photos", "list", "--json").stdout)}
    assert photos["IMG_0000.HEIC"]["error"].startswith("the HEIC decoder (pillow-heif) cannot be loaded: libheif")


def test_pillow_heif_is_a_dependency_and_the_heic_extra_still_installs():
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent.parent / "pyproject.toml").read_text())["project"]
    assert any(d.replace(" ", "").startswith("pillow-heif") for d in project["dependencies"])
    assert project["optional-dependencies"]["heic"] == []
