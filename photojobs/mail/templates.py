"""Mail templates: Jinja2, a plain-text part NAME.txt (required) and an HTML part NAME.html
(optional, autoescaped). The subject is set in either part: `{% set subject = "..." %}`.

Built-in templates live in photojobs/mail/templates/; a folder named in [mail] templates
is searched first, so a file there overrides a built-in one or adds a new template.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path
from typing import Any

import jinja2

from ..errors import NotFound, UsageError
from .message import InlineImage, Rendered

BUILTIN_DIR = Path(__file__).parent / "templates"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class TemplateNotFound(NotFound):
    """No such mail template."""


class TemplateError(UsageError):
    """A mail template cannot be rendered."""


@dataclasses.dataclass
class TemplateInfo:
    name: str
    parts: list[str]  # "text", "html"
    source: str  # "built-in" or the override folder

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def format_datetime(value: Any, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc).astimezone()
    return value.strftime(fmt).strip()


def format_size(value: Any) -> str:
    if value in (None, ""):
        return ""
    size = float(value)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class Templates:
    """The templates one installation sees: the override folder first, then the built-ins."""

    def __init__(self, override: Path | None = None):
        self.override = override
        folders = [str(override)] if override else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*folders, str(BUILTIN_DIR)]),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False,
                                                default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["datetime"] = format_datetime
        self.env.filters["filesize"] = format_size

    def _parts(self, folder: Path, name: str) -> list[str]:
        return [kind for kind, ext in (("text", "txt"), ("html", "html")) if (folder / f"{name}.{ext}").is_file()]

    def list(self) -> list[TemplateInfo]:
        """Every template, by name: which parts it has and where the text part comes from."""
        found: dict[str, TemplateInfo] = {}
        for folder, label in ((BUILTIN_DIR, "built-in"), (self.override, str(self.override))):
            if folder is None or not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.txt")):
                if _NAME.match(path.stem):
                    found[path.stem] = TemplateInfo(path.stem, self._parts(folder, path.stem), label)
        return [found[name] for name in sorted(found)]

    def check(self, name: str) -> None:
        """Refuse a name that is not a template (a permanent failure in a job)."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise TemplateNotFound(f"no mail template named {name!r}", hint="see `photojobs mail templates`")
        if not any(t.name == name for t in self.list()):
            known = ", ".join(t.name for t in self.list()) or "none"
            raise TemplateNotFound(f"no mail template named {name!r} (known: {known})")

    def _module(self, filename: str, context: dict) -> Any:
        try:
            return self.env.get_template(filename).make_module(context)
        except jinja2.TemplateNotFound:
            return None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"mail template {filename}: {exc}",
                                hint="does it need --order or --download?") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"mail template {filename}: {exc}") from None

    def render(self, name: str, context: dict, images: list[InlineImage] | None = None) -> Rendered:
        """Render both parts; the subject comes from `{% set subject = ... %}` in either."""
        self.check(name)
        text = self._module(f"{name}.txt", context)
        html = self._module(f"{name}.html", context)
        subject = getattr(text, "subject", None) or getattr(html, "subject", None)
        if not isinstance(subject, str) or not subject.strip():
            raise TemplateError(f"mail template {name} sets no subject",
                                hint='add {% set subject = "..." %} to its .txt part')
        html_text = str(html) if html is not None else None
        used = [i for i in images or [] if html_text and i.cid in html_text]
        return Rendered(subject=subject.strip(), text=str(text), html=html_text, images=used)
