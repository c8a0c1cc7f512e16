"""The payment terminal over nexo Sale to POI (3.0, JSON) on TCP, optionally inside TLS.

The kiosk is the Sale System (its SaleID is the kiosk's `device_id`); the
terminal is the POI (its POIID is `payment.poi_id`, or the one it answers
the first Login with). Each exchange has its own connection: connect (and
TLS, against a pinned CA when `payment.tls_ca` is set), send one request,
read until its response, close. An AbortRequest therefore travels on a
connection of its own while the payment's connection waits. Frames are
length-prefixed (`drivers.nexo.framing`).

A sale, `pay`:

1. Login, once (again after the terminal answers LoggedOut, or after a
   connection failed: a terminal that restarted has forgotten it);
2. a DisplayRequest to the terminal's CustomerDisplay with the label (the
   service and the fee), so the citizen sees them on the terminal itself;
3. the PaymentRequest: SaleTransactionID.TransactionID is the kiosk's
   sale_id, PaymentType Normal, and for a wallet PaymentInstrumentType
   Mobile. Its ServiceID is derived from the sale_id (`service_id_for`), so
   a TransactionStatusRequest can name it after a restart, when the journal
   holds nothing but the sale_id. While it waits, the terminal's
   EventNotification CardInserted becomes a PROCESSING prompt and its
   DisplayRequest with a QR-code OutputBarcode a SCAN_QR prompt (the
   barcode's value, and MinimumDisplayTime as the seconds it stays payable).
   When `timeout_s` passes without an answer, the driver aborts the sale and
   waits `abort_grace_s` more for its answer.

What the link did decides FAILED or UNKNOWN, as for every payment driver:

- the PaymentRequest never left (no connection, TLS refused, or the Login
  or the display before it failed): FAILED, nothing was charged;
- the terminal answered that it did not take it (Busy, LoggedOut twice):
  FAILED, nothing was charged;
- the request left but no readable answer to it came back (a timeout with
  the abort unanswered, the connection dropped, a garbled, truncated or
  out-of-sequence message, another sale's answer): UNKNOWN. `status`
  then asks the terminal with a TransactionStatusRequest, and `pay` with a
  sale_id this driver already sent answers as `status` does: never a
  second charge.

The terminal's Failure says why: ErrorCondition, and the refusal reason in
AdditionalResponse (`failure_of`). `reverse` sends a ReversalRequest for
the original POI transaction (looked up by TransactionStatus first: its
POITransactionID and amount must match); when the terminal refuses it with
NotAllowed (the day's batch is closed: nexo has no narrower condition), it
gives the money back by a referenced refund, a PaymentRequest of
PaymentType Refund naming the OriginalPOITransaction, which needs no card.
Both carry the reversal_id as their SaleTransactionID, and the terminal
treats a repeated id as the same reversal. NotFound, Refusal (an amount
that does not match, a sale already given back) and MessageFormat are
final: PaymentError.

Logs carry ids, categories and outcomes; never a card number, not even
masked (the receipt is the only place the last four digits go).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import re
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote_plus

from drivers.nexo.enums import (
    Device, ErrorCondition, EventToNotify, InfoQualify, MessageCategory, MessageClass, MessageType,
    PaymentInstrumentType, PaymentType, ReversalReason,
)
from drivers.nexo.envelope import Message, MessageHeader, decode, encode, expect_answer
from drivers.nexo.errors import NexoProtocolError
from drivers.nexo.framing import DEFAULT_MAX_FRAME, read_frame, write_frame
from drivers.nexo.messages import (
    AbortRequest, DisplayOutput, DisplayRequest, DisplayResponse, EventNotification, LoginRequest, LoginResponse,
    MessageReference, OutputResult, Response, TransactionIdentification, success,
)
from drivers.nexo.payment import (
    OriginalPOITransaction, PaymentRequest, PaymentResponse, ReversalRequest, ReversalResponse,
    TransactionStatusRequest, TransactionStatusResponse,
)
from kiosk import wire
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import (
    CardReceipt, OnPrompt, PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus,
    PaymentTerminal, PromptKind, ReversalOutcome, ReversalStatus, TerminalState,
)

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

# Market Pay's Local API (a nexo 3.1 JSON terminal on a raw socket) listens on 7778
# ("integrated"); nexo itself fixes no port. The configuration's default.
DEFAULT_PORT = 7778
CONNECT_TIMEOUT_S = 3.0       # connecting (and the TLS handshake), at most
ANSWER_TIMEOUT_S = 10.0       # a Login, a display, a status, a reversal or a refund
ABORT_GRACE_S = 5.0           # after aborting a sale that timed out, for its answer
APPLICATION_NAME = "citizen-kiosk"
SOFTWARE_VERSION = "0.1.0"
MAX_AMOUNT_MINOR = 10 ** 12
MAX_LABEL = 1024
ASKED_MEMORY = 512            # sale_ids whose PaymentRequest this driver sent, most recent kept
ABORT_REASON = "MerchantAbort"

_LINK_ERRORS = (OSError, ssl.SSLError)
_TIMEOUT_WORDS = ("did not present", "timeout", "timed out", "expired")


def service_id_for(sale_id: str) -> str:
    """The ServiceID of the PaymentRequest for `sale_id`: ten hex digits of its SHA-256, so that
    the same sale is named the same after a restart."""
    return hashlib.sha256(("sale:" + sale_id).encode("utf-8")).hexdigest()[:10]


def _new_id() -> str:
    return secrets.token_hex(5)          # a ServiceID or DeviceID: at most ten characters


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def failure_of(response: Response, *, timed_out: bool = False) -> tuple[PaymentStatus, PaymentReason] | None:
    """The status and reason of a payment the terminal answered with Failure; None when the
    answer says nothing sure about the sale (NotFound for a payment). `timed_out`: the
    driver itself aborted it because its wait ran out, so Aborted means TIMED_OUT.

    ErrorCondition decides; within one, the refusal reason in AdditionalResponse (Adyen's
    `refusalReason` and `message`, form-encoded) refines it: "Not enough balance",
    "Expired Card", "card removed", "Shopper did not present card", ..."""
    said = unquote_plus(response.additional_response).lower()

    def says(*words: str) -> bool:
        return any(word in said for word in words)

    condition = response.error_condition
    declined, failed = PaymentStatus.DECLINED, PaymentStatus.FAILED
    match condition:
        case ErrorCondition.REFUSAL:
            if says("not enough balance", "not_enough_balance", "insufficient"):
                return declined, PaymentReason.INSUFFICIENT_FUNDS
            if says("expired card", "card_expired", "card expired"):
                return declined, PaymentReason.CARD_EXPIRED
            if says("pin"):
                return declined, PaymentReason.WRONG_PIN
            return declined, PaymentReason.REFUSED
        case ErrorCondition.WRONG_PIN:
            return declined, PaymentReason.WRONG_PIN
        case ErrorCondition.INVALID_CARD:
            return declined, PaymentReason.CARD_EXPIRED if says("expired") else PaymentReason.REFUSED
        case ErrorCondition.PAYMENT_RESTRICTION | ErrorCondition.NOT_ALLOWED:
            return declined, PaymentReason.REFUSED
        case ErrorCondition.CANCEL:
            if says("card removed", "card_removed"):
                return failed, PaymentReason.CARD_REMOVED
            if says(*_TIMEOUT_WORDS):
                return failed, PaymentReason.TIMED_OUT
            return failed, PaymentReason.CANCELLED
        case ErrorCondition.ABORTED:
            return failed, PaymentReason.TIMED_OUT if timed_out else PaymentReason.CANCELLED
        case ErrorCondition.INSERTED_CARD:
            return failed, PaymentReason.CANCELLED
        case ErrorCondition.BUSY | ErrorCondition.IN_PROGRESS:
            return failed, PaymentReason.TERMINAL_BUSY
        case ErrorCondition.UNREACHABLE_HOST:
            return failed, PaymentReason.TIMED_OUT if says(*_TIMEOUT_WORDS) else PaymentReason.TERMINAL_UNREACHABLE
        case (ErrorCondition.DEVICE_OUT | ErrorCondition.UNAVAILABLE_DEVICE | ErrorCondition.UNAVAILABLE_SERVICE
              | ErrorCondition.LOGGED_OUT):
            return failed, PaymentReason.TERMINAL_UNREACHABLE
    return None       # NotFound, MessageFormat (handled by the caller), or nothing at all


def receipt_pan(masked_pan: str) -> str:
    """What the receipt shows of the card: its last four digits, or nothing."""
    found = re.search(r"(\d{4})\W*$", masked_pan)
    return "**** **** **** " + found.group(1) if found else ""


class _NotSent(Exception):
    """Nothing the terminal could act on left the kiosk, or the terminal said it did not take it."""

    def __init__(self, reason: PaymentReason, why: str) -> None:
        super().__init__(why)
        self.reason = reason


class _Lost(Exception):
    """The request left; no usable answer to it came back."""


class _WaitedOut(Exception):
    """The deadline passed while reading."""


@dataclass
class _Sale:
    """The sale under way, shared with `abort` (another thread)."""

    sale_id: str
    service_id: str
    method: PaymentMethod
    on_prompt: OnPrompt | None
    aborted: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False              # the driver aborted it: its own wait ran out
    processing_shown: bool = False
    qr_shown: str | None = None


class NexoPaymentTerminal(PaymentTerminal):
    """A nexo payment terminal at `host`:`port`; see the module docstring.

    `sale_system_id` is the kiosk's SaleID; `poi_id` the terminal's POIID ("": the one
    it answers the first Login with). `tls_ca` (a PEM file) turns TLS on and pins the
    terminal's certificate authority: only it is trusted, and the host name is checked.
    `currency` is that of the zero amount in an answer about a sale of unknown amount.
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, sale_system_id: str, poi_id: str = "",
                 timeout_s: float = 60.0, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 answer_timeout_s: float = ANSWER_TIMEOUT_S, abort_grace_s: float = ABORT_GRACE_S,
                 tls_ca: str | os.PathLike[str] | None = None, currency: str = "SYP",
                 max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not host:
            raise ValueError("the terminal's host is empty")
        if not 0 < port < 65536:
            raise ValueError("the terminal's port must be between 1 and 65535")
        if not sale_system_id or len(sale_system_id) > 128:
            raise ValueError("the SaleID must be 1 to 128 characters")
        for name, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s),
                            ("answer_timeout_s", answer_timeout_s), ("abort_grace_s", abort_grace_s)):
            if value <= 0:
                raise ValueError("%s must be greater than zero" % name)
        Money(currency, 0)                  # a currency the kiosk handles, or ValueError
        self._host, self._port = host, port
        self._sale_system_id = sale_system_id
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._answer_timeout_s = answer_timeout_s
        self._abort_grace_s = abort_grace_s
        self._currency = currency
        self._max_frame = max_frame
        self._tls: ssl.SSLContext | None = None
        if tls_ca is not None:
            if not os.path.isfile(tls_ca):
                raise FileNotFoundError("the terminal's CA file %s does not exist" % os.fspath(tls_ca))
            self._tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.fspath(tls_ca))
            self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._lock = threading.Lock()
        self._poi_id = poi_id
        self._logged_in = False
        self._current: _Sale | None = None
        self._asked: collections.OrderedDict[str, None] = collections.OrderedDict()

    def __repr__(self) -> str:
        return "NexoPaymentTerminal(%s:%d, sale_id=%r, poi_id=%r, tls=%s)" % (
            self._host, self._port, self._sale_system_id, self._poi_id, self._tls is not None)

    # -- PaymentTerminal ----------------------------------------------------------------------------

    def check(self) -> TerminalState:
        with self._lock:
            if self._current is not None:
                return TerminalState.BUSY
        try:
            self._login(self._deadline(self._answer_timeout_s))
        except _NotSent as exc:
            state = TerminalState.BUSY if exc.reason is PaymentReason.TERMINAL_BUSY else TerminalState.UNREACHABLE
            log.info("payment.check state=%s why=%s", state.name, exc)
            return state
        return TerminalState.READY

    def pay(self, amount: Money, *, sale_id: str, reference: str, label: str,
            method: PaymentMethod = PaymentMethod.CARD, on_prompt: OnPrompt | None = None) -> PaymentOutcome:
        _check_id("sale", "sale_id", sale_id)
        if not isinstance(amount, Money) or not 0 < amount.amount_minor <= MAX_AMOUNT_MINOR:
            raise PaymentError("payment refused sale %s: invalid amount" % sale_id)
        sale = _Sale(sale_id, service_id_for(sale_id), method, on_prompt)
        with self._lock:
            busy = self._current is not None
            asked = sale_id in self._asked
            if not busy and not asked:
                self._current = sale
        if busy:
            return _logged("pay", PaymentOutcome(PaymentStatus.FAILED, amount, sale_id,
                                                 reason=PaymentReason.TERMINAL_BUSY))
        if asked:                   # sent before: asking again is `status`, never a second charge
            log.info("payment.pay_again sale_id=%s", sale_id)
            return self.status(sale_id)
        try:
            return _logged("pay", self._pay(sale, amount, reference, label))
        finally:
            with self._lock:
                self._current = None

    def status(self, sale_id: str) -> PaymentOutcome:
        nothing = Money(self._currency, 0)
        try:
            answer, header = self._transaction_status(sale_id, self._deadline(self._answer_timeout_s))
        except _NotSent as exc:
            log.warning("payment.status_unavailable sale_id=%s why=%s", sale_id, exc)
            return _logged("status", PaymentOutcome(PaymentStatus.UNKNOWN, nothing, sale_id, reason=exc.reason))
        except _Lost as exc:
            log.warning("payment.status_lost sale_id=%s why=%s", sale_id, exc)
            return _logged("status", PaymentOutcome(PaymentStatus.UNKNOWN, nothing, sale_id))
        response = answer.response
        if not response.succeeded:
            condition = response.error_condition
            if condition is ErrorCondition.NOT_FOUND:          # never taken: nothing was charged
                return _logged("status", PaymentOutcome(PaymentStatus.FAILED, nothing, sale_id))
            reason = PaymentReason.TERMINAL_BUSY if condition is ErrorCondition.BUSY else None
            if condition is ErrorCondition.MESSAGE_FORMAT:
                log.error("payment.status_refused sale_id=%s condition=MessageFormat", sale_id)
            return _logged("status", PaymentOutcome(PaymentStatus.UNKNOWN, nothing, sale_id, reason=reason))
        repeated = answer.repeated_payment
        if repeated is None or (repeated.sale_transaction is not None
                                and repeated.sale_transaction.transaction_id != sale_id):
            log.error("payment.status_garbled sale_id=%s problem=%s", sale_id,
                      "no payment repeated" if repeated is None else "another sale's payment")
            return _logged("status", PaymentOutcome(PaymentStatus.UNKNOWN, nothing, sale_id))
        terminal_id = answer.repeated_header.poi_id if answer.repeated_header is not None else header.poi_id
        return _logged("status", self._outcome(repeated, terminal_id, repeated.amount, sale_id, timed_out=False))

    def reverse(self, outcome: PaymentOutcome, *, reversal_id: str) -> ReversalOutcome:
        sale_id = outcome.sale_id

        def answer(status: ReversalStatus, why: str) -> ReversalOutcome:
            log.info("payment.reverse sale_id=%s reversal_id=%s status=%s why=%s", sale_id, reversal_id,
                     status.name, why)
            return ReversalOutcome(status=status, sale_id=sale_id, reversal_id=reversal_id)

        def refused(why: str) -> PaymentError:
            log.error("payment.reversal_refused sale_id=%s reversal_id=%s why=%s", sale_id, reversal_id, why)
            return PaymentError("payment refused reversal %s of sale %s: %s" % (reversal_id, sale_id, why))

        _check_id("reversal", "reversal_id", reversal_id)
        _check_id("reversal", "sale_id", sale_id)
        if outcome.status is not PaymentStatus.APPROVED or not outcome.payment_id:
            raise refused("not_approved")
        deadline = self._deadline(self._answer_timeout_s)
        try:
            found, header = self._transaction_status(sale_id, deadline)
        except (_NotSent, _Lost) as exc:
            return answer(ReversalStatus.FAILED, "status: %s" % exc)
        if not found.response.succeeded:
            if found.response.error_condition is ErrorCondition.NOT_FOUND:
                raise refused("unknown_sale")
            return answer(ReversalStatus.FAILED, "status: %s" % found.response.error_condition)
        original = found.repeated_payment
        if original is None or original.poi_transaction is None:
            return answer(ReversalStatus.FAILED, "status: no payment repeated")
        if not original.response.succeeded:
            raise refused("not_approved")
        if original.poi_transaction.transaction_id != outcome.payment_id:
            raise refused("payment_mismatch")
        if original.amount != outcome.amount:
            raise refused("amount_mismatch")
        poi_id = found.repeated_header.poi_id if found.repeated_header is not None else header.poi_id
        reference = OriginalPOITransaction(original.poi_transaction, poi_id=poi_id, sale_id=self._sale_system_id)
        own_id = TransactionIdentification(reversal_id, _now())
        request = ReversalRequest(reference, ReversalReason.MERCHANT_CANCEL, outcome.amount, own_id)
        try:
            reversal, _ = self._service(MessageCategory.REVERSAL, request.to_json(), deadline,
                                        lambda body: ReversalResponse.from_json(body, currency=outcome.amount.currency))
        except (_NotSent, _Lost) as exc:
            return answer(ReversalStatus.FAILED, "reversal: %s" % exc)
        condition = reversal.response.error_condition
        if reversal.response.succeeded:
            return answer(ReversalStatus.REVERSED, "reversal")
        if condition is not ErrorCondition.NOT_ALLOWED:
            if _passing(condition):
                return answer(ReversalStatus.FAILED, "reversal: %s" % condition.value)
            raise refused(_condition_name(condition))
        # The day's batch is closed: a referenced refund gives the money back instead.
        refund = PaymentRequest(own_id, outcome.amount, PaymentType.REFUND, original=reference)
        try:
            given, _ = self._service(MessageCategory.PAYMENT, refund.to_json(),
                                     self._deadline(self._answer_timeout_s), PaymentResponse.from_json,
                                     service_id=service_id_for("refund:" + reversal_id))
        except (_NotSent, _Lost) as exc:
            return answer(ReversalStatus.FAILED, "refund: %s" % exc)
        condition = given.response.error_condition
        if given.response.succeeded:
            if given.amount is not None and given.amount != outcome.amount:
                raise refused("refund_amount_mismatch")
            return answer(ReversalStatus.REVERSED, "refund")
        if _passing(condition):
            return answer(ReversalStatus.FAILED, "refund: %s" % condition.value)
        raise refused(_condition_name(condition))

    def abort(self) -> None:
        with self._lock:
            sale = self._current
        if sale is None:
            return
        sale.aborted.set()
        log.info("payment.abort sale_id=%s", sale.sale_id)
        self._send_abort(sale)

    # -- a sale ---------------------------------------------------------------------------------------------

    def _pay(self, sale: _Sale, amount: Money, reference: str, label: str) -> PaymentOutcome:
        def failed(reason: PaymentReason) -> PaymentOutcome:
            return PaymentOutcome(PaymentStatus.FAILED, amount, sale.sale_id, reason=reason)

        setup = self._deadline(self._answer_timeout_s)
        try:
            self._ensure_login(setup)
            self._show_label(label, setup)
        except _NotSent as exc:
            log.warning("payment.not_sent sale_id=%s why=%s", sale.sale_id, exc)
            return failed(exc.reason)
        if sale.aborted.is_set():
            return failed(PaymentReason.CANCELLED)
        request = PaymentRequest(
            TransactionIdentification(sale.sale_id, _now()), amount, PaymentType.NORMAL,
            PaymentInstrumentType.MOBILE if sale.method is PaymentMethod.WALLET else None,
            sale_reference=reference if wire.is_id(reference) else None)
        for attempt in (1, 2):
            try:
                result, header = self._payment_exchange(sale, request)
            except _NotSent as exc:
                self._forget(sale.sale_id)
                log.warning("payment.not_sent sale_id=%s why=%s", sale.sale_id, exc)
                return failed(exc.reason)
            except _Lost as exc:
                log.warning("payment.answer_lost sale_id=%s why=%s", sale.sale_id, exc)
                return PaymentOutcome(PaymentStatus.UNKNOWN, amount, sale.sale_id)
            if result.response.error_condition is ErrorCondition.LOGGED_OUT and attempt == 1:
                log.info("payment.logged_out category=Payment sale_id=%s", sale.sale_id)
                try:                             # the terminal restarted: it took nothing; log in and ask again
                    self._login(self._deadline(self._answer_timeout_s))
                except _NotSent as exc:
                    self._forget(sale.sale_id)
                    return failed(exc.reason)
                continue
            if result.response.error_condition is ErrorCondition.MESSAGE_FORMAT:
                self._forget(sale.sale_id)
                log.error("payment.request_refused sale_id=%s condition=MessageFormat", sale.sale_id)
                raise PaymentError("payment refused sale %s: the terminal calls the request malformed" % sale.sale_id)
            outcome = self._outcome(result, header.poi_id, amount, sale.sale_id, timed_out=sale.timed_out)
            if outcome.status is PaymentStatus.FAILED and outcome.reason in (PaymentReason.TERMINAL_BUSY,
                                                                             PaymentReason.TERMINAL_UNREACHABLE):
                self._forget(sale.sale_id)       # the terminal never started it
            return outcome
        raise AssertionError("unreachable")     # pragma: no cover - the loop always returns

    def _payment_exchange(self, sale: _Sale, request: PaymentRequest) -> tuple[PaymentResponse, MessageHeader]:
        header = self._header(MessageCategory.PAYMENT, sale.service_id)
        sock = self._open(self._deadline(self._connect_timeout_s))
        try:
            self._remember(sale.sale_id)         # from here on the sale may exist at the terminal
            self._send(sock, Message(header, request.to_json()))
            if sale.method is PaymentMethod.CARD:
                self._prompt(sale, PaymentPrompt(sale.sale_id, PromptKind.PRESENT_CARD))

            def heard(message: Message) -> None:
                self._from_terminal(message, sock, sale)

            try:
                answer = self._read_answer(sock, header, self._deadline(self._timeout_s), heard)
            except _WaitedOut:
                sale.timed_out = True
                log.warning("payment.wait_ran_out sale_id=%s timeout_s=%.1f", sale.sale_id, self._timeout_s)
                self._send_abort(sale, reason="Timeout")
                try:
                    answer = self._read_answer(sock, header, self._deadline(self._abort_grace_s), heard)
                except _WaitedOut:
                    raise _Lost("no answer, even to the abort") from None
            try:
                return PaymentResponse.from_json(answer.body), answer.header
            except NexoProtocolError as exc:
                raise _Lost("garbled PaymentResponse: %s" % exc) from None
        finally:
            sock.close()

    def _from_terminal(self, message: Message, sock: socket.socket, sale: _Sale) -> None:
        """What the terminal says while the sale waits: events and its own display requests."""
        header = message.header
        if header.sale_id != self._sale_system_id:
            log.warning("payment.stray_message category=%s", header.category.value)
            return
        try:
            if header.category is MessageCategory.EVENT and header.type is MessageType.NOTIFICATION:
                event = EventNotification.from_json(message.body)
                log.info("payment.terminal_event sale_id=%s event=%s", sale.sale_id, event.event.value)
                if (event.event is EventToNotify.CARD_INSERTED and sale.method is PaymentMethod.CARD
                        and not sale.processing_shown):
                    sale.processing_shown = True
                    self._prompt(sale, PaymentPrompt(sale.sale_id, PromptKind.PROCESSING))
            elif header.category is MessageCategory.DISPLAY and header.type is MessageType.REQUEST:
                display = DisplayRequest.from_json(message.body)
                shown = display.qr_code
                if shown is not None and shown.barcode is not None and shown.barcode.value != sale.qr_shown:
                    sale.qr_shown = shown.barcode.value
                    expires = float(shown.minimum_display_time) if shown.minimum_display_time else None
                    self._prompt(sale, PaymentPrompt(sale.sale_id, PromptKind.SCAN_QR, qr=shown.barcode.value,
                                                     expires_in_s=expires))
                if any(output.response_required for output in display.outputs):
                    results = tuple(OutputResult(o.device, o.info_qualify, success()) for o in display.outputs)
                    self._send(sock, Message(header.response(), DisplayResponse(results).to_json()))
            else:
                log.info("payment.terminal_message_ignored category=%s type=%s", header.category.value,
                         header.type.value)
        except NexoProtocolError as exc:
            log.warning("payment.terminal_message_garbled category=%s problem=%s", header.category.value, exc)

    def _prompt(self, sale: _Sale, prompt: PaymentPrompt) -> None:
        log.info("payment.prompt sale_id=%s kind=%s", prompt.sale_id, prompt.kind.value)
        if sale.on_prompt is None:
            return
        try:
            sale.on_prompt(prompt)
        except Exception:                 # the screen's trouble must not lose the terminal's answer
            log.exception("payment.prompt_failed sale_id=%s kind=%s", prompt.sale_id, prompt.kind.value)

    def _outcome(self, result: PaymentResponse, terminal_id: str, amount: Money | None, sale_id: str, *,
                 timed_out: bool) -> PaymentOutcome:
        """The kiosk's outcome of the terminal's PaymentResponse for `sale_id` (asked for `amount`)."""
        nothing = Money(self._currency, 0)
        response = result.response
        if response.succeeded:
            problem = None
            if result.sale_transaction is None or result.sale_transaction.transaction_id != sale_id:
                problem = "another sale's answer"
            elif result.poi_transaction is None or not wire.is_id(result.poi_transaction.transaction_id):
                problem = "no usable POI transaction id"
            elif result.amount is None or (amount is not None and result.amount != amount):
                problem = "another amount"
            if problem is not None:
                log.error("payment.answer_garbled sale_id=%s problem=%s", sale_id, problem)
                return PaymentOutcome(PaymentStatus.UNKNOWN, amount or nothing, sale_id)
            assert result.poi_transaction is not None and result.amount is not None
            receipt = CardReceipt(masked_pan=receipt_pan(result.masked_pan), auth_code=result.approval_code,
                                  terminal_id=terminal_id, sale_id=sale_id, brand=result.brand)
            return PaymentOutcome(PaymentStatus.APPROVED, result.amount, sale_id,
                                  payment_id=result.poi_transaction.transaction_id, receipt=receipt)
        ending = failure_of(response, timed_out=timed_out) if response.error_condition else None
        if ending is None:      # Partial, NotFound for a payment: nothing sure about this sale
            log.error("payment.answer_unclear sale_id=%s result=%s condition=%s", sale_id, response.result.value,
                      _condition_name(response.error_condition))
            return PaymentOutcome(PaymentStatus.UNKNOWN, amount or nothing, sale_id)
        status, reason = ending
        log.info("payment.not_approved sale_id=%s condition=%s", sale_id, _condition_name(response.error_condition))
        return PaymentOutcome(status, amount or result.amount or nothing, sale_id, reason=reason)

    # -- exchanges ------------------------------------------------------------------------------------------

    def _deadline(self, seconds: float) -> float:
        return time.monotonic() + seconds

    def _header(self, category: MessageCategory, service_id: str | None = None, *,
                message_class: MessageClass = MessageClass.SERVICE, device_id: str | None = None) -> MessageHeader:
        with self._lock:
            poi_id = self._poi_id
        return MessageHeader(message_class, category, MessageType.REQUEST, self._sale_system_id, poi_id,
                             service_id or (None if message_class is MessageClass.DEVICE else _new_id()), device_id)

    def _open(self, deadline: float) -> socket.socket:
        """A connection to the terminal (TLS done); _NotSent when none could be made."""
        wait = max(0.05, min(self._connect_timeout_s, deadline - time.monotonic()))
        try:
            sock = socket.create_connection((self._host, self._port), timeout=wait)
        except _LINK_ERRORS as exc:
            self._log_out()
            raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "no connection: %s" % type(exc).__name__) from None
        if self._tls is None:
            return sock
        try:
            return self._tls.wrap_socket(sock, server_hostname=self._host)
        except _LINK_ERRORS as exc:
            sock.close()
            self._log_out()
            why = "certificate refused" if isinstance(exc, ssl.SSLCertVerificationError) else type(exc).__name__
            raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "TLS: %s" % why) from None

    def _send(self, sock: socket.socket, message: Message) -> None:
        try:
            sock.settimeout(self._connect_timeout_s)
            write_frame(sock, encode(message), max_size=self._max_frame)
        except _LINK_ERRORS as exc:         # part of it may have left: the terminal may have it
            self._log_out()
            raise _Lost("sending failed: %s" % type(exc).__name__) from None

    def _read_answer(self, sock: socket.socket, request: MessageHeader, deadline: float,
                     heard: Callable[[Message], None] | None = None) -> Message:
        """The response to `request`; what the terminal sends meanwhile goes to `heard`.
        _WaitedOut past `deadline`; _Lost for a closed, broken or garbled link."""
        while True:
            try:
                frame = read_frame(sock, max_size=self._max_frame, deadline=deadline)
            except socket.timeout:
                raise _WaitedOut() from None
            except NexoProtocolError as exc:
                self._log_out()
                raise _Lost("garbled frame: %s" % exc) from None
            except _LINK_ERRORS as exc:
                self._log_out()
                raise _Lost("link broken: %s" % type(exc).__name__) from None
            if frame is None:
                self._log_out()
                raise _Lost("the terminal closed the connection")
            try:
                message = decode(frame)
            except NexoProtocolError as exc:
                raise _Lost("garbled message: %s" % exc) from None
            if message.header.type is not MessageType.RESPONSE:
                if heard is not None:
                    heard(message)
                continue
            try:
                expect_answer(request, message)
            except NexoProtocolError as exc:
                raise _Lost("out of sequence: %s" % exc) from None
            return message

    def _exchange(self, header: MessageHeader, body: dict[str, Any], deadline: float) -> Message:
        sock = self._open(deadline)
        try:
            self._send(sock, Message(header, body))
            try:
                return self._read_answer(sock, header, deadline)
            except _WaitedOut:
                raise _Lost("no answer in time") from None
        finally:
            sock.close()

    def _service(self, category: MessageCategory, body: dict[str, Any], deadline: float,
                 parse: Callable[[dict[str, Any]], Any], *, service_id: str | None = None) -> tuple[Any, MessageHeader]:
        """One Service request after a Login: its answer parsed, and the answer's header. Asked
        once more after a fresh Login when the terminal says LoggedOut."""
        self._ensure_login(deadline)
        for attempt in (1, 2):
            header = self._header(category, service_id)
            message = self._exchange(header, body, deadline)
            try:
                parsed = parse(message.body)
            except NexoProtocolError as exc:
                raise _Lost("garbled %s: %s" % (header.body_name, exc)) from None
            if parsed.response.error_condition is ErrorCondition.LOGGED_OUT and attempt == 1:
                log.info("payment.logged_out category=%s", category.value)
                self._login(deadline)
                continue
            return parsed, message.header
        raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "%s: logged out again" % category.value)

    def _transaction_status(self, sale_id: str, deadline: float) -> tuple[TransactionStatusResponse, MessageHeader]:
        reference = MessageReference(MessageCategory.PAYMENT, service_id_for(sale_id), self._sale_system_id)
        answer, header = self._service(MessageCategory.TRANSACTION_STATUS,
                                       TransactionStatusRequest(reference).to_json(), deadline,
                                       TransactionStatusResponse.from_json)
        if answer.reference is not None and answer.reference.service_id not in (None, reference.service_id):
            raise _Lost("the status of another transaction")
        return answer, header

    # -- Login, display, abort --------------------------------------------------------------------------------

    def _log_out(self) -> None:
        """After a failed link: log in again first next time (the terminal may have restarted)."""
        with self._lock:
            self._logged_in = False

    def _ensure_login(self, deadline: float) -> None:
        with self._lock:
            logged_in = self._logged_in
        if not logged_in:
            self._login(deadline)

    def _login(self, deadline: float) -> None:
        request = LoginRequest(_now(), APPLICATION_NAME, SOFTWARE_VERSION, APPLICATION_NAME)
        header = self._header(MessageCategory.LOGIN)
        try:
            message = self._exchange(header, request.to_json(), deadline)
            answer = LoginResponse.from_json(message.body)
        except _Lost as exc:
            raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "login: %s" % exc) from None
        except NexoProtocolError as exc:
            raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "login garbled: %s" % exc) from None
        condition = answer.response.error_condition
        if not answer.response.succeeded:
            self._log_out()
            reason = PaymentReason.TERMINAL_BUSY if condition in (ErrorCondition.BUSY, ErrorCondition.IN_PROGRESS) \
                else PaymentReason.TERMINAL_UNREACHABLE
            raise _NotSent(reason, "login refused: %s" % _condition_name(condition))
        with self._lock:
            again, self._logged_in = self._logged_in, True
            if not self._poi_id:
                self._poi_id = message.header.poi_id
        if not again:                            # transitions only: a check() logs in every time
            log.info("payment.logged_in poi_id=%s", message.header.poi_id)

    def _show_label(self, label: str, deadline: float) -> None:
        """The service and the fee on the terminal's own display. A display that fails is not
        worth losing the sale for, unless the terminal is busy or gone."""
        lines = tuple(line for line in label.splitlines() if line.strip())
        if not lines:
            return
        output = DisplayOutput(Device.CUSTOMER_DISPLAY, InfoQualify.DISPLAY,
                               text=tuple(line[:MAX_LABEL] for line in lines), response_required=True)
        body = DisplayRequest((output,)).to_json()
        for attempt in (1, 2):
            device_id = _new_id()
            header = self._header(MessageCategory.DISPLAY, device_id, message_class=MessageClass.DEVICE,
                                  device_id=device_id)
            try:
                message = self._exchange(header, body, deadline)
                response = DisplayResponse.from_json(message.body).response
            except _Lost as exc:
                raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "display: %s" % exc) from None
            except NexoProtocolError as exc:
                raise _NotSent(PaymentReason.TERMINAL_UNREACHABLE, "display garbled: %s" % exc) from None
            condition = response.error_condition
            if condition is ErrorCondition.LOGGED_OUT and attempt == 1:
                log.info("payment.logged_out category=Display")
                self._login(deadline)
                continue
            if condition in (ErrorCondition.BUSY, ErrorCondition.IN_PROGRESS):
                raise _NotSent(PaymentReason.TERMINAL_BUSY, "display: busy")
            if not response.succeeded:
                log.warning("payment.label_not_shown condition=%s", _condition_name(condition))
            return

    def _send_abort(self, sale: _Sale, reason: str = ABORT_REASON) -> None:
        """An AbortRequest for `sale` on a connection of its own; nexo answers it with nothing
        (the sale's own answer says Aborted), so none is awaited."""
        reference = MessageReference(MessageCategory.PAYMENT, sale.service_id, self._sale_system_id)
        header = self._header(MessageCategory.ABORT)
        try:
            sock = self._open(self._deadline(self._connect_timeout_s))
        except _NotSent as exc:
            log.warning("payment.abort_not_sent sale_id=%s why=%s", sale.sale_id, exc)
            return
        try:
            self._send(sock, Message(header, AbortRequest(reference, reason).to_json()))
            sock.shutdown(socket.SHUT_WR)
        except (_Lost, *_LINK_ERRORS) as exc:
            log.warning("payment.abort_lost sale_id=%s why=%s", sale.sale_id, exc)
        finally:
            sock.close()

    # -- the sales this driver sent ------------------------------------------------------------------------------

    def _remember(self, sale_id: str) -> None:
        with self._lock:
            self._asked[sale_id] = None
            self._asked.move_to_end(sale_id)
            while len(self._asked) > ASKED_MEMORY:
                self._asked.popitem(last=False)

    def _forget(self, sale_id: str) -> None:
        with self._lock:
            self._asked.pop(sale_id, None)


def _passing(condition: ErrorCondition | None) -> bool:
    """Trouble that passes (ask again later with the same id), as opposed to a final refusal."""
    return condition in (ErrorCondition.BUSY, ErrorCondition.IN_PROGRESS, ErrorCondition.UNREACHABLE_HOST,
                         ErrorCondition.DEVICE_OUT, ErrorCondition.UNAVAILABLE_DEVICE,
                         ErrorCondition.UNAVAILABLE_SERVICE, ErrorCondition.LOGGED_OUT)


def _condition_name(condition: ErrorCondition | None) -> str:
    return condition.value if condition is not None else "none"


def _check_id(kind: str, name: str, value: str) -> None:
    """A malformed id is a caller's bug the terminal would refuse outright: PaymentError."""
    if not wire.is_id(value):
        raise PaymentError("payment refused %s: invalid %s" % (kind, name))


def _logged(call: str, outcome: PaymentOutcome) -> PaymentOutcome:
    log.info("payment.%s sale_id=%s status=%s reason=%s", call, outcome.sale_id, outcome.status.name,
             outcome.reason.value if outcome.reason else "-")
    return outcome


def from_config(config: KioskConfig) -> NexoPaymentTerminal:
    """The `nexo` payment backend: the terminal at `payment.host`:`payment.port` (TLS pinned to
    `payment.tls_ca` when set), as the Sale System `device_id`, waiting up to `payment.timeout_s`
    for a sale."""
    payment = config.payment
    return NexoPaymentTerminal(payment.host, payment.port, sale_system_id=config.device_id,
                               poi_id=payment.poi_id, timeout_s=payment.timeout_s, tls_ca=payment.tls_ca)
