"""Photo-like test pictures from a seed: what a thumbnail must keep faithfully.

    from photojobs.testing.photolike import photo_like, write_photo_like
    picture = photo_like((4032, 3024), seed=3)          # an RGB PIL image
    write_photo_like(path, (4032, 3024), seed=3, orientation=6)

Each picture has the parts a photographer's client looks at: a smooth sky gradient (where
blocking and banding show), skin-like faces with soft shading, fine texture (fabric or
grass, where softness and moire show), buildings with hard edges and windows, a sign with
text, and a little sensor noise. The same seed and size give the same pixels on any
machine (numpy's seeded generator and Pillow's built-in bitmap font; no system fonts).
Needs numpy (it comes with the `test` and `bench` extras, through scikit-image).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SKIN_TONES = ((224, 172, 140), (198, 134, 96), (141, 85, 54), (241, 194, 170))
WORDS = ("PHOTO SALE", "OPEN 9-17", "CAFE 2024", "NO PARKING", "EXIT 12B", "STUDIO")


def photo_like(size: tuple[int, int], seed: int = 0) -> Any:
    """An RGB picture of `size` (width, height), the same for the same seed."""
    import numpy as np
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    canvas = _sky(rng, u, v)
    _ground_texture(rng, canvas, x, y, v)
    _buildings(rng, canvas, u, v, width, height)
    _faces(rng, canvas, u, v, width, height)
    canvas += rng.normal(0.0, 2.0, canvas.shape).astype(np.float32)  # sensor noise
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
    _signs(rng, picture)
    return picture


def _sky(rng: Any, u: Any, v: Any) -> Any:
    import numpy as np

    top, bottom = rng.uniform((40, 90, 170), (90, 140, 220)), rng.uniform((170, 200, 225), (230, 235, 245))
    t = np.clip(v / 0.6, 0, 1)[..., None]
    wave = 6 * np.sin(2 * np.pi * (u * rng.uniform(0.5, 1.5) + v * 0.7))[..., None]  # a soft cloud band
    return (top * (1 - t) + bottom * t + wave).astype(np.float32)


def _ground_texture(rng: Any, canvas: Any, x: Any, y: Any, v: Any) -> None:
    """The lower part: woven fabric or grass, periods of 2-9 pixels, with its own grain."""
    import numpy as np

    ground = v > 0.62
    base = rng.uniform((60, 70, 30), (120, 140, 90)).astype(np.float32)
    period_a, period_b = rng.uniform(2.2, 5.0), rng.uniform(4.0, 9.0)
    angle = rng.uniform(0, np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    weave = 28 * np.sin(2 * np.pi * along / period_a) * np.sin(2 * np.pi * (y - x * 0.3) / period_b)
    grain = rng.normal(0, 14, x.shape).astype(np.float32)
    shade = (1.0 - 0.5 * (v - 0.62))
    texture = (base[None, None, :] + (weave + grain)[..., None]) * shade[..., None]
    canvas[ground] = texture[ground]


def _buildings(rng: Any, canvas: Any, u: Any, v: Any, width: int, height: int) -> None:
    """Blocks with hard edges against the sky and rows of windows."""
    import numpy as np

    for _ in range(int(rng.integers(3, 6))):
        left, w = rng.uniform(0.0, 0.85), rng.uniform(0.08, 0.2)
        top = rng.uniform(0.2, 0.45)
        block = (u >= left) & (u < left + w) & (v >= top) & (v < 0.62)
        colour = rng.uniform(40, 210, 3)
        canvas[block] = colour
        cols, rows = max(2, int(w * width / 40)), max(2, int((0.62 - top) * height / 50))
        wx = ((u - left) / w * cols) % 1.0
        wy = ((v - top) / (0.62 - top) * rows) % 1.0
        windows = block & (wx > 0.3) & (wx < 0.75) & (wy > 0.3) & (wy < 0.7)
        lit = rng.uniform(0, 1) > 0.5
        canvas[windows] = (250, 230, 160) if lit else (25, 30, 40)


def _faces(rng: Any, canvas: Any, u: Any, v: Any, width: int, height: int) -> None:
    """Skin-like ellipses lit from one side: smooth tone ramps with slight mottling."""
    import numpy as np

    aspect = width / height
    for i in range(int(rng.integers(2, 4))):
        cu, cv, r = rng.uniform(0.15, 0.85), rng.uniform(0.35, 0.7), rng.uniform(0.06, 0.12)
        du, dv = (u - cu) * aspect / r, (v - cv) / (r * 1.3)
        inside = du * du + dv * dv < 1.0
        light = np.clip(1.0 - 0.35 * (du - dv * 0.5) - 0.25 * (du * du + dv * dv), 0.45, 1.15)
        tone = np.array(SKIN_TONES[(i + int(rng.integers(0, 4))) % len(SKIN_TONES)], dtype=np.float32)
        mottle = 3 * np.sin(2 * np.pi * (u * 37 + v * 23)) * np.sin(2 * np.pi * (u * 19 - v * 31))
        face = tone[None, None, :] * light[..., None] + mottle[..., None]
        canvas[inside] = face[inside]
        eye = ((du + 0.35) ** 2 + (dv + 0.2) ** 2 < 0.012) | ((du - 0.35) ** 2 + (dv + 0.2) ** 2 < 0.012)
        canvas[inside & eye] = (35, 25, 20)


def _signs(rng: Any, picture: Any) -> None:
    """Dark text on light boards and light on dark, in the bitmap font scaled by whole
    steps (hard-edged glyphs 2-6 px wide per stroke, like text in a photo)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()
    width, height = picture.size
    for i in range(int(rng.integers(3, 7))):
        word = WORDS[int(rng.integers(0, len(WORDS)))]
        scale = int(rng.integers(2, 7))
        left, top, right, bottom = font.getbbox(word)
        board_ink = ((245, 245, 235), (20, 20, 20)) if i % 2 == 0 else ((25, 35, 80), (250, 250, 250))
        board = Image.new("RGB", (right - left + 6, bottom - top + 6), board_ink[0])
        ImageDraw.Draw(board).text((3 - left, 3 - top), word, fill=board_ink[1], font=font)
        board = board.resize((board.width * scale, board.height * scale), Image.Resampling.NEAREST)
        x = int(rng.uniform(0, max(1, width - board.width)))
        y = int(rng.uniform(0.05, 0.9) * max(1, height - board.height))
        picture.paste(board, (x, y))


def write_photo_like(path: str | Path, size: tuple[int, int], seed: int = 0, *, orientation: int = 1,
                     quality: int = 92) -> Path:
    """A JPEG (with EXIF orientation, stored as a camera would) that displays as photo_like(size, seed)."""
    from ..samples import SampleExif, build_exif, stored_pixels

    path = Path(path)
    stored = stored_pixels(photo_like(size, seed), orientation)
    stored.save(path, "JPEG", quality=quality, exif=build_exif(SampleExif(orientation=orientation)).tobytes())
    return path


__all__ = ["photo_like", "write_photo_like"]
