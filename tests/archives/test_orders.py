"""Orders: photos kept in the order given, album orders, clear refusals; the CLI."""

import json

import pytest

from photojobs.orders import create_order, list_orders, show_order
from photojobs.errors import NotFound, UsageError
from tests.conftest import storage_rows


def _fail_photo(app, photo_id):
    """A photo that failed processing, set in storage on purpose: processing is not what these tests are about."""
    storage_rows(app.settings.db_path.parent, "UPDATE photos SET status = 'failed', error = 'truncated' WHERE id = ?",
                 [photo_id])


def test_an_order_keeps_its_photos_in_the_order_given(app, photos):
    ids, _ = photos(4)
    order = create_order(app, "ada@example.com", name="Ada", photo_ids=[ids[2], ids[0], ids[3], ids[0]])
    assert [p["photo_id"] for p in order["photos"]] == [ids[2], ids[0], ids[3]]  # a repeat is dropped
    assert [p["position"] for p in order["photos"]] == [1, 2, 3]
    assert order["email"] == "ada@example.com" and order["name"] == "Ada" and order["photo_count"] == 3


def test_an_album_order_takes_its_photos_but_not_failed_ones(app, photos):
    ids, _ = photos(3, album="wedding")
    photos(2, album="other")
    _fail_photo(app, ids[1])
    order = create_order(app, "ada@example.com", album="wedding")
    assert [p["photo_id"] for p in order["photos"]] == [ids[0], ids[2]]


@pytest.mark.parametrize("kwargs, error, text", [
    ({"email": "not-an-address", "photo_ids": [1]}, UsageError, "valid email"),
    ({"email": "a@b.example\r\nBcc: x@y.example", "photo_ids": [1]}, UsageError, "valid email"),
    ({"email": "a@b.example", "name": "Ada\nBcc: x", "photo_ids": [1]}, UsageError, "control characters"),
    ({"email": "a@b.example"}, UsageError, "either --photo"),
    ({"email": "a@b.example", "photo_ids": [1], "album": "shoot"}, UsageError, "either --photo"),
    ({"email": "a@b.example", "photo_ids": [999]}, NotFound, "no photo with id 999"),
    ({"email": "a@b.example", "album": "nope"}, NotFound, "album 'nope'"),
    ({"email": "a@b.example", "photo_ids": [2]}, UsageError, "failed processing"),
])
def test_bad_orders_are_refused_and_nothing_is_written(app, photos, kwargs, error, text):
    photos(2)
    _fail_photo(app, 2)
    with pytest.raises(error, match=text):
        create_order(app, **kwargs)
    assert list_orders(app) == []


def test_show_and_list(app, photos):
    ids, _ = photos(2)
    first = create_order(app, "ada@example.com", photo_ids=ids)
    second = create_order(app, "bob@example.com", photo_ids=ids[:1])
    assert [o["id"] for o in list_orders(app)] == [second["id"], first["id"]]
    assert show_order(app, first["id"])["photos"][1]["file"] == "IMG_0002.jpg"
    with pytest.raises(NotFound):
        show_order(app, 99)


def test_cli_orders(cli, photos):
    ids, _ = photos(3)
    out = cli("orders", "create", "--email", "ada@example.com", "--photo", str(ids[2]), "--photo", str(ids[0]), "--json")
    assert out.returncode == 0, out.stderr
    order = json.loads(out.stdout)
    assert [p["photo_id"] for p in order["photos"]] == [ids[2], ids[0]]
    listed = json.loads(cli("orders", "list", "--json").stdout)
    assert listed[0]["id"] == order["id"] and listed[0]["photo_count"] == 2
    shown = cli("orders", "show", str(order["id"]))
    assert shown.returncode == 0 and "ada@example.com" in shown.stdout
    bad = cli("orders", "create", "--email", "nope", "--album", "shoot")
    assert bad.returncode == 2 and bad.stderr.startswith("Error:") and len(bad.stderr.splitlines()) == 1
    missing = cli("orders", "show", "42")
    assert missing.returncode == 2 and "no order with id 42" in missing.stderr


def test_orders_create_notify_queues_the_confirmation_mail(cli, app, photos, workdir):
    ids, _ = photos(2)
    out = cli("orders", "create", "--email", "ada@example.com", "--photo", str(ids[0]), "--notify", "--json")
    assert out.returncode == 0, out.stderr
    order = json.loads(out.stdout)
    outbox = json.loads(cli("mail", "outbox", "--json").stdout)
    assert [(m["id"], m["template"], m["to_addr"], m["status"]) for m in outbox] == [
        (order["confirmation_mail"], "order-confirmation", "ada@example.com", "pending")]
    assert outbox[0]["context"] == {"order_id": order["id"]}
    plain = cli("orders", "create", "--email", "bob@example.com", "--photo", str(ids[1]))
    assert plain.returncode == 0 and "mail" not in plain.stdout
    assert len(json.loads(cli("mail", "outbox", "--json").stdout)) == 1
