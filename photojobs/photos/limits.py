"""What decoding an image will cost, judged before any pixel is decoded.

- JPEG scans: libjpeg decodes every progressive scan over the whole image, so a valid
  0.6 MB file with 5,000 scans takes many seconds. The marker segments are walked (a regex
  skips each scan's entropy-coded data; an in-memory file is read in place, a larger one
  through mmap) and a file with more scans than `[thumbnails] max_scans` is refused.
- No image data: libjpeg fills what a file lacks with grey and says so only in a warning
  Pillow drops, so a header that declares 65500x1365 followed by no data would decode to
  a grey picture. Every block codes at least one Huffman symbol (one bit or more) for its
  DC value, so a Huffman-coded JPEG whose scans hold fewer bytes than blocks / 8 cannot
  be a whole image.
- A PNG's compressed data cannot be smaller than its pixels' bytes / 1032 (deflate's best
  ratio): Pillow decodes a stream that ends early, followed by IEND, to a black picture.
- Memory: the bytes the decoder and the conversions to the working mode hold at once,
  from the header's size and mode, against `[thumbnails] max_decode_mb`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import re
from typing import Any, Iterator

from ..errors import PermanentFailure

DEFAULT_MAX_SCANS = 100
DEFAULT_MAX_DECODE_MB = 512
MAX_SEGMENTS = 10_000  # other marker segments a JPEG may carry (real ones have tens)
MB = 1024 * 1024

# The end of a scan's entropy-coded data: a marker, i.e. 0xFF followed by neither a
# stuffed zero, a restart marker (RST0-7, inside the data) nor another 0xFF (fill).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG and DAC are not frames
_LOSSLESS = {0xC3, 0xC7, 0xCB, 0xCF}
_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclasses.dataclass
class JpegLayout:
    scans: int = 0
    data_bytes: int = 0  # entropy-coded bytes over all scans
    min_data_bytes: int = 0  # the least a whole image of this frame codes into (0: unknown)
    blocks: tuple[int, ...] = ()  # 8x8 blocks of each component


def _frame(layout: JpegLayout, marker: int, body: bytes) -> None:
    if len(body) < 6:
        return
    height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    sampling = [(body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(count) if 8 + 3 * i < len(body)]
    if not sampling or not all(h and v for h, v in sampling):
        return
    hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
    layout.blocks = tuple(-(-(-(-width * h // hmax)) // 8) * -(-(-(-height * v // vmax)) // 8) for h, v in sampling)
    if marker in _LOSSLESS:
        layout.min_data_bytes = 0
    elif marker in _ARITHMETIC:
        layout.min_data_bytes = 1
    else:
        layout.min_data_bytes = -(-sum(layout.blocks) // 8)


def jpeg_layout(buffer: Any, max_scans: int) -> JpegLayout:
    """Walk a JPEG's marker segments up to its first EOI (or `max_scans` + 1 scans)."""
    layout, end, segments = JpegLayout(), len(buffer), 0
    pos = 2  # after SOI
    while pos + 4 <= end and layout.scans <= max_scans:
        if buffer[pos] != 0xFF:  # stray bytes between segments: libjpeg skips to a marker
            found = _SCAN_END.search(buffer, pos)
            if found is None:
                break
            pos = found.start()
            continue
        marker = buffer[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        length = int.from_bytes(buffer[pos:pos + 2], "big")
        segments += 1
        if segments > MAX_SEGMENTS + max_scans:
            raise PermanentFailure(f"damaged JPEG: more than {MAX_SEGMENTS} marker segments")
        if marker in _SOF:
            _frame(layout, marker, bytes(buffer[pos + 2:pos + length]))
        pos += max(length, 2)
        if marker == 0xDA:
            layout.scans += 1
            found = _SCAN_END.search(buffer, pos)
            stop = found.start() if found is not None else end
            layout.data_bytes += stop - pos
            pos = stop
    return layout


@contextlib.contextmanager
def file_buffer(fp: Any) -> Iterator[Any]:
    """The bytes of an image's open file, without copying: a BytesIO's buffer, a file's mmap."""
    if hasattr(fp, "getbuffer"):
        view = fp.getbuffer()
        try:
            yield view
        finally:
            view.release()
        return
    try:
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # not a plain file: read it (and put it back)
        where = fp.tell()
        fp.seek(0)
        data = fp.read()
        fp.seek(where)
        yield data
        return
    try:
        yield mapped
    finally:
        mapped.close()


def check_jpeg(image: Any, max_scans: int) -> None:
    """Refuse a JPEG with more scans than `max_scans`, or with no (or too little) image data."""
    with file_buffer(image.fp) as buffer:
        layout = jpeg_layout(buffer, max_scans)
    width, height = image.size
    if layout.scans > max_scans:
        raise PermanentFailure(f"refused: the JPEG has more than {max_scans} scans (a normal progressive JPEG"
                               f" has about 10), which would take long to decode (max_scans in [thumbnails])")
    if layout.data_bytes == 0:
        raise PermanentFailure(f"no image data: the JPEG declares {width}x{height} pixels but holds none")
    if layout.data_bytes < layout.min_data_bytes:
        raise PermanentFailure(f"no image data: {layout.data_bytes} bytes cannot code a {width}x{height} JPEG"
                               f" (at least {layout.min_data_bytes} needed; the file is cut short)")


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
DEFLATE_BEST_RATIO = 1032  # 258-byte matches in two bits or so: no deflate stream does better


def png_data_bytes(buffer: Any) -> tuple[int, int]:
    """(compressed bytes in IDAT chunks, least bytes the IHDR's pixels compress to)."""
    if len(buffer) < 33 or bytes(buffer[12:16]) != b"IHDR":
        return 0, 0
    width, height = int.from_bytes(buffer[16:20], "big"), int.from_bytes(buffer[20:24], "big")
    depth, colour = buffer[24], buffer[25]
    least = width * height * depth * PNG_CHANNELS.get(colour, 1) // 8 // DEFLATE_BEST_RATIO
    pos, data, end = 8, 0, len(buffer)
    for _ in range(MAX_SEGMENTS * 100):  # chunks: IDATs are often 8-64 KB each
        if pos + 8 > end:
            break
        length, kind = int.from_bytes(buffer[pos:pos + 4], "big"), bytes(buffer[pos + 4:pos + 8])
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            data += min(length, end - pos - 8)
        pos += 12 + length
    return data, least


def check_png(image: Any) -> None:
    """Refuse a PNG whose compressed data is too small to hold the pixels its header declares."""
    with file_buffer(image.fp) as buffer:
        data, least = png_data_bytes(buffer)
    if data < least:
        width, height = image.size
        raise PermanentFailure(f"no image data: {data} bytes of compressed data cannot hold a {width}x{height}"
                               f" PNG (at least {least} needed; the file is cut short)")


# Bytes a pixel takes in Pillow's storage: multi-band modes are kept 4 bytes a pixel.
def pixel_bytes(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decoder_bytes(image: Any, full: tuple[int, int]) -> int:
    """Memory a format's decoder holds besides Pillow's image (`full`: the size before any
    draft): libjpeg's whole-image DCT coefficients for a progressive JPEG (64 of 2 bytes a
    block, at full size whatever the scale), the full picture that libheif and libwebp
    decode into before Pillow copies it."""
    fmt, pixels = image.format or "", full[0] * full[1]
    if fmt in ("JPEG", "MPO"):
        if not image.info.get("progressive") and not image.info.get("progression"):
            return 0
        sampling = [(h, v) for _, h, v, _ in getattr(image, "layer", [])] or [(1, 1)]
        hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
        return sum(pixels * h * v // (hmax * vmax) for h, v in sampling) * 2
    if fmt in ("HEIF", "AVIF"):
        return pixels * 5  # interleaved RGB(A) plus the YCbCr planes it came from
    if fmt == "WEBP":
        return pixels * 4
    return 0


def check_memory(image: Any, full: tuple[int, int], copies: float, max_mb: int) -> None:
    """Refuse, before decoding, an image whose decode would hold more than `max_mb` MB:
    the decoder's own buffers, Pillow's image and `copies` more bytes a pixel for the
    conversions to the working mode."""
    width, height = image.size
    need = decoder_bytes(image, full) + int(width * height * (pixel_bytes(image.mode) + copies))
    if need > max_mb * MB:
        raise PermanentFailure(f"refused: decoding this {full[0]}x{full[1]} {image.mode} image needs about"
                               f" {-(-need // MB)} MB, over the limit of {max_mb} MB (max_decode_mb in [thumbnails])")
