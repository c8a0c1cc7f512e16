"""The nexo codec: public example messages read as their publisher meant them, the kiosk's own
messages written and read back exactly, amounts never through a float, frames on a real socket,
and every garbled, truncated, out-of-sequence or mismatched input refused as a NexoProtocolError
(never a KeyError or a TypeError)."""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.nexo.amounts import to_decimal, to_money
from drivers.nexo.enums import (
    BarcodeType, Device, ErrorCondition, EventToNotify, InfoQualify, MessageCategory, MessageClass, MessageType,
    PaymentInstrumentType, PaymentType, Result, ReversalReason,
)
from drivers.nexo.envelope import Message, MessageHeader, decode, dumps, encode, expect_answer
from drivers.nexo.errors import NexoProtocolError
from drivers.nexo.framing import HEADER, encode_frame, read_frame, write_frame
from drivers.nexo.messages import (
    AbortRequest, Barcode, DisplayOutput, DisplayRequest, DisplayResponse, EventNotification, LoginRequest,
    MessageReference, TransactionIdentification, failure, success,
)
from drivers.nexo.payment import (
    OriginalPOITransaction, PaymentRequest, PaymentResponse, ReversalRequest, ReversalResponse,
    TransactionStatusResponse,
)
from drivers.nexo_terminal import receipt_pan
from kiosk.money import Money

EXAMPLES = Path(__file__).with_name("nexo_examples")
FEE = Money.of(150000, "SYP")


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def body_of(name: str) -> dict[str, Any]:
    return json.loads(example(name), parse_float=Decimal)


def header(category: MessageCategory = MessageCategory.PAYMENT, kind: MessageType = MessageType.REQUEST, *,
           message_class: MessageClass = MessageClass.SERVICE, service_id: str | None = "abc123",
           device_id: str | None = None, sale_id: str = "kiosk-01", poi_id: str = "SIM-POI-0001") -> MessageHeader:
    return MessageHeader(message_class, category, kind, sale_id, poi_id, service_id, device_id)


def sale_request() -> PaymentRequest:
    return PaymentRequest(TransactionIdentification("sale-0001", "2026-01-02T03:04:05.678+00:00"), FEE,
                          sale_reference="req-1")


def payment_message() -> dict[str, Any]:
    return json.loads(encode(Message(header(), sale_request().to_json())), parse_float=Decimal)


# --- public examples --------------------------------------------------------------------------------------

def test_adyen_payment_success_reads_its_amount_approval_and_card() -> None:
    message = decode(example("payment-response-success.json"))
    assert (message.header.category, message.header.type, message.header.service_id) == \
        (MessageCategory.PAYMENT, MessageType.RESPONSE, "1234567890")
    payment = PaymentResponse.from_json(message.body)
    assert payment.response.result is Result.SUCCESS
    assert payment.amount == Money.of(100, "EUR")                            # AuthorizedAmount 1 (EUR)
    assert payment.poi_transaction.transaction_id == "4r7i001556529591000.8515565295894301"
    assert payment.sale_transaction.transaction_id == "001"
    assert (payment.approval_code, payment.brand, payment.instrument) == ("123456", "mc", PaymentInstrumentType.CARD)
    assert receipt_pan(payment.masked_pan) == "**** **** **** 1111"           # Adyen spells it MaskedPan


def test_adyen_payment_with_cents_converts_exactly() -> None:
    payment = PaymentResponse.from_json(decode(example("payment-response-success-decimal.json")).body)
    assert payment.amount == Money.of(1525, "EUR")                           # 15.25, never 15.249999...
    assert payment.payment_type is PaymentType.NORMAL
    assert "dapi.cfg" not in repr(payment)                                   # the card field stays out of repr
    assert sum(ch.isdigit() for ch in receipt_pan(payment.masked_pan)) <= 4


def test_adyen_cancelled_payment_is_a_failure_with_its_condition() -> None:
    payment = PaymentResponse.from_json(decode(example("payment-response-cancelled.json")).body)
    assert (payment.response.result, payment.response.error_condition) == (Result.FAILURE, ErrorCondition.CANCEL)
    assert payment.amount is None and payment.poi_transaction.transaction_id == "oLkO001503933508008"
    assert "Shopper cancelled" in payment.response.additional_response


def test_adyen_transaction_status_repeats_the_payment() -> None:
    message = decode(example("transaction-status-response-payment.json"))
    status = TransactionStatusResponse.from_json(message.body)
    assert status.response.succeeded
    assert (status.reference.category, status.reference.service_id) == (MessageCategory.PAYMENT, "05140342")
    assert status.repeated_payment.amount == Money.of(7900, "EUR")
    assert status.repeated_payment.poi_transaction.transaction_id == "57eT001544015027011.8815440150351036"


def test_adyen_transaction_status_may_repeat_a_reversal_with_its_header() -> None:
    status = TransactionStatusResponse.from_json(decode(example("transaction-status-response-reversal.json")).body)
    assert status.repeated_header.category is MessageCategory.REVERSAL
    assert status.repeated_payment is None
    assert status.repeated_reversal.poi_transaction.transaction_id == "883590993111199C"


def test_adyen_reversal_response_amount_needs_the_sales_currency() -> None:
    body = decode(example("reversal-response-success.json")).body
    assert ReversalResponse.from_json(body, currency="EUR").reversed_amount == Money.of(1010000, "EUR")
    assert ReversalResponse.from_json(body).reversed_amount is None


def test_adyen_display_response_answers_by_service_id() -> None:
    message = decode(example("display-response-success.json"))
    assert message.header.message_class is MessageClass.DEVICE and message.header.device_id is None
    assert DisplayResponse.from_json(message.body).response.succeeded
    asked = header(MessageCategory.DISPLAY, message_class=MessageClass.DEVICE, service_id="20135010",
                   device_id="20135010", sale_id="POSSystemID12345Appie", poi_id="MX925-284691408")
    expect_answer(asked, message)                  # no DeviceID in the answer: its ServiceID matches


def test_adyen_event_notification_travels_as_a_request() -> None:
    message = decode(example("event-notification-reject.json"))
    assert (message.header.message_class, message.header.type) == (MessageClass.EVENT, MessageType.NOTIFICATION)
    assert EventNotification.from_json(message.body).event is EventToNotify.REJECT


def test_adyen_example_with_a_trailing_comma_is_refused() -> None:
    with pytest.raises(NexoProtocolError, match="not JSON"):
        decode(example("card-acquisition-request-trailing-comma.json"))


def test_a_message_without_its_envelope_is_refused_and_reads_inside_one() -> None:
    raw = example("transaction-status-response-no-envelope.json")
    with pytest.raises(NexoProtocolError, match="neither a SaleToPOIRequest nor a SaleToPOIResponse"):
        decode(raw)
    wrapped = json.dumps({"SaleToPOIResponse": json.loads(raw)}).encode()
    status = TransactionStatusResponse.from_json(decode(wrapped).body)
    assert status.response.succeeded and status.repeated_payment is None


def test_adyen_bodies_read_as_published() -> None:
    display = DisplayRequest.from_json(body_of("display-request-body.json"))
    (output,) = display.outputs
    assert (output.device, output.text, output.response_required, output.minimum_display_time) == \
        (Device.CUSTOMER_DISPLAY, ("Please present card",), True, 5)
    abort = AbortRequest.from_json(body_of("abort-request-body.json"))
    assert (abort.reference.category, abort.reference.service_id, abort.reason) == \
        (MessageCategory.PAYMENT, "service-id", "cancelled-by-shopper")
    assert EventNotification.from_json(body_of("event-notification-body.json")).event is EventToNotify.BEGIN_MAINTENANCE
    login = LoginRequest.from_json(body_of("login-request-body.json"))
    assert (login.application_name, login.terminal_environment) == ("register-app", "Attended")


def test_public_payment_request_reads_its_amount_exactly() -> None:
    message = decode(example("payment-request.json"))
    request = PaymentRequest.from_json(message.body)
    assert (request.sale_transaction.transaction_id, request.amount, request.payment_type) == \
        ("ORDER-12345", Money.of(1099, "EUR"), PaymentType.NORMAL)


# --- the kiosk's own messages -----------------------------------------------------------------------------

def test_a_sale_request_is_written_in_major_units_and_read_back_the_same() -> None:
    data = encode(Message(header(), sale_request().to_json()))
    assert b'"RequestedAmount":1500.00' in data and b'"Currency":"SYP"' in data
    message = decode(data)
    assert message.header == header() and PaymentRequest.from_json(message.body) == sale_request()


def test_a_wallet_sale_asks_for_a_mobile_instrument() -> None:
    wallet = PaymentRequest(sale_request().sale_transaction, FEE, instrument=PaymentInstrumentType.MOBILE)
    body = wallet.to_json()
    assert body["PaymentData"] == {"PaymentType": "Normal", "PaymentInstrumentData": {"PaymentInstrumentType": "Mobile"}}
    assert PaymentRequest.from_json(decode(encode(Message(header(), body))).body) == wallet


def test_a_referenced_refund_and_a_reversal_round_trip() -> None:
    original = OriginalPOITransaction(TransactionIdentification("poi-1", "2026-01-02T03:04:05+00:00"),
                                      poi_id="SIM-POI-0001", sale_id="kiosk-01")
    refund = PaymentRequest(TransactionIdentification("rev-1", "2026-01-03T00:00:00+00:00"), FEE, PaymentType.REFUND,
                            original=original)
    assert PaymentRequest.from_json(decode(encode(Message(header(), refund.to_json()))).body) == refund
    reversal = ReversalRequest(original, ReversalReason.MERCHANT_CANCEL, FEE, refund.sale_transaction)
    data = encode(Message(header(MessageCategory.REVERSAL), reversal.to_json()))
    assert b'"ReversedAmount":1500.00' in data and b'"ReversalReason":"MerchantCancel"' in data
    assert ReversalRequest.from_json(decode(data).body, "SYP") == reversal


def test_a_status_answer_repeats_the_payment_with_its_header() -> None:
    answer = PaymentResponse(success(), sale_request().sale_transaction,
                             TransactionIdentification("poi-1", "2026-01-02T03:04:06+00:00"), FEE, PaymentType.NORMAL,
                             PaymentInstrumentType.CARD, masked_pan="476173 **** 0119", brand="VISA",
                             approval_code="123456")
    status = TransactionStatusResponse(success(), MessageReference(MessageCategory.PAYMENT, "abc123", "kiosk-01"),
                                       header(kind=MessageType.RESPONSE), answer)
    read = TransactionStatusResponse.from_json(
        decode(encode(Message(header(MessageCategory.TRANSACTION_STATUS, MessageType.RESPONSE), status.to_json()))).body)
    assert read == status and read.repeated_payment.masked_pan == "476173 **** 0119"


def test_the_terminals_qr_code_display_and_its_event() -> None:
    qr = DisplayOutput(Device.CUSTOMER_DISPLAY, InfoQualify.DISPLAY,
                       barcode=Barcode(BarcodeType.QR_CODE, "https://pay.example/r/abc"), minimum_display_time=120)
    request = DisplayRequest((qr,))
    message = decode(encode(Message(header(MessageCategory.DISPLAY, message_class=MessageClass.DEVICE,
                                           device_id="d1"), request.to_json())))
    assert message.body["DisplayOutput"][0]["OutputContent"] == {
        "OutputFormat": "BarCode", "OutputBarcode": {"BarcodeType": "QRCode", "BarcodeValue": "https://pay.example/r/abc"}}
    assert DisplayRequest.from_json(message.body).qr_code == qr
    event = EventNotification(EventToNotify.CARD_INSERTED, "2026-01-02T03:04:05+00:00")
    read = decode(encode(Message(header(MessageCategory.EVENT, MessageType.NOTIFICATION,
                                        message_class=MessageClass.EVENT), event.to_json())))
    assert read.to_json()["SaleToPOIRequest"]["EventNotification"]["EventToNotify"] == "CardInserted"


def test_a_failure_carries_its_reason_form_encoded() -> None:
    response = failure(ErrorCondition.REFUSAL, refusalReason="Not enough balance", message="NOT_ENOUGH_BALANCE")
    assert response.to_json() == {"Result": "Failure", "ErrorCondition": "Refusal",
                                  "AdditionalResponse": "refusalReason=Not+enough+balance&message=NOT_ENOUGH_BALANCE"}
    assert response.additional() == {"refusalReason": "Not enough balance", "message": "NOT_ENOUGH_BALANCE"}


# --- amounts ------------------------------------------------------------------------------------------------

def test_amounts_convert_exactly_both_ways() -> None:
    assert to_decimal(FEE) == Decimal("1500.00") and str(to_decimal(FEE)) == "1500.00"
    assert to_money(Decimal("1500.00"), "SYP") == FEE and to_money(1500, "SYP") == FEE
    assert to_money(Decimal("0.1"), "EUR") == Money.of(10, "EUR")


@pytest.mark.parametrize("value, currency, problem", [
    (Decimal("1500.005"), "SYP", "more decimals"),
    (Decimal("-1"), "SYP", "negative"),
    (Decimal("NaN"), "SYP", "not a finite number"),
    (Decimal("1E+400"), "SYP", "larger than any fee"),
    (Decimal("1"), "XXX", "currency the kiosk does not handle"),
    (True, "SYP", "not a number"),
    ("10.99", "SYP", "not a number"),
    (10.99, "SYP", "not a number"),                    # a float is refused, never rounded
])
def test_amounts_that_are_not_a_whole_number_of_minor_units_are_refused(value: Any, currency: str,
                                                                        problem: str) -> None:
    with pytest.raises(NexoProtocolError, match=problem):
        to_money(value, currency)


@given(st.integers(min_value=0, max_value=10 ** 12), st.sampled_from(["SYP", "USD", "EUR"]))
def test_any_amount_survives_the_wire(minor: int, currency: str) -> None:
    amount = Money(currency, minor)
    wire = encode(Message(header(), PaymentRequest(sale_request().sale_transaction, amount).to_json()))
    assert PaymentRequest.from_json(decode(wire).body).amount == amount


def test_json_numbers_are_never_floats() -> None:
    assert dumps({"a": Decimal("0.10"), "b": [1, True, None, "é"]}) == '{"a":0.10,"b":[1,true,null,"é"]}'
    with pytest.raises(TypeError):
        dumps({"a": 0.1})


# --- refused input ------------------------------------------------------------------------------------------

def mutated(change: Any) -> bytes:
    document = payment_message()
    change(document)
    return json.dumps(document, default=str).encode()


@pytest.mark.parametrize("data, problem", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"SaleToPOIRequest": ', "not JSON"),
    (b"[]", "not an object"),
    (b'{"SaleToPOIRequest": {"MessageHeader": {}, "MessageHeader": {}}}', "appears twice"),
    (b'{"SaleToPOIRequest": {"MessageHeader": {"A": NaN}}}', "NaN"),
    (b'{"SaleToPOIRequest": {}, "SaleToPOIResponse": {}}', "neither"),
    (b'{"SaleToPOIRequest": {"NexoBlob": "AAAA", "MessageHeader": {}}}', "encrypted"),
    (b'{"SaleToPOIRequest": {"PaymentRequest": {}}}', "MessageHeader is missing"),
])
def test_bytes_that_are_no_message_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(NexoProtocolError, match=problem):
        decode(data)


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["SaleToPOIRequest"].pop("PaymentRequest"), "has no PaymentRequest"),
    (lambda d: d["SaleToPOIRequest"].update(LoginRequest={}), "more than one body"),
    (lambda d: d.update(SaleToPOIResponse=d.pop("SaleToPOIRequest")), "travels in SaleToPOIRequest"),
    (lambda d: d["SaleToPOIRequest"]["MessageHeader"].update(MessageCategory="Paiement"), "is not a MessageCategory"),
    (lambda d: d["SaleToPOIRequest"]["MessageHeader"].update(ServiceID="12345678901"), "longer than 10"),
    (lambda d: d["SaleToPOIRequest"]["MessageHeader"].pop("ServiceID"), "ServiceID is missing"),
    (lambda d: d["SaleToPOIRequest"]["MessageHeader"].update(SaleID=7), "SaleID is not a string"),
    (lambda d: d["SaleToPOIRequest"]["MessageHeader"].pop("POIID"), "POIID is missing"),
])
def test_a_malformed_envelope_or_header_is_refused(change: Any, problem: str) -> None:
    with pytest.raises(NexoProtocolError, match=problem):
        decode(mutated(change))


@pytest.mark.parametrize("change, problem", [
    (lambda b: b["PaymentTransaction"]["AmountsReq"].pop("Currency"), "AmountsReq.Currency is missing"),
    (lambda b: b["PaymentTransaction"]["AmountsReq"].update(RequestedAmount="1500"), "RequestedAmount is not a number"),
    (lambda b: b["SaleData"]["SaleTransactionID"].update(TimeStamp="yesterday"), "not an ISO date"),
    (lambda b: b["PaymentData"].update(PaymentType="Gift"), "is not a PaymentType"),
    (lambda b: b.update(SaleData=[]), "SaleData is not an object"),
])
def test_a_malformed_payment_request_names_its_field(change: Any, problem: str) -> None:
    body = sale_request().to_json()
    body = json.loads(dumps(body), parse_float=Decimal)
    change(body)
    with pytest.raises(NexoProtocolError, match=problem):
        PaymentRequest.from_json(body)


def approved_body() -> dict[str, Any]:
    answer = PaymentResponse(success(), sale_request().sale_transaction,
                             TransactionIdentification("poi-1", "2026-01-02T03:04:06+00:00"), FEE,
                             PaymentType.NORMAL, PaymentInstrumentType.CARD, approval_code="123456")
    return json.loads(dumps(answer.to_json()), parse_float=Decimal)


@pytest.mark.parametrize("change, problem", [
    (lambda b: b.pop("Response"), "PaymentResponse.Response is missing"),
    (lambda b: b["Response"].update(Result="Maybe"), "is not a Result"),
    (lambda b: b["Response"].update(Result="Failure"), "ErrorCondition is missing"),
    (lambda b: b.pop("POIData"), "POIData.POITransactionID is missing"),
    (lambda b: b["PaymentResult"].pop("AmountsResp"), "PaymentResult.AmountsResp is missing"),
    (lambda b: b["PaymentResult"]["AmountsResp"].update(AuthorizedAmount=Decimal("1500.001")), "more decimals"),
    (lambda b: b["PaymentResult"]["AmountsResp"].update(Currency="ZZZ"), "currency the kiosk does not handle"),
])
def test_a_truncated_or_garbled_payment_answer_is_refused(change: Any, problem: str) -> None:
    body = approved_body()
    change(body)
    with pytest.raises(NexoProtocolError, match=problem):
        PaymentResponse.from_json(body)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_field_replaced_by_anything_is_a_protocol_error_or_still_valid(data: st.DataObject) -> None:
    body = approved_body()
    paths: list[list[str]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append(path + [key])
                walk(value, path + [key])
    walk(body, [])
    path = data.draw(st.sampled_from(paths))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    try:
        PaymentResponse.from_json(body)
    except NexoProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_only_a_protocol_error(data: bytes) -> None:
    try:
        decode(data)
    except NexoProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=len(encode(Message(header(), sale_request().to_json()))) - 1))
def test_a_message_cut_anywhere_is_refused(cut: int) -> None:
    with pytest.raises(NexoProtocolError):
        decode(encode(Message(header(), sale_request().to_json()))[:cut])


# --- answers matched to their request ------------------------------------------------------------------------

def answer_to(request: MessageHeader, **changes: Any) -> Message:
    from dataclasses import replace
    return Message(replace(request.response(), **changes), {})


def test_the_answer_to_a_request_is_accepted() -> None:
    expect_answer(header(), answer_to(header()))


@pytest.mark.parametrize("changes, problem", [
    ({"service_id": "other1"}, "another ServiceID"),
    ({"category": MessageCategory.LOGIN}, "response came to a Service Payment request"),
    ({"sale_id": "kiosk-02"}, "another SaleID"),
    ({"poi_id": "OTHER-POI"}, "another POIID"),
    ({"type": MessageType.REQUEST}, "was awaited"),
    ({"message_class": MessageClass.DEVICE}, "Device Payment response"),
])
def test_a_mismatched_or_out_of_sequence_answer_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(NexoProtocolError, match=problem):
        expect_answer(header(), answer_to(header(), **changes))


def test_a_device_answer_must_name_the_device_asked() -> None:
    asked = header(MessageCategory.DISPLAY, message_class=MessageClass.DEVICE, service_id=None, device_id="d1")
    expect_answer(asked, answer_to(asked))
    with pytest.raises(NexoProtocolError, match="another DeviceID"):
        expect_answer(asked, answer_to(asked, device_id="d2"))


def test_a_sale_that_knows_no_poiid_takes_the_terminals() -> None:
    asked = header(MessageCategory.LOGIN, poi_id="")
    expect_answer(asked, answer_to(asked, poi_id="SIM-POI-0001"))


# --- frames on a socket ----------------------------------------------------------------------------------------

@pytest.fixture
def pair() -> Any:
    left, right = socket.socketpair()
    left.settimeout(2.0)
    right.settimeout(2.0)
    yield left, right
    left.close()
    right.close()


def test_frames_carry_whole_messages_back_to_back(pair: Any) -> None:
    left, right = pair
    write_frame(left, b'{"a":1}')
    write_frame(left, b'{"b":2}')
    left.shutdown(socket.SHUT_WR)
    assert [read_frame(right), read_frame(right), read_frame(right)] == [b'{"a":1}', b'{"b":2}', None]


def test_a_frame_trickling_in_byte_by_byte_is_read_whole(pair: Any) -> None:
    left, right = pair
    data = encode_frame(b'{"SaleToPOIRequest": {}}')

    def trickle() -> None:
        for index in range(len(data)):
            left.send(data[index:index + 1])
    sender = threading.Thread(target=trickle)
    sender.start()
    assert read_frame(right) == b'{"SaleToPOIRequest": {}}'
    sender.join()


@pytest.mark.parametrize("data, problem", [
    (HEADER.pack(10) + b"12345", "ended 5 bytes into a 10-byte frame"),
    (b"\x00\x00", "ended 2 bytes into a 4-byte length header"),
    (HEADER.pack(0), "an empty frame"),
    (HEADER.pack(1 << 30), "over the 1024-byte limit"),
])
def test_a_truncated_empty_or_oversized_frame_is_refused(pair: Any, data: bytes, problem: str) -> None:
    left, right = pair
    left.sendall(data)
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(NexoProtocolError, match=problem):
        read_frame(right, max_size=1024)


def test_a_frame_not_whole_by_its_deadline_times_out(pair: Any) -> None:
    left, right = pair
    left.sendall(HEADER.pack(10) + b"12")
    with pytest.raises(socket.timeout):
        read_frame(right, deadline=time.monotonic() + 0.05)


def test_nothing_empty_or_oversized_is_framed() -> None:
    with pytest.raises(NexoProtocolError):
        encode_frame(b"")
    with pytest.raises(NexoProtocolError, match="over the 4-byte frame limit"):
        encode_frame(b"12345", max_size=4)
    assert encode_frame(b"1234", max_size=4) == b"\x00\x00\x00\x041234"
