"""Default thumbnails stay as faithful as recorded (issue 14): SSIM on luma against the
careful reference, on small photo-like JPEGs from the seeded generator.

The figures in fidelity_figures.json were measured with the default pipeline (LANCZOS,
quality 85), which bench/photos.py shows is as faithful as pyvips' Q85 thumbnails. A
Pillow upgrade, a new decode scale or a faster resize that loses more than TOLERANCE at
any size fails here. After a deliberate change, re-record with
`python tests/photos/test_fidelity.py` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("skimage", reason="scikit-image comes with the test extra")

from photojobs.photos.exif import read_exif  # noqa: E402
from photojobs.photos.thumbnails import make_thumbnails, thumbnail_settings  # noqa: E402
from photojobs.testing.fidelity import Reference, luma_ssim  # noqa: E402
from photojobs.testing.photolike import write_photo_like  # noqa: E402

FIGURES = Path(__file__).with_name("fidelity_figures.json")
TOLERANCE = 0.005
# The bench's scale factors on small images: 6000x4000 -> 2048/1024/320 (a 3/8 DCT decode,
# then LANCZOS) and 4032x3024 -> 2048 (a full decode, then 1.97x), at a tenth of the pixels.
IMAGES = {"camera-3x2": ((1500, 1000), 1, 1), "camera-turned": ((1500, 1000), 2, 6),
          "phone-4x3": ((1008, 756), 3, 1)}
CONVERSIONS = {"web": {"size": 512}, "preview": {"size": 256}, "thumb": {"size": 80}}


def measure(folder: Path) -> dict[str, dict[str, float]]:
    """SSIM of each default conversion of each test image against its reference."""
    settings = thumbnail_settings(CONVERSIONS)  # every other setting at its default
    figures: dict[str, dict[str, float]] = {}
    for name, (size, seed, orientation) in IMAGES.items():
        path = write_photo_like(folder / f"{name}.jpg", size, seed, orientation=orientation)
        data = path.read_bytes()
        made = make_thumbnails(data, read_exif(data).orientation or 1, settings)
        reference = Reference(data)
        figures[name] = {conversion: round(luma_ssim(thumb.data, reference), 4) for conversion, thumb in made.items()}
    return figures


def test_default_thumbnails_are_as_faithful_as_recorded(tmp_path):
    recorded = json.loads(FIGURES.read_text())
    measured = measure(tmp_path)
    lost = [f"{name}/{conversion}: {measured[name][conversion]:.4f}, recorded {figure:.4f}"
            for name, per_image in recorded.items() for conversion, figure in per_image.items()
            if measured[name][conversion] < figure - TOLERANCE]
    assert not lost, "thumbnails less faithful than recorded (SSIM on luma): " + "; ".join(lost)
    assert measured.keys() == recorded.keys()


if __name__ == "__main__":  # re-record the figures: python tests/photos/test_fidelity.py
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        figures = measure(Path(folder))
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    json.dump(figures, sys.stdout, indent=2)
