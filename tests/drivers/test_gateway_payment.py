"""GatewayPaymentTerminal against the gateway simulator on loopback, and against links that fail."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from central.server import RunningCentral, start_in_thread
from drivers.gateway_payment import GatewayPaymentTerminal
from kiosk.ports.payment_terminal import PaymentStatus, RefundStatus
from kiosk.errors import PaymentError
from kiosk.money import Money
from tests.central.stub_http import StubHttpServer, raw_reply

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
    response = httpx.post(central.url + "/api/v1/gateway/sim/next-outcome",
                          json={"outcome": outcome, "device_id": DEVICE_ID})
    assert response.status_code == 200


def gateway_charge(central: RunningCentral, payment_id: str) -> dict:
    return httpx.get(central.url + "/api/v1/gateway/charges/" + payment_id).json()


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
        assert terminal.charge(FEE, charge_id="charge-1", reference="req-1").status is PaymentStatus.UNKNOWN
    finally:
        terminal.close()
        stub.stop()
