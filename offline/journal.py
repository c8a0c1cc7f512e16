"""The transaction journal (`kiosk.ports.journal`) as a table of the kiosk's state database.

Each fact is one SQLite transaction: read the entry, apply the fact's rule,
write the entry back if anything changed, commit (synced to the disk). The
rules keep a transaction moving forward only: a fact that comes late (an
approval after the transaction finished, a second `settle`) changes
nothing, and the same fact twice changes nothing the second time, so every
step of the runtime and of the reconciler may be repeated after a crash.

The table holds ids, the service code, the amount in minor units with its
currency, the payment method, states, flags, counts, reasons and times:
never a name, a national number or card data.

A transaction paid while central could not be reached is marked `offline`:
the day's offline total (`offline_total`) is what the claims' daily cap is
checked against. A journal from before that column gets it (0) at start.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

from kiosk.errors import JournalError
from kiosk.money import Money
from kiosk.ports.journal import FINISHED, Journal, JournalEntry, TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome, PaymentStatus
from offline.database import StateDatabase

log = logging.getLogger(__name__)

REASON_MAX = 200      # characters of a settle or dead reason kept

_DONE = sorted(state.value for state in (*FINISHED, TxnState.DEAD))     # sorted: the same text in every run
_NOT_DONE = "state NOT IN (%s)" % ", ".join("'%s'" % value for value in _DONE)
_UNFINISHED_INDEX = "CREATE INDEX IF NOT EXISTS journal_unfinished ON journal (seq) WHERE " + _NOT_DONE

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS journal (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        txn_id        TEXT NOT NULL UNIQUE,
        sale_id       TEXT NOT NULL,
        request_id    TEXT NOT NULL,
        service_code  TEXT NOT NULL,
        amount_minor  INTEGER NOT NULL,
        currency      TEXT NOT NULL,
        method        TEXT NOT NULL,
        state         TEXT NOT NULL,
        run_id        TEXT NOT NULL,
        payment_id    TEXT,
        serial        TEXT,
        requested     INTEGER NOT NULL DEFAULT 0,
        settle_reason TEXT NOT NULL DEFAULT '',
        reversed      INTEGER NOT NULL DEFAULT 0,
        voided        INTEGER NOT NULL DEFAULT 0,
        attempts      INTEGER NOT NULL DEFAULT 0,
        dead_reason   TEXT NOT NULL DEFAULT '',
        opened_at     REAL NOT NULL,
        updated_at    REAL NOT NULL,
        offline       INTEGER NOT NULL DEFAULT 0
    )
    """,
    # What the reconciler reads at every pass: the few entries not finished, among many finished.
    _UNFINISHED_INDEX,
    "CREATE INDEX IF NOT EXISTS journal_dead ON journal (seq) WHERE state = 'dead'",
    # ... and the claims central has not answered yet; and the day's offline payments.
    "CREATE INDEX IF NOT EXISTS journal_claims ON journal (seq) WHERE state = 'claimed' AND serial IS NULL",
    "CREATE INDEX IF NOT EXISTS journal_offline ON journal (opened_at) WHERE offline = 1",
    # What the outbox's retention asks: the transaction of a message, by its request id.
    "CREATE INDEX IF NOT EXISTS journal_request ON journal (request_id)",
)

_COLUMNS = ("txn_id", "sale_id", "request_id", "service_code", "amount_minor", "currency", "method", "state",
            "run_id", "payment_id", "serial", "requested", "settle_reason", "reversed", "voided", "attempts",
            "dead_reason", "opened_at", "updated_at", "offline")
_SELECT = "SELECT %s FROM journal" % ", ".join(_COLUMNS)
UNFINISHED_QUERY = "%s WHERE %s ORDER BY seq" % (_SELECT, _NOT_DONE)    # must match the index's WHERE
_UPDATE = "UPDATE journal SET %s WHERE txn_id = :txn_id" % ", ".join(
    "%s = :%s" % (column, column) for column in _COLUMNS if column != "txn_id")

# The states a certificate's life goes through before it is printed, in order.
_FORWARD = (TxnState.OPENED, TxnState.APPROVED, TxnState.REQUESTED, TxnState.ISSUED)
# Where a settlement may begin: anything charged or perhaps charged, not yet finished; and a claim
# whose request central refused for good.
_SETTLEABLE = frozenset(_FORWARD) | {TxnState.CLAIMED}
# What counts against the day's offline cap: anything charged or perhaps charged, and not given back.
_NOT_COUNTED = "('%s', '%s')" % (TxnState.NOT_CHARGED.value, TxnState.SETTLED.value)

Rule = Callable[[JournalEntry], JournalEntry]


class SqliteJournal(Journal):
    def __init__(self, database: StateDatabase, *, clock: Callable[[], float] = time.time) -> None:
        """The journal in `database` (the outbox's); `clock` stamps the entries (wall time, seconds)."""
        self.database = database
        self._clock = clock
        with database.transaction(error=JournalError):
            self._migrate()
            for statement in _SCHEMA:
                database.run(statement, error=JournalError)

    # -- writing --------------------------------------------------------------------------------------

    def open(self, entry: JournalEntry) -> None:
        if entry.state is not TxnState.OPENED:
            raise JournalError("the journal opens a transaction only as OPENED, not %s (txn %s)"
                               % (entry.state.name, entry.txn_id))
        now = self._clock()
        entry = dataclasses.replace(entry, opened_at=entry.opened_at or now, updated_at=now)
        with self.database.transaction(error=JournalError):
            known = self._read(entry.txn_id)
            if known is not None:
                if _identity(known) != _identity(entry):
                    raise JournalError("the journal already holds txn %s for another sale" % entry.txn_id)
                return                                          # written already: nothing changes
            self._run("INSERT INTO journal (%s) VALUES (%s)" % (", ".join(_COLUMNS),
                                                               ", ".join(":" + c for c in _COLUMNS)), _row(entry))
        log.info("journal.opened txn=%s sale_id=%s service=%s", entry.txn_id, entry.sale_id, entry.service_code)

    def record_payment(self, txn_id: str, outcome: PaymentOutcome) -> None:
        def rule(entry: JournalEntry) -> JournalEntry:
            if outcome.sale_id != entry.sale_id:
                raise JournalError("txn %s is sale %s, not %s" % (txn_id, entry.sale_id, outcome.sale_id))
            return _payment(entry, outcome)
        self._apply(txn_id, "payment", rule)

    def record_requested(self, txn_id: str) -> None:
        self._apply(txn_id, "requested", _requested)

    def record_issued(self, txn_id: str, serial: str) -> None:
        self._apply(txn_id, "issued", lambda entry: _issued(entry, serial))

    def record_printed(self, txn_id: str) -> None:
        self._apply(txn_id, "printed", _printed)

    def record_claimed(self, txn_id: str) -> None:
        self._apply(txn_id, "claimed", _claimed)

    def settle(self, txn_id: str, reason: str) -> None:
        self._apply(txn_id, "settle", lambda entry: _settle(entry, reason[:REASON_MAX]))

    def record_reversed(self, txn_id: str) -> None:
        self._apply(txn_id, "reversed", _reversed)

    def record_voided(self, txn_id: str) -> None:
        self._apply(txn_id, "voided", _voided)

    def record_attempt(self, txn_id: str) -> None:
        self._apply(txn_id, "attempt", _attempt)

    def record_dead(self, txn_id: str, reason: str) -> None:
        self._apply(txn_id, "dead", lambda entry: _dead(entry, reason[:REASON_MAX]))

    # -- reading --------------------------------------------------------------------------------------

    def get(self, txn_id: str) -> JournalEntry | None:
        return self._read(txn_id)

    def unfinished(self) -> list[JournalEntry]:
        return [_entry(row) for row in self._run(UNFINISHED_QUERY)]

    def dead(self) -> list[JournalEntry]:
        return [_entry(row) for row in self._run("%s WHERE state = 'dead' ORDER BY seq" % _SELECT)]

    def claims_awaiting(self) -> list[JournalEntry]:
        return [_entry(row) for row in self._run("%s WHERE state = 'claimed' AND serial IS NULL ORDER BY seq"
                                                 % _SELECT)]

    def offline_total(self, currency: str, since: float, until: float) -> int:
        rows = self._run("SELECT COALESCE(SUM(amount_minor), 0) FROM journal WHERE offline = 1 AND opened_at >= ? "
                         "AND opened_at < ? AND currency = ? AND state NOT IN %s" % _NOT_COUNTED,
                         (since, until, currency))
        return int(rows[0][0])

    # -- inside ---------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """A journal from before claims: the `offline` column added; the index of unfinished entries
        made again when what "finished" means has changed (the query would not use it otherwise)."""
        columns = [row[1] for row in self.database.run("PRAGMA table_info(journal)", error=JournalError)]
        if columns and "offline" not in columns:
            self.database.run("ALTER TABLE journal ADD COLUMN offline INTEGER NOT NULL DEFAULT 0", error=JournalError)
            log.warning("journal.migrated column=offline")
        index = self.database.run("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'journal_unfinished'",
                                  error=JournalError)
        if index and index[0][0] != _UNFINISHED_INDEX.replace(" IF NOT EXISTS", ""):
            self.database.run("DROP INDEX journal_unfinished", error=JournalError)

    def _apply(self, txn_id: str, fact: str, rule: Rule) -> None:
        """Apply one fact's rule to the entry, in one transaction; an unknown txn is a JournalError."""
        with self.database.transaction(error=JournalError):
            before = self._read(txn_id)
            if before is None:
                raise JournalError("the journal holds no txn %s (fact %s)" % (txn_id, fact))
            after = rule(before)
            if after == before:
                return
            after = dataclasses.replace(after, updated_at=self._clock())
            self._run(_UPDATE, _row(after))
        if after.state is not before.state:
            log.info("journal.%s txn=%s from=%s to=%s", fact, txn_id, before.state.name, after.state.name)
        else:
            log.info("journal.%s txn=%s state=%s", fact, txn_id, after.state.name)

    def _read(self, txn_id: str) -> JournalEntry | None:
        rows = self._run(_SELECT + " WHERE txn_id = ?", (txn_id,))
        return _entry(rows[0]) if rows else None

    def _run(self, sql: str, parameters: tuple | dict = ()) -> list[tuple]:
        return self.database.run(sql, parameters, error=JournalError)


# -- the rules, one per fact: the entry before -> the entry after (the same when nothing changes) -------

def _payment(entry: JournalEntry, outcome: PaymentOutcome) -> JournalEntry:
    if outcome.status is PaymentStatus.UNKNOWN:
        return entry                                       # the reconciler will ask
    approved = outcome.status is PaymentStatus.APPROVED
    if entry.state is TxnState.OPENED:
        if approved:
            return dataclasses.replace(entry, state=TxnState.APPROVED, payment_id=outcome.payment_id)
        return dataclasses.replace(entry, state=TxnState.NOT_CHARGED)
    if entry.state is TxnState.SETTLING and entry.payment_id is None and not entry.reversed:
        # A settlement that began before the sale's outcome was known: now it is.
        if approved:
            return dataclasses.replace(entry, payment_id=outcome.payment_id)
        if entry.voided:                                   # nothing to give back and nothing left to void
            return dataclasses.replace(entry, state=TxnState.SETTLED)
    return entry


def _requested(entry: JournalEntry) -> JournalEntry:
    if entry.state in FINISHED or entry.requested:
        return entry
    if entry.state in (TxnState.SETTLING, TxnState.DEAD):
        # The request may reach central after all: its document must be voided again.
        return dataclasses.replace(entry, requested=True, voided=False)
    state = TxnState.REQUESTED if entry.state is TxnState.APPROVED else entry.state
    return dataclasses.replace(entry, requested=True, state=state)


def _issued(entry: JournalEntry, serial: str) -> JournalEntry:
    if entry.state is TxnState.CLAIMED and entry.serial is None:
        return dataclasses.replace(entry, serial=serial)       # central issued the claim: the citizen collects it
    if entry.state in FINISHED:
        return entry
    entry = _requested(entry)                    # an issued document was requested, whatever was recorded
    state = TxnState.ISSUED if entry.state is TxnState.REQUESTED else entry.state
    return dataclasses.replace(entry, state=state, serial=entry.serial or serial)


def _claimed(entry: JournalEntry) -> JournalEntry:
    if entry.state not in (TxnState.APPROVED, TxnState.REQUESTED):
        return entry                     # not charged for sure, being given back, or claimed already
    return dataclasses.replace(entry, state=TxnState.CLAIMED, requested=True)


def _printed(entry: JournalEntry) -> JournalEntry:
    if entry.state in (TxnState.APPROVED, TxnState.REQUESTED, TxnState.ISSUED):
        return dataclasses.replace(entry, state=TxnState.PRINTED)
    return entry                         # not charged for sure, or being given back already


def _settle(entry: JournalEntry, reason: str) -> JournalEntry:
    if entry.state not in _SETTLEABLE:
        return entry                     # finished, settling already (its first reason stands), or dead
    return dataclasses.replace(entry, state=TxnState.SETTLING, settle_reason=reason)


def _reversed(entry: JournalEntry) -> JournalEntry:
    if entry.state is not TxnState.SETTLING or entry.reversed:
        return entry
    return dataclasses.replace(entry, reversed=True, state=TxnState.SETTLED if entry.voided else entry.state)


def _voided(entry: JournalEntry) -> JournalEntry:
    if entry.voided:
        return entry
    if entry.state is TxnState.DEAD:             # its fee is a technician's now; its document still goes
        return dataclasses.replace(entry, voided=True)
    if entry.state is not TxnState.SETTLING:
        return entry
    return dataclasses.replace(entry, voided=True, state=TxnState.SETTLED if entry.reversed else entry.state)


def _attempt(entry: JournalEntry) -> JournalEntry:
    if entry.state in FINISHED or entry.state is TxnState.DEAD:
        return entry
    return dataclasses.replace(entry, attempts=entry.attempts + 1)


def _dead(entry: JournalEntry, reason: str) -> JournalEntry:
    if entry.state is not TxnState.SETTLING:
        return entry
    return dataclasses.replace(entry, state=TxnState.DEAD, dead_reason=reason)


# -- rows -------------------------------------------------------------------------------------------------

def _identity(entry: JournalEntry) -> tuple:
    return (entry.sale_id, entry.request_id, entry.service_code, entry.amount, entry.method, entry.run_id)


def _row(entry: JournalEntry) -> dict:
    return {
        "txn_id": entry.txn_id, "sale_id": entry.sale_id, "request_id": entry.request_id,
        "service_code": entry.service_code, "amount_minor": entry.amount.amount_minor,
        "currency": entry.amount.currency, "method": entry.method.value, "state": entry.state.value,
        "run_id": entry.run_id, "payment_id": entry.payment_id, "serial": entry.serial,
        "requested": int(entry.requested), "settle_reason": entry.settle_reason, "reversed": int(entry.reversed),
        "voided": int(entry.voided), "attempts": entry.attempts, "dead_reason": entry.dead_reason,
        "opened_at": entry.opened_at, "updated_at": entry.updated_at, "offline": int(entry.offline),
    }


def _entry(row: tuple) -> JournalEntry:
    values = dict(zip(_COLUMNS, row))
    return JournalEntry(
        txn_id=values["txn_id"], sale_id=values["sale_id"], request_id=values["request_id"],
        service_code=values["service_code"], amount=Money(values["currency"], values["amount_minor"]),
        method=PaymentMethod(values["method"]), state=TxnState(values["state"]), run_id=values["run_id"],
        payment_id=values["payment_id"], serial=values["serial"], requested=bool(values["requested"]),
        settle_reason=values["settle_reason"], reversed=bool(values["reversed"]), voided=bool(values["voided"]),
        attempts=values["attempts"], dead_reason=values["dead_reason"], opened_at=values["opened_at"],
        updated_at=values["updated_at"], offline=bool(values["offline"]),
    )
