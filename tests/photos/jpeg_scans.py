"""A progressive JPEG with as many scans as a test wants, written by hand.

Pillow writes progressive JPEGs only with libjpeg's default script (about 10 scans) and
no scan-script tool is installed here, so this writes the file itself: one grey
component whose 8x8 block averages come from a real picture (coded in one DC scan), then
`scans - 1` AC scans that follow the standard's progression (each coefficient 1-63 sent
first at Al = 13, then refined bit by bit down to Al = 0: 14 scans a coefficient, 882 in
all) and beyond that repeat full-precision first scans (Ah = Al = 0), which libjpeg
accepts without a warning. The AC coefficients are zero (the picture is the block
averages), so each AC scan is a few end-of-band runs: a few bytes for any image size,
but the decoder still visits every block in every scan; that is where the time goes.
"""

from __future__ import annotations

import struct
from typing import Any

# Annex K.3: the standard luminance DC table (categories 0-11).
DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_VALUES = list(range(12))
# The AC table holds only end-of-band runs EOB0-EOB14 (symbol r << 4), 4 bits each.
AC_BITS = [0, 0, 0, 15] + [0] * 12
AC_VALUES = [r << 4 for r in range(15)]
MAX_EOBRUN = 32767


def _codes(bits: list[int], values: list[int]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes: symbol -> (code, length)."""
    codes, code, k = {}, 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _Bits:
    """An entropy-coded segment: bits packed MSB first, padded with 1s, 0xFF stuffed."""

    def __init__(self) -> None:
        self.out, self.value, self.count = bytearray(), 0, 0

    def put(self, code: int, length: int) -> None:
        self.value = (self.value << length) | code
        self.count += length
        while self.count >= 8:
            self.count -= 8
            self.out.append((self.value >> self.count) & 0xFF)
        self.value &= (1 << self.count) - 1

    def data(self) -> bytes:
        if self.count:
            self.put((1 << (8 - self.count)) - 1, 8 - self.count)
        return bytes(self.out).replace(b"\xff", b"\xff\x00")


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def _sos(ss: int, se: int, ah: int, al: int) -> bytes:
    return _segment(0xDA, bytes([1, 1, 0x00, ss, se, (ah << 4) | al]))


def _dc_scan(dcs: list[int]) -> bytes:
    codes, bits, previous = _codes(DC_BITS, DC_VALUES), _Bits(), 0
    for dc in dcs:
        diff, previous = dc - previous, dc
        size = abs(diff).bit_length()
        bits.put(*codes[size])
        if size:
            bits.put(diff if diff >= 0 else diff + (1 << size) - 1, size)
    return _sos(0, 0, 0, 0) + bits.data()


def _eob_runs(blocks: int, eob_run: int) -> bytes:
    """The data of an AC scan (first or refinement) of all-zero coefficients: end-of-band runs."""
    codes, bits, left = _codes(AC_BITS, AC_VALUES), _Bits(), blocks
    while left:
        run = min(left, eob_run)
        r = run.bit_length() - 1
        bits.put(*codes[r << 4])
        bits.put(run - (1 << r), r)
        left -= run
    return bits.data()


def _ac_scans(count: int) -> list[tuple[int, int, int, int]]:
    """(Ss, Se, Ah, Al) of `count` AC scans: the standard progression first, then repeats."""
    script = []
    for k in range(1, 64):
        script.append((k, k, 0, 13))
        script.extend((k, k, a, a - 1) for a in range(13, 0, -1))
    script = script[:count]
    script.extend((1, 63, 0, 0) for _ in range(count - len(script)))
    return script


def many_scan_jpeg(picture: Any, scans: int, eob_run: int = MAX_EOBRUN) -> bytes:
    """A valid progressive greyscale JPEG of `picture` (a Pillow image) with `scans` scans.

    A shorter `eob_run` (blocks per end-of-band symbol) makes the file larger for the same
    decoding work, so the work is spread over more of the reads Pillow feeds libjpeg.
    """
    from PIL import Image

    width, height = picture.size
    bw, bh = -(-width // 8), -(-height // 8)
    means = picture.convert("L").resize((bw, bh), Image.Resampling.BOX)
    dcs = [value - 128 for value in means.tobytes()]  # DC / quantiser 8 = block mean - 128
    out = [b"\xff\xd8", _segment(0xDB, b"\x00" + bytes([8] * 64)),
           _segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])),
           _segment(0xC4, b"\x00" + bytes(DC_BITS) + bytes(DC_VALUES)),
           _segment(0xC4, b"\x10" + bytes(AC_BITS) + bytes(AC_VALUES)), _dc_scan(dcs)]
    runs = _eob_runs(bw * bh, min(eob_run, MAX_EOBRUN))  # the same for every AC scan
    out.extend(_sos(*spec) + runs for spec in _ac_scans(scans - 1))
    out.append(b"\xff\xd9")
    return b"".join(out)
