"""A worker killed after the server accepted a message does not send it again; the SMTP
password never reaches output, logs, the outbox or the failed table."""

from __future__ import annotations

import base64
import os
import signal
import time

from photojobs.mail import queue_mail
from tests.api_views import outbox_row as _outbox
from tests.conftest import storage_rows, wait_for
from tests.mail.conftest import PASSWORD, write_mail_config


def test_worker_killed_after_the_server_accepted_does_not_resend(workdir, connect, make_order, smtp_server,
                                                                   spawn, cli):
    server = smtp_server()
    write_mail_config(workdir, top_lease=5, transport="smtp", host="127.0.0.1", port=server.port, tls="none",
                      from_="studio@example.com")
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    job_id = _outbox(app, outbox_id)["job_id"]

    workers = []
    # The server has the whole message; before it answers 250 the worker dies, whole.
    server.recorder.on_accept = lambda session: os.killpg(workers[0].pid, signal.SIGKILL)
    workers.append(spawn("work", "--queue", "emails", "--loop", "--sleep", "0.1"))
    wait_for(lambda: workers[0].poll() is not None, timeout=20, message="the worker to be killed")
    assert len(server.messages) == 1
    assert _outbox(app, outbox_id)["status"] == "sending"

    # The lease runs out; the next `send-mail` counts the lost attempt and runs the job again
    # (at once, or after its backoff, which this test skips).
    wait_for(lambda: app.backend.get(job_id)["lease_until"] < time.time(), timeout=20)
    retry = cli("send-mail")
    assert retry.returncode == 0, retry.stderr
    if app.backend.get(job_id)["status"] == "pending":
        storage_rows(workdir, "UPDATE jobs SET available_at = 0 WHERE id = ?", [job_id])  # skips the backoff's wait
        retry = cli("send-mail")
        assert retry.returncode == 0, retry.stderr
    assert "1 done" in retry.stdout
    assert app.backend.get(job_id)["status"] == "done"
    # the lost attempt is recorded, though no command lists the attempts of a job that ended done
    errors = storage_rows(workdir, "SELECT error_class FROM job_errors WHERE job_id = ?", [job_id])
    assert [e[0] for e in errors] == ["WorkerLost"]
    row = _outbox(app, outbox_id)
    assert row["status"] == "unconfirmed" and "not resent" in row["error"]
    assert len(server.messages) == 1  # not sent twice

    # Sending it again is an explicit decision.
    server.recorder.on_accept = None
    assert cli("mail", "resend", str(outbox_id)).returncode == 0
    assert cli("send-mail").returncode == 0
    assert len(server.messages) == 2
    assert _outbox(app, outbox_id)["status"] == "sent"


def test_the_password_never_leaks(workdir, connect, make_order, smtp_server, ca, cli):
    server = smtp_server(tls="starttls", auth=True)
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    write_mail_config(workdir, transport="smtp", host="127.0.0.1", port=server.port, tls="starttls",
                      cafile="ca.pem", username="studio", from_="studio@example.com")
    app = connect()
    ids = make_order(app)
    wrong = "Wr0ng-" + PASSWORD
    queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    result = cli("-vv", "send-mail", env={"PHOTOJOBS_SMTP_PASSWORD": wrong})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout

    secrets = [wrong, base64.b64encode(wrong.encode()).decode(),
               base64.b64encode(f"\0studio\0{wrong}".encode()).decode()]
    texts = [result.stdout, result.stderr]
    # every stored text, read from storage on purpose: the password must be in none of them
    for table, columns in (("outbox", "error"), ("jobs", "last_error"), ("job_errors", "message, traceback")):
        for row in storage_rows(workdir, f"SELECT {columns} FROM {table}"):
            texts.extend(str(v) for v in tuple(row))
    logs = app.settings.storage_path / "logs"
    if logs.is_dir():
        texts.extend(p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file())
    assert any("535" in t for t in texts)  # the refusal itself is recorded
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert server.messages == []


def test_a_missing_password_is_a_clear_permanent_failure(workdir, connect, make_order, smtp_server, ca):
    from photojobs.worker import WorkerOptions

    server = smtp_server(tls="starttls", auth=True)
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    write_mail_config(workdir, transport="smtp", host="127.0.0.1", port=server.port, tls="starttls",
                      cafile="ca.pem", username="studio")
    app = connect()
    ids = make_order(app)
    outbox_id = queue_mail(app, "order-confirmation", "ada@example.com", order_id=ids["order"])
    report = app.work(WorkerOptions(queues=["emails"], stop_when_empty=True))
    assert report.failed == 1
    assert "PHOTOJOBS_SMTP_PASSWORD is not set" in _outbox(app, outbox_id)["error"]
