"""The outbox keeps every message until central has answered it, once."""

import logging
import threading

import pytest

from kiosk.errors import CentralError, QueueError
from offline.outbox import Outbox
from offline.sync import SyncWorker


def test_message_survives_a_power_cut(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.put("req-1", "certificate_request", {"service_code": "birth", "n": "ع"})
    outbox.close()                                  # the power goes; the file stays
    reopened = Outbox(tmp_path / "outbox.sqlite3")
    (message,) = reopened.pending()
    assert (message.message_id, message.kind, message.payload) == (
        "req-1", "certificate_request", {"service_code": "birth", "n": "ع"})


def test_storing_the_same_message_twice_keeps_one(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put("req-1", "certificate_request", {"a": 1})
    outbox.put("req-1", "certificate_request", {"a": 2})
    assert [m.payload for m in outbox.pending()] == [{"a": 1}]


def test_outbox_on_an_unwritable_path_is_a_queue_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QueueError):
        Outbox(blocker / "outbox.sqlite3")


def test_sync_delivers_in_order_and_stops_at_the_first_that_cannot_go(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    for i in range(3):
        outbox.put("m%d" % i, "certificate_request", {"i": i})
    delivered = []
    link_up = {"up": True}

    def deliver(kind, payload):
        if payload["i"] == 1 and not link_up["up"]:
            return None
        delivered.append(payload["i"])
        return {"status": "issued", "i": payload["i"]}

    link_up["up"] = False
    sync = SyncWorker(outbox, deliver)
    assert sync.drain_once() is False
    assert delivered == [0] and [m.message_id for m in outbox.pending()] == ["m1", "m2"]
    assert sync.online is False
    link_up["up"] = True
    assert sync.drain_once() is True
    assert delivered == [0, 1, 2] and outbox.pending() == []
    assert outbox.answer("m2") == {"status": "issued", "i": 2}


def test_message_central_refuses_for_good_is_answered_not_retried(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put("m", "void_request", {})

    def deliver(kind, payload):
        raise CentralError("answer can never succeed")

    assert SyncWorker(outbox, deliver).drain_once() is True
    assert outbox.answer("m") == {"status": "failed", "reason": "refused"}


def test_waiter_wakes_when_its_answer_arrives(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    release = threading.Event()

    def deliver(kind, payload):
        release.wait(timeout=10)
        return {"status": "issued"}

    sync = SyncWorker(outbox, deliver)
    sync.start()
    try:
        outbox.put("m", "certificate_request", {})
        sync.wake()
        assert outbox.answer("m") is None
        release.set()
        assert sync.wait_for_answer("m", timeout=10) == {"status": "issued"}
    finally:
        sync.stop()


def test_waiter_gives_up_after_its_timeout_and_the_message_stays(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    sync = SyncWorker(outbox, lambda kind, payload: None, retry_s=60)
    sync.start()
    try:
        outbox.put("m", "certificate_request", {})
        sync.wake()
        assert sync.wait_for_answer("m", timeout=0.2) is None
        assert [m.message_id for m in outbox.pending()] == ["m"]
    finally:
        sync.stop()


def test_messages_of_a_kind_are_found_delivered_or_not(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put("r1", "refund", {})
    outbox.put("q1", "certificate_request", {})
    outbox.put("r2", "refund", {})
    outbox.mark_delivered("r1", {"status": "refunded"})
    assert outbox.message_ids("refund") == ["r1", "r2"]


def test_a_broken_store_is_a_queue_error_and_the_worker_carries_on(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.close()                                  # as good as a full disk or a pulled card
    with pytest.raises(QueueError):
        outbox.put("m", "refund", {})
    with pytest.raises(QueueError):
        outbox.pending()
    sync = SyncWorker(outbox, lambda kind, payload: {"status": "refunded"}, retry_s=60)
    assert sync.deliver_now("m", "refund", {}) == {"status": "refunded"}

    failed = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("sync.outbox_unreadable"):
                failed.set()

    watch = Watch()
    logging.getLogger("offline.sync").addHandler(watch)
    try:
        sync.start()
        assert failed.wait(10)
        assert sync._thread.is_alive()              # it logged the failure and waits for the next round
    finally:
        sync.stop()
        logging.getLogger("offline.sync").removeHandler(watch)
