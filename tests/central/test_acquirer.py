"""AcquirerClient, central's look-up of a payment at the acquirer: good answers, bad ones, and TLS."""

from __future__ import annotations

import json
import logging

import pytest

from central.acquirer import AcquiredPayment, AcquirerClient, LookupOutcome, PaymentLookup
from kiosk.wire import AcquirerPaymentStatus
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import StubHttpServer, raw_reply, self_signed_certificate, server_tls

PAYMENT = {"payment_id": "pay_1", "status": "approved", "amount_minor": 150000, "currency": "SYP",
           "terminal_id": "TERM-0001", "sale_id": "sale-1"}


def looked_up(reply: bytes | None, payment_id: str = "pay_1") -> PaymentLookup:
    stub = StubHttpServer(reply)
    try:
        with AcquirerClient(stub.url, timeout_s=2) as client:
            return client.look_up(payment_id)
    finally:
        stub.stop()


def answer(body: object, status: str = "200 OK") -> bytes:
    return raw_reply(status, json.dumps(body).encode())


def test_a_known_payment_is_found_with_what_the_acquirer_holds() -> None:
    with StubAcquirer() as acquirer, AcquirerClient(acquirer.url) as client:
        payment_id = acquirer.pay(200000, status="refunded", terminal_id="TERM-0042")
        lookup = client.look_up(payment_id)
        assert lookup == PaymentLookup(LookupOutcome.FOUND, AcquiredPayment(
            payment_id=payment_id, status=AcquirerPaymentStatus.REFUNDED, amount_minor=200000, currency="SYP",
            terminal_id="TERM-0042", sale_id="sale-" + payment_id[4:]))
        assert client.look_up("pay_nobody_made").outcome is LookupOutcome.UNKNOWN
        assert acquirer.asked == [payment_id, "pay_nobody_made"]


def test_the_payment_is_asked_for_at_its_own_path() -> None:
    stub = StubHttpServer(answer({**PAYMENT, "payment_id": "pay:1.a"}))
    try:
        with AcquirerClient(stub.url + "/") as client:
            assert client.look_up("pay:1.a").outcome is LookupOutcome.FOUND
        assert stub.request_lines == ["GET /acquirer/v1/payments/pay%3A1.a"]
    finally:
        stub.stop()


def test_a_payment_in_a_currency_the_kiosk_does_not_handle_is_still_an_answer() -> None:
    lookup = looked_up(answer({**PAYMENT, "currency": "GBP"}))
    assert lookup.outcome is LookupOutcome.FOUND and lookup.payment.currency == "GBP"


GARBLED = {
    "not JSON": raw_reply("200 OK", b"<html>proxy login</html>", content_type="text/html"),
    "a JSON list": answer([PAYMENT]),
    "no status": answer({k: v for k, v in PAYMENT.items() if k != "status"}),
    "no sale id": answer({k: v for k, v in PAYMENT.items() if k != "sale_id"}),
    "an unknown status": answer({**PAYMENT, "status": "pending"}),
    "another payment's answer": answer({**PAYMENT, "payment_id": "pay_2"}),
    "an amount as text": answer({**PAYMENT, "amount_minor": "150000"}),
    "an amount as a float": answer({**PAYMENT, "amount_minor": 1500.0}),
    "an amount that is true": answer({**PAYMENT, "amount_minor": True}),
    "a negative amount": answer({**PAYMENT, "amount_minor": -1}),
    "a currency that is not a code": answer({**PAYMENT, "currency": "syp"}),
    "a terminal id that is not text": answer({**PAYMENT, "terminal_id": 7}),
}


@pytest.mark.parametrize("reply", list(GARBLED.values()), ids=list(GARBLED))
def test_a_garbled_answer_is_unreachable_with_a_log_event(reply, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert looked_up(reply).outcome is LookupOutcome.UNREACHABLE
    assert "acquirer.answer_garbled payment_id=pay_1" in caplog.text


UNAVAILABLE = {
    "a 500": raw_reply("500 Internal Server Error", b"oops", content_type="text/plain"),
    "a 503": answer({"reason": "busy"}, "503 Service Unavailable"),
    "a 404 from a wrong address": raw_reply("404 Not Found", b"<h1>Not Found</h1>", content_type="text/html"),
    "a 404 with another reason": answer({"reason": "not_found"}, "404 Not Found"),
    "a redirect": raw_reply("302 Found", b"", headers={"Location": "http://127.0.0.1:9/elsewhere"}),
    "a 401": answer({"reason": "unauthorised"}, "401 Unauthorized"),
    "a truncated answer": raw_reply("200 OK", b'{"payment_id": "pa', length=400),
    "no answer at all": None,
}


@pytest.mark.parametrize("reply", list(UNAVAILABLE.values()), ids=list(UNAVAILABLE))
def test_a_failed_answer_is_unreachable_never_unknown(reply) -> None:
    assert looked_up(reply).outcome is LookupOutcome.UNREACHABLE


def test_only_a_404_saying_unknown_payment_is_unknown() -> None:
    assert looked_up(answer({"reason": "unknown_payment"}, "404 Not Found")).outcome is LookupOutcome.UNKNOWN


def test_an_acquirer_that_never_answers_is_unreachable_after_the_timeout() -> None:
    stub = StubHttpServer(hold=True)
    try:
        with AcquirerClient(stub.url, timeout_s=0.2) as client:
            assert client.look_up("pay_1").outcome is LookupOutcome.UNREACHABLE
        assert len(stub.requests) == 1          # asked once: the kiosk's outbox asks again later
    finally:
        stub.stop()


def test_connect_and_read_timeouts() -> None:
    with AcquirerClient("http://127.0.0.1:9") as client:
        assert client._timeout == (3.0, 5.0)
    with AcquirerClient("http://127.0.0.1:9", timeout_s=0.5) as client:
        assert client._timeout == (0.5, 0.5)


def test_tls_certificates_are_verified_and_a_ca_may_be_pinned(tmp_path, monkeypatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    stub = StubHttpServer(answer(PAYMENT), tls=server_tls(cert, key))
    try:
        with AcquirerClient(stub.url) as client:
            assert client.look_up("pay_1").outcome is LookupOutcome.UNREACHABLE
        assert stub.requests == []          # nothing was asked of a server whose certificate was refused
        (tmp_path / "other").mkdir()
        other, _ = self_signed_certificate(tmp_path / "other")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))      # does not replace the pinned CA
        with AcquirerClient(stub.url, ca_file=cert) as pinned:
            assert pinned.look_up("pay_1").outcome is LookupOutcome.FOUND
    finally:
        stub.stop()


def test_a_missing_ca_file_or_a_url_that_is_not_http_is_refused_at_once(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        AcquirerClient("https://127.0.0.1:9", ca_file=tmp_path / "nothing.pem")
    with pytest.raises(ValueError):
        AcquirerClient("127.0.0.1:9")
