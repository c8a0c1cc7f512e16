"""The bank-card payment terminal as the kiosk sees it.

A charge and a refund each carry an idempotency key chosen by the kiosk, so a
retry after a lost answer never charges twice. Normal outcomes (approved,
declined, terminal unreachable) are values, never exceptions.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from kiosk.money import Money


class PaymentStatus(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"        # no charge was made (terminal or link down, cancelled)
    UNKNOWN = "unknown"      # the answer was lost: the same charge_id must be asked again


class RefundStatus(enum.Enum):
    REFUNDED = "refunded"
    FAILED = "failed"        # not refunded yet: retry with the same refund_id


@dataclass(frozen=True)
class PaymentOutcome:
    status: PaymentStatus
    amount: Money
    charge_id: str
    payment_id: str | None = None   # the acquirer's reference, set when APPROVED


@dataclass(frozen=True)
class RefundOutcome:
    status: RefundStatus
    payment_id: str
    refund_id: str


class PaymentTerminal(abc.ABC):
    @abc.abstractmethod
    def charge(self, amount: Money, *, charge_id: str, reference: str) -> PaymentOutcome:
        """Take `amount` from the citizen's bank card. Blocks until the card
        is presented and the acquirer answers, or the terminal times out."""

    @abc.abstractmethod
    def refund(self, payment_id: str, amount: Money, *, refund_id: str) -> RefundOutcome:
        """Give back a charge in full."""
