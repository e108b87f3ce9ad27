"""Member names for download archives: safe on every unzip tool, unique, organised by order.

A name read from the database or the disk can hold anything a file system allows:
`..`, a leading `/`, backslashes, CR/LF, NUL and other control characters, characters
Windows refuses. `safe_file_name` turns one into a single harmless path component;
`UniqueNames` then keeps names unique, ignoring case (Windows and macOS extract
`A.jpg` and `a.jpg` over each other).
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 180  # well under the 255 bytes most file systems allow a component
FALLBACK_NAME = "photo"

# C0 and C1 control characters, DEL, and the characters Windows forbids in a file name.
# Lone surrogates (undecodable bytes of a file name, as os.fsdecode escapes them) too:
# they cannot be written as UTF-8.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*\ud800-\udfff]')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                    *(f"LPT{i}" for i in range(1, 10))}


def safe_file_name(name: str, fallback: str = FALLBACK_NAME) -> str:
    """One safe path component from `name`: its last non-empty component, without control
    or Windows-reserved characters, leading dots or trailing dots and spaces."""
    text = unicodedata.normalize("NFC", str(name)).replace("\\", "/")
    parts = [p for p in text.split("/") if p.strip() not in ("", ".", "..")]
    text = parts[-1] if parts else ""
    text = _UNSAFE.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ")
    if not text or not text.strip("_"):
        text = fallback
    stem, dot, _ = text.rpartition(".")
    if not dot:
        stem = text
    if stem.upper() in _WINDOWS_DEVICES:
        text = f"_{text}"
    return _shorten(text)


def _shorten(name: str, limit: int = MAX_NAME_CHARS) -> str:
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= 10:
        return stem[: limit - len(ext) - 1].rstrip(". ") + "." + ext
    return name[:limit].rstrip(". ")


def split_extension(name: str) -> tuple[str, str]:
    """("IMG_1.final", ".jpg") for "IMG_1.final.jpg"; ("README", "") without a dot."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, "." + ext


class UniqueNames:
    """Hands out member names, adding " (2)", " (3)"... to a name already used in any case."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        folder, slash, base = name.rpartition("/")
        candidate, number = name, 1
        stem, ext = split_extension(base)
        while candidate.casefold() in self._taken:
            number += 1
            candidate = f"{folder}{slash}{stem} ({number}){ext}"
        self._taken.add(candidate.casefold())
        return candidate


def order_folder(order_id: int) -> str:
    return f"Order-{int(order_id)}"


def member_names(order_id: int, original_names: list[str]) -> list[str]:
    """`Order-<id>/<NNN>-<safe original name>` for each name, in order, unique in any case.

    NNN is the 1-based position, zero-padded to at least three digits so that the
    names sort in the order's order in every file manager.
    """
    width = max(3, len(str(len(original_names))))
    folder = order_folder(order_id)
    unique = UniqueNames()
    return [unique.claim(f"{folder}/{position:0{width}d}-{safe_file_name(name)}")
            for position, name in enumerate(original_names, start=1)]


__all__ = ["safe_file_name", "split_extension", "UniqueNames", "member_names", "order_folder"]
