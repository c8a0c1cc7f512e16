"""The simulated terminal's acquirer: every sale it took and every sum it gave back, in memory.

One lock guards it all, so the terminal's connection threads and the control
API's threads can use it at once. It is also the terminal's transaction log:
a TransactionStatusRequest is answered from it, with the very PaymentResponse
the terminal gave (or would have given) the first time. The simulator process
outlives the kiosk's restarts, so this is what a kiosk finds after one.

Ids: a sale's `payment_id` is its POI transaction id (what the terminal
answers in POIData.POITransactionID and the kiosk keeps as `payment_id`).
A sale is known by it, by the Sale's (SaleID, ServiceID) of its
PaymentRequest, and by (SaleID, SaleTransactionID), the kiosk's sale_id.
A reversal or a refund is known by (SaleID, its own SaleTransactionID), the
kiosk's reversal_id, so that asking again gives the same answer.
"""

from __future__ import annotations

import enum
import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from drivers.nexo.envelope import MessageHeader
from drivers.nexo.payment import PaymentResponse
from kiosk.money import Money
from kiosk.wire import AcquirerPaymentStatus


class SaleStatus(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"    # the bank (or the card) said no
    FAILED = "failed"        # taken by the terminal, never authorised: aborted, removed, timed out


class GivenBackKind(enum.Enum):
    REVERSAL = "reversal"    # the same day, before the cut-off
    REFUND = "refund"        # after the cut-off


def new_payment_id() -> str:
    return "poi-" + secrets.token_hex(8)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class GivenBack:
    kind: GivenBackKind
    given_back_id: str          # the kiosk's reversal_id
    payment_id: str             # of the sale given back
    poi_transaction_id: str     # the reversal's or refund's own POI transaction
    amount: Money
    at: str


@dataclass(frozen=True)
class Sale:
    """One sale as the terminal took it and the acquirer holds it."""

    payment_id: str
    sale_id: str                 # the kiosk's (SaleTransactionID.TransactionID)
    sale_system_id: str          # the Sale's SaleID (the kiosk's device id)
    service_id: str              # of its PaymentRequest
    terminal_id: str
    amount: Money
    method: str                  # "card" or "wallet"
    status: SaleStatus
    outcome: str                 # what happened at the terminal: approve, wrong-pin, aborted, timed-out, ...
    batch: int
    at: str
    answer: PaymentResponse = field(repr=False)          # the PaymentResponse the terminal gave
    answer_header: MessageHeader | None = field(default=None, repr=False)
    given_back: GivenBack | None = None

    def to_json(self) -> dict[str, Any]:
        return {"payment_id": self.payment_id, "sale_id": self.sale_id, "sale_system_id": self.sale_system_id,
                "terminal_id": self.terminal_id, "status": self.status.value, "outcome": self.outcome,
                "amount_minor": self.amount.amount_minor, "currency": self.amount.currency,
                "method": self.method, "batch": self.batch, "at": self.at,
                "given_back": self.given_back.kind.value if self.given_back else "",
                "given_back_id": self.given_back.given_back_id if self.given_back else ""}


class Acquirer:
    """Sales and give-backs; see the module docstring. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sales: dict[str, Sale] = {}                              # by payment_id, oldest first
        self._by_service: dict[tuple[str, str], str] = {}
        self._by_sale: dict[tuple[str, str], str] = {}
        self._given: dict[tuple[str, str], GivenBack] = {}              # by (SaleID, reversal_id)
        self._batch = 0

    @property
    def batch(self) -> int:
        with self._lock:
            return self._batch

    def cut_off(self) -> int:
        """Close the day's batch: what was taken before can only be refunded now. The new batch."""
        with self._lock:
            self._batch += 1
            return self._batch

    def record(self, sale: Sale) -> Sale:
        with self._lock:
            self._sales[sale.payment_id] = sale
            self._by_service[(sale.sale_system_id, sale.service_id)] = sale.payment_id
            self._by_sale[(sale.sale_system_id, sale.sale_id)] = sale.payment_id
        return sale

    def by_service(self, sale_system_id: str, service_id: str) -> Sale | None:
        with self._lock:
            payment_id = self._by_service.get((sale_system_id, service_id))
            return None if payment_id is None else self._sales[payment_id]

    def by_sale(self, sale_system_id: str, sale_id: str) -> Sale | None:
        with self._lock:
            payment_id = self._by_sale.get((sale_system_id, sale_id))
            return None if payment_id is None else self._sales[payment_id]

    def last_of(self, sale_system_id: str) -> Sale | None:
        with self._lock:
            return next((s for s in reversed(self._sales.values()) if s.sale_system_id == sale_system_id), None)

    def get(self, payment_id: str) -> Sale | None:
        with self._lock:
            return self._sales.get(payment_id)

    def given_back(self, sale_system_id: str, given_back_id: str) -> GivenBack | None:
        with self._lock:
            return self._given.get((sale_system_id, given_back_id))

    def give_back(self, sale_system_id: str, payment_id: str, kind: GivenBackKind, given_back_id: str) -> GivenBack:
        """Record the reversal or refund of an approved sale not yet given back (the caller checked)."""
        with self._lock:
            sale = self._sales[payment_id]
            if sale.status is not SaleStatus.APPROVED or sale.given_back is not None:
                raise ValueError("only an approved sale not given back yet can be given back")
            given = GivenBack(kind, given_back_id, payment_id, new_payment_id(), sale.amount, now_iso())
            self._sales[payment_id] = replace(sale, given_back=given)
            self._given[(sale_system_id, given_back_id)] = given
            return given

    def statement(self) -> dict[str, Any]:
        """Every sale and every give-back, oldest first, as JSON data."""
        with self._lock:
            sales = list(self._sales.values())
            given = list(self._given.values())
            batch = self._batch
        return {"batch": batch,
                "payments": [sale.to_json() for sale in sales],
                "given_back": [{"kind": g.kind.value, "given_back_id": g.given_back_id, "payment_id": g.payment_id,
                                "poi_transaction_id": g.poi_transaction_id, "amount_minor": g.amount.amount_minor,
                                "currency": g.amount.currency, "at": g.at} for g in given]}

    def look_up(self, payment_id: str) -> dict[str, Any] | None:
        """The payment as the acquirer API answers it (`kiosk.wire.ACQUIRER_PAYMENT`); None when the
        acquirer never saw it (unknown, or a sale the terminal ended before asking the bank)."""
        sale = self.get(payment_id)
        if sale is None or sale.status is SaleStatus.FAILED:
            return None
        if sale.status is SaleStatus.DECLINED:
            status = AcquirerPaymentStatus.DECLINED
        elif sale.given_back is None:
            status = AcquirerPaymentStatus.APPROVED
        elif sale.given_back.kind is GivenBackKind.REVERSAL:
            status = AcquirerPaymentStatus.REVERSED
        else:
            status = AcquirerPaymentStatus.REFUNDED
        return {"payment_id": sale.payment_id, "status": status.value, "amount_minor": sale.amount.amount_minor,
                "currency": sale.amount.currency, "terminal_id": sale.terminal_id, "sale_id": sale.sale_id}
