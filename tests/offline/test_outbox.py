"""The outbox's store: every message kept until central has answered it, sealed on the disk,
read a page at a time, a transaction's messages in order and only those."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from kiosk.errors import QueueError
from offline.database import StateDatabase
from offline.outbox import REFUSED, MessageState, Outbox, RetryResult
from offline.sealing import Sealer

REQUEST = {"request_id": "req-1", "service_code": "birth-certificate", "national_number": "01020345671",
           "card_number": "SY1000000001", "language": "ar", "payment_id": "pay-1", "place": {"ar": "دمشق"}}


def request(request_id: str) -> dict:
    return dict(REQUEST, request_id=request_id)


def void(request_id: str) -> dict:
    return {"request_id": request_id}


@pytest.fixture
def outbox(tmp_path):
    outbox = Outbox(tmp_path / "state" / "o.sqlite3")
    yield outbox
    outbox.close()


def test_outbox_replays_after_power_cut(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.close()                                  # the power goes; the file and the key stay
    reopened = Outbox(tmp_path / "outbox.sqlite3")
    (message,) = reopened.pending()
    assert (message.message_id, message.kind, message.payload, message.txn) == (
        "req-1", "certificate_request", request("req-1"), "req-1")
    reopened.close()


def test_storing_the_same_message_twice_keeps_one(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("req-1", "certificate_request", dict(request("req-1"), language="en"))
    assert [m.payload["language"] for m in outbox.pending()] == ["ar"]


def test_outbox_on_an_unwritable_path_is_a_queue_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QueueError):
        Outbox(blocker / "outbox.sqlite3")


def test_a_void_waits_for_its_request_and_no_other(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("req-2", "certificate_request", request("req-2"))
    outbox.put("void-req-1", "void_request", void("req-1"))
    outbox.put("req-3", "certificate_request", request("req-3"))
    assert [m.message_id for m in outbox.due()] == ["req-1", "req-2", "req-3"]   # the void after its request
    outbox.defer("req-1", until=time.time() + 60)                          # central could not take it
    assert [m.message_id for m in outbox.due()] == ["req-2", "req-3"]            # its void waits with it
    outbox.mark_delivered("req-1", {"status": "issued"})
    assert [m.message_id for m in outbox.due()] == ["req-2", "void-req-1", "req-3"]


def test_a_dead_letter_no_longer_holds_its_transaction_back(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("void-req-1", "void_request", void("req-1"))
    outbox.dead_letter("req-1", "CentralError: HTTP 409, request_id_reused")
    assert [m.message_id for m in outbox.due()] == ["void-req-1"]
    assert outbox.answer("req-1") == REFUSED


def test_pending_messages_are_read_a_page_at_a_time(outbox):
    for i in range(250):
        outbox.put("req-%03d" % i, "certificate_request", request("req-%03d" % i))
    first = outbox.due(limit=100)
    second = outbox.due(after=first[-1].seq, limit=100)
    third = outbox.due(after=second[-1].seq, limit=100)
    assert [len(first), len(second), len(third)] == [100, 100, 50]
    assert [m.message_id for m in first + second + third] == ["req-%03d" % i for i in range(250)]
    assert outbox.due(after=third[-1].seq) == []


def test_the_pages_are_read_through_indexes_on_what_is_still_pending(outbox):
    from offline.outbox import _DUE
    plan = " | ".join(row[3] for row in outbox.database.run("EXPLAIN QUERY PLAN " + _DUE, (0, 0.0, 100)))
    assert "USING INDEX outbox_pending" in plan and "USING INDEX outbox_pending_txn" in plan
    assert "SCAN o " not in plan + " "


def test_payload_and_answer_are_sealed_on_the_disk(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    ((payload,),) = outbox.database.run("SELECT payload FROM outbox")
    assert isinstance(payload, bytes) and b"01020345671" not in payload and "دمشق".encode() not in payload
    outbox.mark_delivered("req-1", {"status": "issued", "document": {"fields": ["Khaled"]}})
    ((payload, answer),) = outbox.database.run("SELECT payload, answer FROM outbox")
    assert payload is None and b"Khaled" not in answer                    # the payload went with the answer
    assert outbox.answer("req-1") == {"status": "issued", "document": {"fields": ["Khaled"]}}


def test_a_sealed_value_copied_to_another_message_does_not_open(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("req-2", "certificate_request", request("req-2"))
    outbox.database.run("UPDATE outbox SET payload = (SELECT payload FROM outbox WHERE message_id = 'req-1') "
                        "WHERE message_id = 'req-2'")
    assert [m.payload is None for m in outbox.pending()] == [False, True]


def test_a_dead_letter_keeps_a_payload_without_personal_data_so_it_can_be_sent_again(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("void-req-1", "void_request", void("req-1"))
    outbox.dead_letter("req-1", "refused")
    outbox.dead_letter("void-req-1", "refused")
    assert outbox.retry("req-1") is RetryResult.PAYLOAD_GONE          # the citizen's numbers are gone
    assert outbox.retry("void-req-1") is RetryResult.RETRIED
    assert outbox.retry("void-req-1") is RetryResult.NOT_DEAD
    assert outbox.retry("nothing") is RetryResult.NOT_DEAD
    (again,) = outbox.pending()
    assert (again.message_id, again.payload, again.attempts) == ("void-req-1", void("req-1"), 0)


def test_counts_and_listing_carry_ids_and_states_never_contents(outbox):
    outbox.put("req-1", "certificate_request", request("req-1"))
    outbox.put("req-2", "certificate_request", request("req-2"))
    outbox.put("req-3", "certificate_request", request("req-3"))
    outbox.mark_delivered("req-1", {"status": "issued"})
    outbox.dead_letter("req-2", "CentralError: HTTP 409")
    counts = outbox.counts()
    assert (counts.pending, counts.dead, counts.delivered) == (1, 1, 1) and counts.oldest_pending_at > 0
    (dead,) = outbox.listing(MessageState.DEAD)
    assert (dead.message_id, dead.txn, dead.reason, dead.attempts) == ("req-2", "req-2", "CentralError: HTTP 409", 1)
    text = json.dumps([m.to_json() for state in MessageState for m in outbox.listing(state)], ensure_ascii=False)
    assert REQUEST["national_number"] not in text and REQUEST["card_number"] not in text


def test_the_link_the_worker_saw_is_kept_for_another_process(outbox):
    assert outbox.saved_link() is None
    outbox.save_link("offline", 1000.0)
    outbox.save_link("online", 1010.0)
    assert outbox.saved_link() == ("online", 1010.0)


def test_an_outbox_from_before_sealing_is_sealed_when_opened(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, "
                "kind TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, delivered_at REAL, answer TEXT)")
    old.execute("INSERT INTO outbox (message_id, kind, payload, created_at, attempts, delivered_at, answer) VALUES "
                "('req-1', 'certificate_request', ?, 1.0, 1, 2.0, ?)",
                (json.dumps(request("req-1")), json.dumps({"status": "issued", "document": {"name": "Khaled"}})))
    old.execute("INSERT INTO outbox (message_id, kind, payload, created_at) VALUES "
                "('req-2', 'certificate_request', ?, 3.0)", (json.dumps(request("req-2")),))
    old.commit()
    old.close()
    assert b"01020345671" in path.read_bytes()                      # the kiosk before: in clear
    outbox = Outbox(path)
    (pending,) = outbox.pending()
    assert (pending.message_id, pending.payload) == ("req-2", request("req-2"))
    assert outbox.answer("req-1") == {"status": "issued", "document": {"name": "Khaled"}}
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "device.key")
    assert b"01020345671" not in raw and b"Khaled" not in raw     # nothing left in clear, freed pages included
    outbox.put("req-3", "certificate_request", request("req-3"))
    assert [m.seq for m in outbox.pending()] == [2, 3]
    outbox.close()


def test_an_outbox_in_memory_seals_with_a_key_in_memory_that_its_next_store_shares():
    database = StateDatabase(":memory:")
    Outbox(database).put("req-1", "certificate_request", request("req-1"))
    (message,) = Outbox(database).pending()                         # the next run, on the same database
    assert message.payload == request("req-1")
    assert Outbox(database, sealer=Sealer.ephemeral()).pending()[0].payload is None


def test_a_broken_store_is_a_queue_error(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.close()                                  # as good as a full disk or a pulled card
    with pytest.raises(QueueError):
        outbox.put("m", "void_request", void("req-1"))
    with pytest.raises(QueueError):
        outbox.due()

