"""A payment terminal that charges through the gateway's HTTP API.

The gateway (central/gateway.py simulates one) answers a charge_id or a
refund_id idempotently, so after a lost answer the caller asks again with
the same id. What the link did decides the outcome:

- the request never left (no connection could be made: refused, timed out,
  the gateway's certificate refused): FAILED, nothing was charged;
- the gateway says so (503 with ``"charged": false``): FAILED;
- the request left but no readable answer came back (timeout, dropped
  connection, another 5xx, garbled JSON): UNKNOWN, ask again;
- an answer that can never succeed (the charge_id reused with another
  amount, a body the gateway calls invalid): PaymentError.

Every call has a timeout, TLS certificates are always verified, and nothing
is retried by the transport: a charge or a refund is asked again only by its
caller, under the same id.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kiosk.ports.payment_terminal import (PaymentOutcome, PaymentStatus, PaymentTerminal, RefundOutcome,
                                      RefundStatus)
from kiosk.errors import PaymentError
from kiosk.money import Money

log = logging.getLogger(__name__)

# Connecting takes at most this long (or timeout_s, when shorter); waiting for
# the answer takes up to timeout_s.
CONNECT_TIMEOUT_S = 3.0

# What the transport itself may raise: requests' errors, the odd urllib3 error
# that requests lets through unwrapped, and an OSError (a pinned CA file gone).
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)

# Raised before a byte of the request was sent: the gateway cannot have acted on it.
_UNUSABLE_URL = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                 requests.exceptions.MissingSchema)
# The causes, inside requests' ConnectionError, of a connection that was never made:
# urllib3's ConnectTimeoutError covers a refused or unroutable connection and an
# unknown name too (NewConnectionError and NameResolutionError are kinds of it).
_NOT_CONNECTED = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ClosedPoolError,
                  ssl.SSLCertVerificationError)


def _never_sent(exc: Exception) -> bool:
    """Whether `exc` was raised before the request left the kiosk.

    requests raises ConnectionError both for a connection that could not be made
    and for one dropped after the request was sent, so the cause decides: the
    urllib3 error inside (unwrapped from MaxRetryError, a proxy error, a TLS error)
    must be one of a connection never made. A TLS error counts only when the
    gateway's certificate was refused, which happens in the handshake, before the
    request; any other TLS error may come while the answer is read. Anything that
    cannot be told apart counts as sent (UNKNOWN), which is always safe to ask again.
    """
    if isinstance(exc, (requests.exceptions.ConnectTimeout, *_UNUSABLE_URL)):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    cause: object = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.ProxyError):
        cause = cause.original_error
    if isinstance(cause, urllib3.exceptions.SSLError):
        cause = cause.args[0] if cause.args else None
    return isinstance(cause, _NOT_CONNECTED)


def _reason(answer: Any) -> str:
    reason = answer.get("reason") if isinstance(answer, dict) else None
    return reason if isinstance(reason, str) and reason.isidentifier() else "unreadable"


class GatewayPaymentTerminal(PaymentTerminal):
    """The gateway's API for one kiosk, over one session.

    `ca_file` (a PEM file of certificate authorities) pins the gateway's CA: its
    certificate is then checked against it instead of the system's authorities.
    """

    def __init__(self, base_url: str, *, device_id: str, timeout_s: float = 60.0,
                 ca_file: str | os.PathLike[str] | None = None) -> None:
        self._device_id = device_id
        self._base = base_url.rstrip("/") + "/api/v1/gateway"
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        if ca_file is not None and not os.path.exists(ca_file):
            raise FileNotFoundError("the gateway's CA file %s does not exist" % os.fspath(ca_file))
        self._http = requests.Session()
        self._http.verify = os.fspath(ca_file) if ca_file is not None else True
        for scheme in ("http://", "https://"):
            # Sent once: a charge is never repeated behind its caller's back.
            self._http.mount(scheme, HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False)))

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict) -> requests.Response | PaymentStatus:
        """The gateway's response, or FAILED (not sent) / UNKNOWN (sent, no answer).

        `verify` is passed on each call so that a CA bundle named in the environment
        (REQUESTS_CA_BUNDLE) cannot replace a pinned CA. Redirects are not followed."""
        try:
            return self._http.post(self._base + path, json=body, timeout=self._timeout, verify=self._http.verify,
                                   allow_redirects=False)
        except _TRANSPORT_ERRORS as exc:
            if _never_sent(exc):
                log.warning("payment.gateway_unreachable path=%s error=%s", path, type(exc).__name__)
                return PaymentStatus.FAILED
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


def from_config(config) -> GatewayPaymentTerminal:
    """The `gateway` payment backend: the gateway beside central at `central.url`, waiting up to
    `payment.timeout_s` for an answer."""
    return GatewayPaymentTerminal(config.central.url, device_id=config.device_id, timeout_s=config.payment.timeout_s)
