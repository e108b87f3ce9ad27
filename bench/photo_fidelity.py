"""Fidelity half of bench/photos.py: SSIM and bytes per size, photojobs against pyvips.

SSIM as issue 14 defines it (photojobs.testing.fidelity): scikit-image's
`structural_similarity` (defaults, data_range=255) on Pillow "L" luma, against the
careful reference (full decode, orientation applied, LANCZOS from full size, no
re-encode) resized to each thumbnail's size. pyvips' side: `Image.thumbnail(source, box,
height=box)` from the source for each size, Q=85. photojobs' side: `make_thumbnails` with
the settings given (the defaults, and the `resample`/`quality` alternatives), which is the
code the job runs. CPU time of both sides (thumbnails only, in this process) is recorded too.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

SIZES = (2048, 1024, 320)
TOLERANCE = 0.005  # photojobs' median SSIM may be at most this much under pyvips'
VARIANTS = {  # name -> [thumbnails] table
    "default (quality 85, LANCZOS)": {},
    "quality = 82": {"quality": 82},
    "resample = \"fast\"": {"resample": "fast"},
    "resample = \"fast\", quality = 82 (before)": {"resample": "fast", "quality": 82},
}


def photo_like_sources(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """Photo-like JPEGs from the seeded generator (cached: ~5 s each), every fourth turned."""
    from photojobs.testing.photolike import write_photo_like

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photolike-{size[0]}x{size[1]}-{i + 1:03d}.jpg"
        if not path.exists():
            write_photo_like(path, size, seed=i, orientation=(1, 1, 6, 1)[i % 4])
        paths.append(path)
    return paths


def measure(paths: list[Path]) -> dict:
    """Per variant and per size: median SSIM and bytes; pyvips the same; CPU ms per photo."""
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    from photojobs.photos.exif import read_exif
    from photojobs.photos.thumbnails import make_thumbnails, thumbnail_settings
    from photojobs.testing.fidelity import Reference, luma_ssim, pyvips_thumbnail

    scores: dict[str, dict[int, list[tuple[float, int]]]] = {name: {s: [] for s in SIZES}
                                                              for name in ["pyvips Q85", *VARIANTS]}
    cpu: dict[str, float] = {name: 0.0 for name in ["pyvips Q85", *VARIANTS]}
    conversions = {"web": {"size": 2048}, "preview": {"size": 1024}, "thumb": {"size": 320}}
    for path in paths:
        data = path.read_bytes()
        reference = Reference(data)
        for size in SIZES:
            started = time.process_time()
            made = pyvips_thumbnail(path, size)
            cpu["pyvips Q85"] += time.process_time() - started
            scores["pyvips Q85"][size].append((luma_ssim(made, reference), len(made)))
        orientation = read_exif(data).orientation or 1
        for name, table in VARIANTS.items():
            settings = thumbnail_settings({**table, **conversions})
            started = time.process_time()
            made = make_thumbnails(data, orientation, settings)
            cpu[name] += time.process_time() - started
            for size, conversion in zip(SIZES, ("web", "preview", "thumb")):
                scores[name][size].append((luma_ssim(made[conversion].data, reference), len(made[conversion].data)))
    return {name: {"cpu_ms_per_photo": 1000 * cpu[name] / len(paths),
                   "sizes": {size: {"ssim": statistics.median(v[0] for v in values),
                                    "kib": statistics.median(v[1] for v in values) / 1024}
                             for size, values in per_size.items()}}
            for name, per_size in scores.items()}


def report(label: str, results: dict) -> bool:
    """Print the side-by-side table; True when the default meets pyvips - TOLERANCE at every size."""
    peer = results["pyvips Q85"]["sizes"]
    default = next(iter(VARIANTS))
    print(f"\nfidelity, {label}: median SSIM on luma (bytes, KiB) per size; CPU ms/photo for the 3 thumbnails")
    print(f"{'':44}" + "".join(f"{size:>17}" for size in SIZES) + f"{'CPU ms':>9}")
    for name, row in results.items():
        cells = "".join(f"{row['sizes'][s]['ssim']:9.4f} ({row['sizes'][s]['kib']:4.0f})" for s in SIZES)
        print(f"{name:44}{cells}{row['cpu_ms_per_photo']:9.0f}")
    ok = True
    for size in SIZES:
        gap = results[default]["sizes"][size]["ssim"] - peer[size]["ssim"]
        ok = ok and gap >= -TOLERANCE
        print(f"  {size}: default - pyvips = {gap:+.4f} (target >= -{TOLERANCE}: {'ok' if gap >= -TOLERANCE else 'MISSED'})")
    return ok
