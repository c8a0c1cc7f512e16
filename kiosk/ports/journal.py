"""The transaction journal: every paid transaction, written down before any charge.

The runtime records each fact as soon as it is known (the sale asked, its
outcome, the document requested, issued and printed); a settlement (giving
the fee back, voiding the document) is recorded as owed and carried out by
the reconciler. A transaction is finished when its document is printed, or
when nothing was charged, or when what was charged is given back and its
document voided, or when it became a claim: paid while central could not be
reached, its request kept in the outbox as a claim, its document owed by
central to the citizen (collected at any kiosk). After a crash, every
unfinished transaction of an earlier run is settled by the reconciler; a
claim is never given back unless central refuses its request for good.

No personal data is journalled: ids, the service code, the amount, the
document's serial.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from kiosk.money import Money
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome


class TxnState(enum.Enum):
    """Where a transaction stands; later states never go back to earlier ones."""

    OPENED = "opened"            # written before the terminal was asked: the sale may or may not exist
    APPROVED = "approved"        # the terminal approved the sale
    REQUESTED = "requested"      # the certificate request is in the outbox: central may issue it
    ISSUED = "issued"            # central issued the document (its serial is known)
    PRINTED = "printed"          # the printer took the whole document: finished
    NOT_CHARGED = "not_charged"  # declined, failed or never taken by the terminal: finished
    SETTLING = "settling"        # to be given back and voided by the reconciler
    SETTLED = "settled"          # given back (or never charged) and voided: finished
    DEAD = "dead"                # the payment side refused the settlement for good: for a technician
    CLAIMED = "claimed"          # paid offline, its request kept as a claim: central owes the document; finished
                                 # (given back only when central refuses the request for good)


FINISHED = frozenset({TxnState.PRINTED, TxnState.NOT_CHARGED, TxnState.SETTLED, TxnState.CLAIMED})


@dataclass(frozen=True)
class JournalEntry:
    txn_id: str
    sale_id: str
    request_id: str
    service_code: str
    amount: Money
    method: PaymentMethod
    state: TxnState
    run_id: str                      # the runtime that opened it; another run's unfinished entry is the reconciler's
    payment_id: str | None = None    # the acquirer's reference, once approved
    serial: str | None = None        # the document's, once issued
    requested: bool = False          # the certificate request went to the outbox: its document must be voided
    settle_reason: str = ""          # why it is being settled (no personal data)
    reversed: bool = False           # the fee was given back
    voided: bool = False             # the void of its document is in the outbox (or no document could exist)
    attempts: int = 0                # settlement attempts so far
    dead_reason: str = ""
    opened_at: float = 0.0
    updated_at: float = 0.0
    offline: bool = False            # charged while central could not be reached (a claim): counts to the day's cap


class Journal(abc.ABC):
    @abc.abstractmethod
    def open(self, entry: JournalEntry) -> None:
        """Write a new transaction, durably, before the terminal is asked; JournalError when it
        cannot be written (then nothing may be charged)."""

    @abc.abstractmethod
    def record_payment(self, txn_id: str, outcome: PaymentOutcome) -> None:
        """The sale's outcome: APPROVED (with payment_id), or finished as NOT_CHARGED;
        UNKNOWN leaves it OPENED for the reconciler to ask. On a transaction settled before its
        outcome was known (SETTLING, no payment_id), APPROVED gives the payment to reverse, and
        DECLINED or FAILED says there is none (SETTLED once voided)."""

    @abc.abstractmethod
    def record_requested(self, txn_id: str) -> None:
        """The certificate request is in the outbox."""

    @abc.abstractmethod
    def record_issued(self, txn_id: str, serial: str) -> None: ...

    @abc.abstractmethod
    def record_printed(self, txn_id: str) -> None:
        """The printer took the whole document: the transaction is finished."""

    @abc.abstractmethod
    def record_claimed(self, txn_id: str) -> None:
        """The request of a transaction paid offline is in the outbox as a claim: finished as CLAIMED.
        Central's answer comes later: `record_issued` then keeps its serial (still CLAIMED), and a
        refusal is `settle`d."""

    @abc.abstractmethod
    def claims_awaiting(self) -> list[JournalEntry]:
        """Every CLAIMED transaction whose document central has not yet been seen to issue, oldest first."""

    @abc.abstractmethod
    def offline_total(self, currency: str, since: float, until: float) -> int:
        """Minor units charged offline (claims) in `currency` by transactions opened in [since, until)
        (wall time), not counting what was never charged or was given back."""

    @abc.abstractmethod
    def settle(self, txn_id: str, reason: str) -> None:
        """Give the fee back and void the document: the reconciler will, durably. Does nothing
        on a finished (but a claim, whose request central refused), dead or already settling
        transaction (the first reason stands)."""

    @abc.abstractmethod
    def record_reversed(self, txn_id: str) -> None: ...

    @abc.abstractmethod
    def record_voided(self, txn_id: str) -> None:
        """The void is durably in the outbox (or no document can have been issued)."""

    @abc.abstractmethod
    def record_attempt(self, txn_id: str) -> None: ...

    @abc.abstractmethod
    def record_dead(self, txn_id: str, reason: str) -> None:
        """The payment side refused the settlement for good: kept for a technician, never retried."""

    @abc.abstractmethod
    def get(self, txn_id: str) -> JournalEntry | None: ...

    @abc.abstractmethod
    def unfinished(self) -> list[JournalEntry]:
        """Every transaction not finished and not dead, oldest first."""

    @abc.abstractmethod
    def dead(self) -> list[JournalEntry]: ...


class Reconciler(abc.ABC):
    """Settles what the journal owes (offline/reconciler.py): at start-up, when woken, and now and then."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start settling in the background, with a first pass at once."""

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def wake(self) -> None:
        """Something is owed now: a pass soon rather than at the next period."""

    @abc.abstractmethod
    def owe(self, txn_id: str, reason: str) -> None:
        """Give this transaction's fee back and void its document: written in the journal, then done
        by the next pass. When the journal cannot be written (a full disk), it is still done, from
        memory, and done again (idempotently) after the next start."""
