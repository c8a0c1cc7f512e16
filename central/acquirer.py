"""The acquirer, as central asks it about a payment before issuing a paid document.

Central approves and holds no payment: the kiosk pays through its payment
terminal, whose acquirer knows every payment by its id. Before a paid
document is issued, central looks the request's payment id up:

    GET {acquirer_url}/acquirer/v1/payments/{payment_id}
    200 {"payment_id", "status": "approved" | "declined" | "reversed" | "refunded",
         "amount_minor": int, "currency": str, "terminal_id": str, "sale_id": str}
    404 {"reason": "unknown_payment"}

The answer is read strictly. Anything else (no connection, a timeout, a 5xx,
a redirect, a 404 without that reason, a body of another shape, another
payment's answer) is UNREACHABLE: central cannot tell now, and the kiosk's
outbox asks again later. Only a well-formed 404 says a payment does not
exist, so a wrong acquirer URL never refuses a paid request for good.

Every call has a (connect, read) timeout; TLS certificates are verified,
against the system's authorities or a pinned CA file. Nothing here logs a
card number (the acquirer's answer carries none, and only its codes are
logged).
"""

from __future__ import annotations

import enum
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kiosk import wire
from kiosk.wire import AcquirerPaymentStatus

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0          # below the kiosk's wait for central's answer (10 s by default)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LARGEST_AMOUNT = 10 ** 12
_ANSWER_KEYS = ("payment_id", "status", "amount_minor", "currency", "terminal_id", "sale_id")

# What the transport may raise: requests' errors, the odd unwrapped urllib3 error,
# and an OSError (a pinned CA file gone since start-up).
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class LookupOutcome(enum.Enum):
    FOUND = "found"
    UNKNOWN = "unknown"             # the acquirer never saw this payment id: final
    UNREACHABLE = "unreachable"     # no usable answer now: ask again later


@dataclass(frozen=True)
class AcquiredPayment:
    """A payment as the acquirer holds it. The amount stays in minor units with its
    currency code as given, even a currency the kiosk does not handle (it then
    simply is not the fee)."""

    payment_id: str
    status: AcquirerPaymentStatus
    amount_minor: int
    currency: str
    terminal_id: str
    sale_id: str


@dataclass(frozen=True)
class PaymentLookup:
    outcome: LookupOutcome
    payment: AcquiredPayment | None = None      # set when FOUND


UNREACHABLE = PaymentLookup(LookupOutcome.UNREACHABLE)
UNKNOWN = PaymentLookup(LookupOutcome.UNKNOWN)


class _Garbled(Exception):
    """The acquirer's answer does not have the agreed shape."""


def _payment(payment_id: str, data: Any) -> AcquiredPayment:
    """The payment in a 200 answer to the look-up of `payment_id`, checked before it is built."""
    if not isinstance(data, dict):
        raise _Garbled("not an object")
    missing = [key for key in _ANSWER_KEYS if key not in data]
    if missing:
        raise _Garbled("no %s" % missing[0])
    if data["payment_id"] != payment_id:
        raise _Garbled("another payment's answer")
    try:
        status = AcquirerPaymentStatus(data["status"])
    except ValueError:
        raise _Garbled("unknown status") from None
    amount = data["amount_minor"]
    if type(amount) is not int or not 0 <= amount <= _LARGEST_AMOUNT:
        raise _Garbled("amount_minor is not a whole number of minor units")
    currency = data["currency"]
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise _Garbled("currency is not a currency code")
    for key in ("terminal_id", "sale_id"):
        if not isinstance(data[key], str):
            raise _Garbled("%s is not text" % key)
    return AcquiredPayment(payment_id=payment_id, status=status, amount_minor=amount, currency=currency,
                           terminal_id=data["terminal_id"], sale_id=data["sale_id"])


def _is_unknown_payment(response: requests.Response) -> bool:
    try:
        answer = response.json()
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("reason") == wire.UNKNOWN_PAYMENT


class AcquirerClient:
    """The acquirer's payment look-up, over one HTTP session (shared between central's
    request threads: it is set up here and not changed afterwards).

    `ca_file` (a PEM file of certificate authorities) pins the acquirer's CA: its
    certificate is then checked against it instead of the system's authorities.
    """

    def __init__(self, base_url: str, *, ca_file: str | os.PathLike[str] | None = None,
                 timeout_s: float = READ_TIMEOUT_S) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("the acquirer's URL must start with https:// (or http:// on a closed network)")
        if ca_file is not None and not os.path.exists(ca_file):
            raise FileNotFoundError("the acquirer's CA file %s does not exist" % os.fspath(ca_file))
        self.base_url = base_url.rstrip("/")
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        self._verify: str | bool = os.fspath(ca_file) if ca_file is not None else True
        self._http = requests.Session()
        self._http.verify = self._verify
        self._http.headers["User-Agent"] = "kiosk-central"
        # Each look-up is sent once: the kiosk's outbox asks again later, not this thread now.
        for scheme in ("http://", "https://"):
            self._http.mount(scheme, HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False)))

    def look_up(self, payment_id: str) -> PaymentLookup:
        """The payment `payment_id` as the acquirer holds it; UNKNOWN when it holds none,
        UNREACHABLE when it gave no usable answer."""
        try:
            # `verify` on each call, so that a CA bundle named in the environment
            # (REQUESTS_CA_BUNDLE) cannot replace a pinned CA. Redirects are not followed.
            response = self._http.get(self.base_url + wire.acquirer_payment_path(payment_id),
                                      timeout=self._timeout, verify=self._verify, allow_redirects=False)
        except _TRANSPORT_ERRORS as exc:
            log.warning("acquirer.unreachable payment_id=%s error=%s", payment_id, type(exc).__name__)
            return UNREACHABLE
        if response.status_code == 404 and _is_unknown_payment(response):
            log.info("acquirer.unknown_payment payment_id=%s", payment_id)
            return UNKNOWN
        if response.status_code != 200:
            log.warning("acquirer.unavailable payment_id=%s http=%d", payment_id, response.status_code)
            return UNREACHABLE
        try:
            payment = _payment(payment_id, response.json())
        except (ValueError, _Garbled) as exc:     # ValueError: not JSON at all
            log.error("acquirer.answer_garbled payment_id=%s problem=%s", payment_id,
                      exc if isinstance(exc, _Garbled) else "not JSON")
            return UNREACHABLE
        return PaymentLookup(LookupOutcome.FOUND, payment)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AcquirerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
