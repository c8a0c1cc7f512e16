"""Where each outbox message goes: refunds to the payment side, the rest to central."""

from __future__ import annotations

from kiosk.ports.central import Central
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.outbox import Deliver
from kiosk.ports.payment_terminal import PaymentStatus, PaymentTerminal, RefundStatus


def make_deliver(central: Central, payment: PaymentTerminal) -> Deliver:
    def deliver(kind: MessageKind | str, payload: dict) -> dict | None:
        if kind != MessageKind.REFUND:
            return central.deliver(kind, payload)
        return _refund(payment, payload)

    return deliver


def _refund(payment: PaymentTerminal, payload: dict) -> dict | None:
    amount = Money.from_json(payload["amount"])
    payment_id = payload["payment_id"]
    if payment_id is None:
        # The charge's answer was lost: ask again by its id (answered idempotently).
        outcome = payment.charge(amount, charge_id=payload["charge_id"], reference=payload["refund_id"])
        if outcome.status is PaymentStatus.UNKNOWN:
            return None
        if outcome.status is not PaymentStatus.APPROVED:
            return {"status": "nothing_to_refund"}
        payment_id = outcome.payment_id
    refund = payment.refund(payment_id, amount, refund_id=payload["refund_id"])
    return {"status": "refunded"} if refund.status is RefundStatus.REFUNDED else None
