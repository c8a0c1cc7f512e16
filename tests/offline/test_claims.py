"""Claims in the journal and the reconciler: a transaction paid offline and kept as a claim is finished
and never given back for being unfinished; central's answer is watched: issued, its serial is written
down; refused for good, the claim is voided and given back. The day's offline total counts what was
charged offline and not given back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.fakes.payment_terminal import FakePaymentTerminal
from kiosk.money import Money
from kiosk.ports.journal import FINISHED, JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome, PaymentStatus
from offline.database import StateDatabase
from offline.delivery import DurableOutbox, void_sender
from offline.journal import SqliteJournal
from offline.outbox import REFUSED, Outbox
from offline.reconciler import CLAIM_REFUSED, ReconcileReport, Reconciler

FEE = Money.of(150000, "SYP")
DAY = 86400.0


class World:
    def __init__(self, path: Path) -> None:
        self.database = StateDatabase(path)
        self.clock = 1_000_000.0
        self.journal = SqliteJournal(self.database, clock=lambda: self.clock)
        self.terminal = FakePaymentTerminal()
        self.store = Outbox(self.database)
        self.outbox = DurableOutbox(self.store, lambda kind, payload: None)       # never started: kept only
        self.answers: dict[str, dict] = {}                                        # request id -> central's answer

    def reconciler(self, run_id: str = "run-now") -> Reconciler:
        return Reconciler(self.journal, self.terminal, void_sender(self.outbox), run_id=run_id, alert=lambda _k: None,
                          jitter=lambda ceiling: ceiling, claim_answer=self.answers.get)

    def claimed(self, txn_id: str, *, amount: Money = FEE, run_id: str = "run-now") -> JournalEntry:
        """Paid offline, its request kept as a claim."""
        self.journal.open(JournalEntry(txn_id=txn_id, sale_id="sale-" + txn_id, request_id="req-" + txn_id,
                                       service_code="civil-status-extract", amount=amount, method=PaymentMethod.CARD,
                                       state=TxnState.OPENED, run_id=run_id, offline=True))
        self.journal.record_payment(txn_id, self.terminal.pay(amount, sale_id="sale-" + txn_id,
                                                              reference="req-" + txn_id, label="Extract"))
        self.journal.record_requested(txn_id)
        self.journal.record_claimed(txn_id)
        entry = self.journal.get(txn_id)
        assert entry is not None
        return entry


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path / "state" / "kiosk.sqlite3")
    yield world
    world.terminal.abort()
    world.database.close()


def test_a_claim_is_finished_kept_offline_and_awaits_centrals_answer(world: World) -> None:
    entry = world.claimed("c-1")
    assert entry.state is TxnState.CLAIMED and entry.state in FINISHED and entry.offline and entry.requested
    assert world.journal.unfinished() == [] and world.journal.claims_awaiting() == [entry]


def test_an_earlier_runs_claim_is_not_given_back_at_start(world: World) -> None:
    world.claimed("c-1", run_id="run-before")
    assert world.reconciler().reconcile_once() == ReconcileReport()
    assert world.journal.get("c-1").state is TxnState.CLAIMED
    assert not any(sale.reversed for sale in world.terminal.statement) and world.store.message_ids("void_request") == []


def test_a_claim_central_issued_keeps_its_serial_and_its_fee(world: World) -> None:
    world.claimed("c-1")
    reconciler = world.reconciler()
    reconciler.reconcile_once()                             # nothing heard yet: still awaited
    assert [e.txn_id for e in world.journal.claims_awaiting()] == ["c-1"]
    world.answers["req-c-1"] = {"status": "issued", "document": {"serial": "2026-CLAIMED1"}}
    reconciler.reconcile_once()
    entry = world.journal.get("c-1")
    assert (entry.state, entry.serial) == (TxnState.CLAIMED, "2026-CLAIMED1")
    assert world.journal.claims_awaiting() == [] and not any(sale.reversed for sale in world.terminal.statement)


def test_a_claim_whose_answer_was_already_deleted_is_issued_all_the_same(world: World) -> None:
    world.claimed("c-1")
    world.answers["req-c-1"] = {"status": "issued"}         # retention kept the status only
    world.reconciler().reconcile_once()
    assert world.journal.claims_awaiting() == [] and world.journal.get("c-1").state is TxnState.CLAIMED


@pytest.mark.parametrize("answer", [{"status": "rejected", "reason": "payment_amount_mismatch"},
                                    {"status": "voided", "reason": "request_voided", "request_id": "req-c-1"},
                                    dict(REFUSED)], ids=["rejected", "voided", "dead letter"])
def test_a_claim_central_refuses_for_good_is_voided_and_given_back(world: World, answer: dict) -> None:
    world.claimed("c-1")
    world.answers["req-c-1"] = answer
    report = world.reconciler().reconcile_once()
    assert report.settled == 1
    entry = world.journal.get("c-1")
    assert (entry.state, entry.settle_reason, entry.reversed, entry.voided) == \
        (TxnState.SETTLED, CLAIM_REFUSED, True, True)
    (sale,) = world.terminal.statement
    assert sale.reversed and sale.amount == FEE
    assert world.store.message_ids("void_request") == ["void-req-c-1"]


def test_the_days_offline_total_counts_what_was_charged_offline_and_not_given_back(world: World) -> None:
    world.claimed("c-1")
    world.claimed("c-2", amount=Money.of(100000, "SYP"))
    world.claimed("c-usd", amount=Money.of(500, "USD"))
    world.answers["req-c-2"] = {"status": "rejected", "reason": "unknown_citizen"}
    world.reconciler().reconcile_once()                     # c-2 given back: it counts no more
    world.journal.open(JournalEntry(txn_id="declined", sale_id="s-d", request_id="r-d", service_code="x",
                                    amount=FEE, method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run-now",
                                    offline=True))
    world.journal.record_payment("declined", PaymentOutcome(PaymentStatus.DECLINED, FEE, "s-d"))
    world.journal.open(JournalEntry(txn_id="online", sale_id="s-o", request_id="r-o", service_code="x",
                                    amount=FEE, method=PaymentMethod.CARD, state=TxnState.OPENED, run_id="run-now"))
    today = (world.clock - 10, world.clock + 10)
    assert world.journal.offline_total("SYP", *today) == FEE.amount_minor
    assert world.journal.offline_total("USD", *today) == 500
    assert world.journal.offline_total("SYP", world.clock + DAY, world.clock + 2 * DAY) == 0


def test_a_journal_from_before_claims_gets_its_offline_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, txn_id TEXT NOT NULL UNIQUE,
            sale_id TEXT NOT NULL, request_id TEXT NOT NULL, service_code TEXT NOT NULL,
            amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL,
            run_id TEXT NOT NULL, payment_id TEXT, serial TEXT, requested INTEGER NOT NULL DEFAULT 0,
            settle_reason TEXT NOT NULL DEFAULT '', reversed INTEGER NOT NULL DEFAULT 0,
            voided INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
            dead_reason TEXT NOT NULL DEFAULT '', opened_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE INDEX journal_unfinished ON journal (seq) WHERE state NOT IN ('dead', 'not_charged', 'printed', 'settled');
        INSERT INTO journal (txn_id, sale_id, request_id, service_code, amount_minor, currency, method, state, run_id,
            opened_at, updated_at) VALUES ('old-1', 's', 'r', 'birth', 150000, 'SYP', 'card', 'approved', 'r0', 1, 1);
    """)
    old.close()
    database = StateDatabase(path)
    journal = SqliteJournal(database)
    assert journal.get("old-1").offline is False and [e.txn_id for e in journal.unfinished()] == ["old-1"]
    index = database.run("SELECT sql FROM sqlite_master WHERE name = 'journal_unfinished'")[0][0]
    assert "'claimed'" in index
    database.close()
