"""A payment terminal that charges through the gateway's HTTP API.

The gateway (central/gateway.py simulates one) answers a charge_id or a
refund_id idempotently, so after a lost answer the caller asks again with
the same id. What the link did decides the outcome:

- the request never left (no connection): FAILED, nothing was charged;
- the gateway says so (503 with ``"charged": false``): FAILED;
- the request left but no readable answer came back (timeout, dropped
  connection, another 5xx, garbled JSON): UNKNOWN, ask again;
- an answer that can never succeed (the charge_id reused with another
  amount, a body the gateway calls invalid): PaymentError.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from kiosk.ports.payment_terminal import (PaymentOutcome, PaymentStatus, PaymentTerminal, RefundOutcome,
                                      RefundStatus)
from kiosk.errors import PaymentError
from kiosk.money import Money

log = logging.getLogger(__name__)

# Raised before a byte of the request was sent: the gateway cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _reason(answer: Any) -> str:
    reason = answer.get("reason") if isinstance(answer, dict) else None
    return reason if isinstance(reason, str) and reason.isidentifier() else "unreadable"


class GatewayPaymentTerminal(PaymentTerminal):
    def __init__(self, base_url: str, *, device_id: str, timeout_s: float = 60.0) -> None:
        self._device_id = device_id
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1/gateway", timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict) -> httpx.Response | PaymentStatus:
        """The gateway's response, or FAILED (not sent) / UNKNOWN (sent, no answer)."""
        try:
            return self._http.post(path, json=body)
        except _NOT_SENT as exc:
            log.warning("payment.gateway_unreachable path=%s error=%s", path, type(exc).__name__)
            return PaymentStatus.FAILED
        except httpx.HTTPError as exc:
            log.warning("payment.answer_lost path=%s error=%s", path, type(exc).__name__)
            return PaymentStatus.UNKNOWN

    def charge(self, amount: Money, *, charge_id: str, reference: str) -> PaymentOutcome:
        """`reference` (e.g. the request id) goes to the gateway: letters, digits, ``_.:-`` only."""
        def outcome(status: PaymentStatus, payment_id: str | None = None) -> PaymentOutcome:
            log.info("payment.charge charge_id=%s status=%s", charge_id, status.name)
            return PaymentOutcome(status=status, amount=amount, charge_id=charge_id, payment_id=payment_id)

        response = self._post("/charges", {"charge_id": charge_id, "amount_minor": amount.amount_minor,
                                           "currency": amount.currency, "device_id": self._device_id,
                                           "reference": reference})
        if isinstance(response, PaymentStatus):
            return outcome(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 503 and isinstance(answer, dict) and answer.get("charged") is False:
            return outcome(PaymentStatus.FAILED)
        if response.status_code >= 500:
            return outcome(PaymentStatus.UNKNOWN)
        if response.status_code != 200:
            raise PaymentError("gateway refused charge %s: HTTP %d, %s"
                               % (charge_id, response.status_code, _reason(answer)))
        if (not isinstance(answer, dict) or answer.get("charge_id") != charge_id
                or answer.get("amount_minor") != amount.amount_minor or answer.get("currency") != amount.currency
                or answer.get("status") not in ("approved", "declined")
                or not isinstance(answer.get("payment_id"), str)):
            log.error("payment.answer_garbled charge_id=%s", charge_id)
            return outcome(PaymentStatus.UNKNOWN)
        if answer["status"] == "declined":
            return outcome(PaymentStatus.DECLINED)
        return outcome(PaymentStatus.APPROVED, answer["payment_id"])

    def refund(self, payment_id: str, amount: Money, *, refund_id: str) -> RefundOutcome:
        def outcome(status: RefundStatus) -> RefundOutcome:
            log.info("payment.refund refund_id=%s status=%s", refund_id, status.name)
            return RefundOutcome(status=status, payment_id=payment_id, refund_id=refund_id)

        response = self._post("/refunds", {"refund_id": refund_id, "payment_id": payment_id,
                                           "amount_minor": amount.amount_minor, "currency": amount.currency})
        if isinstance(response, PaymentStatus):
            return outcome(RefundStatus.FAILED)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500:
            return outcome(RefundStatus.FAILED)
        if response.status_code != 200:
            raise PaymentError("gateway refused refund %s: HTTP %d, %s"
                               % (refund_id, response.status_code, _reason(answer)))
        if (not isinstance(answer, dict) or answer.get("status") != "refunded"
                or answer.get("refund_id") != refund_id or answer.get("amount_minor") != amount.amount_minor):
            log.error("payment.answer_garbled refund_id=%s", refund_id)
            return outcome(RefundStatus.FAILED)
        return outcome(RefundStatus.REFUNDED)
