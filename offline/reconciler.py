"""The reconciler: settles every transaction the journal says is owed, until none is.

A transaction is owed when a run ended before finishing it (a crash, a
power cut), or when the runtime asked for it to be settled (the document
could not be printed). The reconciler takes each unfinished entry of the
journal, oldest first, and moves it on as far as it can:

* a sale of an earlier run whose outcome was never written (OPENED) is
  asked for by `status`: approved, it is settled; declined or never taken,
  it is finished as not charged; unknown, it waits for the next pass;
* an approved sale of an earlier run whose document was never printed is
  settled ("interrupted");
* a settlement voids the document (the void goes to the outbox through
  `send_void`, or there is nothing to void) and gives the fee back
  (`reverse`, with the reversal id ``rev-<txn_id>``, so a reversal asked
  again after a crash is the same reversal); once both are done it is
  SETTLED. A reversal the payment side refuses for good puts the entry on
  the dead-letter list and calls a technician; it is never retried.

A claim (CLAIMED: paid while central could not be reached, its request in
the outbox as a claim) is finished and never given back for being
unfinished; but the reconciler watches central's answer to its request
(`claim_answer`, every `CLAIM_WATCH_S` while any waits): issued, its serial
is written down and the watch ends; refused for good (rejected, voided, or a
dead letter), the claim is settled ("claim_refused"): its document voided and
its fee given back, as any settlement.

Entries of the current run that are not being settled belong to the
session at the screen and are left alone. Every step is written to the
journal as soon as it is done, and every step may be repeated, so a pass
cut short anywhere is finished by the next. A step that cannot be done now
(the terminal busy or unreachable, the outbox unwritable) is retried per
entry after an exponential backoff with full jitter; `wake()` asks for a
pass now. Logs carry ids only.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk.errors import PaymentError, QueueError
from offline.background import Background
from kiosk.ports.journal import Journal, JournalEntry, TxnState
from kiosk.ports.journal import Reconciler as ReconcilerPort
from kiosk.ports.payment_terminal import PaymentOutcome, PaymentStatus, PaymentTerminal, ReversalStatus

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"             # the settle reason of a transaction an earlier run left unfinished
CLAIM_REFUSED = "claim_refused"         # ... of a claim whose request central refused for good
CLAIM_WATCH_S = 15.0                    # how often central's answers to claims are looked at while any waits
REFUSED_ALERT = "payment.settlement_refused"
MAX_BACKOFF_S = 600.0

# send_void(request_id) -> True once the void of that request's document is durably in the outbox.
SendVoid = Callable[[str], bool]
# claim_answer(request_id) -> central's final answer to a claim's request as the outbox keeps it; None while none.
ClaimAnswer = Callable[[str], "dict | None"]
Alert = Callable[[str], None]


def full_jitter(ceiling: float) -> float:
    """A wait drawn evenly from [0, ceiling]: retries of many entries do not come in step."""
    return random.uniform(0.0, ceiling)


def reversal_id(txn_id: str) -> str:
    return "rev-" + txn_id


@dataclass(frozen=True)
class ReconcileReport:
    """What one pass did, in entries."""

    settled: int = 0     # finished by this pass: given back and voided, or found never charged
    pending: int = 0     # still owed: tried again at a later pass
    dead: int = 0        # refused for good by the payment side in this pass: for a technician
    live: int = 0        # the current run's, left to its session


class Reconciler(ReconcilerPort):
    def __init__(self, journal: Journal, terminal: PaymentTerminal, send_void: SendVoid, *, run_id: str,
                 alert: Alert, retry_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 max_backoff_s: float = MAX_BACKOFF_S, jitter: Callable[[float], float] = full_jitter,
                 claim_answer: ClaimAnswer | None = None, claim_watch_s: float = CLAIM_WATCH_S) -> None:
        """`claim_answer` tells central's answer to a claim's request (None: claims are not watched)."""
        self._journal = journal
        self._claim_answer = claim_answer
        self._claim_watch_s = claim_watch_s
        self._claims_waiting = False
        self._terminal = terminal
        self._send_void = send_void
        self._alert = alert
        self.run_id = run_id
        self._retry_s = retry_s
        self._clock = clock
        self._max_backoff_s = max_backoff_s
        self._jitter = jitter
        self._due: dict[str, float] = {}          # txn_id -> when (clock) it may be tried again
        self._owed: dict[str, str] = {}           # txn_id -> reason: owed, but the journal could not say so
        self._pass = threading.Lock()             # one pass at a time: the thread's, or a caller's
        self._background = Background("reconciler", self._timed_pass, retry_s=retry_s)

    # -- the background ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._report_dead_letters()
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    def wake(self) -> None:
        self._background.wake()

    def owe(self, txn_id: str, reason: str) -> None:
        try:
            self._journal.settle(txn_id, reason)
        except QueueError as exc:
            log.critical("reconciler.owed_in_memory txn=%s error=%s", txn_id, exc)
            self._owed[txn_id] = reason
            self._alert("journal.unwritable")
        self._background.wake()

    def _timed_pass(self) -> float | None:
        """One pass (the journal unreadable, or worse: the background tries again after retry_s)."""
        self.reconcile_once()
        return self._next_wait()

    def _next_wait(self) -> float | None:
        """Seconds until the earliest entry is due again, or the next look at the claims' answers;
        None when nothing is owed and no claim waits (wait for wake)."""
        waits = [max(0.0, min(self._due.values()) - self._clock())] if self._due else []
        if self._claims_waiting:
            waits.append(self._claim_watch_s)
        return min(waits) if waits else None

    def _report_dead_letters(self) -> None:
        try:
            dead = self._journal.dead()
        except Exception:
            log.exception("reconciler.dead_letters_unreadable")
            return
        if dead:
            log.warning("reconciler.dead_letters count=%d txns=%s", len(dead), ",".join(e.txn_id for e in dead))

    # -- one pass ---------------------------------------------------------------------------------------

    def reconcile_once(self) -> ReconcileReport:
        """Move every unfinished entry on as far as it can go now; JournalError when the journal
        cannot be read at all (an entry that fails alone is logged and left for the next pass)."""
        with self._pass:
            counts = {"settled": 0, "pending": 0, "dead": 0, "live": 0}
            self._watch_claims()                  # a refused claim is settled in this very pass
            unfinished = self._journal.unfinished()
            for gone in self._due.keys() - {entry.txn_id for entry in unfinished}:
                del self._due[gone]                # finished or dead meanwhile: nothing to wait for
            for entry in unfinished:
                try:
                    result = self._reconcile(entry)
                except Exception:                 # one entry's fault stops neither the others nor the thread
                    log.exception("reconciler.entry_failed txn=%s sale_id=%s", entry.txn_id, entry.sale_id)
                    self._retry_later(entry)
                    result = "pending"
                counts[result] += 1
            self._void_dead_letters()
            report = ReconcileReport(**counts)
        if report.settled or report.dead or report.pending:
            log.info("reconciler.pass settled=%d pending=%d dead=%d live=%d",
                     report.settled, report.pending, report.dead, report.live)
        return report

    def _reconcile(self, entry: JournalEntry) -> str:
        """One entry: 'settled', 'pending', 'dead' or 'live'."""
        owed = entry.txn_id in self._owed and entry.state is not TxnState.SETTLING
        if entry.run_id == self.run_id and entry.state is not TxnState.SETTLING and not owed:
            return "live"
        if self._clock() < self._due.get(entry.txn_id, float("-inf")):
            return "pending"
        if owed:
            return self._settle_from_memory(entry)
        known: PaymentOutcome | None = None
        if entry.state is TxnState.OPENED:
            known = self._terminal.status(entry.sale_id)
            if known.status is PaymentStatus.UNKNOWN:
                return self._retry_later(entry, "status_unknown")
            self._journal.record_payment(entry.txn_id, known)
            if known.status is not PaymentStatus.APPROVED:
                return self._outcome(entry.txn_id)
            self._journal.settle(entry.txn_id, INTERRUPTED)
        elif entry.state is not TxnState.SETTLING:      # APPROVED, REQUESTED or ISSUED, left by an earlier run
            self._journal.settle(entry.txn_id, INTERRUPTED)
        current = self._journal.get(entry.txn_id)
        if current is None or current.state is not TxnState.SETTLING:
            return self._outcome(entry.txn_id)
        return self._settle(current, known)

    def _settle(self, entry: JournalEntry, known: PaymentOutcome | None) -> str:
        """Void the document and give the fee back; each done step is journalled at once."""
        stuck = ""
        if not entry.voided:
            if not entry.requested:
                self._journal.record_voided(entry.txn_id)          # no request: no document to void
            elif self._send_void(entry.request_id):
                self._journal.record_voided(entry.txn_id)
            else:
                stuck = "void_not_kept"
        if not entry.reversed:
            charged = self._charged(entry, known)
            if charged is None:                    # never charged (then it is settled once voided), or unknown
                stuck = stuck or "payment_unknown"
            else:
                try:
                    given = self._terminal.reverse(charged, reversal_id=reversal_id(entry.txn_id))
                except PaymentError as exc:
                    return self._give_up(entry, str(exc))
                if given.status is ReversalStatus.REVERSED:
                    self._journal.record_reversed(entry.txn_id)
                else:
                    stuck = stuck or "reversal_failed"
        result = self._outcome(entry.txn_id)
        if result == "pending":
            return self._retry_later(entry, stuck or "unfinished")
        return result

    def _settle_from_memory(self, entry: JournalEntry) -> str:
        """Owed while the journal could not be written: write it now if it can be, else void and give
        back from memory. The journal still shows the entry open, so the next start does it again,
        which changes nothing: the void and the reversal are each taken once, by their ids."""
        try:
            self._journal.settle(entry.txn_id, self._owed[entry.txn_id])
        except QueueError:
            pass
        else:
            del self._owed[entry.txn_id]
            current = self._journal.get(entry.txn_id)
            return self._settle(current, None) if current is not None else "settled"
        if entry.requested and not self._send_void(entry.request_id):
            return self._retry_later(entry, "void_not_kept")
        charged = self._charged_unjournalled(entry)
        if charged is not None:
            try:
                given = self._terminal.reverse(charged, reversal_id=reversal_id(entry.txn_id))
            except PaymentError as exc:
                log.error("reconciler.settlement_refused txn=%s sale_id=%s error=%s", entry.txn_id, entry.sale_id,
                          type(exc).__name__)
                self._alert(REFUSED_ALERT)
                del self._owed[entry.txn_id]
                return "dead"
            if given.status is not ReversalStatus.REVERSED:
                return self._retry_later(entry, "reversal_failed")
        elif entry.payment_id is None and self._terminal.status(entry.sale_id).status is PaymentStatus.UNKNOWN:
            return self._retry_later(entry, "payment_unknown")
        del self._owed[entry.txn_id]
        log.warning("reconciler.settled_from_memory txn=%s", entry.txn_id)
        return "settled"

    def _charged_unjournalled(self, entry: JournalEntry) -> PaymentOutcome | None:
        if entry.payment_id is not None:
            return PaymentOutcome(PaymentStatus.APPROVED, entry.amount, entry.sale_id, payment_id=entry.payment_id)
        known = self._terminal.status(entry.sale_id)
        if known.status is not PaymentStatus.APPROVED:
            return None
        return PaymentOutcome(PaymentStatus.APPROVED, entry.amount, entry.sale_id, payment_id=known.payment_id)

    def _charged(self, entry: JournalEntry, known: PaymentOutcome | None) -> PaymentOutcome | None:
        """The sale to give back, asking the terminal when its outcome was never written; None when
        nothing was charged or it cannot tell now."""
        payment_id = entry.payment_id
        if payment_id is None and known is None:
            known = self._terminal.status(entry.sale_id)
            if known.status is PaymentStatus.UNKNOWN:
                return None
            self._journal.record_payment(entry.txn_id, known)
        if payment_id is None and known is not None:
            if known.status is not PaymentStatus.APPROVED:
                return None
            payment_id = known.payment_id
        # The journal's amount, never one a terminal answered with: the fee the citizen paid.
        return PaymentOutcome(PaymentStatus.APPROVED, entry.amount, entry.sale_id, payment_id=payment_id)

    def _give_up(self, entry: JournalEntry, reason: str) -> str:
        self._journal.record_dead(entry.txn_id, reason)
        self._due.pop(entry.txn_id, None)
        log.error("reconciler.settlement_refused txn=%s sale_id=%s", entry.txn_id, entry.sale_id)
        self._alert(REFUSED_ALERT)
        return "dead"

    def _outcome(self, txn_id: str) -> str:
        current = self._journal.get(txn_id)
        if current is None or current.state in (TxnState.SETTLED, TxnState.NOT_CHARGED, TxnState.PRINTED):
            self._due.pop(txn_id, None)
            if current is not None:
                log.info("reconciler.finished txn=%s state=%s", txn_id, current.state.name)
            return "settled"
        if current.state is TxnState.DEAD:
            self._due.pop(txn_id, None)
            return "dead"
        return "pending"

    def _retry_later(self, entry: JournalEntry, why: str = "failed") -> str:
        """Count the attempt and hold the entry back: 2**n x retry_s at most (capped), jittered."""
        attempts = entry.attempts + 1
        try:
            self._journal.record_attempt(entry.txn_id)
        except Exception:
            log.exception("reconciler.attempt_unwritten txn=%s", entry.txn_id)
        ceiling = min(self._max_backoff_s, self._retry_s * 2 ** min(attempts - 1, 30))
        self._due[entry.txn_id] = self._clock() + self._jitter(ceiling)
        log.info("reconciler.retry_later txn=%s why=%s attempts=%d", entry.txn_id, why, attempts)
        return "pending"

    def _watch_claims(self) -> None:
        """Central's answers to the claims' requests: issued, the serial is written down; refused for good,
        the claim is settled. An entry that fails alone is logged and looked at again next time."""
        if self._claim_answer is None:
            return
        waiting = False
        for entry in self._journal.claims_awaiting():
            try:
                answer = self._claim_answer(entry.request_id)
                if answer is None:
                    waiting = True
                elif answer.get("status") == "issued":
                    document = answer.get("document")
                    serial = document.get("serial") if isinstance(document, dict) else None
                    # "" when the answer itself was deleted already (only its status is kept): issued all the same.
                    self._journal.record_issued(entry.txn_id, serial if isinstance(serial, str) else "")
                    log.info("reconciler.claim_issued txn=%s", entry.txn_id)
                else:
                    self._journal.settle(entry.txn_id, CLAIM_REFUSED)
                    log.warning("reconciler.claim_refused txn=%s reason=%s", entry.txn_id,
                                str(answer.get("reason") or answer.get("status"))[:60])
            except Exception:
                log.exception("reconciler.claim_watch_failed txn=%s", entry.txn_id)
                waiting = True
        self._claims_waiting = waiting

    def _void_dead_letters(self) -> None:
        """A dead settlement's fee is a technician's, but its document is still voided."""
        for entry in self._journal.dead():
            if entry.requested and not entry.voided:
                try:
                    if self._send_void(entry.request_id):
                        self._journal.record_voided(entry.txn_id)
                except Exception:
                    log.exception("reconciler.dead_void_failed txn=%s", entry.txn_id)
