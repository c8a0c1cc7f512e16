"""The reconciler settles every transaction a crash or the session left owed, once, whatever happens."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.fakes.payment_terminal import FakePaymentTerminal, ReversalKind
from kiosk.money import Money
from kiosk.ports.journal import JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome
from offline.database import StateDatabase
from offline.delivery import DurableOutbox, void_sender
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.reconciler import INTERRUPTED, REFUSED_ALERT, ReconcileReport, Reconciler

FEE = Money.of(150000, "SYP")
EARLIER = "run-before-the-crash"
NOW = "run-now"
RETRY_S = 30.0
WAIT_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WatchedJournal(SqliteJournal):
    """The journal, telling a waiting test each time something was written; a fact can be made to fail."""

    def __init__(self, database: StateDatabase) -> None:
        super().__init__(database)
        self.written = threading.Condition()
        self.fail_next: set[str] = set()          # names of facts whose next write crashes first

    def _apply(self, txn_id: str, fact: str, rule) -> None:
        if fact in self.fail_next:
            self.fail_next.discard(fact)
            raise RuntimeError("the power goes before %s is written" % fact)
        super()._apply(txn_id, fact, rule)
        with self.written:
            self.written.notify_all()

    def wait_for(self, predicate: Callable[[], bool]) -> bool:
        with self.written:
            return self.written.wait_for(predicate, timeout=WAIT_S)


class World:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.database = StateDatabase(path)
        self.journal = WatchedJournal(self.database)
        self.terminal = FakePaymentTerminal()
        self.store = Outbox(self.database)
        self.outbox = DurableOutbox(self.store, lambda kind, payload: None)     # never started: kept only
        self.keep_voids = True
        self.alerts: list[str] = []
        self.clock = Clock()

    def send_void(self, request_id: str) -> bool:
        return self.keep_voids and void_sender(self.outbox)(request_id)

    def reconciler(self, run_id: str = NOW) -> Reconciler:
        return Reconciler(self.journal, self.terminal, self.send_void, run_id=run_id, alert=self.alerts.append,
                          retry_s=RETRY_S, clock=self.clock, jitter=lambda ceiling: ceiling)

    def open(self, txn_id: str, *, run_id: str = EARLIER) -> None:
        self.journal.open(JournalEntry(txn_id=txn_id, sale_id="sale-" + txn_id, request_id="req-" + txn_id,
                                       service_code="birth", amount=FEE, method=PaymentMethod.CARD,
                                       state=TxnState.OPENED, run_id=run_id))

    def pay(self, txn_id: str) -> PaymentOutcome:
        return self.terminal.pay(FEE, sale_id="sale-" + txn_id, reference="req-" + txn_id, label="Birth")

    def paid(self, txn_id: str, state: TxnState = TxnState.APPROVED, *, run_id: str = EARLIER) -> None:
        """A transaction journalled up to `state` (APPROVED, REQUESTED or ISSUED) before the crash."""
        self.open(txn_id, run_id=run_id)
        self.journal.record_payment(txn_id, self.pay(txn_id))
        if state in (TxnState.REQUESTED, TxnState.ISSUED):
            self.journal.record_requested(txn_id)
        if state is TxnState.ISSUED:
            self.journal.record_issued(txn_id, "SER-" + txn_id)

    def entry(self, txn_id: str) -> JournalEntry:
        found = self.journal.get(txn_id)
        assert found is not None
        return found

    def given_back(self) -> list[tuple[str, ReversalKind]]:
        return [(sale.sale_id, reversal.kind) for sale in self.terminal.statement for reversal in sale.reversals]

    def voids(self) -> list[str]:
        return self.store.message_ids("void_request")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path / "state" / "kiosk.sqlite3")
    yield world
    world.terminal.abort()
    world.database.close()


# --- an earlier run's unfinished transactions ----------------------------------------------------------

def test_a_sale_whose_outcome_was_never_written_is_asked_for_and_given_back(world: World) -> None:
    world.open("t-1")
    world.pay("t-1")                                        # charged; the power went before it was written
    assert world.reconciler().reconcile_once() == ReconcileReport(settled=1)
    entry = world.entry("t-1")
    assert (entry.state, entry.reversed, entry.voided, entry.settle_reason) == \
        (TxnState.SETTLED, True, True, INTERRUPTED)
    assert entry.payment_id == world.terminal.statement[0].payment_id
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]
    assert world.voids() == []                              # no request was made: nothing to void


def test_a_sale_the_terminal_never_took_is_finished_as_not_charged(world: World) -> None:
    world.open("t-1")                                       # the power went before the terminal was asked
    assert world.reconciler().reconcile_once() == ReconcileReport(settled=1)
    assert world.entry("t-1").state is TxnState.NOT_CHARGED
    assert world.given_back() == [] and world.voids() == []


def test_an_outcome_the_terminal_cannot_tell_waits_for_a_later_pass(world: World) -> None:
    world.open("t-1")
    world.pay("t-1")
    world.terminal.set_online(False)
    reconciler = world.reconciler()
    assert reconciler.reconcile_once() == ReconcileReport(pending=1)
    assert (world.entry("t-1").state, world.entry("t-1").attempts) == (TxnState.OPENED, 1)
    world.terminal.set_online(True)
    world.clock.now += RETRY_S
    assert reconciler.reconcile_once() == ReconcileReport(settled=1)
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]


@pytest.mark.parametrize("state", [TxnState.APPROVED, TxnState.REQUESTED, TxnState.ISSUED])
def test_a_paid_certificate_an_earlier_run_never_printed_is_given_back_and_voided(world: World,
                                                                                  state: TxnState) -> None:
    world.paid("t-1", state)
    assert world.reconciler().reconcile_once() == ReconcileReport(settled=1)
    entry = world.entry("t-1")
    assert (entry.state, entry.settle_reason) == (TxnState.SETTLED, INTERRUPTED)
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]
    assert world.voids() == ([] if state is TxnState.APPROVED else ["void-req-t-1"])


def test_after_the_cutoff_the_fee_goes_back_by_refund(world: World) -> None:
    world.paid("t-1", TxnState.REQUESTED)
    world.terminal.cut_off()
    world.reconciler().reconcile_once()
    assert world.given_back() == [("sale-t-1", ReversalKind.REFUND)]


# --- the current run ---------------------------------------------------------------------------------

def test_the_current_runs_live_transactions_are_left_to_its_session(world: World) -> None:
    world.open("t-1", run_id=NOW)
    world.paid("t-2", TxnState.APPROVED, run_id=NOW)
    world.paid("t-3", TxnState.ISSUED, run_id=NOW)
    before = world.journal.unfinished()
    assert world.reconciler().reconcile_once() == ReconcileReport(live=3)
    assert world.journal.unfinished() == before
    assert world.given_back() == [] and world.voids() == []


def test_a_settlement_the_session_asked_for_is_carried_out(world: World) -> None:
    world.paid("t-1", TxnState.ISSUED, run_id=NOW)
    world.journal.settle("t-1", "printer_failed")
    assert world.reconciler().reconcile_once() == ReconcileReport(settled=1)
    assert (world.entry("t-1").state, world.entry("t-1").settle_reason) == (TxnState.SETTLED, "printer_failed")
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)] and world.voids() == ["void-req-t-1"]


def test_a_settlement_of_a_sale_whose_answer_was_lost_asks_for_it_first(world: World) -> None:
    world.open("t-1", run_id=NOW)
    world.open("t-2", run_id=NOW)
    world.terminal.lose_next_answer()
    world.journal.record_payment("t-1", world.pay("t-1"))   # UNKNOWN: stays OPENED
    world.journal.settle("t-1", "answer_lost")
    world.journal.settle("t-2", "terminal_gone")            # asked of no terminal at all
    assert world.reconciler().reconcile_once() == ReconcileReport(settled=2)
    assert (world.entry("t-1").state, world.entry("t-1").reversed) == (TxnState.SETTLED, True)
    assert (world.entry("t-2").state, world.entry("t-2").reversed) == (TxnState.SETTLED, False)
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]


# --- interrupted, refused, retried ------------------------------------------------------------------

def test_a_pass_cut_short_after_the_reversal_reverses_once(world: World) -> None:
    world.paid("t-1", TxnState.ISSUED)
    world.journal.fail_next = {"reversed"}                  # reversed at the terminal, never written down
    assert world.reconciler().reconcile_once() == ReconcileReport(pending=1)
    assert (world.entry("t-1").state, world.entry("t-1").reversed) == (TxnState.SETTLING, False)
    world.database.close()                                  # ... and the power goes
    after = World(world.path)
    after.terminal = world.terminal                         # the same terminal, with its acquirer's memory
    assert after.reconciler(run_id="run-after").reconcile_once() == ReconcileReport(settled=1)
    assert after.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]   # one reversal, however asked
    assert after.voids() == ["void-req-t-1"]
    after.database.close()


def test_a_pass_cut_short_after_the_void_was_kept_voids_once(world: World) -> None:
    world.paid("t-1", TxnState.REQUESTED)
    world.journal.fail_next = {"voided"}
    reconciler = world.reconciler()
    reconciler.reconcile_once()
    world.clock.now += RETRY_S
    assert reconciler.reconcile_once() == ReconcileReport(settled=1)
    assert world.voids() == ["void-req-t-1"] and len(world.given_back()) == 1


def test_a_void_that_cannot_be_kept_is_tried_again(world: World) -> None:
    world.paid("t-1", TxnState.REQUESTED)
    world.keep_voids = False                                # the outbox's disk is full
    reconciler = world.reconciler()
    assert reconciler.reconcile_once() == ReconcileReport(pending=1)
    assert (world.entry("t-1").reversed, world.entry("t-1").voided) == (True, False)   # the fee went back anyway
    world.keep_voids = True
    world.clock.now += RETRY_S
    assert reconciler.reconcile_once() == ReconcileReport(settled=1)
    assert world.voids() == ["void-req-t-1"] and len(world.given_back()) == 1


def test_a_settlement_refused_for_good_goes_to_the_dead_letters_once(world: World) -> None:
    world.paid("t-1", TxnState.REQUESTED)
    world.terminal = FakePaymentTerminal()                  # a new terminal that never held the sale
    world.keep_voids = False
    reconciler = world.reconciler()
    assert reconciler.reconcile_once() == ReconcileReport(dead=1)
    assert world.alerts == [REFUSED_ALERT]
    (dead,) = world.journal.dead()
    assert (dead.txn_id, dead.state, dead.reversed) == ("t-1", TxnState.DEAD, False)
    assert "unknown_sale" in dead.dead_reason
    world.keep_voids = True
    world.clock.now += 10 * RETRY_S
    assert reconciler.reconcile_once() == ReconcileReport()  # never retried...
    assert world.alerts == [REFUSED_ALERT] and world.journal.dead()[0].voided   # ... but its document is voided
    assert world.voids() == ["void-req-t-1"]


def test_a_busy_terminal_is_asked_again_later_and_later(world: World) -> None:
    world.paid("t-1")
    world.terminal.set_busy(True)
    reconciler = world.reconciler()                         # jitter off: each wait is its ceiling
    assert reconciler.reconcile_once() == ReconcileReport(pending=1)
    for attempts, wait in enumerate([30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0], start=1):
        failed_at = world.clock.now
        world.clock.now = failed_at + wait - 1.0
        assert reconciler.reconcile_once() == ReconcileReport(pending=1)
        assert world.entry("t-1").attempts == attempts      # not asked again yet
        world.clock.now = failed_at + wait
        reconciler.reconcile_once()
        assert world.entry("t-1").attempts == attempts + 1  # asked, and busy again
    world.terminal.set_busy(False)
    world.clock.now += 600.0
    assert reconciler.reconcile_once() == ReconcileReport(settled=1)
    assert world.given_back() == [("sale-t-1", ReversalKind.REVERSAL)]


def test_one_entry_that_fails_stops_neither_the_others_nor_later_passes(world: World) -> None:
    world.paid("t-1")
    world.paid("t-2")
    real_reverse = world.terminal.reverse

    def reverse(outcome: PaymentOutcome, *, reversal_id: str):
        if outcome.sale_id == "sale-t-1":
            raise RuntimeError("a driver's bug")
        return real_reverse(outcome, reversal_id=reversal_id)

    world.terminal.reverse = reverse                        # type: ignore[method-assign]
    reconciler = world.reconciler()
    assert reconciler.reconcile_once() == ReconcileReport(settled=1, pending=1)
    assert (world.entry("t-1").state, world.entry("t-2").state) == (TxnState.SETTLING, TxnState.SETTLED)
    del world.terminal.reverse
    world.clock.now += RETRY_S
    assert reconciler.reconcile_once() == ReconcileReport(settled=1)


# --- the background -----------------------------------------------------------------------------------

def test_the_thread_settles_at_start_and_again_when_woken(world: World) -> None:
    world.paid("t-1", TxnState.ISSUED)
    reconciler = world.reconciler()
    reconciler.start()
    try:
        assert world.journal.wait_for(lambda: world.entry("t-1").state is TxnState.SETTLED)
        world.paid("t-2", TxnState.ISSUED, run_id=NOW)
        world.journal.settle("t-2", "printer_failed")
        reconciler.wake()
        assert world.journal.wait_for(lambda: world.entry("t-2").state is TxnState.SETTLED)
    finally:
        reconciler.stop()
    assert [sale_id for sale_id, _ in world.given_back()] == ["sale-t-1", "sale-t-2"]
