"""The simulated nexo terminal: what it answers to each request, and what goes wrong on command.

It speaks the kiosk's own codec (`drivers.nexo`) on each connection it is
given: length-prefixed JSON frames, one request after another.

    Login                 logs the SaleID in (Busy while a sale is under way)
    Display (Device)      shows the Sale's text on the terminal's display
    Payment, Normal       a sale: waits for a card (or a wallet), then answers
    Payment, Refund       a referenced refund of an approved sale; no card
    TransactionStatus     repeats the PaymentResponse of the sale its
                          MessageReference names; InProgress, NotFound
    Reversal              cancels an approved sale of the open batch;
                          NotAllowed once the batch is closed (refund it)
    Abort                 ends the sale it names with Failure Aborted; no answer

Every request but a Login needs the SaleID logged in (else Failure
LoggedOut), and every request names this terminal's POIID (a Login may name
none). A sale waits for a card presented on command (`present`), or, with
`auto_present`, presents one by itself after `auto_present_delay_s`; a card
scripted before the sale (`present` with no sale waiting) is what the next
sale meets. A card sale sends EventNotification CardInserted before the
bank answers. A wallet sale (PaymentInstrumentType Mobile) sends the Sale a
DisplayRequest whose OutputBarcode is a QR code of a payment request URL,
`https://pay.example/r/<token>`, with MinimumDisplayTime its validity in
seconds; the wallet pays it on command (`pay_wallet`) or it expires.
Nobody presenting a card (`no-answer`, or nothing at all) ends the sale
after `card_timeout_s` with Failure Cancel "Shopper did not present card".

Outcomes, as the terminal answers them (ErrorCondition, refusalReason in
AdditionalResponse, after Adyen's Terminal API refusal reasons):

    approve             Success
    refused             Refusal, "Refused"
    insufficient-funds  Refusal, "Not enough balance"
    wrong-pin           WrongPIN, "Invalid Pin"
    expired             Refusal, "Expired Card"
    removed             Cancel, "card removed" (before the bank answered)
    no-answer           nobody pays: Aborted on an abort, else Cancel (time-out)

Faults on command: `busy` (every request answered Busy until `clear`),
`drop-answer` (the next sale is taken and recorded, then its connection is
closed without an answer), `drop-link` (the next PaymentRequest is read and
its connection reset before anything happens), `reboot` (every connection
reset, the sale under way forgotten, every Login forgotten; the acquirer
keeps what it approved), `garble` (the next answer to a Payment,
TransactionStatus or Reversal request is cut in half, in a well-formed
frame). A second sale while one is under way is answered Busy.
"""

from __future__ import annotations

import collections
import enum
import logging
import math
import secrets
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from drivers.nexo import fields
from drivers.nexo.enums import (
    BarcodeType, Device, ErrorCondition, EventToNotify, InfoQualify, MessageCategory, MessageClass, MessageType,
    PaymentInstrumentType, PaymentType,
)
from drivers.nexo.envelope import Message, MessageHeader, decode, encode
from drivers.nexo.errors import NexoProtocolError
from drivers.nexo.framing import DEFAULT_MAX_FRAME, read_frame, write_frame
from drivers.nexo.messages import (
    AbortRequest, Barcode, DisplayOutput, DisplayRequest, DisplayResponse, EventNotification, LoginRequest,
    LoginResponse, MessageReference, OutputResult, Response, TransactionIdentification, failure, success,
)
from drivers.nexo.payment import (
    OriginalPOITransaction, PaymentRequest, PaymentResponse, ReversalRequest, ReversalResponse,
    TransactionStatusRequest, TransactionStatusResponse,
)
from drivers.terminal_sim.acquirer import (
    Acquirer, GivenBackKind, Sale, SaleStatus, new_payment_id, now_iso,
)

log = logging.getLogger(__name__)

WALLET_URL = "https://pay.example/r/"
TEST_CARD_PAN = "476173 **** 0119"        # masked as terminals print it: the BIN and the last four
CARD_BRAND = "VISA"
WALLET_BRAND = "SIMWALLET"
EARLY_ABORT_S = 30.0                      # an abort that overtook its sale is kept this long
HANDSHAKE_TIMEOUT_S = 5.0


class Card(enum.Enum):
    """What the next sale meets: the card presented (or the wallet's payer)."""

    APPROVE = "approve"
    REFUSED = "refused"
    INSUFFICIENT_FUNDS = "insufficient-funds"
    WRONG_PIN = "wrong-pin"
    EXPIRED = "expired"
    REMOVED = "removed"
    NO_ANSWER = "no-answer"


class Fault(enum.Enum):
    BUSY = "busy"
    DROP_ANSWER = "drop-answer"
    DROP_LINK = "drop-link"
    REBOOT = "reboot"
    GARBLE = "garble"
    CLEAR = "clear"          # busy off, pending one-shot faults dropped


# How a card that is not approved ends the sale: (status, ErrorCondition, refusalReason, message).
_ENDINGS = {
    Card.REFUSED: (SaleStatus.DECLINED, ErrorCondition.REFUSAL, "Refused", "DECLINED"),
    Card.INSUFFICIENT_FUNDS: (SaleStatus.DECLINED, ErrorCondition.REFUSAL, "Not enough balance", "NOT_ENOUGH_BALANCE"),
    Card.WRONG_PIN: (SaleStatus.DECLINED, ErrorCondition.WRONG_PIN, "Invalid Pin", "WRONG_PIN"),
    Card.EXPIRED: (SaleStatus.DECLINED, ErrorCondition.REFUSAL, "Expired Card", "CARD_EXPIRED"),
    Card.REMOVED: (SaleStatus.FAILED, ErrorCondition.CANCEL, "card removed", "CANCELLED"),
}
_ABORTED = object()
_TIMED_OUT = object()


@dataclass
class _Reply:
    message: Message | None = None     # nothing to answer: an Abort, a notification
    close: bool = False                # reset the connection instead of answering
    garble: bool = False               # the garble fault may cut this answer


@dataclass
class _InFlight:
    """The sale under way."""

    sale_system_id: str
    service_id: str
    sale_id: str
    wallet: bool
    generation: int
    card: Card | None = None           # scripted, presented, or auto-presented
    aborted: bool = False
    waiting: bool = False
    qr: str | None = None
    state: str = "present-card"


class Terminal:
    """One simulated POI; `serve` runs one connection. Thread-safe."""

    def __init__(self, acquirer: Acquirer, *, poi_id: str, auto_present: Card | None = None,
                 auto_present_delay_s: float = 0.5, card_timeout_s: float = 60.0, wallet_expiry_s: float = 120.0,
                 max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.acquirer = acquirer
        self.poi_id = poi_id
        self._auto_present = auto_present
        self._auto_delay = auto_present_delay_s
        self._card_timeout = card_timeout_s
        self._wallet_expiry = wallet_expiry_s
        self._max_frame = max_frame
        self._changed = threading.Condition()
        self._generation = 0
        self._logged_in: set[str] = set()
        self._busy = False
        self._drop_answer = False
        self._drop_link = False
        self._garble = False
        self._scripted: collections.deque[Card] = collections.deque()
        self._current: _InFlight | None = None
        self._early_aborts: dict[tuple[str, str], float] = {}
        self._sale_text: list[str] = []
        self._last_state = "idle"
        self._open: set[socket.socket] = set()

    # -- commands -------------------------------------------------------------------------------------

    def present(self, card: Card) -> str:
        """Present `card` to the sale waiting for one ("presented"), or keep it for the next sale
        ("queued")."""
        with self._changed:
            sale = self._current
            if sale is not None and sale.waiting and sale.card is None:
                sale.card = card
                self._changed.notify_all()
                return "presented"
            self._scripted.append(card)
            return "queued"

    def set_auto_present(self, card: Card | None) -> None:
        with self._changed:
            self._auto_present = card

    def pay_wallet(self) -> bool:
        """The wallet pays the payment request on show; False when none is."""
        with self._changed:
            sale = self._current
            if sale is None or not sale.wallet or not sale.waiting or sale.card is not None or sale.qr is None:
                return False
            sale.card = Card.APPROVE
            self._changed.notify_all()
            return True

    def fault(self, fault: Fault) -> None:
        if fault is Fault.REBOOT:
            self.reboot()
            return
        with self._changed:
            match fault:
                case Fault.BUSY:
                    self._busy = True
                case Fault.DROP_ANSWER:
                    self._drop_answer = True
                case Fault.DROP_LINK:
                    self._drop_link = True
                case Fault.GARBLE:
                    self._garble = True
                case Fault.CLEAR:
                    self._busy = self._drop_answer = self._drop_link = self._garble = False
        log.info("terminal_sim.fault fault=%s", fault.value)

    def reboot(self) -> None:
        """Everything in flight is dropped; logins too. The acquirer keeps what it took."""
        with self._changed:
            self._generation += 1
            self._logged_in.clear()
            self._early_aborts.clear()
            self._busy = self._drop_answer = self._drop_link = self._garble = False
            self._current = None
            self._sale_text, self._last_state = [], "idle"
            self._changed.notify_all()
        self.drop_connections()
        log.info("terminal_sim.rebooted")

    def drop_connections(self) -> None:
        """Reset every open connection (a reboot, a cable pulled)."""
        with self._changed:
            sockets = list(self._open)
        for sock in sockets:
            _reset(sock)

    def display(self) -> dict[str, Any]:
        """What the terminal's display shows now."""
        with self._changed:
            sale = self._current
            state = sale.state if sale is not None else self._last_state
            return {"lines": list(self._sale_text), "state": state, "qr": sale.qr if sale is not None else None}

    def wait_until_waiting(self, timeout: float) -> bool:
        """Whether a sale waits for a card or a wallet within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._current is not None and self._current.waiting, timeout)

    # -- a connection ------------------------------------------------------------------------------------

    def serve(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """Read requests on `sock` and answer them until the Sale closes it (or a fault does)."""
        link = sock
        with self._changed:
            self._open.add(sock)
        try:
            if tls is not None:
                sock.settimeout(HANDSHAKE_TIMEOUT_S)
                try:
                    link = tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    log.info("terminal_sim.tls_refused error=%s", type(exc).__name__)
                    return
                with self._changed:
                    self._open.add(link)
                link.settimeout(None)
            self._serve(link)
        finally:
            with self._changed:
                self._open.discard(sock)
                self._open.discard(link)
            try:
                link.close()
            except OSError:
                pass

    def _serve(self, link: socket.socket) -> None:
        while True:
            try:
                frame = read_frame(link, max_size=self._max_frame)
            except (NexoProtocolError, OSError) as exc:
                log.info("terminal_sim.link_ended why=%s", type(exc).__name__)
                return
            if frame is None:
                return
            try:
                message = decode(frame)
            except NexoProtocolError as exc:
                log.warning("terminal_sim.request_garbled problem=%s", exc)
                return
            reply = self._dispatch(message, link)
            if reply.close:
                _reset(link)
                return
            if reply.message is None:
                continue
            data = encode(reply.message)
            if reply.garble and self._take_garble():
                data = data[:len(data) // 2]
                log.info("terminal_sim.answer_garbled category=%s", message.header.category.value)
            try:
                write_frame(link, data, max_size=self._max_frame)
            except OSError:
                return

    def _take_garble(self) -> bool:
        with self._changed:
            garble, self._garble = self._garble, False
            return garble

    # -- requests ----------------------------------------------------------------------------------------------

    def _dispatch(self, message: Message, link: socket.socket) -> _Reply:
        header = message.header
        if header.type is not MessageType.REQUEST:
            return _Reply()                    # a notification, or a Sale's answer to our display request
        if header.category is MessageCategory.ABORT:
            self._abort(message)
            return _Reply()
        if header.poi_id != self.poi_id and not (header.poi_id == "" and header.category is MessageCategory.LOGIN):
            return self._refuse(message, failure(ErrorCondition.MESSAGE_FORMAT, message="POIID is not this terminal's"))
        with self._changed:
            busy = self._busy
            logged_in = header.sale_id in self._logged_in
        if busy:
            return self._refuse(message, failure(ErrorCondition.BUSY, message="BUSY"))
        if header.category is not MessageCategory.LOGIN and not logged_in:
            return self._refuse(message, failure(ErrorCondition.LOGGED_OUT, message="LOGIN_REQUIRED"))
        try:
            match header.category:
                case MessageCategory.LOGIN:
                    return self._login(message)
                case MessageCategory.DISPLAY:
                    return self._display(message)
                case MessageCategory.PAYMENT:
                    return self._payment(message, link)
                case MessageCategory.TRANSACTION_STATUS:
                    return self._status(message)
                case MessageCategory.REVERSAL:
                    return self._reversal(message)
        except NexoProtocolError as exc:
            return self._refuse(message, failure(ErrorCondition.MESSAGE_FORMAT, errors=str(exc)[:200]))
        return self._refuse(message, failure(ErrorCondition.NOT_ALLOWED, message="UNSUPPORTED"))

    def _answer_header(self, header: MessageHeader) -> MessageHeader:
        return replace(header.response(), poi_id=self.poi_id)

    def _answer(self, message: Message, body: dict[str, Any], *, garble: bool = False) -> _Reply:
        return _Reply(Message(self._answer_header(message.header), body), garble=garble)

    def _refuse(self, message: Message, response: Response) -> _Reply:
        """A Failure in the body the request's category answers with."""
        category = message.header.category
        body: dict[str, Any]
        if category is MessageCategory.LOGIN:
            body = LoginResponse(response).to_json()
        elif category is MessageCategory.DISPLAY:
            body = DisplayResponse((OutputResult(Device.CUSTOMER_DISPLAY, InfoQualify.DISPLAY, response),)).to_json()
        elif category is MessageCategory.PAYMENT:
            body = PaymentResponse(response).to_json()
        elif category is MessageCategory.TRANSACTION_STATUS:
            body = TransactionStatusResponse(response).to_json()
        elif category is MessageCategory.REVERSAL:
            body = ReversalResponse(response).to_json()
        else:
            body = {"Response": response.to_json()}
        garble = category in (MessageCategory.PAYMENT, MessageCategory.TRANSACTION_STATUS, MessageCategory.REVERSAL)
        return self._answer(message, body, garble=garble)

    def _login(self, message: Message) -> _Reply:
        LoginRequest.from_json(message.body)
        with self._changed:
            if self._current is not None:
                return self._refuse(message, failure(ErrorCondition.BUSY, message="SALE_IN_PROGRESS"))
            self._logged_in.add(message.header.sale_id)
        log.info("terminal_sim.login sale_system_id=%s", message.header.sale_id)
        return self._answer(message, LoginResponse(success(), now_iso()).to_json())

    def _display(self, message: Message) -> _Reply:
        request = DisplayRequest.from_json(message.body)
        with self._changed:
            self._sale_text = [line for output in request.outputs for line in output.text]
        results = tuple(OutputResult(o.device, o.info_qualify, success()) for o in request.outputs)
        return self._answer(message, DisplayResponse(results).to_json())

    def _abort(self, message: Message) -> None:
        try:
            request = AbortRequest.from_json(message.body)
        except NexoProtocolError as exc:
            log.warning("terminal_sim.abort_garbled problem=%s", exc)
            return
        if request.reference.service_id is None:
            return
        key = (request.reference.sale_id or message.header.sale_id, request.reference.service_id)
        with self._changed:
            sale = self._current
            if sale is not None and (sale.sale_system_id, sale.service_id) == key:
                sale.aborted = True
                self._changed.notify_all()
                log.info("terminal_sim.abort sale_id=%s", sale.sale_id)
                return
            now = time.monotonic()
            self._early_aborts = {k: t for k, t in self._early_aborts.items() if now - t < EARLY_ABORT_S}
            self._early_aborts[key] = now       # it may have overtaken its sale
        log.info("terminal_sim.abort_early service_id=%s", key[1])

    # -- a sale -----------------------------------------------------------------------------------------------------

    def _payment(self, message: Message, link: socket.socket) -> _Reply:
        request = PaymentRequest.from_json(message.body)
        header = message.header
        if request.payment_type is PaymentType.REFUND:
            return self._refund(message, request)
        if request.payment_type is not PaymentType.NORMAL:
            return self._refuse(message, failure(ErrorCondition.NOT_ALLOWED, message="ONLY_NORMAL_OR_REFUND"))
        assert header.service_id is not None        # a Service message has one (MessageHeader.from_json)
        sale_id = request.sale_transaction.transaction_id
        with self._changed:
            if self._current is not None:
                return self._refuse(message, failure(ErrorCondition.BUSY, message="SALE_IN_PROGRESS"))
            if self._drop_link:
                self._drop_link = False
                log.info("terminal_sim.link_dropped sale_id=%s", sale_id)
                return _Reply(close=True)
            known = self.acquirer.by_sale(header.sale_id, sale_id)
            if known is None:
                sale = _InFlight(header.sale_id, header.service_id, sale_id,
                                 request.instrument is PaymentInstrumentType.MOBILE, self._generation,
                                 card=self._scripted.popleft() if self._scripted else None)
                sale.aborted = self._early_aborts.pop((header.sale_id, header.service_id), None) is not None
                self._current = sale
                drop_answer, self._drop_answer = self._drop_answer, False
        if known is not None:                        # the same sale again: its answer again, no second charge
            log.info("terminal_sim.sale_repeated sale_id=%s", sale_id)
            return self._answer(message, known.answer.to_json(), garble=True)
        try:
            result = self._run(sale, request, message, link)
        finally:
            with self._changed:
                if self._current is sale:
                    self._current = None
                    self._last_state = sale.state
                self._changed.notify_all()
        if result is None:
            return _Reply(close=True)               # rebooted meanwhile: everything in flight is gone
        if drop_answer:
            log.info("terminal_sim.answer_dropped sale_id=%s", sale_id)
            return _Reply(close=True)
        return self._answer(message, result.to_json(), garble=True)

    def _run(self, sale: _InFlight, request: PaymentRequest, message: Message,
             link: socket.socket) -> PaymentResponse | None:
        """Wait for the citizen, ask the bank, record the sale: its PaymentResponse (None: rebooted)."""
        header = message.header
        if sale.wallet:
            self._show_payment_request(sale, header, link)
        ending = self._wait_for_citizen(sale)
        if ending is None:
            return None
        card = ending if isinstance(ending, Card) else None
        if card is not None and not sale.wallet:
            with self._changed:
                sale.state = "processing"
            self._notify(link, header, EventNotification(EventToNotify.CARD_INSERTED, now_iso()))
        if ending is _ABORTED:
            status, outcome = SaleStatus.FAILED, "aborted"
            response = failure(ErrorCondition.ABORTED, refusalReason="104 Merchant cancelled tx", message="CANCELLED")
        elif ending is _TIMED_OUT:
            status, outcome = SaleStatus.FAILED, "timed-out"
            reason = "Payment request expired" if sale.wallet else "126 Shopper did not present card"
            response = failure(ErrorCondition.CANCEL, refusalReason=reason, message="TIMEOUT")
        elif card is Card.APPROVE:
            status, outcome, response = SaleStatus.APPROVED, card.value, success()
        else:
            assert card is not None
            status, condition, reason, said = _ENDINGS[card]
            outcome, response = card.value, failure(condition, refusalReason=reason, message=said)
        approved = status is SaleStatus.APPROVED
        result = PaymentResponse(
            response, request.sale_transaction, TransactionIdentification(new_payment_id(), now_iso()),
            request.amount if approved else None, PaymentType.NORMAL,
            PaymentInstrumentType.MOBILE if sale.wallet else PaymentInstrumentType.CARD,
            masked_pan=TEST_CARD_PAN if approved and not sale.wallet else "",
            brand=(WALLET_BRAND if sale.wallet else CARD_BRAND) if approved else "",
            approval_code="%06d" % secrets.randbelow(10 ** 6) if approved else "")
        assert result.poi_transaction is not None
        with self._changed:
            if self._generation != sale.generation:
                return None
            sale.state = "approved" if approved else status.value
            self.acquirer.record(Sale(
                payment_id=result.poi_transaction.transaction_id, sale_id=sale.sale_id,
                sale_system_id=sale.sale_system_id, service_id=sale.service_id, terminal_id=self.poi_id,
                amount=request.amount, method="wallet" if sale.wallet else "card", status=status, outcome=outcome,
                batch=self.acquirer.batch, at=now_iso(), answer=result, answer_header=self._answer_header(header)))
        log.info("terminal_sim.sale sale_id=%s payment_id=%s status=%s outcome=%s", sale.sale_id,
                 result.poi_transaction.transaction_id, status.value, outcome)
        return result

    def _wait_for_citizen(self, sale: _InFlight) -> Card | object | None:
        """The card (or wallet payer) that decides the sale, _ABORTED, _TIMED_OUT, or None when the
        terminal rebooted meanwhile."""
        patience = self._wallet_expiry if sale.wallet else self._card_timeout
        until = time.monotonic() + patience

        def over() -> bool:
            return self._generation != sale.generation or sale.aborted

        with self._changed:
            sale.waiting = True
            self._changed.notify_all()
            try:
                if sale.card is None and self._auto_present is not None and not over():
                    self._changed.wait_for(lambda: over() or sale.card is not None, self._auto_delay)
                    if sale.card is None and not over():
                        sale.card = self._auto_present
                if not over() and sale.card in (None, Card.NO_ANSWER):
                    self._changed.wait_for(lambda: over() or sale.card not in (None, Card.NO_ANSWER),
                                           max(0.0, until - time.monotonic()))
            finally:
                sale.waiting = False
            if self._generation != sale.generation:
                return None
            if sale.aborted:
                return _ABORTED
            if sale.card in (None, Card.NO_ANSWER):
                return _TIMED_OUT
            return sale.card

    def _show_payment_request(self, sale: _InFlight, header: MessageHeader, link: socket.socket) -> None:
        """The wallet's payment request, as a QR code on the Sale's display."""
        url = WALLET_URL + secrets.token_urlsafe(12)
        with self._changed:
            sale.qr, sale.state = url, "scan-qr"
        output = DisplayOutput(Device.CUSTOMER_DISPLAY, InfoQualify.DISPLAY, barcode=Barcode(BarcodeType.QR_CODE, url),
                               response_required=False, minimum_display_time=max(1, math.ceil(self._wallet_expiry)))
        device_id = secrets.token_hex(5)
        to_sale = MessageHeader(MessageClass.DEVICE, MessageCategory.DISPLAY, MessageType.REQUEST, header.sale_id,
                                self.poi_id, header.service_id, device_id)
        self._send(link, Message(to_sale, DisplayRequest((output,)).to_json()))

    def _notify(self, link: socket.socket, header: MessageHeader, event: EventNotification) -> None:
        to_sale = MessageHeader(MessageClass.EVENT, MessageCategory.EVENT, MessageType.NOTIFICATION, header.sale_id,
                                self.poi_id, header.service_id)
        self._send(link, Message(to_sale, event.to_json()))

    def _send(self, link: socket.socket, message: Message) -> None:
        try:
            write_frame(link, encode(message), max_size=self._max_frame)
        except OSError:
            pass          # the Sale went away; the sale goes on until it answers into the void

    # -- status, reversal, refund -------------------------------------------------------------------------------------

    def _status(self, message: Message) -> _Reply:
        request = TransactionStatusRequest.from_json(message.body)
        header = message.header
        reference = request.reference
        sale_system_id = (reference.sale_id if reference is not None and reference.sale_id else header.sale_id)
        service_id = reference.service_id if reference is not None else None
        echo = reference or MessageReference(MessageCategory.PAYMENT, service_id, sale_system_id)
        with self._changed:
            current = self._current
        if current is not None and current.sale_system_id == sale_system_id and service_id in (None, current.service_id):
            return self._answer(message, TransactionStatusResponse(
                failure(ErrorCondition.IN_PROGRESS, message="IN_PROGRESS"), echo).to_json(), garble=True)
        sale: Sale | None = None
        if reference is None or reference.category is MessageCategory.PAYMENT:
            sale = self.acquirer.by_service(sale_system_id, service_id) if service_id \
                else self.acquirer.last_of(sale_system_id)
        if sale is None:
            return self._answer(message, TransactionStatusResponse(
                failure(ErrorCondition.NOT_FOUND, message="NOT_FOUND"), echo).to_json(), garble=True)
        return self._answer(message, TransactionStatusResponse(
            success(), echo, sale.answer_header, sale.answer).to_json(), garble=True)

    def _reversal(self, message: Message) -> _Reply:
        header = message.header
        original = OriginalPOITransaction.from_json(fields.obj(message.body, "OriginalPOITransaction",
                                                               "ReversalRequest"),
                                                    "ReversalRequest.OriginalPOITransaction")
        sale = self.acquirer.get(original.poi_transaction.transaction_id)
        request = ReversalRequest.from_json(message.body, sale.amount.currency if sale else "SYP")
        if request.sale_transaction is None:
            return self._refuse(message, failure(ErrorCondition.MESSAGE_FORMAT,
                                                 errors="ReversalRequest.SaleData.SaleTransactionID is missing"))
        with self._changed:
            if self._current is not None:
                return self._refuse(message, failure(ErrorCondition.BUSY, message="SALE_IN_PROGRESS"))
        reversal_id = request.sale_transaction.transaction_id
        given = self.acquirer.given_back(header.sale_id, reversal_id)
        if given is not None:
            if sale is None or given.payment_id != sale.payment_id:
                return self._refuse(message, failure(ErrorCondition.REFUSAL, message="REVERSAL_ID_REUSED"))
            if given.kind is GivenBackKind.REFUND:
                return self._refuse(message, failure(ErrorCondition.NOT_ALLOWED, message="BATCH_CLOSED"))
            return self._given(message, given.poi_transaction_id, given.at, sale)
        problem = self._not_to_give_back(sale, request.reversed_amount)
        if problem is not None:
            return self._refuse(message, problem)
        assert sale is not None
        if sale.batch != self.acquirer.batch:
            return self._refuse(message, failure(ErrorCondition.NOT_ALLOWED, message="BATCH_CLOSED"))
        try:
            given = self.acquirer.give_back(header.sale_id, sale.payment_id, GivenBackKind.REVERSAL, reversal_id)
        except ValueError:
            return self._refuse(message, failure(ErrorCondition.REFUSAL, message="ALREADY_GIVEN_BACK"))
        log.info("terminal_sim.reversal payment_id=%s reversal_id=%s", sale.payment_id, reversal_id)
        return self._given(message, given.poi_transaction_id, given.at, sale)

    def _given(self, message: Message, poi_transaction_id: str, at: str, sale: Sale) -> _Reply:
        return self._answer(message, ReversalResponse(
            success(), TransactionIdentification(poi_transaction_id, at), sale.amount).to_json(), garble=True)

    def _refund(self, message: Message, request: PaymentRequest) -> _Reply:
        header = message.header
        with self._changed:
            if self._current is not None:
                return self._refuse(message, failure(ErrorCondition.BUSY, message="SALE_IN_PROGRESS"))
        if request.original is None:
            return self._refuse(message, failure(ErrorCondition.NOT_ALLOWED, message="UNREFERENCED_REFUND"))
        sale = self.acquirer.get(request.original.poi_transaction.transaction_id)
        refund_id = request.sale_transaction.transaction_id
        given = self.acquirer.given_back(header.sale_id, refund_id)
        if given is not None:
            if sale is None or given.payment_id != sale.payment_id or given.kind is not GivenBackKind.REFUND:
                return self._refuse(message, failure(ErrorCondition.REFUSAL, message="REFUND_ID_REUSED"))
        else:
            problem = self._not_to_give_back(sale, request.amount)
            if problem is not None:
                return self._refuse(message, problem)
            assert sale is not None
            try:
                given = self.acquirer.give_back(header.sale_id, sale.payment_id, GivenBackKind.REFUND, refund_id)
            except ValueError:
                return self._refuse(message, failure(ErrorCondition.REFUSAL, message="ALREADY_GIVEN_BACK"))
            log.info("terminal_sim.refund payment_id=%s refund_id=%s", sale.payment_id, refund_id)
        assert sale is not None
        answer = PaymentResponse(success(), request.sale_transaction,
                                 TransactionIdentification(given.poi_transaction_id, given.at), sale.amount,
                                 PaymentType.REFUND, PaymentInstrumentType.CARD)
        return self._answer(message, answer.to_json(), garble=True)

    @staticmethod
    def _not_to_give_back(sale: Sale | None, amount: Any) -> Response | None:
        """Why `sale` cannot be given back (for `amount`, when named), or None."""
        if sale is None:
            return failure(ErrorCondition.NOT_FOUND, message="UNKNOWN_TRANSACTION")
        if sale.status is not SaleStatus.APPROVED:
            return failure(ErrorCondition.REFUSAL, message="NOT_APPROVED")
        if amount is not None and amount != sale.amount:
            return failure(ErrorCondition.REFUSAL, message="AMOUNT_MISMATCH")
        if sale.given_back is not None:
            return failure(ErrorCondition.REFUSAL, message="ALREADY_GIVEN_BACK")
        return None


def _reset(sock: socket.socket) -> None:
    """Close so that the peer sees a reset, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
