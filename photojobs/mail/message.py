"""Building one email: checked addresses, headers that no CR or LF reaches, a Message-ID,
a plain-text and an HTML part, thumbnails inline."""

from __future__ import annotations

import dataclasses
import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, localtime, make_msgid
from pathlib import Path
from typing import Iterable

from ..errors import UsageError

# Control characters (CR and LF above all) never belong in a header, nor the characters
# Python and some mail software also take for line breaks: NEL (U+0085, a C1 control),
# and the Unicode line and paragraph separators.
LINE_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class HeaderInjection(UsageError):
    """A header value carries a line break or a control character."""


class InvalidAddress(UsageError):
    """Not a valid email address."""


def check_header(name: str, value: str) -> str:
    """Return `value` if it is safe in a header; refuse CR, LF and other control characters."""
    if LINE_BREAKS_AND_CONTROLS.search(value):
        raise HeaderInjection(f"refusing {name} with a line break or control character: {value[:60]!r}")
    return value


def check_address(address: str) -> str:
    """A bare address local@domain.tld, refused unless plainly valid (no name, no comments)."""
    if not isinstance(address, str):
        raise InvalidAddress(f"not an email address: {address!r}")
    check_header("an address", address)
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or len(address) > 254 or len(local) > 64:
        raise InvalidAddress(f"not an email address: {address!r}")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAddress(f"not an email address: {address!r}")
    labels = domain.split(".")
    if domain != "localhost" and (len(labels) < 2 or not all(_LABEL.match(x) for x in labels)):
        raise InvalidAddress(f"not an email address (bad domain): {address!r}")
    return address


def parse_sender(value: str) -> tuple[str, str]:
    """Split a From setting ("Name <addr>" or "addr") into a checked (name, address)."""
    check_header("the From setting", value)
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise InvalidAddress(f"[mail] from is not one address: {value!r}")
    name, address = pairs[0]
    return name, check_address(address)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def new_message_id(sender_address: str) -> str:
    return make_msgid(domain=domain_of(sender_address))


@dataclasses.dataclass
class InlineImage:
    cid: str  # without angle brackets
    path: Path
    subtype: str = "jpeg"


@dataclasses.dataclass
class Rendered:
    """A template's output for one context."""

    subject: str
    text: str
    html: str | None = None
    images: list[InlineImage] = dataclasses.field(default_factory=list)


def build_message(rendered: Rendered, *, to: str, to_name: str | None, sender: str,
                  message_id: str, headers: Iterable[tuple[str, str]] = ()) -> EmailMessage:
    """The message to send. Every header value is checked before it is set."""
    from_name, from_address = parse_sender(sender)
    to = check_address(to)
    subject = check_header("a Subject", rendered.subject.strip())
    check_header("a Message-ID", message_id)
    if to_name:
        check_header("a recipient name", to_name)
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, from_address)) if from_name else from_address
    msg["To"] = formataddr((to_name, to)) if to_name else to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = message_id
    for name, value in headers:
        msg[check_header("a header name", name)] = check_header(f"a {name} header", value)
    msg.set_content(rendered.text)
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html")
        if rendered.images:
            html_part = msg.get_payload()[-1]
            for image in rendered.images:
                html_part.add_related(image.path.read_bytes(), maintype="image", subtype=image.subtype,
                                      cid=f"<{image.cid}>", filename=image.path.name, disposition="inline")
    return msg


def parse_eml(data: bytes) -> EmailMessage:
    """Read a message back (for tests and previews) with the stdlib parser."""
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(data)
