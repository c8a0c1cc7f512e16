"""The journal keeps every paid transaction moving forward only, through any crash."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kiosk.errors import JournalError, QueueError
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome, PaymentReason, PaymentStatus
from offline.database import StateDatabase
from offline.journal import UNFINISHED_QUERY, SqliteJournal
from offline.outbox import Outbox

FEE = Money.of(150000, "SYP")


def entry(txn_id: str = "t-1", **changes) -> JournalEntry:
    values = dict(txn_id=txn_id, sale_id="sale-" + txn_id, request_id="req-" + txn_id, service_code="birth",
                  amount=FEE, method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run-1")
    values.update(changes)
    return JournalEntry(**values)


def approved(txn_id: str = "t-1") -> PaymentOutcome:
    return PaymentOutcome(PaymentStatus.APPROVED, FEE, "sale-" + txn_id, payment_id="poi-" + txn_id)


def not_charged(status: PaymentStatus, txn_id: str = "t-1") -> PaymentOutcome:
    return PaymentOutcome(status, FEE, "sale-" + txn_id, reason=PaymentReason.INSUFFICIENT_FUNDS)


@pytest.fixture
def database(tmp_path: Path):
    database = StateDatabase(tmp_path / "state" / "kiosk.sqlite3")
    yield database
    database.close()


@pytest.fixture
def journal(database: StateDatabase) -> SqliteJournal:
    ticks = itertools.count(1000)
    return SqliteJournal(database, clock=lambda: float(next(ticks)))


def state(journal: SqliteJournal, txn_id: str = "t-1") -> TxnState:
    found = journal.get(txn_id)
    assert found is not None
    return found.state


def test_a_paid_certificate_goes_from_opened_to_printed(journal: SqliteJournal) -> None:
    journal.open(entry())
    assert [e.txn_id for e in journal.unfinished()] == ["t-1"]
    journal.record_payment("t-1", approved())
    journal.record_requested("t-1")
    journal.record_issued("t-1", "SER-1")
    assert state(journal) is TxnState.ISSUED
    journal.record_printed("t-1")
    found = journal.get("t-1")
    assert found is not None
    assert (found.state, found.payment_id, found.serial, found.requested) == \
        (TxnState.PRINTED, "poi-t-1", "SER-1", True)
    assert journal.unfinished() == []


@pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.FAILED])
def test_a_sale_not_charged_is_finished(journal: SqliteJournal, status: PaymentStatus) -> None:
    journal.open(entry())
    journal.record_payment("t-1", not_charged(status))
    assert state(journal) is TxnState.NOT_CHARGED
    assert journal.unfinished() == []


def test_an_answer_lost_leaves_the_sale_opened_for_the_reconciler(journal: SqliteJournal) -> None:
    journal.open(entry())
    journal.record_payment("t-1", PaymentOutcome(PaymentStatus.UNKNOWN, FEE, "sale-t-1"))
    assert state(journal) is TxnState.OPENED
    assert [e.txn_id for e in journal.unfinished()] == ["t-1"]


def test_a_fact_never_moves_a_transaction_backwards(journal: SqliteJournal) -> None:
    journal.open(entry())
    journal.record_payment("t-1", approved())
    journal.record_issued("t-1", "SER-1")
    journal.record_payment("t-1", approved())               # late and repeated
    journal.record_requested("t-1")                         # late
    assert state(journal) is TxnState.ISSUED
    journal.record_printed("t-1")
    journal.record_payment("t-1", not_charged(PaymentStatus.DECLINED))
    journal.settle("t-1", "printer_failed")
    journal.record_issued("t-1", "SER-2")
    found = journal.get("t-1")
    assert found is not None and (found.state, found.serial, found.settle_reason) == (TxnState.PRINTED, "SER-1", "")


def test_the_same_fact_twice_changes_nothing(journal: SqliteJournal) -> None:
    journal.open(entry())
    journal.open(entry())
    journal.record_payment("t-1", approved())
    first = journal.get("t-1")
    journal.record_payment("t-1", approved())
    journal.open(entry())
    assert journal.get("t-1") == first                      # not even its time of update


def test_a_txn_id_opened_again_for_another_sale_is_a_journal_error(journal: SqliteJournal) -> None:
    journal.open(entry())
    with pytest.raises(JournalError):
        journal.open(entry(sale_id="sale-other"))
    with pytest.raises(JournalError):
        journal.record_payment("t-1", approved("other"))    # another sale's outcome
    assert state(journal) is TxnState.OPENED


def test_a_fact_about_no_known_transaction_is_a_journal_error(journal: SqliteJournal) -> None:
    with pytest.raises(JournalError):
        journal.record_printed("t-404")
    with pytest.raises(JournalError):
        journal.open(entry(state=TxnState.APPROVED))        # a transaction begins before any charge


@pytest.mark.parametrize("outcome", [approved(), not_charged(PaymentStatus.DECLINED)])
def test_settle_on_a_finished_transaction_does_nothing(journal: SqliteJournal, outcome: PaymentOutcome) -> None:
    journal.open(entry())
    journal.record_payment("t-1", outcome)
    if outcome.status is PaymentStatus.APPROVED:
        journal.record_printed("t-1")
    before = journal.get("t-1")
    journal.settle("t-1", "citizen_left")
    assert journal.get("t-1") == before


def test_settling_ends_once_given_back_and_voided_in_either_order(journal: SqliteJournal) -> None:
    for txn_id, order in (("t-1", ("reversed", "voided")), ("t-2", ("voided", "reversed"))):
        journal.open(entry(txn_id))
        journal.record_payment(txn_id, approved(txn_id))
        journal.record_requested(txn_id)
        journal.settle(txn_id, "printer_failed")
        journal.settle(txn_id, "a_second_reason")
        getattr(journal, "record_" + order[0])(txn_id)
        assert state(journal, txn_id) is TxnState.SETTLING
        getattr(journal, "record_" + order[1])(txn_id)
        found = journal.get(txn_id)
        assert found is not None
        assert (found.state, found.reversed, found.voided, found.settle_reason) == \
            (TxnState.SETTLED, True, True, "printer_failed")
    assert journal.unfinished() == []


def test_a_settlement_begun_before_the_outcome_was_known(journal: SqliteJournal) -> None:
    journal.open(entry("t-1"))
    journal.open(entry("t-2"))
    for txn_id in ("t-1", "t-2"):
        journal.settle(txn_id, "answer_lost")
        journal.record_voided(txn_id)                       # nothing was requested: nothing to void
    journal.record_payment("t-1", approved("t-1"))          # the terminal took it: to be given back
    found = journal.get("t-1")
    assert found is not None and (found.state, found.payment_id) == (TxnState.SETTLING, "poi-t-1")
    journal.record_payment("t-2", not_charged(PaymentStatus.FAILED, "t-2"))   # never taken: nothing to give
    assert state(journal, "t-2") is TxnState.SETTLED
    assert [e.txn_id for e in journal.unfinished()] == ["t-1"]


def test_a_request_journalled_after_the_settlement_is_voided_too(journal: SqliteJournal) -> None:
    journal.open(entry())
    journal.record_payment("t-1", approved())
    journal.settle("t-1", "cancelled")
    journal.record_voided("t-1")                            # nothing requested yet
    journal.record_requested("t-1")                         # ... but it was on its way
    found = journal.get("t-1")
    assert found is not None and (found.state, found.requested, found.voided) == (TxnState.SETTLING, True, False)


def test_a_dead_settlement_is_kept_apart_and_never_unfinished(journal: SqliteJournal) -> None:
    journal.open(entry())
    journal.record_payment("t-1", approved())
    journal.record_requested("t-1")
    journal.settle("t-1", "printer_failed")
    journal.record_attempt("t-1")
    journal.record_dead("t-1", "payment refused reversal: unknown_sale")
    journal.record_reversed("t-1")                          # nothing moves a dead entry on
    journal.settle("t-1", "again")
    assert journal.unfinished() == []
    (dead,) = journal.dead()
    assert (dead.txn_id, dead.state, dead.attempts, dead.reversed, dead.dead_reason) == \
        ("t-1", TxnState.DEAD, 1, False, "payment refused reversal: unknown_sale")
    journal.record_voided("t-1")                            # its document is still voided
    assert journal.dead()[0].voided


def test_entries_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.sqlite3"
    database = StateDatabase(path)
    journal = SqliteJournal(database)
    journal.open(entry("t-1"))
    journal.open(entry("t-2", method=PaymentMethod.WALLET, amount=Money.of(250, "USD")))
    journal.record_payment("t-1", approved("t-1"))
    journal.settle("t-1", "power_cut")
    written = journal.unfinished()
    database.close()                                        # the power goes; the file stays
    reopened = SqliteJournal(StateDatabase(path))
    assert reopened.unfinished() == written
    assert [(e.txn_id, e.state, e.method, e.amount) for e in written] == [
        ("t-1", TxnState.SETTLING, PaymentMethod.CARD, FEE),
        ("t-2", TxnState.OPENED, PaymentMethod.WALLET, Money.of(250, "USD"))]
    reopened.database.close()


def test_a_broken_store_is_a_journal_error(database: StateDatabase, journal: SqliteJournal) -> None:
    database.close()                                        # as good as a full disk or a pulled card
    with pytest.raises(JournalError) as raised:
        journal.open(entry())
    assert isinstance(raised.value, QueueError)


def test_the_reconciler_reads_unfinished_entries_through_their_index(journal: SqliteJournal) -> None:
    plan = journal.database.run("EXPLAIN QUERY PLAN " + UNFINISHED_QUERY)
    assert "journal_unfinished" in " ".join(str(step) for step in plan)


def test_outbox_and_journal_share_one_file_and_one_transaction(database: StateDatabase,
                                                              journal: SqliteJournal) -> None:
    outbox = Outbox(database)
    with pytest.raises(RuntimeError):
        with database.transaction():
            journal.open(entry())
            outbox.put("req-t-1", "certificate_request", {"service_code": "birth"})
            raise RuntimeError("the power goes between the two writes")
    assert (journal.get("t-1"), outbox.pending()) == (None, [])
    with database.transaction():
        journal.open(entry())
        outbox.put("req-t-1", "certificate_request", {"service_code": "birth"})
    assert state(journal) is TxnState.OPENED and [m.message_id for m in outbox.pending()] == ["req-t-1"]
    outbox.close()                                          # a shared database stays open for the journal
    assert journal.get("t-1") is not None
