"""Database URLs as they may be shown: never with their password."""

from __future__ import annotations

import re


def without_password(url: str) -> str:
    """`postgresql://user:secret@host/db?password=x` -> `postgresql://user:***@host/db?password=***`."""
    url = re.sub(r"(://[^/@:?#]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)((?:[?&]|\s|^)password=)[^&\s]*", r"\1***", url)


__all__ = ["without_password"]
