"""Templates (built-in, overridden, autoescaped) and message building (headers, parts)."""

from __future__ import annotations

import pytest

from photojobs.mail.message import (HeaderInjection, InvalidAddress, Rendered, build_message, check_address,
                                    parse_eml)
from photojobs.mail.templates import TemplateError, TemplateNotFound, Templates


def test_builtin_templates_are_listed_with_both_parts():
    names = {t.name: t for t in Templates().list()}
    assert {"order-confirmation", "download-ready"} <= set(names)
    assert names["download-ready"].parts == ["text", "html"]
    assert names["order-confirmation"].source == "built-in"


def test_override_folder_replaces_and_adds_templates(tmp_path):
    (tmp_path / "download-ready.txt").write_text('{% set subject = "Mine " ~ download.id %}Link: {{ download.url }}\n')
    (tmp_path / "thanks.txt").write_text('{% set subject = "Thanks" %}Thanks {{ order.name }}\n')
    templates = Templates(tmp_path)
    listed = {t.name: t for t in templates.list()}
    assert listed["download-ready"].source == str(tmp_path)
    assert listed["thanks"].parts == ["text"]
    download = {"id": 4, "order_id": 3, "url": "https://x/d/t", "file_count": 2, "size_bytes": 10, "expires_at": None}
    rendered = templates.render("download-ready", {"download": download, "order": None})
    assert rendered.subject == "Mine 4" and rendered.text.strip() == "Link: https://x/d/t"
    # Overriding is per file: the built-in HTML part is still used beside the new text part.
    assert "https://x/d/t" in rendered.html
    assert templates.render("thanks", {"order": {"name": "Ada"}}).html is None


def test_html_is_autoescaped_and_text_is_not():
    context = {"order": {"id": 7, "name": "<script>alert(1)</script>", "email": "a@b.co"},
               "photos": [{"filename": "a&b.jpg", "width": 10, "height": 20, "cid": None}], "download": None}
    rendered = Templates().render("order-confirmation", context)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "a&amp;b.jpg" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text
    assert rendered.subject == "Your order #7 is confirmed"


def test_missing_template_and_missing_data_are_refused(tmp_path):
    templates = Templates()
    with pytest.raises(TemplateNotFound):
        templates.render("no-such-template", {})
    with pytest.raises(TemplateNotFound):
        templates.render("../etc/passwd", {})
    with pytest.raises(TemplateError, match="download"):
        templates.render("download-ready", {"order": None, "download": None, "photos": []})
    (tmp_path / "nosubject.txt").write_text("hello\n")
    with pytest.raises(TemplateError, match="subject"):
        Templates(tmp_path).render("nosubject", {})


@pytest.mark.parametrize("address", ["ada@example.com", "a.b+tag@mail.example.co.uk", "root@localhost"])
def test_valid_addresses(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "ada", "ada@", "@example.com", "a b@example.com", "ada@example",
                                     "ada@exa_mple.com", "Ada <ada@example.com>", "a..b@example.com",
                                     "ada@example.com,eve@example.com"])
def test_invalid_addresses(address):
    with pytest.raises(InvalidAddress):
        check_address(address)


@pytest.mark.parametrize("field", ["to", "to_name", "subject", "sender"])
@pytest.mark.parametrize("evil", ["\r\nBcc: eve@example.com", "\nBcc: eve@example.com", "x\ry"])
def test_no_line_break_reaches_a_header(field, evil):
    values = {"to": "ada@example.com", "to_name": "Ada", "subject": "Hello", "sender": "Studio <s@example.com>"}
    values[field] = values[field] + evil if field != "to" else "ada@example.com" + evil
    rendered = Rendered(subject=values.pop("subject"), text="hi\n")
    with pytest.raises((HeaderInjection, InvalidAddress)):
        build_message(rendered, message_id="<1@example.com>", **values)


def test_message_has_both_parts_message_id_and_parses_back():
    rendered = Rendered(subject="Hé there", text="plain body\n", html="<p>html body</p>\n")
    msg = build_message(rendered, to="ada@example.com", to_name="Ada Lovelace", sender="Studio <s@example.com>",
                        message_id="<42.abc@example.com>")
    back = parse_eml(bytes(msg))
    assert back["Message-ID"] == "<42.abc@example.com>"
    assert back["Subject"] == "Hé there"
    assert back["To"].addresses[0].addr_spec == "ada@example.com"
    assert back["From"].addresses[0].display_name == "Studio"
    assert back.get_body(("plain",)).get_content() == "plain body\n"
    assert back.get_body(("html",)).get_content() == "<p>html body</p>\n"
