"""How faithful a thumbnail is: SSIM on luma against a careful reference (issue 14).

    from photojobs.testing.fidelity import Reference, luma_ssim
    ref = Reference(path)                       # full decode, orientation applied, once
    score = luma_ssim(thumbnail_bytes, ref)     # against ref resized (LANCZOS) to its size

The careful reference is the whole source decoded at full size (no DCT scaling), turned
upright by its EXIF orientation, converted to RGB and resized to the thumbnail's own size
with LANCZOS from full size, never re-encoded. SSIM is scikit-image's
`structural_similarity` with its defaults and `data_range=255`, on Pillow's "L" luma of
each. `pyvips_thumbnail` is the peer: `pyvips.Image.thumbnail(source, box, height=box)`
from the source for each size (shrink-on-load), saved as JPEG with Q=85.
Needs scikit-image (the `test` and `bench` extras); pyvips only for the peer (`bench`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

PYVIPS_QUALITY = 85


class Reference:
    """One source, decoded at full size and upright; its LANCZOS resizes, cached by size."""

    def __init__(self, source: bytes | str | Path):
        from PIL import Image, ImageOps

        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data)) as opened:
            self.full = ImageOps.exif_transpose(opened).convert("RGB")
        self._luma: dict[tuple[int, int], Any] = {}

    def luma(self, size: tuple[int, int]) -> Any:
        """The reference at `size` as a uint8 luma array."""
        import numpy as np
        from PIL import Image

        if size not in self._luma:
            resized = self.full if size == self.full.size else self.full.resize(size, Image.Resampling.LANCZOS)
            self._luma[size] = np.asarray(resized.convert("L"))
        return self._luma[size]


def luma_ssim(thumbnail: bytes | Any, reference: Reference) -> float:
    """SSIM of a thumbnail (encoded bytes or a PIL image) against the reference at its size."""
    import numpy as np
    from PIL import Image
    from skimage.metrics import structural_similarity

    image = Image.open(io.BytesIO(thumbnail)) if isinstance(thumbnail, (bytes, bytearray)) else thumbnail
    luma = np.asarray(image.convert("L"))
    return float(structural_similarity(luma, reference.luma(image.size), data_range=255))


def pyvips_thumbnail(source: str | Path, box: int, quality: int = PYVIPS_QUALITY) -> bytes:
    """pyvips' thumbnail of `box` (long side) from the source, as JPEG bytes, ICC kept."""
    import pyvips

    image = pyvips.Image.thumbnail(str(source), box, height=box)
    return image.jpegsave_buffer(Q=quality, keep=pyvips.enums.ForeignKeep.ICC)


__all__ = ["PYVIPS_QUALITY", "Reference", "luma_ssim", "pyvips_thumbnail"]
