"""`PaymentTerminal` in process: a bank that approves, unless told otherwise.

It keeps the gateway's rules (central/gateway.py): a charge_id or a
refund_id asked again with the same request gets the same answer and never
a second charge or refund; the same id with another amount is a caller's
bug (PaymentError, as the gateway's 409); a refund never takes back more
than was charged (PaymentError, as the gateway's 422). A test scripts the
next new charge's outcome as central's ``/gateway/sim/next-outcome`` does:

    DECLINED   the card is declined (kept: asking again gives the decline)
    FAILED     nothing is charged and nothing kept (the terminal or the
               acquirer is down); the same charge_id may be asked again
    UNKNOWN    the charge goes through but its answer is lost; asking again
               with the same charge_id gives the approval

`set_online(False)` takes the terminal off the network: every charge and
refund FAILED, nothing scripted used up. `statement` is what the bank holds.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk import wire
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import (
    PaymentOutcome, PaymentStatus, PaymentTerminal, RefundOutcome, RefundStatus,
)

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

# The most the gateway takes as an amount (central/wire.py); its ids are `kiosk.wire.is_id`.
MAX_AMOUNT_MINOR = 10 ** 12


@dataclass(frozen=True)
class FakeRefund:
    refund_id: str
    payment_id: str
    amount: Money


@dataclass(frozen=True)
class FakeCharge:
    """One charge as the bank holds it (APPROVED or DECLINED), with its refunds."""

    charge_id: str
    payment_id: str
    amount: Money
    reference: str
    status: PaymentStatus
    refunds: tuple[FakeRefund, ...] = ()

    @property
    def refunded(self) -> Money:
        total = Money(self.amount.currency, 0)
        for refund in self.refunds:
            total = total + refund.amount
        return total


@dataclass
class _Charge:
    charge_id: str
    payment_id: str
    amount: Money
    reference: str
    status: PaymentStatus
    refunds: list[FakeRefund] = field(default_factory=list)

    def snapshot(self) -> FakeCharge:
        return FakeCharge(self.charge_id, self.payment_id, self.amount, self.reference, self.status,
                          tuple(self.refunds))


class FakePaymentTerminal(PaymentTerminal):
    """A payment terminal in process: instant, thread-safe, scripted by tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._online = True
        self._scripted: collections.deque[PaymentStatus] = collections.deque()
        self._charges: dict[str, _Charge] = {}            # by charge_id, oldest first
        self._by_payment: dict[str, _Charge] = {}
        self._refunds: dict[str, FakeRefund] = {}

    def __repr__(self) -> str:
        with self._lock:
            return "FakePaymentTerminal(online=%s, charges=%d, refunds=%d)" % (
                self._online, len(self._charges), len(self._refunds))

    # -- the world, as a test changes it -----------------------------------------------------------

    def script(self, *outcomes: PaymentStatus) -> None:
        """The next new charges get these outcomes, in order; then approvals again."""
        for outcome in outcomes:
            if not isinstance(outcome, PaymentStatus):
                raise TypeError("an outcome is a PaymentStatus")
        with self._lock:
            self._scripted.extend(outcomes)
        for outcome in outcomes:
            log.info("payment.outcome_scripted outcome=%s", outcome.name)

    def set_online(self, online: bool = True) -> None:
        """Off line, every charge and refund is FAILED and reaches no bank."""
        with self._lock:
            changed, self._online = self._online != online, online
        if changed:
            log.info("payment.terminal_%s", "online" if online else "offline")

    @property
    def statement(self) -> tuple[FakeCharge, ...]:
        """Every charge the bank holds, oldest first, with its refunds."""
        with self._lock:
            return tuple(charge.snapshot() for charge in self._charges.values())

    @property
    def refunds(self) -> tuple[FakeRefund, ...]:
        """Every refund, oldest first."""
        with self._lock:
            return tuple(self._refunds.values())

    # -- PaymentTerminal ------------------------------------------------------------------------------

    def charge(self, amount: Money, *, charge_id: str, reference: str) -> PaymentOutcome:
        def outcome(status: PaymentStatus, payment_id: str | None = None) -> PaymentOutcome:
            log.info("payment.charge charge_id=%s status=%s", charge_id, status.name)
            return PaymentOutcome(status=status, amount=amount, charge_id=charge_id, payment_id=payment_id)

        _check_request("charge", charge_id, amount, charge_id=charge_id, reference=reference)
        with self._lock:
            if not self._online:
                return outcome(PaymentStatus.FAILED)
            known = self._charges.get(charge_id)
            if known is not None:
                if known.amount != amount:
                    raise PaymentError("payment refused charge %s: charge_id_reused" % charge_id)
                if known.status is PaymentStatus.DECLINED:
                    return outcome(PaymentStatus.DECLINED)
                return outcome(PaymentStatus.APPROVED, known.payment_id)
            scripted = self._scripted.popleft() if self._scripted else PaymentStatus.APPROVED
            if scripted is PaymentStatus.FAILED:
                return outcome(PaymentStatus.FAILED)
            charge = _Charge(charge_id=charge_id, payment_id="pay_" + secrets.token_hex(8), amount=amount,
                             reference=reference,
                             status=PaymentStatus.DECLINED if scripted is PaymentStatus.DECLINED
                             else PaymentStatus.APPROVED)
            self._charges[charge_id] = charge
            self._by_payment[charge.payment_id] = charge
        if scripted is PaymentStatus.UNKNOWN:
            return outcome(PaymentStatus.UNKNOWN)
        if charge.status is PaymentStatus.DECLINED:
            return outcome(PaymentStatus.DECLINED)
        return outcome(PaymentStatus.APPROVED, charge.payment_id)

    def refund(self, payment_id: str, amount: Money, *, refund_id: str) -> RefundOutcome:
        def outcome(status: RefundStatus) -> RefundOutcome:
            log.info("payment.refund refund_id=%s status=%s", refund_id, status.name)
            return RefundOutcome(status=status, payment_id=payment_id, refund_id=refund_id)

        def refused(reason: str) -> PaymentError:
            return PaymentError("payment refused refund %s: %s" % (refund_id, reason))

        _check_request("refund", refund_id, amount, refund_id=refund_id, payment_id=payment_id)
        with self._lock:
            if not self._online:
                return outcome(RefundStatus.FAILED)
            known = self._refunds.get(refund_id)
            if known is not None:
                if (known.payment_id, known.amount) != (payment_id, amount):
                    raise refused("refund_id_reused")
                return outcome(RefundStatus.REFUNDED)
            charge = self._by_payment.get(payment_id)
            if charge is None:
                raise refused("unknown_payment")
            if charge.status is not PaymentStatus.APPROVED:
                raise refused("not_refundable")
            if charge.amount.currency != amount.currency:
                raise refused("currency_mismatch")
            if charge.snapshot().refunded.amount_minor + amount.amount_minor > charge.amount.amount_minor:
                raise refused("exceeds_charge")
            refund = FakeRefund(refund_id=refund_id, payment_id=payment_id, amount=amount)
            charge.refunds.append(refund)
            self._refunds[refund_id] = refund
        return outcome(RefundStatus.REFUNDED)


def _check_request(kind: str, key: str, amount: Money, **ids: str) -> None:
    """The gateway refuses a malformed request outright (its 422): a caller's bug, PaymentError."""
    for name, value in ids.items():
        if not wire.is_id(value):
            raise PaymentError("payment refused %s: invalid %s" % (kind, name))
    if not isinstance(amount, Money) or not 0 < amount.amount_minor <= MAX_AMOUNT_MINOR:
        raise PaymentError("payment refused %s %s: invalid amount" % (kind, key))


def from_config(config: KioskConfig) -> FakePaymentTerminal:
    """The `fake` payment backend: on line, approving every charge."""
    return FakePaymentTerminal()
