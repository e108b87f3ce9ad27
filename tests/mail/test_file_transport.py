"""The file transport (the default), the outbox and the send_email job through a worker."""

from __future__ import annotations

import stat

import pytest

from photojobs.mail import Mailable, queue_mail, send
from photojobs.mail.message import HeaderInjection, InvalidAddress, parse_eml
from photojobs.mail.outbox import deliver
from photojobs.mail.templates import TemplateNotFound
from photojobs.worker import WorkerOptions
from tests.api_views import outbox_row as outbox
from tests.api_views import outbox_rows, queued_jobs
from tests.conftest import storage_rows


def eml_files(app):
    folder = app.settings.storage_path / "mail"
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def test_queued_mail_is_written_as_eml_that_parses_back(workdir, connect, make_order):
    app = connect()
    ids = make_order(app, photos=2, download=True)
    first = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    second = send(app, Mailable("download-ready", download_id=ids["download"]), "ada@example.com")
    job = app.backend.get(outbox(app, first)["job_id"])
    assert (job["name"], job["queue"], job["status"]) == ("send_email", "emails", "pending")

    report = app.work(WorkerOptions(queues=["emails"], stop_when_empty=True, sleep=0.05))
    assert (report.done, report.failed) == (2, 0)
    files = eml_files(app)
    assert len(files) == 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert all(f.resolve().is_relative_to(app.settings.storage_path) for f in files)

    row = outbox(app, second)
    assert row["status"] == "sent" and row["sent_at"]
    msg = parse_eml(next(f for f in files if "download-ready" in f.name).read_bytes())
    assert msg["Message-ID"] == row["message_id"]
    assert msg["Subject"] == f"Your photos are ready to download (order #{ids['order']})"
    assert msg["To"].addresses[0].display_name == "Ada Lovelace"
    link = f"http://localhost:8000/downloads/tok{ids['order']}abcdef"
    assert link in msg.get_body(("plain",)).get_content()
    assert f'href="{link}"' in msg.get_body(("html",)).get_content()
    confirmation = parse_eml(next(f for f in files if "order-confirmation" in f.name).read_bytes())
    assert "IMG_100.jpg" in confirmation.get_body(("plain",)).get_content()


def test_a_retry_of_a_sent_row_does_nothing(workdir, connect, make_order):
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    assert deliver(app, outbox_id) == "sent"
    path = eml_files(app)[0]
    mtime = path.stat().st_mtime_ns
    assert deliver(app, outbox_id) == "already sent"
    assert eml_files(app) == [path] and path.stat().st_mtime_ns == mtime


def test_file_transport_resends_a_row_left_sending(workdir, connect, make_order):
    """Writing the same file again is harmless, so a row left 'sending' is simply rewritten."""
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    # a send cut off half-way leaves the row 'sending': made here in storage, on purpose
    storage_rows(workdir, "UPDATE outbox SET status = 'sending' WHERE id = ?", [outbox_id])
    assert deliver(app, outbox_id) == "sent"
    assert len(eml_files(app)) == 1


def test_thumbnails_are_embedded_when_ready(workdir, connect, make_order):
    app = connect()
    ids = make_order(app, photos=3, thumbnails=True)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"], now=True)
    assert outbox(app, outbox_id)["status"] == "sent"
    msg = parse_eml(eml_files(app)[0].read_bytes())
    html = msg.get_body(("html",)).get_content()
    images = [p for p in msg.walk() if p.get_content_type() == "image/jpeg"]
    assert len(images) == 3
    for image in images:
        assert f"cid:{image['Content-ID'][1:-1]}" in html
        assert image.get_content()[:2] == b"\xff\xd8"
    assert all(image.get_filename().endswith("-small.jpg") for image in images)


def test_bad_input_is_refused_before_anything_is_queued(workdir, connect, make_order):
    app = connect()
    ids = make_order(app, name="Ada\r\nBcc: eve@example.com")
    with pytest.raises(TemplateNotFound):
        queue_mail(app, "no-such", "ada@example.com", order_id=ids["order"])
    with pytest.raises(InvalidAddress):
        queue_mail(app, "order-confirmation", "not-an-address", order_id=ids["order"])
    with pytest.raises(HeaderInjection):
        queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    assert outbox_rows(app) == [] and queued_jobs(app) == 0


def test_a_row_made_invalid_later_fails_at_once(workdir, connect, make_order):
    """A bad address or a template removed after queueing: a permanent failure, no retry."""
    app = connect()
    ids = make_order(app)
    bad_to = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    gone = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    # rows changed in storage after they were queued (no command can make them so): on purpose
    storage_rows(workdir, "UPDATE outbox SET to_addr = 'ada@example.com\nBcc: eve@example.com' WHERE id = ?", [bad_to])
    storage_rows(workdir, "UPDATE outbox SET template = 'vanished' WHERE id = ?", [gone])
    report = app.work(WorkerOptions(queues=["emails"], stop_when_empty=True, sleep=0.05))
    assert (report.done, report.failed) == (0, 2)
    for outbox_id, words in ((bad_to, "line break"), (gone, "vanished")):
        row = outbox(app, outbox_id)
        assert row["status"] == "failed" and words in row["error"]
        assert app.backend.get(row["job_id"])["attempts"] == 1
    assert eml_files(app) == []


def test_rate_limit_spaces_out_the_jobs(workdir, connect, make_order):
    from tests.mail.conftest import write_mail_config

    write_mail_config(workdir, rate_per_minute=2)
    app = connect()
    ids = make_order(app)
    rows = [queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"]) for _ in range(5)]
    times = [app.backend.get(outbox(app, r)["job_id"])["available_at"] for r in rows]
    start = times[0]
    offsets = [round(t - start) for t in times]
    assert offsets == [0, 0, 60, 60, 120]



def test_rate_limit_at_send_time_waits_briefly_or_defers(workdir, connect, make_order):
    import time

    from photojobs.mail.transports import DeliveryDeferred
    from tests.mail.conftest import write_mail_config

    write_mail_config(workdir, rate_per_minute=1)
    app = connect()
    ids = make_order(app)
    sent, waits, defers = (queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
                           for _ in range(3))
    # one message went out 59.7 s ago (a sending time set in storage, on purpose): the next may go in 0.3 s
    storage_rows(workdir, "UPDATE outbox SET status = 'sent', sent_at = ? WHERE id = ?", [time.time() - 59.7, sent])
    started = time.monotonic()
    assert deliver(app, waits) == "sent"
    assert 0.2 < time.monotonic() - started < 5
    with pytest.raises(DeliveryDeferred, match="rate limit") as caught:  # the next slot is a minute away
        deliver(app, defers)
    assert 50 < caught.value.delay <= 60
    assert outbox(app, defers)["status"] == "pending"


def test_a_job_timeout_is_not_mistaken_for_a_refusal(workdir, connect, make_order, monkeypatch):
    from photojobs.errors import JobTimeout
    from photojobs.mail.transports import SmtpTransport
    from tests.mail.conftest import write_mail_config

    write_mail_config(workdir, transport="smtp", tls="none", port=2525)

    def too_slow(self):
        raise JobTimeout("the job ran past its timeout")

    monkeypatch.setattr(SmtpTransport, "_connect", too_slow)
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    with pytest.raises(JobTimeout):
        deliver(app, outbox_id)
    assert outbox(app, outbox_id)["status"] == "pending"
