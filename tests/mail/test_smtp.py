"""The smtp transport against a real SMTP server (aiosmtpd on 127.0.0.1) started here."""

from __future__ import annotations

import socket
import time

import pytest

from photojobs.mail import queue_mail
from photojobs.mail.message import parse_eml
from photojobs.mail.outbox import deliver, list_outbox
from photojobs.mail.transports import DeliveryDeferred, DeliveryRefused
from photojobs.worker import WorkerOptions
from tests.mail.conftest import PASSWORD, free_port, write_mail_config


def smtp_config(workdir, port, **extra):
    values = dict(transport="smtp", host="127.0.0.1", port=port, tls="none", timeout=5, connect_timeout=2,
                  from_="Studio <studio@example.com>")
    values.update(extra)
    write_mail_config(workdir, **values)


def ca_file(workdir, ca):
    path = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return "ca.pem"


def outbox(app, outbox_id):
    return dict(app.backend.read("SELECT * FROM outbox WHERE id = ?", [outbox_id])[0])


def job_of(app, outbox_id):
    return dict(app.backend.get(outbox(app, outbox_id)["job_id"]))


def work(app):
    return app.work(WorkerOptions(queues=["emails"], stop_when_empty=True, sleep=0.05))


def test_delivered_with_headers_both_parts_and_the_link(workdir, connect, make_order, smtp_server):
    server = smtp_server()
    smtp_config(workdir, server.port)
    app = connect()
    ids = make_order(app, download=True)
    outbox_id = queue_mail(app, "download-ready", "ada@example.com", download_id=ids["download"])
    report = work(app)
    assert (report.done, report.failed) == (1, 0)
    assert len(server.messages) == 1
    got = server.messages[0]
    assert got.mail_from == "studio@example.com" and got.rcpt_tos == ["ada@example.com"]
    msg = parse_eml(got.data)
    row = outbox(app, outbox_id)
    assert row["status"] == "sent"
    assert msg["Message-ID"] == row["message_id"] and msg["Message-ID"].endswith("@example.com>")
    assert str(msg["From"]) == "Studio <studio@example.com>"
    assert str(msg["To"]) == "Ada Lovelace <ada@example.com>"
    assert msg["Subject"] == row["subject"] and msg["Date"]
    link = f"http://localhost:8000/downloads/tok{ids['order']}abcdef"
    assert link in msg.get_body(("plain",)).get_content()
    assert link in msg.get_body(("html",)).get_content()


def test_starttls_with_a_test_ca_and_a_login(workdir, connect, make_order, smtp_server, ca, monkeypatch):
    server = smtp_server(tls="starttls", auth=True)
    smtp_config(workdir, server.port, tls="starttls", cafile=ca_file(workdir, ca), username="studio")
    monkeypatch.setenv("PHOTOJOBS_SMTP_PASSWORD", PASSWORD)
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    assert deliver(app, outbox_id) == "sent"
    assert len(server.messages) == 1 and server.messages[0].tls


def test_implicit_tls(workdir, connect, make_order, smtp_server, ca):
    server = smtp_server(tls="ssl")
    smtp_config(workdir, server.port, tls="ssl", cafile=ca_file(workdir, ca))
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"], now=True)
    assert outbox(app, outbox_id)["status"] == "sent"
    assert len(server.messages) == 1  # the server speaks only TLS on this port


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(workdir, connect, make_order, smtp_server, ca, tls):
    import trustme

    server = smtp_server(tls=tls, cert_ca=trustme.CA())  # signed by a CA we do not trust
    smtp_config(workdir, server.port, tls=tls, cafile=ca_file(workdir, ca))
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    report = work(app)
    assert (report.done, report.failed) == (0, 1)
    row = outbox(app, outbox_id)
    assert row["status"] == "failed" and "not trusted" in row["error"]
    assert job_of(app, outbox_id)["attempts"] == 1
    assert server.messages == []


def test_a_certificate_for_another_host_is_refused(workdir, connect, make_order, smtp_server, ca):
    server = smtp_server(tls="starttls", cert_hosts=("mail.elsewhere.test",))  # trusted CA, wrong name
    smtp_config(workdir, server.port, tls="starttls", cafile=ca_file(workdir, ca))
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    with pytest.raises(DeliveryRefused, match="not trusted"):
        deliver(app, outbox_id)
    assert server.messages == [] and outbox(app, outbox_id)["status"] == "failed"


def test_no_starttls_offered_means_no_clear_text(workdir, connect, make_order, smtp_server):
    server = smtp_server()  # plain server, no STARTTLS
    smtp_config(workdir, server.port, tls="starttls")
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    with pytest.raises(DeliveryRefused, match="STARTTLS"):
        deliver(app, outbox_id)
    assert server.messages == []


def test_451_then_success_sends_once(workdir, connect, make_order, smtp_server):
    server = smtp_server()
    server.recorder.data_replies = ["451 4.3.0 Try again later"]
    smtp_config(workdir, server.port)
    app = connect(queue="sync")  # retries run at once, through the worker's code path
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    assert outbox(app, outbox_id)["status"] == "sent"
    assert len(server.messages) == 1
    job = job_of(app, outbox_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
    errors = app.backend.read("SELECT error_class, message FROM job_errors WHERE job_id = ?", [job["id"]])
    assert [(e["error_class"], "451" in e["message"]) for e in errors] == [("DeliveryDeferred", True)]


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_5xx_goes_straight_to_failed(workdir, connect, make_order, smtp_server, where):
    server = smtp_server()
    if where == "rcpt":
        server.recorder.rcpt_replies["ada@example.com"] = "550 5.1.1 No such user"
    else:
        server.recorder.data_replies = ["554 5.7.1 Message rejected"]
    smtp_config(workdir, server.port)
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    report = work(app)
    assert (report.done, report.failed, report.retried) == (0, 1, 0)
    job = job_of(app, outbox_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    row = outbox(app, outbox_id)
    assert row["status"] == "failed" and ("550" in row["error"] or "554" in row["error"])
    assert server.messages == []


def test_server_down_is_retried_later(workdir, connect, make_order):
    smtp_config(workdir, free_port())  # nothing listens there
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    report = work(app)
    assert (report.failed, report.retried) == (0, 1)
    job = job_of(app, outbox_id)
    assert (job["status"], job["attempts"]) == ("pending", 1)
    assert job["available_at"] > time.time() + 20  # the backoff
    row = outbox(app, outbox_id)
    assert row["status"] == "pending" and "cannot reach" in row["error"]


def test_a_silent_server_times_out_and_is_retried(workdir, connect, make_order):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts connections (the kernel does) but never says a word
    try:
        smtp_config(workdir, listener.getsockname()[1], timeout=1, connect_timeout=1)
        app = connect()
        ids = make_order(app)
        outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
        started = time.monotonic()
        report = work(app)
        assert time.monotonic() - started < 10
        assert report.retried == 1
        row = outbox(app, outbox_id)
        assert row["status"] == "pending" and "did not answer in time" in row["error"]
    finally:
        listener.close()



def test_after_its_tries_a_deferred_mail_is_failed(workdir, connect, make_order):
    smtp_config(workdir, free_port())  # down for good
    app = connect(queue="sync")  # the three tries run at once
    ids = make_order(app)
    with pytest.raises(DeliveryDeferred, match="cannot reach"):  # sync mode raises the failed job's error
        queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    (outbox_id,) = [row["id"] for row in list_outbox(app)]
    job = job_of(app, outbox_id)
    assert (job["status"], job["attempts"]) == ("failed", 3)
    row = outbox(app, outbox_id)
    assert row["status"] == "failed" and "cannot reach" in row["error"]
