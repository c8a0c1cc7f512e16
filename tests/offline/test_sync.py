"""The sync worker: everything delivered, nothing blocked but what must wait.

Central is a function here (`FakeLink`): the tests say which request it cannot take now, which
it refuses for good, and whether the link is up; the probe asks the same link.
"""

from __future__ import annotations

import logging
import threading

import pytest

from kiosk.errors import CentralError, QueueError
from kiosk.messages import MessageKind
from kiosk.ports.outbox import LinkState
from offline.outbox import REFUSED, MessageState, Outbox
from offline.sealing import Sealer
from offline.sync import DEAD_LETTER_ALERT, SyncWorker

WAIT_S = 10.0


class FakeLink:
    """Central behind a link: `up`, the requests it cannot take now (`busy`: a 503), those it refuses
    for good (`refused`: a 409), and every delivery it saw, in order."""

    def __init__(self) -> None:
        self.up = True
        self.busy: set[str] = set()
        self.refused: set[str] = set()
        self.seen: list[str] = []             # "<kind> <request id>", every attempt that reached central
        self.calls = 0                        # every attempt, the link up or down
        self.probes = 0
        self._probed = threading.Condition()

    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        self.calls += 1
        if not self.up:
            return None
        request_id = payload["request_id"]
        self.seen.append("%s %s" % (MessageKind(kind).value, request_id))
        if kind == MessageKind.VOID_REQUEST:
            return {"status": "voided", "request_id": request_id}
        if request_id in self.refused:
            raise CentralError("central refused certificate_request %s: HTTP 409, request_id_reused" % request_id)
        if request_id in self.busy:
            return None
        return {"status": "issued", "document": {"request_id": request_id}}

    def probe(self) -> bool:
        with self._probed:
            self.probes += 1
            self._probed.notify_all()
        return self.up

    def wait_for_probes(self, count: int) -> bool:
        with self._probed:
            return self._probed.wait_for(lambda: self.probes >= count, timeout=WAIT_S)


def put_request(outbox: Outbox, request_id: str) -> None:
    outbox.put(request_id, "certificate_request", {"request_id": request_id, "national_number": "01020345671"})


def put_void(outbox: Outbox, request_id: str) -> None:
    outbox.put("void-" + request_id, "void_request", {"request_id": request_id})


@pytest.fixture
def outbox(tmp_path):
    outbox = Outbox(tmp_path / "state" / "o.sqlite3")
    yield outbox
    outbox.close()


@pytest.fixture
def link():
    return FakeLink()


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_message_that_cannot_go_holds_up_only_its_own_transaction(outbox, link):
    link.busy.add("req-1")                                 # central answers 503 for this one only
    put_request(outbox, "req-1")
    put_void(outbox, "req-1")
    put_request(outbox, "req-2")
    put_request(outbox, "req-3")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=60)
    report = worker.drain_once()
    assert (report.delivered, report.held_back, report.link_down) == (2, 1, False)
    assert link.seen == ["certificate_request req-1", "certificate_request req-2", "certificate_request req-3"]
    assert [m.message_id for m in outbox.pending()] == ["req-1", "void-req-1"]     # the void waits with it
    assert worker.link is LinkState.ONLINE


def test_a_void_never_overtakes_its_request(outbox, link):
    clock = Clock()
    link.busy.add("req-1")
    put_request(outbox, "req-1")
    put_void(outbox, "req-1")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=1, clock=clock, jitter=lambda c: c)
    for _ in range(3):
        worker.drain_once(now=clock.now)
        clock.now += 10
    assert "void_request req-1" not in link.seen
    link.busy.clear()
    worker.drain_once(now=clock.now)
    worker.drain_once(now=clock.now)
    assert link.seen[-2:] == ["certificate_request req-1", "void_request req-1"]


def test_backoff_is_exponential_with_full_jitter_and_capped_per_transaction(outbox, link):
    clock = Clock()
    ceilings: list[float] = []

    def jitter(ceiling: float) -> float:
        ceilings.append(ceiling)
        return ceiling / 2                                # drawn from [0, ceiling]: the middle, here
    link.busy.add("req-1")
    put_request(outbox, "req-1")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=1.0, max_backoff_s=5.0, clock=clock,
                        jitter=jitter)
    waits = []
    for _ in range(6):
        worker.drain_once(now=clock.now)
        due = outbox.next_due_at(after=clock.now)
        waits.append(due - clock.now)
        clock.now = due
    assert ceilings == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert waits == [0.5, 1.0, 2.0, 2.5, 2.5, 2.5]
    assert outbox.pending()[0].attempts == 6


def test_a_link_that_is_down_costs_one_try_and_holds_nothing_back(outbox, link):
    link.up = False
    for i in range(5):
        put_request(outbox, "req-%d" % i)
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=60)
    report = worker.drain_once()
    assert report.link_down and worker.link is LinkState.OFFLINE and link.probes == 1
    assert [m.attempts for m in outbox.pending()] == [1, 0, 0, 0, 0]
    assert len(outbox.due()) == 5                          # none waits out a backoff once the link is back


def test_the_probe_notices_the_link_coming_back_without_waiting_out_a_backoff(outbox, link):
    link.busy.add("req-1")
    put_request(outbox, "req-1")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=3600, max_backoff_s=3600, probe_s=0.05)
    worker.drain_once()                                    # held back for up to an hour (the link was up)
    link.up = False
    put_request(outbox, "req-2")
    worker.start()
    try:
        assert worker.wait_for_link(LinkState.OFFLINE, WAIT_S)
        tries = link.calls                                 # req-1's 503, and req-2 finding the link down
        assert link.wait_for_probes(link.probes + 5)       # a long outage: only probes go out
        assert link.calls == tries == 2
        link.busy.clear()
        link.up = True
        assert worker.wait_for_answer("req-2", WAIT_S)["status"] == "issued"
        assert worker.wait_for_answer("req-1", WAIT_S)["status"] == "issued"   # its hour forgotten
        assert worker.link is LinkState.ONLINE
        assert outbox.saved_link()[0] == "online"
    finally:
        worker.stop()


def test_without_a_probe_two_failures_in_a_row_mean_the_link_is_down(outbox, link):
    link.up = False
    for i in range(4):
        put_request(outbox, "req-%d" % i)
    worker = SyncWorker(outbox, link.deliver, retry_s=0.01)
    report = worker.drain_once()
    assert report.link_down and report.held_back == 2 and worker.link is LinkState.OFFLINE
    link.up = True
    worker.start()
    try:
        for i in range(4):
            assert worker.wait_for_answer("req-%d" % i, WAIT_S)["status"] == "issued"
    finally:
        worker.stop()


def test_a_final_refusal_is_a_dead_letter_and_its_waiter_hears_refused(outbox, link):
    alerts: list[str] = []
    link.refused.add("req-1")
    put_request(outbox, "req-1")
    put_request(outbox, "req-2")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, alert=alerts.append)
    worker.start()
    try:
        assert worker.wait_for_answer("req-1", WAIT_S) == REFUSED       # the runtime settles on it
        assert worker.wait_for_answer("req-2", WAIT_S)["status"] == "issued"
        put_void(outbox, "req-1")                                        # the settlement's void still goes
        worker.wake()
        assert worker.wait_for_answer("void-req-1", WAIT_S)["status"] == "voided"
    finally:
        worker.stop()
    (dead,) = outbox.listing(MessageState.DEAD)
    assert dead.message_id == "req-1" and "request_id_reused" in dead.reason and not dead.payload_kept
    assert alerts == [DEAD_LETTER_ALERT]
    assert link.seen.count("certificate_request req-1") == 1             # refused once, never retried


def test_an_unexpected_fault_holds_back_only_that_message(outbox, link, caplog):
    deliver = link.deliver

    def faulty(kind, payload):
        if payload["request_id"] == "req-1":
            raise RuntimeError("a bug in the client")
        return deliver(kind, payload)
    put_request(outbox, "req-1")
    put_request(outbox, "req-2")
    worker = SyncWorker(outbox, faulty, probe=link.probe, retry_s=60)
    with caplog.at_level(logging.ERROR, logger="offline.sync"):
        report = worker.drain_once()
    assert (report.delivered, report.held_back) == (1, 1) and link.probes == 0
    assert any(r.getMessage().startswith("sync.deliver_crashed id=req-1") for r in caplog.records)


def test_a_message_sealed_under_a_lost_key_is_a_dead_letter_not_a_crash(tmp_path, link):
    path = tmp_path / "o.sqlite3"
    Outbox(path, sealer=Sealer.ephemeral()).put("req-1", "certificate_request", {"request_id": "req-1"})
    outbox = Outbox(path, sealer=Sealer.ephemeral())       # the key file was lost and made again
    put_request(outbox, "req-2")
    alerts: list[str] = []
    report = SyncWorker(outbox, link.deliver, probe=link.probe, alert=alerts.append).drain_once()
    assert (report.delivered, report.refused) == (1, 1) and alerts == [DEAD_LETTER_ALERT]
    assert "unsealable" in outbox.find("req-1").reason
    outbox.close()


def test_an_answer_that_could_not_be_written_is_delivered_again_with_the_same_answer(outbox, link, monkeypatch):
    put_request(outbox, "req-1")
    worker = SyncWorker(outbox, link.deliver, probe=link.probe)

    def full_disk(_answers):
        raise QueueError("the state database cannot update: database or disk is full")
    monkeypatch.setattr(outbox, "record_answers", full_disk)
    assert worker.drain_once().delivered == 1
    assert [m.message_id for m in outbox.pending()] == ["req-1"]            # not written: still pending
    monkeypatch.undo()
    worker.drain_once()
    assert outbox.pending() == [] and link.seen == ["certificate_request req-1"] * 2
    assert outbox.answer("req-1") == {"status": "issued", "document": {"request_id": "req-1"}}


def test_waiter_wakes_when_its_answer_arrives(outbox, link):
    release = threading.Event()

    def slow(kind, payload):
        release.wait(timeout=WAIT_S)
        return link.deliver(kind, payload)

    worker = SyncWorker(outbox, slow, probe=link.probe)
    worker.start()
    try:
        put_request(outbox, "req-1")
        worker.wake()
        assert outbox.answer("req-1") is None
        release.set()
        assert worker.wait_for_answer("req-1", timeout=WAIT_S)["status"] == "issued"
    finally:
        worker.stop()


def test_waiter_gives_up_after_its_timeout_and_the_message_stays(outbox, link):
    link.up = False
    worker = SyncWorker(outbox, link.deliver, probe=link.probe)
    worker.start()
    try:
        put_request(outbox, "req-1")
        worker.wake()
        assert worker.wait_for_answer("req-1", timeout=0.2) is None
        assert [m.message_id for m in outbox.pending()] == ["req-1"]
    finally:
        worker.stop()


def test_deliver_now_classifies_as_the_worker_does(outbox, link):
    alerts: list[str] = []
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, alert=alerts.append)
    link.refused.add("req-1")
    assert worker.deliver_now("req-1", "certificate_request", {"request_id": "req-1"}) == REFUSED
    assert worker.deliver_now("req-2", "certificate_request", {"request_id": "req-2"})["status"] == "issued"
    link.up = False
    assert worker.deliver_now("req-3", "certificate_request", {"request_id": "req-3"}) is None
    assert alerts == [DEAD_LETTER_ALERT]


def test_a_broken_store_is_a_queue_error_and_the_worker_carries_on(tmp_path, link):
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.close()                                  # as good as a full disk or a pulled card
    worker = SyncWorker(outbox, link.deliver, probe=link.probe, retry_s=60)
    assert worker.deliver_now("m", "void_request", {"request_id": "r"})["status"] == "voided"
    failed = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("sync.outbox_unreadable"):
                failed.set()

    watch = Watch()
    logging.getLogger("offline.sync").addHandler(watch)
    try:
        worker.start()
        assert failed.wait(WAIT_S)
        assert worker.running              # it logged the failure and waits for the next round
    finally:
        worker.stop()
        logging.getLogger("offline.sync").removeHandler(watch)
