"""The nexo driver against the terminal simulator on loopback: what the citizen and the kiosk see
(outcome, reason, receipt, prompts) and what the acquirer holds (the statement), for every card,
every fault of the terminal and its link, reversals and refunds, wallets and TLS.

Loopback TCP only (no shared card stack). Waits are on events: a prompt heard, a sale waiting at
the terminal; the few timers here are the terminal's or the driver's own, made short.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drivers.nexo.enums import ErrorCondition, MessageCategory
from drivers.nexo.envelope import Message, decode, encode
from drivers.nexo.framing import read_frame, write_frame
from drivers.nexo.messages import (
    DisplayRequest, DisplayResponse, LoginResponse, OutputResult, Response, TransactionIdentification, failure, success,
)
from drivers.nexo.payment import PaymentRequest, PaymentResponse
from drivers.nexo_terminal import NexoPaymentTerminal, failure_of, receipt_pan, service_id_for
from drivers.terminal_sim.simulator import TerminalSimulator
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.payment_terminal import (
    PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus, PromptKind, ReversalStatus,
    TerminalState,
)

FEE = Money.of(150000, "SYP")
LABEL = "Birth certificate\n1,500 SYP"
WAIT_S = 10.0
KIOSK = "kiosk-test-01"


def new_id(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture
def make_sim() -> Iterator[Callable[..., TerminalSimulator]]:
    started: list[TerminalSimulator] = []

    def make(**options: Any) -> TerminalSimulator:
        options.setdefault("auto_present_delay_s", 0.0)
        simulator = TerminalSimulator(**options).start()
        started.append(simulator)
        return simulator
    yield make
    for simulator in started:
        simulator.stop()


def driver(sim: TerminalSimulator, **options: Any) -> NexoPaymentTerminal:
    options.setdefault("timeout_s", WAIT_S)
    options.setdefault("answer_timeout_s", 5.0)
    options.setdefault("poi_id", sim.poi_id)
    options.setdefault("sale_system_id", KIOSK)
    return NexoPaymentTerminal("127.0.0.1", sim.nexo_port, **options)


def lines(sim: TerminalSimulator) -> list[tuple[str, str, str]]:
    """The statement as (sale_id, status, given back)."""
    return [(p["sale_id"], p["status"], p["given_back"]) for p in sim.statement()["payments"]]


class Prompts:
    """What the terminal asked of the citizen, heard on pay's thread; tests wait on it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.heard: list[PaymentPrompt] = []

    def __call__(self, prompt: PaymentPrompt) -> None:
        with self._changed:
            self.heard.append(prompt)
            self._changed.notify_all()

    def wait_for(self, kind: PromptKind, timeout: float = WAIT_S) -> PaymentPrompt:
        with self._changed:
            assert self._changed.wait_for(lambda: any(p.kind is kind for p in self.heard), timeout), \
                "the terminal never asked for %s" % kind.value
            return next(p for p in self.heard if p.kind is kind)

    @property
    def kinds(self) -> list[PromptKind]:
        with self._changed:
            return [p.kind for p in self.heard]


class Paying:
    """`pay` on a thread of its own, as the kiosk's payment worker calls it."""

    def __init__(self, terminal: NexoPaymentTerminal, sale_id: str, *,
                 method: PaymentMethod = PaymentMethod.CARD) -> None:
        self.prompts = Prompts()
        self.sale_id = sale_id
        self.result: list[PaymentOutcome] = []
        self._thread = threading.Thread(target=lambda: self.result.append(terminal.pay(
            FEE, sale_id=sale_id, reference="req-1", label=LABEL, method=method, on_prompt=self.prompts)))
        self._thread.start()

    def outcome(self) -> PaymentOutcome:
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "pay did not return"
        (outcome,) = self.result
        return outcome


def pay(terminal: NexoPaymentTerminal, sale_id: str | None = None, *, prompts: Prompts | None = None,
        method: PaymentMethod = PaymentMethod.CARD) -> PaymentOutcome:
    return terminal.pay(FEE, sale_id=sale_id or new_id("sale"), reference="req-1", label=LABEL, method=method,
                        on_prompt=prompts)


# --- the citizen's card -------------------------------------------------------------------------------------

def test_approved_card_sale_gives_a_receipt_with_no_more_than_the_last_four_digits(make_sim, caplog) -> None:
    caplog.set_level(logging.INFO)
    sim = make_sim(auto_present="approve")
    terminal, prompts, sale_id = driver(sim), Prompts(), new_id("sale")
    assert terminal.check() is TerminalState.READY
    outcome = pay(terminal, sale_id, prompts=prompts)
    assert (outcome.status, outcome.amount, outcome.sale_id, outcome.reason) == \
        (PaymentStatus.APPROVED, FEE, sale_id, None)
    receipt = outcome.receipt
    assert (receipt.masked_pan, receipt.terminal_id, receipt.sale_id, receipt.brand) == \
        ("**** **** **** 0119", sim.poi_id, sale_id, "VISA")
    assert len(receipt.auth_code) == 6 and receipt.auth_code.isdigit()
    assert prompts.kinds == [PromptKind.PRESENT_CARD, PromptKind.PROCESSING]
    assert sim.display()["lines"] == LABEL.splitlines()                 # the fee on the terminal's own display
    assert lines(sim) == [(sale_id, "approved", "")]
    assert sim.acquirer.look_up(outcome.payment_id)["status"] == "approved"
    assert "0119" not in caplog.text and "476173" not in caplog.text    # no card number in any log


@pytest.mark.parametrize("card, status, reason", [
    ("insufficient-funds", PaymentStatus.DECLINED, PaymentReason.INSUFFICIENT_FUNDS),
    ("wrong-pin", PaymentStatus.DECLINED, PaymentReason.WRONG_PIN),
    ("expired", PaymentStatus.DECLINED, PaymentReason.CARD_EXPIRED),
    ("refused", PaymentStatus.DECLINED, PaymentReason.REFUSED),
    ("removed", PaymentStatus.FAILED, PaymentReason.CARD_REMOVED),
])
def test_a_card_that_is_not_approved_says_why_and_charges_nothing(make_sim, card, status, reason) -> None:
    sim = make_sim(auto_present="approve")
    sim.present(card)
    terminal, sale_id = driver(sim), new_id("sale")
    outcome = pay(terminal, sale_id)
    assert (outcome.status, outcome.reason, outcome.payment_id, outcome.receipt) == (status, reason, None, None)
    assert lines(sim) == [(sale_id, status.value, "")]
    found = terminal.status(sale_id)
    assert (found.status, found.reason) == (status, reason)
    assert pay(terminal).status is PaymentStatus.APPROVED               # the next card is another card


def test_nobody_presents_a_card_and_the_terminal_gives_up(make_sim) -> None:
    sim = make_sim(card_timeout_s=0.2)
    prompts = Prompts()
    outcome = pay(driver(sim), prompts=prompts)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)
    assert prompts.kinds == [PromptKind.PRESENT_CARD]
    assert [status for _, status, _ in lines(sim)] == ["failed"]


def test_a_card_presented_while_the_terminal_waits_is_the_one_it_takes(make_sim) -> None:
    sim = make_sim()
    paying = Paying(driver(sim), new_id("sale"))
    paying.prompts.wait_for(PromptKind.PRESENT_CARD)
    assert sim.wait_until_waiting(WAIT_S)
    assert sim.present("wrong-pin") is True
    assert (paying.outcome().status, paying.outcome().reason) == (PaymentStatus.DECLINED, PaymentReason.WRONG_PIN)


def test_abort_while_waiting_for_a_card_cancels_the_sale(make_sim) -> None:
    sim = make_sim()
    terminal = driver(sim)
    paying = Paying(terminal, new_id("sale"))
    paying.prompts.wait_for(PromptKind.PRESENT_CARD)
    assert terminal.check() is TerminalState.BUSY                       # a sale is under way
    terminal.abort()
    outcome = paying.outcome()
    assert (outcome.status, outcome.reason, outcome.payment_id) == \
        (PaymentStatus.FAILED, PaymentReason.CANCELLED, None)
    found = terminal.status(paying.sale_id)
    assert (found.status, found.reason) == (PaymentStatus.FAILED, PaymentReason.CANCELLED)
    assert lines(sim) == [(paying.sale_id, "failed", "")]
    terminal.abort()                                                    # nothing under way: nothing happens
    sim.present("approve")
    assert pay(terminal).status is PaymentStatus.APPROVED


def test_the_kiosks_own_wait_running_out_aborts_the_sale(make_sim) -> None:
    sim = make_sim(card_timeout_s=60.0)
    outcome = pay(driver(sim, timeout_s=0.3))
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)
    assert [status for _, status, _ in lines(sim)] == ["failed"]


# --- the terminal's trouble ---------------------------------------------------------------------------------

def test_a_busy_terminal_takes_nothing(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal, sale_id = driver(sim), new_id("sale")
    sim.fault("busy")
    assert terminal.check() is TerminalState.BUSY
    outcome = pay(terminal, sale_id)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TERMINAL_BUSY)
    assert terminal.status(sale_id).status is PaymentStatus.UNKNOWN     # busy: it cannot tell now
    assert lines(sim) == []
    sim.fault("clear")
    assert terminal.check() is TerminalState.READY
    assert pay(terminal, sale_id).status is PaymentStatus.APPROVED     # it was never taken


def test_a_second_sale_during_one_is_answered_busy(make_sim) -> None:
    sim = make_sim()
    first = Paying(driver(sim), new_id("sale"))
    first.prompts.wait_for(PromptKind.PRESENT_CARD)
    assert sim.wait_until_waiting(WAIT_S)
    other = driver(sim, sale_system_id="kiosk-test-02")
    assert other.check() is TerminalState.BUSY
    outcome = pay(other)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TERMINAL_BUSY)
    sim.present("approve")
    assert first.outcome().status is PaymentStatus.APPROVED
    assert [sale_id for sale_id, _, _ in lines(sim)] == [first.sale_id]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_nothing_listening_is_unreachable_and_nothing_is_charged(make_sim) -> None:
    terminal = NexoPaymentTerminal("127.0.0.1", free_port(), sale_system_id=KIOSK, timeout_s=WAIT_S)
    assert terminal.check() is TerminalState.UNREACHABLE
    outcome = pay(terminal)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TERMINAL_UNREACHABLE)
    sim = make_sim(auto_present="approve")
    approved = pay(driver(sim))
    sim.set_offline(True)
    terminal = driver(sim)
    assert pay(terminal).reason is PaymentReason.TERMINAL_UNREACHABLE
    assert terminal.status(approved.sale_id).status is PaymentStatus.UNKNOWN      # never FAILED
    assert terminal.reverse(approved, reversal_id="rev-offline").status is ReversalStatus.FAILED
    sim.set_offline(False)
    assert terminal.reverse(approved, reversal_id="rev-offline").status is ReversalStatus.REVERSED
    assert lines(sim) == [(approved.sale_id, "approved", "reversal")]


def test_an_answer_lost_after_the_charge_is_unknown_then_status_tells_without_charging_again(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal, sale_id = driver(sim), new_id("sale")
    sim.fault("drop-answer")
    lost = pay(terminal, sale_id)
    assert (lost.status, lost.payment_id) == (PaymentStatus.UNKNOWN, None)
    found = terminal.status(sale_id)
    assert (found.status, found.amount, found.sale_id) == (PaymentStatus.APPROVED, FEE, sale_id)
    assert found.receipt.masked_pan == "**** **** **** 0119"
    assert pay(terminal, sale_id).payment_id == found.payment_id        # the same sale_id: no second charge
    restarted = driver(sim)                                             # a kiosk restarted knows only the sale_id
    assert restarted.status(sale_id).payment_id == found.payment_id
    assert pay(restarted, sale_id).payment_id == found.payment_id       # the terminal repeats its answer
    assert lines(sim) == [(sale_id, "approved", "")]


def test_a_link_dropped_before_the_terminal_acted_is_unknown_then_never_taken(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal, sale_id = driver(sim), new_id("sale")
    sim.fault("drop-link")
    outcome = pay(terminal, sale_id)
    assert (outcome.status, outcome.payment_id) == (PaymentStatus.UNKNOWN, None)   # it left: it may exist
    found = terminal.status(sale_id)
    assert (found.status, found.payment_id) == (PaymentStatus.FAILED, None)
    assert lines(sim) == []


def test_a_reboot_mid_sale_is_unknown_then_never_taken(make_sim) -> None:
    sim = make_sim()
    terminal = driver(sim)
    paying = Paying(terminal, new_id("sale"))
    paying.prompts.wait_for(PromptKind.PRESENT_CARD)
    assert sim.wait_until_waiting(WAIT_S)
    sim.fault("reboot")
    assert paying.outcome().status is PaymentStatus.UNKNOWN
    assert terminal.status(paying.sale_id).status is PaymentStatus.FAILED       # the terminal forgot it untaken
    sim.present("approve")
    assert pay(terminal).status is PaymentStatus.APPROVED                       # logged in again first


def test_a_terminal_that_restarted_unseen_is_logged_into_again(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal = driver(sim)
    assert pay(terminal).status is PaymentStatus.APPROVED
    sim.fault("reboot")                        # no connection was open: the driver still thinks it is logged in
    assert pay(terminal).status is PaymentStatus.APPROVED
    assert terminal.status(lines(sim)[-1][0]).status is PaymentStatus.APPROVED


def test_a_garbled_answer_is_unknown_and_status_tells(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal, sale_id = driver(sim), new_id("sale")
    sim.fault("garble")
    assert pay(terminal, sale_id).status is PaymentStatus.UNKNOWN
    assert terminal.status(sale_id).status is PaymentStatus.APPROVED
    assert lines(sim) == [(sale_id, "approved", "")]


# --- giving back ----------------------------------------------------------------------------------------------

def test_a_reversal_gives_back_once_whatever_is_asked_again(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal = driver(sim)
    approved = pay(terminal)
    for _ in range(2):
        outcome = terminal.reverse(approved, reversal_id="rev-1")
        assert (outcome.status, outcome.sale_id, outcome.reversal_id) == \
            (ReversalStatus.REVERSED, approved.sale_id, "rev-1")
    assert lines(sim) == [(approved.sale_id, "approved", "reversal")]
    assert len(sim.statement()["given_back"]) == 1
    assert sim.acquirer.look_up(approved.payment_id)["status"] == "reversed"
    with pytest.raises(PaymentError, match="Refusal"):
        terminal.reverse(approved, reversal_id="rev-2")               # given back already, under another id


def test_after_the_cutoff_the_money_goes_back_by_a_referenced_refund(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal = driver(sim)
    approved = pay(terminal)
    sim.cutoff()
    for _ in range(2):
        assert terminal.reverse(approved, reversal_id="rev-1").status is ReversalStatus.REVERSED
    assert lines(sim) == [(approved.sale_id, "approved", "refund")]
    (given,) = sim.statement()["given_back"]
    assert (given["kind"], given["given_back_id"], given["amount_minor"]) == ("refund", "rev-1", FEE.amount_minor)
    assert sim.acquirer.look_up(approved.payment_id)["status"] == "refunded"


def test_what_the_terminal_never_approved_cannot_be_given_back(make_sim) -> None:
    sim = make_sim(auto_present="approve")
    terminal = driver(sim)
    never = PaymentOutcome(PaymentStatus.APPROVED, FEE, new_id("sale"), payment_id="poi-0000000000000000")
    with pytest.raises(PaymentError, match="unknown_sale"):
        terminal.reverse(never, reversal_id="rev-1")
    sim.present("insufficient-funds")
    declined = pay(terminal)
    with pytest.raises(PaymentError, match="not_approved"):
        terminal.reverse(declined, reversal_id="rev-2")
    approved = pay(terminal)
    other = PaymentOutcome(PaymentStatus.APPROVED, FEE + Money.of(1, "SYP"), approved.sale_id, approved.payment_id)
    with pytest.raises(PaymentError, match="amount_mismatch"):
        terminal.reverse(other, reversal_id="rev-3")
    assert [given for _, _, given in lines(sim)] == ["", ""]


# --- wallets ------------------------------------------------------------------------------------------------------

def test_a_wallet_pays_the_qr_coded_request_shown_on_the_kiosk(make_sim) -> None:
    sim = make_sim(wallet_expiry_s=90.0)
    paying = Paying(driver(sim), new_id("sale"), method=PaymentMethod.WALLET)
    shown = paying.prompts.wait_for(PromptKind.SCAN_QR)
    assert shown.qr.startswith("https://pay.example/r/") and shown.expires_in_s == 90.0
    assert sim.display()["qr"] == shown.qr
    assert sim.wait_until_waiting(WAIT_S) and sim.pay_wallet() is True
    outcome = paying.outcome()
    assert (outcome.status, outcome.receipt.masked_pan, outcome.receipt.sale_id) == \
        (PaymentStatus.APPROVED, "", paying.sale_id)
    assert paying.prompts.kinds == [PromptKind.SCAN_QR]
    assert sim.statement()["payments"][0]["method"] == "wallet"
    assert sim.pay_wallet() is False                                    # nothing on show any more


def test_a_wallet_request_nobody_pays_expires(make_sim) -> None:
    sim = make_sim(wallet_expiry_s=0.2)
    prompts = Prompts()
    outcome = pay(driver(sim), prompts=prompts, method=PaymentMethod.WALLET)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)
    assert prompts.kinds == [PromptKind.SCAN_QR]
    assert [status for _, status, _ in lines(sim)] == ["failed"]


# --- TLS ------------------------------------------------------------------------------------------------------------

def _certificate(subject: str, key: Any, issuer: x509.Name, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def throwaway_ca(folder: Path, name: str) -> tuple[Path, Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _certificate(name, key, subject, key, ca=True)
    path = folder / ("%s.pem" % name)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, subject


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    ca, ca_key, ca_name = throwaway_ca(tmp_path, "terminal-ca")
    other, _, _ = throwaway_ca(tmp_path, "other-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("terminal", key, ca_name, ca_key, ca=False)
    (tmp_path / "terminal.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "terminal.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
    return {"ca": ca, "other": other, "cert": tmp_path / "terminal.pem", "key": tmp_path / "terminal.key"}


def test_tls_with_the_pinned_ca_pays(make_sim, tls_files) -> None:
    sim = make_sim(auto_present="approve", tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    terminal = driver(sim, tls_ca=tls_files["ca"])
    assert terminal.check() is TerminalState.READY
    assert pay(terminal).status is PaymentStatus.APPROVED


def test_tls_with_another_ca_is_refused_before_anything_is_sent(make_sim, tls_files) -> None:
    sim = make_sim(auto_present="approve", tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    terminal = driver(sim, tls_ca=tls_files["other"])
    assert terminal.check() is TerminalState.UNREACHABLE
    outcome = pay(terminal)
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TERMINAL_UNREACHABLE)
    assert lines(sim) == []


def test_a_missing_ca_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        NexoPaymentTerminal("127.0.0.1", 7778, sale_system_id=KIOSK, tls_ca=tmp_path / "none.pem")


# --- a terminal that answers out of turn ------------------------------------------------------------------------------

class ScriptedTerminal:
    """A bare nexo endpoint answering Login and Display, and each Payment with `answer(request)`."""

    def __init__(self, answer: Callable[[Message], Message | None]) -> None:
        self._answer = answer
        scripted = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                frame = read_frame(self.request)
                if frame is None:
                    return
                request = decode(frame)
                reply = scripted.reply(request)
                if reply is not None:
                    write_frame(self.request, encode(reply))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def reply(self, request: Message) -> Message | None:
        header = request.header.response()
        if request.header.category is MessageCategory.LOGIN:
            return Message(header, LoginResponse(success()).to_json())
        if request.header.category is MessageCategory.DISPLAY:
            return Message(header, DisplayResponse((OutputResult(*_display_of(request), success()),)).to_json())
        return self._answer(request)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _display_of(request: Message) -> tuple[Any, Any]:
    output = DisplayRequest.from_json(request.body).outputs[0]
    return output.device, output.info_qualify


def approved_answer(request: Message, **changes: Any) -> Message:
    sale = PaymentRequest.from_json(request.body)
    answer = PaymentResponse(success(), sale.sale_transaction,
                             TransactionIdentification("poi-1234", "2026-01-02T03:04:05+00:00"), sale.amount)
    return Message(replace(request.header.response(), **changes), answer.to_json())


@pytest.mark.parametrize("answer", [
    lambda request: approved_answer(request, service_id="0000000000"),          # another request's answer
    lambda request: approved_answer(request, category=MessageCategory.LOGIN),   # out of sequence
    lambda request: Message(request.header.response(), {"PaymentResult": {}}),   # no Response
    lambda request: Message(request.header, request.body),                       # its own request echoed
    lambda request: None,                                                        # closed without a word
])
def test_a_sent_sale_without_its_own_readable_answer_is_unknown(answer) -> None:
    scripted = ScriptedTerminal(answer)
    try:
        terminal = NexoPaymentTerminal("127.0.0.1", scripted.port, sale_system_id=KIOSK, poi_id="P1",
                                       timeout_s=WAIT_S, answer_timeout_s=5.0)
        outcome = pay(terminal)
        assert (outcome.status, outcome.payment_id) == (PaymentStatus.UNKNOWN, None)
    finally:
        scripted.close()


def test_an_approval_for_another_amount_is_unknown_not_approved() -> None:
    def answer(request: Message) -> Message:
        message = approved_answer(request)
        message.body["PaymentResult"]["AmountsResp"]["AuthorizedAmount"] = 1
        return message
    scripted = ScriptedTerminal(answer)
    try:
        terminal = NexoPaymentTerminal("127.0.0.1", scripted.port, sale_system_id=KIOSK, poi_id="P1")
        assert pay(terminal).status is PaymentStatus.UNKNOWN
    finally:
        scripted.close()


def test_a_request_the_terminal_calls_malformed_is_a_payment_error() -> None:
    scripted = ScriptedTerminal(lambda request: Message(request.header.response(), PaymentResponse(
        failure(ErrorCondition.MESSAGE_FORMAT, errors="PaymentRequest.SaleData")).to_json()))
    try:
        terminal = NexoPaymentTerminal("127.0.0.1", scripted.port, sale_system_id=KIOSK, poi_id="P1")
        with pytest.raises(PaymentError):
            pay(terminal)
    finally:
        scripted.close()


# --- pure parts ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("condition, additional, expected", [
    (ErrorCondition.REFUSAL, "refusalReason=Not+enough+balance", (PaymentStatus.DECLINED, PaymentReason.INSUFFICIENT_FUNDS)),
    (ErrorCondition.REFUSAL, "refusalReason=Expired+Card", (PaymentStatus.DECLINED, PaymentReason.CARD_EXPIRED)),
    (ErrorCondition.REFUSAL, "refusalReason=Invalid+Pin", (PaymentStatus.DECLINED, PaymentReason.WRONG_PIN)),
    (ErrorCondition.REFUSAL, "refusalReason=Refused", (PaymentStatus.DECLINED, PaymentReason.REFUSED)),
    (ErrorCondition.WRONG_PIN, "", (PaymentStatus.DECLINED, PaymentReason.WRONG_PIN)),
    (ErrorCondition.INVALID_CARD, "refusalReason=Card+expired", (PaymentStatus.DECLINED, PaymentReason.CARD_EXPIRED)),
    (ErrorCondition.CANCEL, "refusalReason=card+removed", (PaymentStatus.FAILED, PaymentReason.CARD_REMOVED)),
    (ErrorCondition.CANCEL, "126 Shopper did not present card", (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)),
    (ErrorCondition.CANCEL, "101 Shopper cancelled app selection", (PaymentStatus.FAILED, PaymentReason.CANCELLED)),
    (ErrorCondition.ABORTED, "", (PaymentStatus.FAILED, PaymentReason.CANCELLED)),
    (ErrorCondition.BUSY, "", (PaymentStatus.FAILED, PaymentReason.TERMINAL_BUSY)),
    (ErrorCondition.IN_PROGRESS, "", (PaymentStatus.FAILED, PaymentReason.TERMINAL_BUSY)),
    (ErrorCondition.UNREACHABLE_HOST, "", (PaymentStatus.FAILED, PaymentReason.TERMINAL_UNREACHABLE)),
    (ErrorCondition.NOT_FOUND, "", None),
])
def test_each_failure_has_its_reason(condition, additional, expected) -> None:
    assert failure_of(Response(failure(condition).result, condition, additional)) == expected


def test_an_abort_of_the_kiosks_own_timer_is_a_time_out() -> None:
    assert failure_of(failure(ErrorCondition.ABORTED), timed_out=True) == \
        (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)


def test_the_receipt_shows_the_last_four_digits_at_most() -> None:
    assert receipt_pan("411111 **** 1111") == "**** **** **** 1111"
    assert receipt_pan("541333******0119") == "**** **** **** 0119"
    assert receipt_pan("") == "" and receipt_pan("****") == ""


def test_the_service_id_of_a_sale_is_the_same_after_a_restart() -> None:
    assert service_id_for("sale-1") == service_id_for("sale-1") != service_id_for("sale-2")
    assert len(service_id_for("sale-1")) == 10


def test_malformed_sales_are_refused_before_anything_is_sent() -> None:
    terminal = NexoPaymentTerminal("127.0.0.1", free_port(), sale_system_id=KIOSK)
    with pytest.raises(PaymentError):
        terminal.pay(FEE, sale_id="no spaces allowed", reference="r", label="x")
    with pytest.raises(PaymentError):
        terminal.pay(Money.of(0, "SYP"), sale_id="sale-1", reference="r", label="x")
    with pytest.raises(PaymentError, match="not_approved"):
        terminal.reverse(PaymentOutcome(PaymentStatus.DECLINED, FEE, "sale-1"), reversal_id="rev-1")


# --- configuration ------------------------------------------------------------------------------------------------------

CONFIG = """\
device_id = "kiosk-0001"
[central]
url = "http://127.0.0.1:8080"
[card]
trusted_issuers = ["issuer.pub.pem"]
[printer]
host = "127.0.0.1"
"""


def load_config(folder: Path, payment: str) -> Any:
    from kiosk import config
    (folder / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    path = folder / "kiosk.toml"
    path.write_text(CONFIG + payment, encoding="utf-8")
    return config.load(path)


def test_the_configuration_names_the_terminal_and_its_pinned_ca(make_sim, tls_files, tmp_path) -> None:
    from drivers.nexo_terminal import from_config
    tls_files["ca"].rename(tmp_path / "terminal-ca.pem")
    sim = make_sim(auto_present="approve", tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    loaded = load_config(tmp_path, '[payment]\nhost = "127.0.0.1"\nport = %d\ntls_ca = "terminal-ca.pem"\n'
                                   'timeout_s = 10\n' % sim.nexo_port)
    assert (loaded.payment.backend, loaded.payment.tls_ca, loaded.payment.poi_id) == \
        ("nexo", tmp_path / "terminal-ca.pem", "")                     # relative to the file; POIID learnt
    terminal = from_config(loaded)
    approved = pay(terminal)
    assert approved.status is PaymentStatus.APPROVED and approved.receipt.terminal_id == sim.poi_id
    assert sim.statement()["payments"][0]["sale_system_id"] == "kiosk-0001"     # the kiosk's device id


def test_the_default_configuration_is_a_nexo_terminal_on_this_machine(tmp_path) -> None:
    loaded = load_config(tmp_path, "")
    assert (loaded.payment.backend, loaded.payment.host, loaded.payment.port, loaded.payment.tls_ca) == \
        ("nexo", "127.0.0.1", 7778, None)


@pytest.mark.parametrize("payment, message", [
    ("[payment]\nport = 0\n", "`payment.port` must be between 1 and 65535"),
    ("[payment]\nport = 70000\n", "`payment.port` must be between 1 and 65535"),
    ("[payment]\ntls_ca = \"missing.pem\"\n", "`payment.tls_ca`: no such file"),
    ("[payment]\ntls_ca = 7\n", "`payment.tls_ca` must be a path"),
])
def test_a_bad_terminal_setting_names_its_key(tmp_path, payment, message) -> None:
    from kiosk.errors import ConfigError
    with pytest.raises(ConfigError, match=message.replace("`", ".")):
        load_config(tmp_path, payment)
