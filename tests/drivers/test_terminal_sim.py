"""The terminal simulator as a test or a technician drives it (the HTTP control API and
`kiosk-sim terminal`), as central asks it (the acquirer's API), and as a bare nexo peer sees it
(the rules of its protocol, without the kiosk's driver in between). Loopback only."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from drivers.demo import sim_cli
from drivers.nexo.enums import ErrorCondition, MessageCategory, MessageClass, MessageType
from drivers.nexo.envelope import Message, MessageHeader, decode, encode
from drivers.nexo.framing import read_frame, write_frame
from drivers.nexo.messages import (
    AbortRequest, LoginRequest, LoginResponse, MessageReference, TransactionIdentification,
)
from drivers.nexo.payment import PaymentRequest, PaymentResponse, TransactionStatusRequest, TransactionStatusResponse
from drivers.nexo_terminal import NexoPaymentTerminal
from drivers.terminal_sim.simulator import TerminalSimulator
from kiosk import wire
from kiosk.money import Money
from kiosk.ports.payment_terminal import PaymentMethod, PaymentStatus, ReversalStatus

FEE = Money.of(150000, "SYP")
TIMEOUT_S = 10.0
ACQUIRER_KEYS = {"payment_id", "status", "amount_minor", "currency", "terminal_id", "sale_id"}


@pytest.fixture
def sim() -> Iterator[TerminalSimulator]:
    with TerminalSimulator(auto_present="approve", auto_present_delay_s=0.0) as simulator:
        yield simulator


def kiosk(sim: TerminalSimulator, sale_system_id: str = "kiosk-01") -> NexoPaymentTerminal:
    return NexoPaymentTerminal("127.0.0.1", sim.nexo_port, sale_system_id=sale_system_id, poi_id=sim.poi_id,
                               timeout_s=TIMEOUT_S)


def pay(terminal: NexoPaymentTerminal, sale_id: str, method: PaymentMethod = PaymentMethod.CARD) -> Any:
    return terminal.pay(FEE, sale_id=sale_id, reference="req-1", label="Birth 1,500", method=method)


def post(sim: TerminalSimulator, path: str, body: Any = None) -> requests.Response:
    return requests.post(sim.control_url + path, json=body, timeout=TIMEOUT_S)


def get(sim: TerminalSimulator, path: str) -> requests.Response:
    return requests.get(sim.control_url + path, timeout=TIMEOUT_S)


# --- the control API ---------------------------------------------------------------------------------------

def test_a_card_presented_over_http_is_what_the_next_sale_meets(sim) -> None:
    answer = post(sim, "/sim/present", {"card": "insufficient-funds"})
    assert (answer.status_code, answer.json()) == (200, {"card": "insufficient-funds", "presented": False})
    outcome = pay(kiosk(sim), "sale-1")
    assert outcome.status is PaymentStatus.DECLINED
    (line,) = get(sim, "/sim/statement").json()["payments"]
    assert (line["sale_id"], line["status"], line["outcome"], line["amount_minor"], line["currency"]) == \
        ("sale-1", "declined", "insufficient-funds", 150000, "SYP")


def test_faults_over_http_reach_the_terminal(sim) -> None:
    terminal = kiosk(sim)
    assert post(sim, "/sim/fault", {"fault": "busy"}).json() == {"fault": "busy"}
    assert pay(terminal, "sale-1").status is PaymentStatus.FAILED
    post(sim, "/sim/fault", {"fault": "clear"})
    assert post(sim, "/sim/fault", {"fault": "drop-answer"}).status_code == 200
    assert pay(terminal, "sale-2").status is PaymentStatus.UNKNOWN
    assert [p["sale_id"] for p in get(sim, "/sim/statement").json()["payments"]] == ["sale-2"]
    post(sim, "/sim/fault", {"fault": "offline"})
    assert pay(terminal, "sale-3").status is PaymentStatus.FAILED
    post(sim, "/sim/fault", {"fault": "online"})
    assert pay(terminal, "sale-3").status is PaymentStatus.APPROVED


def test_the_cutoff_over_http_turns_a_reversal_into_a_refund(sim) -> None:
    terminal = kiosk(sim)
    approved = pay(terminal, "sale-1")
    assert post(sim, "/sim/cutoff", {}).json() == {"batch": 1}
    assert terminal.reverse(approved, reversal_id="rev-1").status is ReversalStatus.REVERSED
    statement = get(sim, "/sim/statement").json()
    assert statement["batch"] == 1 and statement["payments"][0]["given_back"] == "refund"
    assert [(g["kind"], g["given_back_id"], g["payment_id"]) for g in statement["given_back"]] == \
        [("refund", "rev-1", approved.payment_id)]


def test_the_wallet_pays_over_http_only_what_is_on_show() -> None:
    with TerminalSimulator() as quiet:
        answer = post(quiet, "/sim/wallet/pay", {})
        assert (answer.status_code, answer.json()) == (409, {"error": "no_wallet_request"})


def test_the_display_says_what_the_terminal_shows(sim) -> None:
    assert get(sim, "/sim/display").json() == {"lines": [], "state": "idle", "qr": None}
    pay(kiosk(sim), "sale-1")
    assert get(sim, "/sim/display").json() == {"lines": ["Birth 1,500"], "state": "approved", "qr": None}


@pytest.mark.parametrize("path, body, status", [
    ("/sim/present", {"card": "gold"}, 400),
    ("/sim/present", {}, 400),
    ("/sim/fault", {"fault": "meteor"}, 400),
    ("/sim/nowhere", {}, 404),
])
def test_a_bad_control_request_is_refused_with_a_reason(sim, path, body, status) -> None:
    answer = post(sim, path, body)
    assert answer.status_code == status and "error" in answer.json()


def test_a_body_that_is_not_json_is_refused(sim) -> None:
    answer = requests.post(sim.control_url + "/sim/present", data=b"{card", timeout=TIMEOUT_S)
    assert (answer.status_code, answer.json()) == (400, {"error": "the body is not JSON"})


# --- the acquirer's API ----------------------------------------------------------------------------------------

def acquirer(sim: TerminalSimulator, payment_id: str) -> requests.Response:
    return get(sim, wire.acquirer_payment_path(payment_id))


def test_the_acquirer_knows_an_approved_payment_by_its_id(sim) -> None:
    approved = pay(kiosk(sim), "sale-1")
    answer = acquirer(sim, approved.payment_id)
    assert answer.status_code == 200 and set(answer.json()) == ACQUIRER_KEYS
    assert answer.json() == {"payment_id": approved.payment_id, "status": "approved", "amount_minor": 150000,
                             "currency": "SYP", "terminal_id": sim.poi_id, "sale_id": "sale-1"}


def test_the_acquirer_follows_a_payment_given_back(sim) -> None:
    terminal = kiosk(sim)
    reversed_one, refunded = pay(terminal, "sale-1"), pay(terminal, "sale-2")
    terminal.reverse(reversed_one, reversal_id="rev-1")
    sim.cutoff()
    terminal.reverse(refunded, reversal_id="rev-2")
    assert acquirer(sim, reversed_one.payment_id).json()["status"] == "reversed"
    assert acquirer(sim, refunded.payment_id).json()["status"] == "refunded"


def test_the_acquirer_knows_a_declined_payment_and_not_one_it_never_saw(sim) -> None:
    terminal = kiosk(sim)
    sim.present("refused")
    declined = pay(terminal, "sale-1")
    sim.present("removed")                     # the card left before the bank was asked
    pay(terminal, "sale-2")
    payments = {p["sale_id"]: p["payment_id"] for p in sim.statement()["payments"]}
    assert acquirer(sim, payments["sale-1"]).json()["status"] == "declined" and declined.payment_id is None
    for unknown in (payments["sale-2"], "poi-0000000000000000", "a/b c"):
        answer = acquirer(sim, unknown)
        assert (answer.status_code, answer.json()) == (404, {"reason": "unknown_payment"})
    assert get(sim, "/acquirer/v1/payments/%s/extra" % quote("poi-1")).status_code == 404


# --- the protocol, as a bare peer sees it ---------------------------------------------------------------------------

def exchange(sim: TerminalSimulator, message: Message) -> Message | None:
    """The response to `message` (what the terminal says meanwhile skipped); None when none came."""
    with socket.create_connection(("127.0.0.1", sim.nexo_port), timeout=TIMEOUT_S) as sock:
        write_frame(sock, encode(message))
        sock.shutdown(socket.SHUT_WR)
        while True:
            frame = read_frame(sock)
            if frame is None:
                return None
            answer = decode(frame)
            if answer.header.type is MessageType.RESPONSE:
                return answer


def request(category: MessageCategory, body: dict[str, Any], *, sale_id: str = "peer-1",
            poi_id: str | None = None, service_id: str = "s1", sim: TerminalSimulator) -> Message:
    header = MessageHeader(MessageClass.SERVICE, category, MessageType.REQUEST, sale_id,
                           sim.poi_id if poi_id is None else poi_id, service_id)
    return Message(header, body)


def login(sim: TerminalSimulator, poi_id: str | None = None) -> LoginResponse:
    answer = exchange(sim, request(MessageCategory.LOGIN, LoginRequest(
        "2026-01-02T03:04:05+00:00", "peer", "1.0", "peer").to_json(), poi_id=poi_id, sim=sim))
    return LoginResponse.from_json(answer.body)


def sale(sim: TerminalSimulator, sale_id: str = "sale-1", service_id: str = "s2") -> Message:
    return request(MessageCategory.PAYMENT, PaymentRequest(
        TransactionIdentification(sale_id, "2026-01-02T03:04:05+00:00"), FEE).to_json(),
        service_id=service_id, sim=sim)


def test_nothing_but_a_login_is_served_before_a_login(sim) -> None:
    answer = exchange(sim, sale(sim))
    assert PaymentResponse.from_json(answer.body).response.error_condition is ErrorCondition.LOGGED_OUT
    assert login(sim, poi_id="").response.succeeded                 # a Sale that does not know the POIID yet
    answer = exchange(sim, sale(sim))
    assert answer.header.poi_id == sim.poi_id and PaymentResponse.from_json(answer.body).response.succeeded


def test_a_request_for_another_terminal_is_refused(sim) -> None:
    assert login(sim).response.succeeded
    answer = exchange(sim, request(MessageCategory.PAYMENT, sale(sim).body, poi_id="OTHER-POI", sim=sim))
    assert PaymentResponse.from_json(answer.body).response.error_condition is ErrorCondition.MESSAGE_FORMAT


def test_a_status_of_a_sale_repeats_its_answer_and_knows_nothing_else(sim) -> None:
    login(sim)
    first = PaymentResponse.from_json(exchange(sim, sale(sim)).body)
    asked = TransactionStatusRequest(MessageReference(MessageCategory.PAYMENT, "s2", "peer-1")).to_json()
    status = TransactionStatusResponse.from_json(exchange(sim, request(
        MessageCategory.TRANSACTION_STATUS, asked, service_id="s3", sim=sim)).body)
    assert status.repeated_payment == first and status.repeated_header.service_id == "s2"
    unknown = TransactionStatusRequest(MessageReference(MessageCategory.PAYMENT, "nope", "peer-1")).to_json()
    status = TransactionStatusResponse.from_json(exchange(sim, request(
        MessageCategory.TRANSACTION_STATUS, unknown, service_id="s4", sim=sim)).body)
    assert status.response.error_condition is ErrorCondition.NOT_FOUND


def test_an_abort_is_never_answered(sim) -> None:
    login(sim)
    abort = AbortRequest(MessageReference(MessageCategory.PAYMENT, "s9", "peer-1"), "MerchantAbort")
    assert exchange(sim, request(MessageCategory.ABORT, abort.to_json(), service_id="s8", sim=sim)) is None


def test_an_abort_that_overtakes_its_sale_still_aborts_it(sim) -> None:
    login(sim)
    abort = AbortRequest(MessageReference(MessageCategory.PAYMENT, "s2", "peer-1"), "MerchantAbort")
    exchange(sim, request(MessageCategory.ABORT, abort.to_json(), service_id="s8", sim=sim))
    answer = PaymentResponse.from_json(exchange(sim, sale(sim)).body)
    assert answer.response.error_condition is ErrorCondition.ABORTED


def test_a_garbled_request_ends_the_connection(sim) -> None:
    with socket.create_connection(("127.0.0.1", sim.nexo_port), timeout=TIMEOUT_S) as sock:
        write_frame(sock, b'{"SaleToPOIRequest": ')
        assert read_frame(sock) is None


def test_the_same_sale_again_gets_the_same_answer_and_no_second_charge(sim) -> None:
    login(sim)
    first = exchange(sim, sale(sim, service_id="s2"))
    again = exchange(sim, sale(sim, service_id="s5"))
    assert PaymentResponse.from_json(again.body) == PaymentResponse.from_json(first.body)
    assert len(sim.statement()["payments"]) == 1


# --- kiosk-sim terminal -------------------------------------------------------------------------------------------

def test_the_client_commands_drive_a_running_simulator(sim, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sim_cli.logs, "setup", lambda: None)     # keep pytest's own log capture
    assert sim_cli.main(["terminal", "present", "--card", "wrong-pin", "--control", sim.control_url]) == 0
    assert json.loads(capsys.readouterr().out) == {"card": "wrong-pin", "presented": False}
    assert pay(kiosk(sim), "sale-1").status is PaymentStatus.DECLINED
    assert sim_cli.main(["terminal", "statement", "--control", sim.control_url]) == 0
    assert json.loads(capsys.readouterr().out)["payments"][0]["outcome"] == "wrong-pin"
    assert sim_cli.main(["terminal", "fault", "busy", "--control", sim.control_url]) == 0
    capsys.readouterr()
    assert sim_cli.main(["terminal", "pay-wallet", "--control", sim.control_url]) == 1     # none on show
    assert sim_cli.main(["terminal", "cutoff", "--control", sim.control_url]) == 0


def test_a_client_command_with_nothing_listening_says_so(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sim_cli.logs, "setup", lambda: None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert sim_cli.main(["terminal", "statement", "--control", "http://127.0.0.1:%d" % port]) == 1
    assert "cannot reach kiosk-sim terminal serve" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_runs_a_terminal_until_it_is_stopped() -> None:
    nexo_port, control_port = free_port(), free_port()
    command = [sys.executable, "-m", "drivers.demo.sim_cli", "terminal", "serve", "--port", str(nexo_port),
               "--control-port", str(control_port), "--auto-present", "approve", "--auto-present-delay", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        try:
            banner = ""
            for line in process.stdout:                   # waits for the announcement, not for a time
                if line.startswith("terminal simulator"):
                    banner = line
                    break
            assert ":%d" % nexo_port in banner and ":%d" % control_port in banner
            terminal = NexoPaymentTerminal("127.0.0.1", nexo_port, sale_system_id="kiosk-01", timeout_s=TIMEOUT_S)
            approved = pay(terminal, "sale-1")
            assert approved.status is PaymentStatus.APPROVED
            looked_up = requests.get("http://127.0.0.1:%d%s" % (control_port, wire.acquirer_payment_path(
                approved.payment_id)), timeout=TIMEOUT_S)
            assert looked_up.json()["status"] == "approved"
        finally:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT_S) == 0
