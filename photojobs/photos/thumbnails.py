"""Thumbnails: conversions from the [thumbnails] table, made fast and upright.

The pipeline decodes a JPEG once, scaled by libjpeg at the aspect-fitted size of the
largest conversion (`draft()`: 1/2, 1/4, 1/8; with libjpeg-turbo also 3/8, which turns a
6000x4000 photo into 2250x1500 for a 2048 px conversion instead of 3000x2000), resizes
that once, applies the EXIF orientation on the small image, then makes each smaller
conversion from the previous one (chained). Pillow's pixel limit, the JPEG scan limit, a
JPEG with no image data and the memory bound are checked from the header, before any
decoding (photos/limits.py): such a file fails at once and costs nothing.

The orientation is applied once: a JPEG's (or PNG's, TIFF's) decoder gives the stored
pixels, which the EXIF orientation turns upright; libheif (through pillow-heif) applies a
HEIF's own irot/imir transforms while decoding, and pillow-heif then resets the EXIF
orientation it hands on to 1, so for HEIF the orientation left to apply is the one in the
decoder's metadata, not the file's EXIF (`pending_orientation`).

`resample = "quality"` (the default) uses LANCZOS for every step, and JPEGs are saved
at quality 85 with 4:2:0 chroma, no sharpening: at these settings every size is as
faithful as pyvips' Q85 thumbnail (SSIM on luma against a full-size LANCZOS reference;
bench/README.md). `"fast"` trades fidelity for time: BICUBIC, Pillow's `reduce()` (a box
average) for the whole-number part of a chained step (`reducing_gap=1.0`) and the
triangle filter for a small first residual. The first, largest resize is never by a box.

Settings (photojobs.toml), all optional:

    [thumbnails]
    max_pixels = 89478485   # Pillow's default pixel limit
    max_scans = 100         # a JPEG with more scans is refused (a normal progressive one has ~10)
    max_decode_mb = 512     # refuse an image whose decoding would hold more memory than this
    file_mode = "0600"      # thumbnail files ("0644" for a web server running as another user);
                            # their folders get the matching mode ("0700", "0755")
    format = "jpeg"         # default for every conversion: "jpeg" or "webp"
    quality = 85            # JPEG/WebP quality; lower is smaller and less faithful
    colour = "keep"         # keep the ICC profile, or "srgb" to convert to sRGB
    resample = "quality"    # LANCZOS every step; or "fast" (less faithful, faster)
    [thumbnails.thumb]      # a sub-table per conversion replaces the defaults
    size = 320              # long side; or width = .. and height = .. for a box
    fit = "contain"         # or "cover": fill the box, cropping the centre
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, JobControl, PermanentFailure
from ..settings import check_keys, check_number
from . import limits

PIPELINE_VERSION = 1  # bump when the output of the same settings changes
DEFAULT_MAX_PIXELS = 89_478_485
DEFAULT_CONVERSIONS = {"thumb": 320, "preview": 1024, "web": 2048}
FORMATS = {"jpeg": "jpg", "webp": "webp"}
FITS = ("contain", "cover")
COLOURS = ("keep", "srgb")
RESAMPLES = ("fast", "quality")
DEFAULT_RESAMPLE = "quality"
DEFAULT_QUALITY = 85  # with LANCZOS: at least pyvips' Q85 fidelity at every size (issue 14)
JPEG_SUBSAMPLING = "4:2:0"  # as pyvips at Q85; 4:4:4 adds 13-54% bytes and no luma detail
GLOBAL_KEYS = {"max_pixels", "format", "quality", "colour", "folder", "resample", "max_scans", "max_decode_mb",
               "file_mode"}
DEFAULT_FILE_MODE = 0o600
CONVERSION_KEYS = {"size", "width", "height", "fit", "format", "quality"}


@dataclasses.dataclass(frozen=True)
class Conversion:
    name: str
    width: int
    height: int
    fit: str = "contain"
    format: str = "jpeg"
    quality: int = DEFAULT_QUALITY

    @property
    def extension(self) -> str:
        return FORMATS[self.format]

    def target(self, size: tuple[int, int]) -> tuple[tuple[int, int], float]:
        """(output size, scale of the whole image) for a displayed image of `size`; never upscales."""
        w, h = size
        if self.fit == "cover":
            scale = min(1.0, max(self.width / w, self.height / h))
            return (min(self.width, w), min(self.height, h)), scale
        scale = min(1.0, self.width / w, self.height / h)
        return (max(1, round(w * scale)), max(1, round(h * scale))), scale


@dataclasses.dataclass(frozen=True)
class ThumbnailSettings:
    conversions: tuple[Conversion, ...]
    max_pixels: int = DEFAULT_MAX_PIXELS
    colour: str = "keep"
    folder: str = "thumbnails"
    resample: str = DEFAULT_RESAMPLE
    max_scans: int = limits.DEFAULT_MAX_SCANS
    max_decode_mb: int = limits.DEFAULT_MAX_DECODE_MB
    file_mode: int = DEFAULT_FILE_MODE

    @property
    def folder_mode(self) -> int:
        """The file mode with search (x) added wherever reading (r) is allowed."""
        return self.file_mode | (self.file_mode & 0o444) >> 2

    def fingerprint(self, conversion: Conversion, source_sha256: str) -> str:
        """Changes when the source or anything that shapes this conversion's output does."""
        import hashlib  # here, not at the top: every command's settings load imports this module

        spec = {"v": PIPELINE_VERSION, "src": source_sha256, "colour": self.colour, "resample": self.resample,
                **dataclasses.asdict(conversion)}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


@dataclasses.dataclass
class Thumbnail:
    name: str
    width: int
    height: int
    data: bytes


def _conversion(name: str, table: Mapping[str, Any], defaults: Mapping[str, Any]) -> Conversion:
    check_keys(table, CONVERSION_KEYS, f"[thumbnails.{name}]")
    where = f"[thumbnails.{name}]"
    if "size" not in table and not {"width", "height"} <= set(table):
        raise ConfigError(f"{where}: size (or width and height) is missing: the long side in pixels")
    width, height = (check_number(table.get(key, table.get("size")), key if key in table else "size", where,
                                  1, 20000, whole=True) for key in ("width", "height"))
    fmt = str(table.get("format", defaults.get("format", "jpeg"))).lower().replace("jpg", "jpeg")
    quality = check_number(table.get("quality", defaults.get("quality", DEFAULT_QUALITY)), "quality",
                           where if "quality" in table else "[thumbnails]", 1, 100, whole=True)
    fit = table.get("fit", "contain")
    if fmt not in FORMATS:
        raise ConfigError(f"{where if 'format' in table else '[thumbnails]'}: format must be jpeg or webp, not {fmt!r}")
    if fit not in FITS:
        raise ConfigError(f"[thumbnails.{name}]: fit must be contain or cover, not {fit!r}")
    return Conversion(name, width, height, fit, fmt, quality)


def thumbnail_settings(table: Mapping[str, Any] | None = None, settings: Any = None, env: Any = None
                       ) -> ThumbnailSettings:
    """Parse the [thumbnails] table (see the module docstring; settings.SECTIONS calls it at
    load, so `settings.thumbnails` is the result); ConfigError if it is wrong."""
    table = dict(table or {})
    subtables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    check_keys({k: v for k, v in table.items() if k not in subtables}, GLOBAL_KEYS, "[thumbnails]")
    for name in subtables:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"[thumbnails.{name}]: a conversion name is letters, digits, - and _")
    tables = subtables or {name: {"size": size} for name, size in DEFAULT_CONVERSIONS.items()}
    conversions = tuple(_conversion(name, t, table) for name, t in tables.items())
    max_pixels = check_number(table.get("max_pixels", DEFAULT_MAX_PIXELS), "max_pixels", "[thumbnails]", 1,
                              whole=True)
    colour = table.get("colour", "keep")
    if colour not in COLOURS:
        raise ConfigError(f"[thumbnails]: colour must be keep or srgb, not {colour!r}")
    folder = str(table.get("folder", "thumbnails"))
    if not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
        raise ConfigError("[thumbnails]: folder must be a relative path inside the storage root")
    resample = table.get("resample", DEFAULT_RESAMPLE)
    if resample not in RESAMPLES:
        raise ConfigError(f"[thumbnails]: resample must be fast or quality, not {resample!r}")
    max_scans = check_number(table.get("max_scans", limits.DEFAULT_MAX_SCANS), "max_scans", "[thumbnails]",
                             1, 100_000, whole=True)
    max_decode_mb = check_number(table.get("max_decode_mb", limits.DEFAULT_MAX_DECODE_MB), "max_decode_mb",
                                 "[thumbnails]", 16, 1_048_576, whole=True)
    return ThumbnailSettings(conversions, max_pixels, colour, folder, resample, max_scans, max_decode_mb,
                             _file_mode(table.get("file_mode", DEFAULT_FILE_MODE)))


def _file_mode(value: Any) -> int:
    """An octal mode given as text ("0644"): owner read and write, no execute, no special bits."""
    if value == DEFAULT_FILE_MODE:
        return value
    text = value.removeprefix("0o") if isinstance(value, str) else ""
    if not text or len(text) > 4 or any(c not in "01234567" for c in text):
        raise ConfigError(f'[thumbnails]: file_mode must be an octal mode in quotes, such as "0600" or "0644",'
                          f" not {value!r}")
    mode = int(text, 8)
    if mode & ~0o666 or mode & 0o600 != 0o600:
        raise ConfigError(f"[thumbnails]: file_mode {value!r} must give the owner read and write (6 first)"
                          " and no execute or special bits")
    return mode


# -- decoding -------------------------------------------------------------------------------

_heif_problem: str | None = None
_heif_registered = False


def _register_heif() -> None:
    """HEIC/HEIF through pillow-heif (a dependency, which bundles libheif); where it cannot
    be loaded, `_heif_problem` says why."""
    global _heif_registered, _heif_problem
    if _heif_registered:
        return
    _heif_registered = True
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
    except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from the bundled libheif
        _heif_problem = str(exc) or type(exc).__name__


def _unidentified(source: bytes | str | Path) -> PermanentFailure:
    """The failure for a file Pillow cannot identify: a HEIF one names the missing decoder."""
    from .files import sniff_mime

    head = b""
    if _heif_problem and isinstance(source, (bytes, bytearray)):
        head = bytes(source[:32])
    elif _heif_problem:
        with contextlib.suppress(OSError), open(source, "rb") as fh:
            head = fh.read(32)
    if _heif_problem and (sniff_mime(head) or "").startswith("image/hei"):
        return PermanentFailure(f"the HEIC decoder (pillow-heif) cannot be loaded: {_heif_problem}")
    return PermanentFailure("not an image (unknown format or damaged header)")


def open_image(source: bytes | str | Path, max_pixels: int, max_scans: int = limits.DEFAULT_MAX_SCANS) -> Any:
    """Open an image (header only) and refuse it if it has more pixels than `max_pixels`,
    or if it is a JPEG with more scans than `max_scans` or with no image data."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    _register_heif()
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a job module may have turned it on: missing data is grey
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow on corrupt EXIF: exif.py reports it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentFailure(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise _unidentified(source) from None
    except (SyntaxError, ValueError, EOFError, OSError, IndexError, TypeError, KeyError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise PermanentFailure(f"damaged image header: {type(exc).__name__}: {exc}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise PermanentFailure(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise PermanentFailure(f"refused: {width}x{height} = {width * height} pixels is over the"
                               f" limit of {max_pixels} (max_pixels in [thumbnails])")
    if image.format in ("JPEG", "MPO", "PNG"):
        try:
            if image.format == "PNG":
                limits.check_png(image)
            else:
                limits.check_jpeg(image, max_scans)
        except BaseException:
            image.close()
            raise
    return image


DECODER_ORIENTED = ("HEIF", "AVIF")  # formats whose decoder applies the container's rotation


def pending_orientation(image: Any, file_orientation: int) -> int:
    """The orientation (1-8) left to apply to what the decoder gives: the file's EXIF
    orientation, except where the decoder oriented the pixels itself; there it is what
    the decoder's metadata still says (pillow-heif resets it to 1 once it has applied a
    HEIF's irot/imir)."""
    if image.format not in DECODER_ORIENTED:
        return file_orientation
    try:
        left = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - unreadable decoder metadata: nothing more to apply
        return 1
    return left if isinstance(left, int) and 1 <= left <= 8 else 1


def displayed_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Width and height as shown: orientations 5-8 swap them."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def upright(image: Any, orientation: int) -> Any:
    """Apply an EXIF orientation (1-8; anything else is 1) to the pixels."""
    from PIL import Image

    name = _TRANSPOSE.get(orientation)
    return image if name is None else image.transpose(getattr(Image.Transpose, name))


def _eighths(full: tuple[int, int], size: tuple[int, int]) -> int:
    """The smallest k in {1, 2, 3, 4, 8} with the image at k/8 still covering `size`."""
    for k in (1, 2, 3, 4):
        if -(-full[0] * k // 8) >= size[0] and -(-full[1] * k // 8) >= size[1]:
            return k
    return 8


def _libjpeg_turbo() -> bool:
    from PIL import features

    try:
        return bool(features.check_feature("libjpeg_turbo"))
    except JobControl:
        raise
    except Exception:
        return False


def _draft_jpeg(image: Any, size: tuple[int, int]) -> None:
    """`draft()`, plus libjpeg-turbo's 3/8 scale, which Pillow's draft does not offer.

    Pillow hands `decoderconfig[0]` to libjpeg as scale_denom (scale_num 1); libjpeg-turbo
    then decodes at ceil(8 / denom) eighths, so denom 3 gives 3/8.
    """
    full = image.size
    if _eighths(full, size) != 3 or len(image.tile) != 1 or image.decoderconfig or not _libjpeg_turbo():
        image.draft(image.mode, size)
        return
    tile = image.tile[0]
    if tuple(tile[1]) != (0, 0, *full):
        image.draft(image.mode, size)
        return
    scaled = (-(-full[0] * 3 // 8), -(-full[1] * 3 // 8))
    try:
        image.tile = [type(tile)(tile[0], (0, 0, *scaled), tile[2], tile[3])]
        image.decoderconfig = (3, 0)
        image._size = scaled
    except (AttributeError, TypeError):  # a Pillow whose internals moved: the plain draft
        image.tile, image.decoderconfig, image._size = [tile], (), full
        image.draft(image.mode, size)


def _decode(image: Any, size: tuple[int, int], max_decode_mb: int = limits.DEFAULT_MAX_DECODE_MB,
            colour: str = "keep") -> Any:
    """Load the pixels, letting a JPEG decode at the smallest DCT scale >= `size`; refuse
    first an image whose decoding would hold more than `max_decode_mb` MB."""
    full = image.size
    if image.format == "JPEG":
        _draft_jpeg(image, size)
    limits.check_memory(image, full, _working_copy_bytes(image, colour), max_decode_mb)
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        image.load()
    except JobControl:  # the job's timeout (SIGALRM) lands inside the decoder: it is a timeout
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise PermanentFailure(f"damaged or truncated image data: {exc}") from None
    except Exception as exc:  # decoders raise a zoo of errors on hostile input
        raise PermanentFailure(f"damaged image data: {type(exc).__name__}: {exc}") from None
    return image


# Bytes a pixel that `_to_working_mode`'s full-size conversions hold beside the decoded image.
_WORKING_COPY_BYTES = {"RGB": 0, "L": 0, "RGBA": 0, "CMYK": 4, "I": 5, "F": 1, "P": 4, "1": 1,
                       "I;16": 9, "I;16L": 9, "I;16B": 9, "I;16N": 9}
_GREY_MODES = ("L", "1", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _working_copy_bytes(image: Any, colour: str) -> float:
    """Bytes a pixel held beside the decoded image: the conversions to the working mode,
    then the first resize (its reduced copy, up to a quarter of the pixels, and its
    two-pass intermediate). Measured peaks above a worker's start: a 9400x9400 16-bit grey
    PNG 935 MB (estimated 970), a palette one 567 MB (estimated 548)."""
    extra = _WORKING_COPY_BYTES.get(image.mode, 4)
    if colour == "srgb" and image.info.get("icc_profile"):
        extra += 4
    return extra + (0.5 if image.mode in _GREY_MODES else 1.5)


def _to_working_mode(image: Any, colour: str) -> tuple[Any, bytes | None]:
    """RGB, RGBA or L pixels, and the ICC profile to keep (None once converted to sRGB)."""
    icc = image.info.get("icc_profile") or None
    mode = image.mode
    if mode == "CMYK":
        return _to_srgb(image, icc, "RGB") if icc else image.convert("RGB"), None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        deep = image if mode == "I" else image.convert("I")
        return deep.point(lambda v: v * (1 / 256)).convert("L"), icc
    if mode == "F":
        return image.convert("L"), icc
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB"), icc
    if mode in ("LA", "PA", "La", "RGBa", "RGBA"):
        image = image.convert("RGBA") if mode != "RGBA" else image
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if icc and colour == "srgb":
        return _to_srgb(image, icc, image.mode), None
    return image, icc


def _to_srgb(image: Any, icc: bytes, out_mode: str) -> Any:
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image.convert(out_mode)  # a broken profile: plain conversion beats a failure


# -- rendering --------------------------------------------------------------------------------

def render(image: Any, orientation: int, settings: ThumbnailSettings,
           only: set[str] | None = None) -> dict[str, Thumbnail]:
    """Make the conversions (all, or those named in `only`) from an opened image."""
    wanted = [c for c in settings.conversions if only is None or c.name in only]
    if not wanted:
        return {}
    shown = displayed_size(image.size, orientation)
    plans = sorted(((c, *c.target(shown)) for c in wanted), key=lambda p: -p[2])
    top_scale = plans[0][2]
    base_size = (max(1, round(shown[0] * top_scale)), max(1, round(shown[1] * top_scale)))
    _decode(image, displayed_size(base_size, orientation), settings.max_decode_mb, settings.colour)
    pixels, icc = _to_working_mode(image, settings.colour)
    stored_base = displayed_size(base_size, orientation)
    fast = settings.resample == "fast"
    if pixels.size != stored_base:
        pixels = _shrink(pixels, stored_base, fast, first=True)
    chain = upright(pixels, orientation)  # the whole picture, upright, at the current scale
    out: dict[str, Thumbnail] = {}
    for conversion, size, scale in plans:
        whole = (max(1, round(shown[0] * scale)), max(1, round(shown[1] * scale)))
        if chain.size != whole:
            chain = _shrink(chain, whole, fast)
        result = chain if conversion.fit == "contain" else _centre_crop(chain, size)
        out[conversion.name] = Thumbnail(conversion.name, *result.size, _encode(result, conversion, icc))
    return out


def _shrink(image: Any, size: tuple[int, int], fast: bool, first: bool = False) -> Any:
    """Resize down to `size`. "quality": LANCZOS. "fast": a whole-number factor by `reduce()`
    (box average) alone when it lands exactly on `size`; a small residual left after the
    decoder's DCT scaling (under 1.5x) by the triangle filter, whose error against a
    full-size LANCZOS is the same there; otherwise BICUBIC, reducing first
    (`reducing_gap` 2 for the first step, 1 for a chained one)."""
    from PIL import Image

    if not fast:
        return image.resize(size, Image.Resampling.LANCZOS)
    factor = image.width / size[0]
    whole = round(factor)
    if not first and whole >= 2 and all(-(-dim // whole) == want for dim, want in zip(image.size, size)):
        return image.reduce(whole)
    if first and factor < 1.5:
        return image.resize(size, Image.Resampling.BILINEAR)
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0 if first else 1.0)


def _centre_crop(image: Any, size: tuple[int, int]) -> Any:
    w, h = image.size
    cw, ch = min(size[0], w), min(size[1], h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def _encode(image: Any, conversion: Conversion, icc: bytes | None) -> bytes:
    from PIL import Image

    if conversion.format == "jpeg" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    options: dict[str, Any] = {"quality": conversion.quality}
    if icc:
        options["icc_profile"] = icc
    buffer = io.BytesIO()
    if conversion.format == "jpeg":
        image.save(buffer, "JPEG", subsampling=JPEG_SUBSAMPLING, **options)
    else:
        image.save(buffer, "WEBP", method=4, **options)
    return buffer.getvalue()


def make_thumbnails(source: bytes | str | Path, orientation: int, settings: ThumbnailSettings,
                    only: set[str] | None = None) -> dict[str, Thumbnail]:
    """Open `source` (bytes or a path), refuse a bomb, and render the conversions upright
    (`orientation`: the file's EXIF orientation)."""
    image = open_image(source, settings.max_pixels, settings.max_scans)
    with image:
        return render(image, pending_orientation(image, orientation), settings, only)
