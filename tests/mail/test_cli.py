"""The mail commands, as a user runs them."""

from __future__ import annotations

import json

from photojobs.mail.message import parse_eml
from tests.mail.conftest import write_mail_config


def test_templates_list(cli, workdir):
    (workdir / "mine").mkdir()
    (workdir / "mine" / "thanks.txt").write_text('{% set subject = "Thanks" %}Thanks!\n')
    write_mail_config(workdir, templates="mine")
    result = cli("mail", "templates", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["order-confirmation"] == {"name": "order-confirmation", "parts": ["text", "html"],
                                          "source": "built-in"}
    assert rows["thanks"]["parts"] == ["text"] and rows["thanks"]["source"].endswith("mine")
    table = cli("mail", "templates")
    assert "download-ready" in table.stdout and "thanks" in table.stdout


def test_preview_sample_order_and_files(cli, workdir, connect, make_order):
    sample = cli("mail", "preview", "order-confirmation")
    assert sample.returncode == 0, sample.stderr
    assert "Subject: Your order #1 is confirmed" in sample.stdout and "IMG_4811.jpg" in sample.stdout
    ids = make_order(connect(), name="Grace <Hopper>", download=True)
    shown = cli("mail", "preview", "download-ready", "--download", str(ids["download"]))
    assert f"/downloads/tok{ids['order']}abcdef" in shown.stdout
    assert cli("mail", "preview", "order-confirmation", "--order", str(ids["order"]),
               "--out", "preview.html").returncode == 0
    html = (workdir / "preview.html").read_text()
    assert "Grace &lt;Hopper&gt;" in html and "<Hopper>" not in html
    assert cli("mail", "preview", "download-ready", "--download", str(ids["download"]),
               "--out", "preview.eml").returncode == 0
    msg = parse_eml((workdir / "preview.eml").read_bytes())
    assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None
    assert list((workdir / "storage").rglob("*.eml")) == []  # a preview sends nothing


def test_queue_send_mail_and_outbox(cli, workdir, connect, make_order):
    ids = make_order(connect())
    queued = cli("mail", "queue", "--to", "ada@example.com", "--template", "order-confirmation",
                 "--order", str(ids["order"]), "--json")
    assert queued.returncode == 0, queued.stderr
    row = json.loads(queued.stdout)
    assert row["status"] == "pending" and row["job_id"] and row["message_id"].startswith("<")
    now = cli("mail", "queue", "--to", "bob@example.com", "--template", "order-confirmation",
              "--order", str(ids["order"]), "--now")
    assert now.returncode == 0 and "sent" in now.stdout
    drained = cli("send-mail")
    assert drained.returncode == 0, drained.stderr
    assert "1 done, 0 failed" in drained.stdout
    outbox = json.loads(cli("mail", "outbox", "--json").stdout)
    assert [r["status"] for r in outbox] == ["sent", "sent"]
    assert outbox[0]["sent_at"].endswith("+00:00") and outbox[0]["created_at"].endswith("+00:00")
    assert outbox[0]["context"]["order_id"] == ids["order"]  # an object, not a JSON string
    first = sorted((workdir / "storage" / "mail").glob("*.eml"))
    assert len(first) == 2

    assert cli("mail", "resend", str(row["id"])).returncode == 0  # a resend keeps the earlier .eml
    assert "1 done" in cli("send-mail").stdout
    again = sorted((workdir / "storage" / "mail").glob("*.eml"))
    assert len(again) == 3 and set(first) < set(again)
    assert all(path.read_bytes() for path in again)
    assert [p.name for p in again if p not in first] == [f"{row['id']:06d}-order-confirmation-resend1.eml"]


def test_bad_input_gives_one_line_and_exit_2(cli, workdir, connect, make_order):
    ids = make_order(connect())
    cases = [
        (["--to", "ada@example.com\r\nBcc: eve@example.com", "--template", "order-confirmation"], "line break"),
        (["--to", "nobody", "--template", "order-confirmation"], "not an email address"),
        (["--to", "ada@example.com", "--template", "nope"], "no mail template named 'nope'"),
        (["--to", "ada@example.com", "--template", "download-ready"], "--download"),
        (["--to", "ada@example.com", "--template", "order-confirmation", "--order", "999"], "no order 999"),
    ]
    for args, words in cases:
        if "--order" not in args and args[3] == "order-confirmation":
            args = [*args, "--order", str(ids["order"])]
        result = cli("mail", "queue", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert json.loads(cli("mail", "outbox", "--json").stdout) == []


def test_bad_mail_config_is_an_environment_error(cli, workdir):
    write_mail_config(workdir, transport="smtp", password="hunter2")
    result = cli("mail", "templates")
    assert result.returncode == 3
    assert "PHOTOJOBS_SMTP_PASSWORD" in result.stderr and "hunter2" not in result.stderr
