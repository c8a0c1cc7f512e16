"""Retention: the document goes when the journal says its transaction is done, the rows later, and
the file gives the space back instead of growing by every transaction."""

from __future__ import annotations

import pytest

from drivers.fakes.payment_terminal import FakePaymentTerminal
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod
from offline.database import StateDatabase
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.retention import Retention

FEE = Money.of(150000, "SYP")
DOCUMENT = {"status": "issued", "document": {"fields": [{"value": "Khaled Al-Haddad"}] * 20}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    database = StateDatabase(tmp_path / "state" / "kiosk.sqlite3")
    outbox = Outbox(database, clock=clock)
    journal = SqliteJournal(database, clock=clock)
    retention = Retention(outbox, keep_answered_s=600, keep_unjournalled_s=600, keep_dead_s=3600,
                          keep_journal_s=86400, clock=clock)
    yield clock, outbox, journal, retention
    database.close()


def transaction(journal: SqliteJournal, n: int, state: TxnState) -> str:
    """A journalled transaction driven to `state`; its request id."""
    terminal = FakePaymentTerminal()
    txn, request_id = "t-%d" % n, "req-%d" % n
    journal.open(JournalEntry(txn_id=txn, sale_id="sale-%d" % n, request_id=request_id, service_code="birth",
                              amount=FEE, method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run"))
    journal.record_payment(txn, terminal.pay(FEE, sale_id="sale-%d" % n, reference=request_id, label="Birth"))
    journal.record_requested(txn)
    journal.record_issued(txn, "2026-SERIAL%02d" % n)
    if state is TxnState.PRINTED:
        journal.record_printed(txn)
    elif state in (TxnState.SETTLING, TxnState.SETTLED):
        journal.settle(txn, "print_failed")
        if state is TxnState.SETTLED:
            journal.record_voided(txn)
            journal.record_reversed(txn)
    return request_id


def delivered(outbox: Outbox, request_id: str) -> None:
    outbox.put(request_id, "certificate_request", {"request_id": request_id, "national_number": "01020345671"})
    outbox.mark_delivered(request_id, DOCUMENT)


def test_the_document_goes_as_soon_as_the_journal_says_it_is_no_longer_needed(world):
    clock, outbox, journal, retention = world
    printed = transaction(journal, 1, TxnState.PRINTED)
    issued = transaction(journal, 2, TxnState.ISSUED)          # at the printer now
    settling = transaction(journal, 3, TxnState.SETTLING)
    settled = transaction(journal, 4, TxnState.SETTLED)
    for request_id in (printed, issued, settling, settled):
        delivered(outbox, request_id)
    assert retention.run_once().documents_deleted == 3
    kept = {r: outbox.find(r).answer_kept for r in (printed, issued, settling, settled)}
    assert kept == {printed: False, issued: True, settling: False, settled: False}
    assert outbox.answer(printed) == {"status": "issued"}         # its outcome stays, not its contents
    journal.record_printed("t-2")
    assert retention.run_once().documents_deleted == 1 and not outbox.find(issued).answer_kept


def test_a_document_of_no_journalled_transaction_goes_after_a_while(world):
    clock, outbox, _journal, retention = world
    delivered(outbox, "req-alone")
    assert retention.run_once().documents_deleted == 0
    clock.now += 601
    assert retention.run_once().documents_deleted == 1


def test_delivered_rows_are_pruned_once_answered_a_while_ago_and_their_transaction_is_finished(world):
    clock, outbox, journal, retention = world
    finished = transaction(journal, 1, TxnState.PRINTED)
    unfinished = transaction(journal, 2, TxnState.SETTLING)
    for request_id in (finished, unfinished, "req-alone"):
        delivered(outbox, request_id)
    outbox.put("req-waiting", "certificate_request", {"request_id": "req-waiting"})
    outbox.put("void-x", "void_request", {"request_id": "x"})
    outbox.dead_letter("void-x", "refused")
    assert retention.run_once().messages_pruned == 0              # a technician may still look, for a while
    clock.now += 601
    assert retention.run_once().messages_pruned == 2
    assert [outbox.find(r) is not None for r in (finished, unfinished, "req-alone", "req-waiting", "void-x")] == \
        [False, True, False, True, True]
    clock.now += 3600
    retention.run_once()
    assert outbox.find("void-x") is None                            # a dead letter, after its own while


def test_a_claims_answer_stays_until_the_reconciler_has_read_it(world):
    clock, outbox, journal, retention = world
    terminal = FakePaymentTerminal()
    journal.open(JournalEntry(txn_id="t-9", sale_id="sale-9", request_id="req-9", service_code="birth", amount=FEE,
                              method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run"))
    journal.record_payment("t-9", terminal.pay(FEE, sale_id="sale-9", reference="req-9", label="Birth"))
    journal.record_claimed("t-9")                     # paid offline: central's answer is still to be heard
    delivered(outbox, "req-9")
    clock.now += 3600
    report = retention.run_once()
    assert (report.documents_deleted, report.messages_pruned) == (0, 0) and outbox.find("req-9").answer_kept
    journal.record_issued("t-9", "2026-SERIAL09")     # the reconciler read it: the citizen collects it later
    report = retention.run_once()
    assert (report.documents_deleted, report.messages_pruned) == (1, 1) and outbox.find("req-9") is None


def test_finished_journal_entries_go_after_their_while_and_unfinished_ones_never(world):
    clock, _outbox, journal, retention = world
    transaction(journal, 1, TxnState.PRINTED)
    transaction(journal, 2, TxnState.SETTLING)
    clock.now += 86401
    assert retention.run_once().journal_pruned == 1
    assert journal.get("t-1") is None and journal.get("t-2") is not None


def test_the_file_gives_the_space_back(world):
    clock, outbox, journal, retention = world
    for n in range(400):
        delivered(outbox, transaction(journal, n, TxnState.PRINTED))
    retention.run_once()                           # the documents go; the rows stay a while
    outbox.database.reclaim_space()
    grown = outbox.database.size_bytes()[0]
    clock.now += 86401
    report = retention.run_once()
    assert report.messages_pruned == 400 and report.journal_pruned == 400 and report.pages_freed > 0
    assert outbox.database.size_bytes() == (outbox.database.size_bytes()[0], 0)
    assert outbox.database.size_bytes()[0] < grown / 4
