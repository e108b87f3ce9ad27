"""A server that echoes the password in another form (upper- or lower-cased, URL-encoded,
base64) gets it scrubbed from every stored error; a reply is kept to a safe length; a
customer name with a Unicode line break never reaches the To header."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from photojobs.orders import create_order
from photojobs.errors import UsageError
from photojobs.mail import queue_mail
from photojobs.mail.message import HeaderInjection
from tests.api_views import outbox_rows
from tests.mail.conftest import write_mail_config

SECRET = "p@ss w/rd+Zebra!"
FORMS = [SECRET, SECRET.upper(), SECRET.lower(), quote(SECRET, safe=""), quote_plus(SECRET),
         quote(SECRET, safe="").lower(), base64.b64encode(SECRET.encode()).decode(),
         base64.b64encode(SECRET.encode()).decode().rstrip("=")]


def test_a_server_echoing_the_password_in_other_forms_has_every_form_scrubbed(workdir, connect, make_order,
                                                                               smtp_server, monkeypatch):
    server = smtp_server()
    monkeypatch.setenv("PHOTOJOBS_SMTP_PASSWORD", SECRET)
    write_mail_config(workdir, transport="smtp", host="127.0.0.1", port=server.port, tls="none",
                      from_="studio@example.com")
    server.recorder.data_replies.append("554 5.7.1 refused " + " ".join(FORMS) + " " + "x" * 2000)
    app = connect()
    with pytest.raises(Exception) as caught:
        queue_mail(app, "order-confirmation", "ada@example.com", order_id=make_order(app)["order"], now=True)
    [stored] = [row["error"] for row in outbox_rows(app)]
    for text in (str(caught.value), stored):
        assert "554 5.7.1 refused [secret]" in text
        assert not any(form.lower() in text.lower() for form in FORMS), text
        assert len(text) < 600  # the server's reply is cut to a safe length


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029", "\x1c"])
def test_a_customer_name_with_a_unicode_line_break_is_refused(workdir, connect, make_order, separator):
    write_mail_config(workdir, from_="studio@example.com")
    app = connect()
    with pytest.raises(UsageError, match="control characters or line breaks"):
        create_order(app, "ada@example.com", name=f"Ada{separator}Bcc: eve@example.com")
    ids = make_order(app, name=f"Ada{separator}Bcc: eve@example.com")  # a row written before this check
    with pytest.raises(HeaderInjection, match="recipient name"):
        queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    assert outbox_rows(app) == []
