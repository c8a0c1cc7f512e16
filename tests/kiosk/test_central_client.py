"""CentralClient against the real central service on loopback, and against a stub that answers badly."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from central.server import RunningCentral, start_in_thread
from drivers.gateway_payment import GatewayPaymentTerminal
from kiosk.ports.payment_terminal import PaymentStatus
from kiosk.central_client import (CentralClient, CentralUnreachable, Eligibility, SubmitResult, SubmitStatus,
                                  VoidStatus)
from kiosk.errors import CentralError
from kiosk.money import Money
from tests.central.stub_http import StubHttpServer, raw_reply

DEVICE_ID = "kiosk-client-test"
KHALED = {"national_number": "01020345671", "card_number": "SY1000000001"}
OMAR = {"national_number": "01020345693", "card_number": "SY1000000003"}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    running = start_in_thread("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(central: RunningCentral) -> Iterator[CentralClient]:
    with CentralClient(central.url, device_id=DEVICE_ID) as client:
        yield client


def new_id() -> str:
    return "req-" + uuid.uuid4().hex


def paid(url: str, client: CentralClient, service_code: str) -> str:
    """Pay the fee of `service_code` through the gateway; the payment id."""
    fee = client.fetch_catalogue().get(service_code).fee
    terminal = GatewayPaymentTerminal(url, device_id=DEVICE_ID)
    try:
        outcome = terminal.charge(fee, charge_id="charge-" + uuid.uuid4().hex, reference="test")
    finally:
        terminal.close()
    assert outcome.status is PaymentStatus.APPROVED
    return outcome.payment_id


def submit(client: CentralClient, request_id: str, citizen: dict, service_code: str, payment_id: str,
           language: str = "ar") -> SubmitResult:
    return client.submit_request(request_id, service_code=service_code, language=language, payment_id=payment_id,
                                 **citizen)


def test_fetch_catalogue(client) -> None:
    catalogue = client.fetch_catalogue()
    assert len(catalogue.services) == 6
    assert catalogue.get("family-statement").fee == Money.of(200000, "SYP")


def test_submit_issues_a_document_and_a_retry_gets_the_same_one(central, client) -> None:
    request_id, payment_id = new_id(), paid(central.url, client, "family-statement")
    first = submit(client, request_id, KHALED, "family-statement", payment_id)
    assert first.status is SubmitStatus.ISSUED and first.reason is None
    assert first.document.request_id == request_id and first.document.service_code == "family-statement"
    again = submit(client, request_id, KHALED, "family-statement", payment_id)
    assert again.document.serial == first.document.serial


def test_rejection_is_a_value_with_its_reason(central, client) -> None:
    result = submit(client, new_id(), OMAR, "marriage-certificate", paid(central.url, client, "marriage-certificate"))
    assert result == SubmitResult(SubmitStatus.REJECTED, reason="not_married")


def test_void_request(central, client) -> None:
    request_id = new_id()
    submit(client, request_id, OMAR, "birth-certificate", paid(central.url, client, "birth-certificate"))
    assert client.void_request(request_id) is VoidStatus.VOIDED
    assert client.void_request(request_id) is VoidStatus.VOIDED


def test_deliver_sends_outbox_messages(central, client) -> None:
    request_id = new_id()
    message = {"request_id": request_id, "service_code": "residence-certificate", "language": "en",
               "payment_id": paid(central.url, client, "residence-certificate"), **OMAR}
    answer = client.deliver("certificate_request", message)
    assert answer["status"] == "issued" and answer["document"]["request_id"] == request_id
    assert client.deliver("certificate_request", message) == answer
    voided = client.deliver("void_request", {"request_id": request_id})
    assert voided["status"] == "voided" and voided["serial"] == answer["document"]["serial"]


def test_deliver_refuses_an_unknown_kind(client) -> None:
    with pytest.raises(CentralError):
        client.deliver("parcel", {"request_id": new_id()})


def test_request_id_reused_with_another_body_can_never_succeed(central, client) -> None:
    request_id, payment_id = new_id(), paid(central.url, client, "birth-certificate")
    submit(client, request_id, OMAR, "birth-certificate", payment_id)
    with pytest.raises(CentralError, match="request_id_reused"):
        submit(client, request_id, OMAR, "birth-certificate", payment_id, language="en")


def test_invalid_message_can_never_succeed_and_the_error_holds_no_personal_data(client) -> None:
    with pytest.raises(CentralError) as raised:
        submit(client, new_id(), {"national_number": "123", "card_number": "SY1000000003"}, "birth-certificate",
               "pay_x")
    assert "invalid_input" in str(raised.value) and "SY1000000003" not in str(raised.value)


def test_central_down_is_unreachable_and_a_retry_after_it_returns_issues_once(central, client,
                                                                              tmp_path) -> None:
    db_url = "sqlite:///%s" % (tmp_path / "central.sqlite3")
    down = start_in_thread(db_url)
    port = down.port
    away = CentralClient(down.url, device_id=DEVICE_ID, timeout_s=2)
    try:
        payment_id = paid(down.url, away, "civil-status-extract")
        down.stop()
        request_id = new_id()
        assert submit(away, request_id, KHALED, "civil-status-extract", payment_id).status is SubmitStatus.UNREACHABLE
        assert away.void_request("req-other") is VoidStatus.UNREACHABLE
        assert away.deliver("void_request", {"request_id": "req-other"}) is None
        with pytest.raises(CentralUnreachable):
            away.fetch_catalogue()
        back = start_in_thread(db_url, port=port)
        try:
            issued = submit(away, request_id, KHALED, "civil-status-extract", payment_id)
            assert issued.status is SubmitStatus.ISSUED
            assert submit(away, request_id, KHALED, "civil-status-extract", payment_id) == issued
        finally:
            back.stop()
    finally:
        away.close()


def _document(request_id: str) -> dict:
    return {"request_id": request_id, "serial": "2026-AAAAAAAA", "service_code": "birth-certificate",
            "title": {"ar": "بيان ولادة", "en": "Birth certificate"}, "fields": [], "issued_at": "2026-01-01T00:00:00Z",
            "verification": "KSK1.x.y"}


GARBLED = {
    "not JSON": raw_reply("200 OK", b"<html>proxy login</html>", content_type="text/html"),
    "a JSON list": raw_reply("200 OK", b"[1, 2]"),
    "a document missing its keys": raw_reply("200 OK", b'{"status": "issued", "document": {"serial": 5}}'),
    "a document for another request": raw_reply("200 OK", json.dumps(
        {"status": "issued", "document": _document("req-someone-else")}).encode()),
    "a rejection without a reason": raw_reply("422 Unprocessable Entity", b'{"status": "rejected"}'),
    "an unknown status": raw_reply("200 OK", b'{"status": "maybe"}'),
}
UNAVAILABLE = {
    "a 500 page": raw_reply("500 Internal Server Error", b"<h1>oops</h1>", content_type="text/html"),
    "a 503": raw_reply("503 Service Unavailable", b'{"status": "error"}'),
    "a truncated answer": raw_reply("200 OK", b'{"status": "iss', length=400),
    "no answer at all": None,
}


@pytest.mark.parametrize("reply", list(GARBLED.values()), ids=list(GARBLED))
def test_garbled_answer_is_unreachable_with_a_log_event_not_a_crash(reply, caplog) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client, caplog.at_level(logging.INFO):
            result = submit(client, "req-1", KHALED, "birth-certificate", "pay_1")
            assert result == SubmitResult(SubmitStatus.UNREACHABLE)
            assert client.deliver("certificate_request", {"request_id": "req-1", "service_code": "birth-certificate",
                                                          "payment_id": "pay_1", "language": "ar", **KHALED}) is None
            with pytest.raises(CentralUnreachable):
                client.fetch_catalogue()
    finally:
        stub.stop()
    assert "central.answer_garbled" in caplog.text
    assert KHALED["national_number"] not in caplog.text and KHALED["card_number"] not in caplog.text


@pytest.mark.parametrize("reply", list(UNAVAILABLE.values()), ids=list(UNAVAILABLE))
def test_failed_answer_is_unreachable(reply) -> None:
    stub = StubHttpServer(reply)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID) as client:
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
            assert client.void_request("req-1") is VoidStatus.UNREACHABLE
    finally:
        stub.stop()


def test_central_that_never_answers_is_unreachable_after_the_timeout() -> None:
    stub = StubHttpServer(hold=True)
    try:
        with CentralClient(stub.url, device_id=DEVICE_ID, timeout_s=0.2) as client:
            assert submit(client, "req-1", KHALED, "birth-certificate", "pay_1").status is SubmitStatus.UNREACHABLE
    finally:
        stub.stop()


@pytest.mark.parametrize("service, citizen, expected", [
    ("marriage-certificate", OMAR, Eligibility.NOT_ELIGIBLE),        # Omar is single
    ("marriage-certificate", KHALED, Eligibility.ELIGIBLE),
    ("birth-certificate", {**OMAR, "card_number": "SY1000000099"}, Eligibility.NOT_ELIGIBLE),
    ("no-such-service", KHALED, Eligibility.NOT_ELIGIBLE),
])
def test_eligibility_is_asked_before_paying(client, service, citizen, expected) -> None:
    assert client.check_eligibility(service_code=service, **citizen) is expected


def test_eligibility_with_central_down_is_unreachable(tmp_path) -> None:
    running = start_in_thread("sqlite:///%s" % (tmp_path / "c.sqlite3"))
    url = running.url
    running.stop()
    with CentralClient(url, device_id=DEVICE_ID, timeout_s=2) as gone:
        assert gone.check_eligibility(service_code="birth-certificate", **OMAR) is Eligibility.UNREACHABLE
