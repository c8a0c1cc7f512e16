"""GatewayPaymentTerminal against the gateway simulator on loopback, and against links that fail."""

from __future__ import annotations

import socket
import ssl
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import urllib3

from central.server import RunningCentral, start_in_thread
from drivers.gateway_payment import GatewayPaymentTerminal, _never_sent
from kiosk.ports.payment_terminal import PaymentStatus, RefundStatus
from kiosk.errors import PaymentError
from kiosk.money import Money
from tests.central.stub_http import (StubHttpServer, raw_reply, self_signed_certificate, server_tls,
                                     unanswered_port)

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

DEVICE_ID = "kiosk-pay-test"
FEE = Money.of(150000, "SYP")


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    running = start_in_thread("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"))
    yield running
    running.stop()


@pytest.fixture
def terminal(central: RunningCentral) -> Iterator[GatewayPaymentTerminal]:
    terminal = GatewayPaymentTerminal(central.url, device_id=DEVICE_ID)
    yield terminal
    terminal.close()


def script(central: RunningCentral, outcome: str) -> None:
    response = requests.post(central.url + "/api/v1/gateway/sim/next-outcome",
                             json={"outcome": outcome, "device_id": DEVICE_ID}, timeout=10)
    assert response.status_code == 200


def gateway_charge(central: RunningCentral, payment_id: str) -> dict:
    return requests.get(central.url + "/api/v1/gateway/charges/" + payment_id, timeout=10).json()


def new_id(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex)


def test_approved_charge(central, terminal) -> None:
    charge_id = new_id("charge")
    outcome = terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert (outcome.status, outcome.amount, outcome.charge_id) == (PaymentStatus.APPROVED, FEE, charge_id)
    charged = gateway_charge(central, outcome.payment_id)
    assert (charged["amount_minor"], charged["device_id"], charged["reference"]) == (150000, DEVICE_ID, "req-1")


def test_declined_charge(central, terminal) -> None:
    script(central, "declined")
    outcome = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1")
    assert outcome.status is PaymentStatus.DECLINED and outcome.payment_id is None


def test_acquirer_error_is_failed_and_nothing_was_charged(central, terminal) -> None:
    script(central, "error")
    charge_id = new_id("charge")
    assert terminal.charge(FEE, charge_id=charge_id, reference="req-1").status is PaymentStatus.FAILED
    assert terminal.charge(FEE, charge_id=charge_id, reference="req-1").status is PaymentStatus.APPROVED


def test_lost_answer_is_unknown_and_asking_again_charges_once(central, terminal) -> None:
    script(central, "lost")
    charge_id = new_id("charge")
    assert terminal.charge(FEE, charge_id=charge_id, reference="req-1").status is PaymentStatus.UNKNOWN
    first = terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    second = terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    assert first.status is PaymentStatus.APPROVED and first.payment_id == second.payment_id


def test_charge_id_reused_for_another_amount_is_a_payment_error(terminal) -> None:
    charge_id = new_id("charge")
    terminal.charge(FEE, charge_id=charge_id, reference="req-1")
    with pytest.raises(PaymentError, match="charge_id_reused"):
        terminal.charge(Money.of(1, "SYP"), charge_id=charge_id, reference="req-1")


def test_refund_is_idempotent(central, terminal) -> None:
    payment_id = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1").payment_id
    refund_id = new_id("refund")
    for _ in range(2):
        outcome = terminal.refund(payment_id, FEE, refund_id=refund_id)
        assert (outcome.status, outcome.payment_id, outcome.refund_id) == (RefundStatus.REFUNDED, payment_id,
                                                                            refund_id)
    assert gateway_charge(central, payment_id)["refunded_minor"] == FEE.amount_minor


def test_refund_of_more_than_was_charged_is_a_payment_error(terminal) -> None:
    payment_id = terminal.charge(FEE, charge_id=new_id("charge"), reference="req-1").payment_id
    with pytest.raises(PaymentError, match="exceeds_charge"):
        terminal.refund(payment_id, FEE + Money.of(1, "SYP"), refund_id=new_id("refund"))


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return "http://127.0.0.1:%d" % port


def test_gateway_down_is_failed_for_charge_and_refund() -> None:
    """Connection refused: a ConnectionError caused by urllib3's NewConnectionError."""
    terminal = GatewayPaymentTerminal(closed_port_url(), device_id=DEVICE_ID, timeout_s=2)
    try:
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.FAILED
        assert terminal.refund("pay_1", FEE, refund_id="refund-1").status is RefundStatus.FAILED
    finally:
        terminal.close()


@pytest.mark.parametrize("reply", [
    None,                                                                    # connection closed unanswered
    raw_reply("200 OK", b'{"status": "appr', length=300),                     # cut mid-answer
    raw_reply("200 OK", b"<html>gateway</html>", content_type="text/html"),  # garbled
    raw_reply("200 OK", b'{"status": "approved", "charge_id": "someone-else", "payment_id": "p",'
                        b' "amount_minor": 150000, "currency": "SYP"}'),     # an answer to another charge
    raw_reply("500 Internal Server Error", b"oops", content_type="text/plain"),
], ids=["closed", "truncated", "garbled", "another charge", "500"])
def test_answer_lost_after_sending_is_unknown(reply) -> None:
    stub = StubHttpServer(reply)
    terminal = GatewayPaymentTerminal(stub.url, device_id=DEVICE_ID)
    try:
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.UNKNOWN
        assert terminal.refund("pay_1", FEE, refund_id="refund-1").status is RefundStatus.FAILED
        assert len(stub.requests) == 2
    finally:
        terminal.close()
        stub.stop()


def test_gateway_that_never_answers_is_unknown_after_the_timeout() -> None:
    stub = StubHttpServer(hold=True)
    terminal = GatewayPaymentTerminal(stub.url, device_id=DEVICE_ID, timeout_s=0.2)
    try:
        started = time.monotonic()
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.UNKNOWN
        assert terminal.refund("pay_1", FEE, refund_id="refund-1").status is RefundStatus.FAILED
        assert time.monotonic() - started < 5
        assert len(stub.requests) == 2   # both were sent: the charge may have been made
    finally:
        terminal.close()
        stub.stop()


def test_gateway_that_never_accepts_the_connection_is_failed_after_the_connect_timeout() -> None:
    """A connect timeout is a ConnectionError and a Timeout at once: the request never left."""
    with unanswered_port() as url:
        terminal = GatewayPaymentTerminal(url, device_id=DEVICE_ID, timeout_s=0.3)
        try:
            started = time.monotonic()
            assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.FAILED
            assert terminal.refund("pay_1", FEE, refund_id="refund-1").status is RefundStatus.FAILED
            assert time.monotonic() - started < 5
        finally:
            terminal.close()


def test_connect_timeout_is_a_few_seconds_at_most_and_the_read_timeout_is_the_configured_one() -> None:
    terminal = GatewayPaymentTerminal("http://127.0.0.1:9", device_id=DEVICE_ID, timeout_s=60)
    try:
        assert terminal._timeout == (3.0, 60)
    finally:
        terminal.close()


@pytest.mark.parametrize("status", ["502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"])
def test_charges_and_refunds_are_sent_once_whatever_the_answer(status) -> None:
    stub = StubHttpServer(raw_reply(status, b'{"status": "error"}'))
    terminal = GatewayPaymentTerminal(stub.url, device_id=DEVICE_ID)
    try:
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.UNKNOWN
        assert stub.request_lines == ["POST /api/v1/gateway/charges"]
        assert terminal.refund("pay_1", FEE, refund_id="refund-1").status is RefundStatus.FAILED
        assert stub.request_lines == ["POST /api/v1/gateway/charges", "POST /api/v1/gateway/refunds"]
    finally:
        terminal.close()
        stub.stop()


APPROVED = raw_reply("200 OK", b'{"status": "approved", "charge_id": "charge-1", "payment_id": "pay_1",'
                               b' "amount_minor": 150000, "currency": "SYP"}')


def test_tls_certificates_are_verified_and_a_refused_one_means_nothing_was_sent(tmp_path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    stub = StubHttpServer(APPROVED, tls=server_tls(cert, key))
    terminal = GatewayPaymentTerminal(stub.url, device_id=DEVICE_ID)
    try:
        assert terminal._http.verify is True
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.FAILED
        assert stub.requests == []
    finally:
        terminal.close()
        stub.stop()


def test_a_pinned_ca_is_trusted(tmp_path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    stub = StubHttpServer(APPROVED, tls=server_tls(cert, key))
    terminal = GatewayPaymentTerminal(stub.url, device_id=DEVICE_ID, ca_file=cert)
    try:
        outcome = terminal.charge(FEE, charge_id="charge-1", reference="req-1")
        assert (outcome.status, outcome.payment_id) == (PaymentStatus.APPROVED, "pay_1")
    finally:
        terminal.close()
        stub.stop()


def test_a_missing_ca_file_is_refused_at_once(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        GatewayPaymentTerminal("https://127.0.0.1:9", device_id=DEVICE_ID, ca_file=tmp_path / "nothing.pem")


def _via_pool(reason: Exception) -> urllib3.exceptions.MaxRetryError:
    return urllib3.exceptions.MaxRetryError(None, "/api/v1/gateway/charges", reason)


# The rarer failures, built the way requests and urllib3 build them (the common ones
# are met for real above: refused, connect timeout, read timeout, dropped, cut short,
# certificate refused).
@pytest.mark.parametrize("exc, never_sent", [
    (requests.exceptions.ConnectionError(urllib3.exceptions.ClosedPoolError(None, "pool closed")), True),
    (requests.exceptions.ProxyError(_via_pool(urllib3.exceptions.ProxyError(
        "proxy down", urllib3.exceptions.NewConnectionError(None, "refused")))), True),
    (requests.exceptions.ProxyError(_via_pool(urllib3.exceptions.ProxyError(
        "proxy dropped", urllib3.exceptions.ProtocolError("reset")))), False),
    (requests.exceptions.SSLError(_via_pool(urllib3.exceptions.SSLError(
        ssl.SSLError(1, "decryption failed or bad record mac")))), False),
    (requests.exceptions.InvalidSchema("no adapter for ftp://"), True),
    (requests.exceptions.ContentDecodingError("bad gzip"), False),
    (urllib3.exceptions.DecodeError("bad gzip"), False),
], ids=["pool closed", "proxy unreachable", "proxy dropped", "TLS broken mid-answer", "bad scheme",
        "undecodable", "raw urllib3 error"])
def test_what_counts_as_never_sent(exc, never_sent) -> None:
    assert _never_sent(exc) is never_sent
