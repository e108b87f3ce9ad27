"""A stale send_email attempt (its lease lost, the job now another worker's) hands nothing
over to the server and leaves the outbox row to the attempt that owns it."""

from __future__ import annotations

import logging

import pytest

from photojobs.mail import queue_mail
from photojobs.runner import LOST, execute
from tests.api_views import outbox_row
from tests.core.test_stale_attempts import claim_then_lose
from tests.mail.conftest import write_mail_config


@pytest.mark.parametrize("transport", ["file", "smtp"])
def test_a_stale_mail_attempt_hands_nothing_over_and_leaves_the_row(workdir, connect, make_order, smtp_server,
                                                                    transport, caplog):
    server = smtp_server()
    if transport == "smtp":
        write_mail_config(workdir, transport="smtp", host="127.0.0.1", port=server.port, tls="none",
                          from_="studio@example.com")
    else:
        write_mail_config(workdir, from_="studio@example.com")
    app = connect()
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=make_order(app)["order"])
    job = claim_then_lose(app, "emails")
    with caplog.at_level(logging.WARNING, logger="photojobs"):
        assert execute(app, job, "stale")[0] == LOST  # nothing recorded: the job is the new holder's
    row = outbox_row(app, outbox_id)
    assert (row["status"], row["sent_at"]) == ("pending", None)
    assert server.messages == [] and list((workdir / "storage").rglob("*.eml")) == []
    assert any("discarded" in getattr(r, "error", "") for r in caplog.records)
