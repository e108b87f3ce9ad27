"""The domain's tables through their repositories (photojobs.storage.photos, orders,
downloads, outbox, schedule_runs): what each write leaves and each read returns."""

from __future__ import annotations

import time

from photojobs.storage import Backend
from photojobs.storage import downloads, libraries, orders, outbox, photos, schedule_runs


def _photo(backend: Backend, path: str | bytes, album: str | None = "wedding", size: int = 100,
           library: str = "default") -> int:
    with backend.transaction() as tx:
        return photos.insert(tx, library, path, album, size, 1_700_000_000_000_000_000, time.time())


def test_photos_register_change_and_fail(backend: Backend) -> None:
    first = _photo(backend, "shoot/a.jpg")
    raw = _photo(backend, b"shoot/\xff.jpg", album=None)  # a name that is not UTF-8: its bytes
    other = _photo(backend, "shoot/a.jpg", library="studio")  # the same relative path in another library
    assert photos.find_by_path(backend, "default", b"shoot/\xff.jpg")["id"] == raw
    found = photos.find_by_path(backend, "default", "shoot/a.jpg")
    assert (found["id"], found["size_bytes"], found["album"]) == (first, 100, "wedding")
    assert photos.find_by_path(backend, "studio", "shoot/a.jpg")["id"] == other != first
    assert photos.find_by_path(backend, "default", "shoot/none.jpg") is None
    with backend.transaction() as tx:
        assert libraries.record(tx, "studio", "/mnt/studio", time.time())
        assert not libraries.record(tx, "studio", "/elsewhere", time.time())  # where it was first seen stays
        libraries.record(tx, "raw", b"/mnt/\xff", time.time())
    assert libraries.recorded(backend) == {"raw": b"/mnt/\xff", "studio": "/mnt/studio"}
    assert libraries.photo_counts(backend) == {"default": 2, "studio": 1}
    with backend.transaction() as tx:
        photos.mark_failed(tx, other, "gone", time.time())
    with backend.transaction() as tx:
        photos.set_album(tx, raw, "portraits")
        photos.mark_failed(tx, first, "not an image", time.time())
        photos.mark_changed(tx, first, 200, 5)
    row = photos.get(backend, first)
    assert (row["status"], row["size_bytes"], row["mtime_ns"], row["error"]) == ("pending", 200, 5, None)
    with backend.transaction() as tx:
        photos.mark_failed(tx, raw, "damaged", time.time())
    assert photos.get(backend, raw)["error"] == "damaged" and photos.get(backend, 999) is None
    assert photos.counts(backend) == {"pending": 1, "failed": 2}
    assert photos.counts(backend, [raw]) == {"failed": 1} and photos.counts(backend, []) == {}
    assert [r["id"] for r in photos.listed(backend, album="portraits")] == [raw]
    assert [r["id"] for r in photos.listed(backend, status="pending", limit=5)] == [first]
    assert photos.states(backend, [first, raw, 999]).keys() == {first, raw}


def test_processed_photos_are_sellable_and_swept(backend: Backend) -> None:
    ready, failed, pending = (_photo(backend, f"/p/{n}.jpg") for n in range(3))
    with backend.transaction() as tx:
        assert photos.save_processed(tx, ready, {"status": "ready", "width": 64, "height": 48, "thumbnails": "{}",
                                                 "fingerprint": '{"small": "x"}'})
        assert not photos.save_processed(tx, 999, {"status": "ready"})
        photos.mark_failed(tx, failed, "broken", time.time())
        batch = backend.enqueue([], batch="shoot").batch_id
        photos.set_batch(tx, batch, [ready, pending])
    assert (photos.get(backend, ready)["width"], photos.get(backend, pending)["batch_id"]) == (64, batch)
    assert photos.sellable_in_album(backend, "wedding") == [ready, pending]
    assert [r["id"] for r in photos.sweep_candidates(backend)] == [ready, pending]
    with backend.transaction() as tx:
        assert photos.ids_to_process(tx, regenerate=False) == [pending]
        assert photos.get(tx, ready)["fingerprint"] is not None
        assert photos.ids_to_process(tx, regenerate=True) == [ready, pending]
    assert photos.get(backend, ready)["fingerprint"] is None  # any job for it now rebuilds


def test_orders_keep_their_photos_in_the_order_chosen(backend: Backend) -> None:
    a, b, c = (_photo(backend, f"/p/{n}.jpg") for n in range(3))
    with backend.transaction() as tx:
        order = orders.insert(tx, "ada@example.com", "Ada", [c, a, b], time.time())
        empty = orders.insert(tx, "bob@example.com", None, [], time.time())
    assert [(r["position"], r["id"]) for r in orders.photos_of(backend, order)] == [(1, c), (2, a), (3, b)]
    assert orders.get(backend, order)["email"] == "ada@example.com" and orders.get(backend, 999) is None
    assert orders.has_photos(backend, order) and not orders.has_photos(backend, empty)
    with backend.transaction() as tx:
        downloads.insert(tx, order, "tok", None, time.time() + 60, time.time(), False)
    listed = orders.listed(backend)
    assert [(r["id"], r["photo_count"], r["download"]) for r in listed] == [(empty, 0, None), (order, 3, "pending")]
    assert len(orders.listed(backend, limit=1)) == 1


def test_downloads_move_through_their_states(backend: Backend) -> None:
    photo = _photo(backend, "/p/a.jpg")
    now = time.time()
    with backend.transaction() as tx:
        order = orders.insert(tx, "ada@example.com", None, [photo], now)
        ready = downloads.insert(tx, order, "t1", "small", now + 60, now, True)
        failing = downloads.insert(tx, order, "t2", None, now - 1, now, False)
        assert downloads.mark_ready(tx, ready, "/s/d.zip", 10, 1, "abc", now)
        assert not downloads.mark_ready(tx, ready, "/s/d.zip", 10, 1, "abc", now)  # only a pending one
        downloads.note_error(tx, failing, "attempt 1: disk full")
        downloads.note_error(tx, ready, "not pending: kept clean")
    row = downloads.get(backend, ready)
    assert (row["status"], row["path"], row["conversion"], row["notify"], row["error"]) == (
        "ready", "/s/d.zip", "small", 1, None)
    assert downloads.get(backend, failing)["error"] == "attempt 1: disk full"
    assert [r["id"] for r in downloads.expiring(backend, now)] == [failing]
    assert downloads.ready_paths(backend) == {"/s/d.zip"}
    assert downloads.pending_ids(backend) == [failing] and downloads.finished_among(backend, [ready, failing]) == {ready}
    with backend.transaction() as tx:
        assert downloads.fail_pending(tx, failing, "photo missing") == order
        assert downloads.fail_pending(tx, failing, "again") is None
        assert downloads.set_status(tx, failing, "pending", only_if=["ready"]) == 0
        assert downloads.set_status(tx, failing, "pending", only_if=["failed"]) == 1
        assert downloads.set_status(tx, ready, "expired") == 1
    assert downloads.get(backend, failing)["error"] == "photo missing"  # kept unless cleared
    with backend.transaction() as tx:
        downloads.set_status(tx, failing, "pending", clear_error=True)
    assert downloads.get(backend, failing)["error"] is None
    assert [r["status"] for r in downloads.listed(backend, order_id=order)] == ["pending", "expired"]
    assert [r["id"] for r in downloads.listed(backend, status="expired")] == [ready]


def test_outbox_rows_change_only_from_the_states_given(backend: Backend) -> None:
    now = time.time()
    with backend.transaction() as tx:
        first = outbox.insert(tx, "order-confirmation", "ada@example.com", "Your order", '{"order_id": 1}',
                              "<m1@example.com>", now)
        second = outbox.insert(tx, "download-ready", "bob@example.com", "Ready", "{}", "<m2@example.com>", now)
        outbox.update(tx, first, {"job_id": 7})
        assert outbox.update(tx, first, {"status": "sending", "sent_at": now}, only_if=["pending", "failed"]) == 1
        assert outbox.update(tx, first, {"status": "sending"}, only_if=["pending"]) == 0
        outbox.update(tx, first, {"status": "sent", "sent_at": now + 1, "error": None})
    row = outbox.get(backend, first)
    assert (row["status"], row["job_id"], row["message_id"], row["context"]) == (
        "sent", 7, "<m1@example.com>", '{"order_id": 1}')
    assert outbox.get(backend, 999) is None
    assert outbox.sent_times(backend, now - 60, 5) == [now + 1]
    assert [r["id"] for r in outbox.listed(backend)] == [second, first]
    assert [r["id"] for r in outbox.listed(backend, status="pending", limit=1)] == [second]


def test_a_schedule_run_is_recorded_once(backend: Backend, connect) -> None:
    with backend.transaction() as tx:
        assert schedule_runs.record(tx, "prune_failed", "2026-12-01T03:00:00Z", time.time())
        schedule_runs.set_job(tx, "prune_failed", "2026-12-01T03:00:00Z", 42)
    other = connect()  # a second scheduler
    with other.transaction() as tx:
        assert not schedule_runs.record(tx, "prune_failed", "2026-12-01T03:00:00Z", time.time())
        assert schedule_runs.record(tx, "prune_failed", "2026-12-02T03:00:00Z", time.time())
        assert schedule_runs.record(tx, "sweep", "2026-12-01T00:00:00Z", time.time())
    latest = schedule_runs.latest(backend)
    assert latest["prune_failed"]["run_at"] == "2026-12-02T03:00:00Z" and latest["prune_failed"]["job_id"] is None
    assert latest["sweep"]["run_at"] == "2026-12-01T00:00:00Z" and set(latest) == {"prune_failed", "sweep"}
