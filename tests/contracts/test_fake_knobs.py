"""The fakes' own knobs, where the contract suites do not already reach them."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from drivers.fakes import card_reader, payment_terminal, receipt_printer
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import CardOutcome, FakePaymentTerminal, ReversalKind
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk.config import CardConfig, CentralConfig, KioskConfig, PrinterConfig
from kiosk.id_card_data import photo_digest
from kiosk.issuer_keys import public_key_der
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult, Identity, ReaderStatus
from kiosk.ports.payment_terminal import (
    PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus, PromptKind, ReversalStatus,
    TerminalState,
)
from kiosk.ports.receipt_printer import PrinterStatus, PrintJob, PrintResult, RasterBlock, TextBlock
from tests.drivers.conftest import EventLog

TODAY = dt.date(2026, 1, 15)
FEE = Money.of(150000, "SYP")
SECRET_NUMBER = "09876543210"
SECRET_NAME = "Secretname"


def identity(**changes) -> Identity:
    values = dict(card_number="SY0099999999", national_number=SECRET_NUMBER, given_name_ar="سر",
                  family_name_ar="مكتوم", date_of_birth=dt.date(1990, 1, 1), date_of_expiry=dt.date(2030, 1, 1),
                  issuer_key_id=b"\x01" * 8, card_public_key=b"\x04" * 65, given_name_latin=SECRET_NAME,
                  family_name_latin="Hidden")
    values.update(changes)
    return Identity(**values)


@pytest.fixture
def reader() -> FakeCardReader:
    reader = FakeCardReader()
    yield reader
    reader.unwatch()


def job() -> PrintJob:
    return PrintJob(blocks=(TextBlock("RECEIPT"),))


# --- from_config --------------------------------------------------------------------------

def test_each_factory_builds_a_fresh_fake_from_the_configuration(tmp_path: Path) -> None:
    config = KioskConfig(device_id="kiosk-test-01", central=CentralConfig(url="https://central.invalid"),
                         card=CardConfig(trusted_issuers=(tmp_path / "issuer.pem",)),
                         printer=PrinterConfig(host="192.0.2.10"))
    reader = card_reader.from_config(config)
    assert isinstance(reader, FakeCardReader) and reader.status is ReaderStatus.NO_CARD
    assert card_reader.from_config(config) is not reader
    printer = receipt_printer.from_config(config)
    assert isinstance(printer, FakeReceiptPrinter) and printer.status() is PrinterStatus.READY
    terminal = payment_terminal.from_config(config)
    assert isinstance(terminal, FakePaymentTerminal)
    assert pay(terminal, "s-1").status is PaymentStatus.APPROVED


# --- the card reader -----------------------------------------------------------------------

def test_reader_unplugged_and_plugged_back_with_a_card_in(reader: FakeCardReader) -> None:
    events = EventLog()
    reader.watch(events)
    reader.insert(FakeCard(identity()))
    assert reader.connect() is ConnectResult.CONNECTED
    reader.unplug()
    assert events.wait_for(CardEvent.READER_LOST)
    assert reader.status is ReaderStatus.NO_READER
    assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.UNREADABLE   # the card lost power
    assert reader.connect() is ConnectResult.NO_CARD
    reader.plug_in()
    assert events.wait_for(CardEvent.INSERTED, 2)
    assert events.events == [CardEvent.INSERTED, CardEvent.READER_LOST, CardEvent.READER_FOUND, CardEvent.INSERTED]
    assert reader.status is ReaderStatus.READY


def test_unreadable_card_is_a_card_error_until_it_is_pulled(reader: FakeCardReader) -> None:
    card = reader.insert(FakeCard(identity(), unreadable=True))
    assert reader.connect() is ConnectResult.UNREADABLE
    assert reader.status is ReaderStatus.CARD_ERROR
    card.unreadable = False
    assert reader.connect() is ConnectResult.CONNECTED
    card.unreadable = True                                   # goes silent mid-session
    assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.UNREADABLE
    assert reader.status is ReaderStatus.CARD_ERROR
    reader.remove()
    assert reader.status is ReaderStatus.NO_CARD


def test_blocked_card_and_the_try_counter_are_the_cards(reader: FakeCardReader) -> None:
    card = reader.insert(FakeCard(identity(), pin="2468", tries_left=1))
    reader.connect()
    assert reader.authenticate("1111", today=TODAY).verdict is CardVerdict.BLOCKED
    assert card.tries_left == 0
    reader.remove()
    reader.insert(card)                                      # in another reader, or this one: still blocked
    reader.connect()
    assert reader.authenticate("2468", today=TODAY).verdict is CardVerdict.BLOCKED


def test_expired_verdict_keeps_the_identity(reader: FakeCardReader) -> None:
    reader.insert(FakeCard(identity(), verdict=CardVerdict.EXPIRED))
    reader.connect()
    result = reader.authenticate("1234", today=TODAY)
    assert result.verdict is CardVerdict.EXPIRED and result.identity is not None


def test_pin_pad_takes_the_pin_typed_on_it() -> None:
    reader = FakeCardReader(pin_pad=True)
    reader.insert(FakeCard(identity(), pin="2468"))
    reader.connect()
    assert reader.authenticate(None, today=TODAY).verdict is CardVerdict.UNREADABLE   # nothing typed: timeout
    reader.type_on_pin_pad("2468")
    assert reader.authenticate(None, today=TODAY).verdict is CardVerdict.VALID
    reader.type_on_pin_pad("1357")
    assert reader.authenticate(None, today=TODAY).tries_left == 2


def test_photo_that_is_not_a_jpeg_is_not_returned(reader: FakeCardReader) -> None:
    reader.insert(FakeCard(identity(), photo=b"GIF89a..."))
    reader.connect()
    assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.VALID
    assert reader.read_photo() is None


def test_photo_digest_makes_the_photo_part_of_the_read(reader: FakeCardReader) -> None:
    photo = b"\xff\xd8 a portrait \xff\xd9" * 125                       # 2,000 bytes: 8 READ BINARY
    reader.insert(FakeCard(identity(photo_digest=photo_digest(photo)), photo=photo))
    reader.connect()
    result = reader.authenticate("1234", today=TODAY)
    assert (result.verdict, result.apdu_count) == (CardVerdict.VALID, 7 + 1 + 8)   # SELECT EF.PHOTO + 8 READ
    assert reader.read_photo() == photo
    reader.card.photo = b"\xff\xd8 swapped once read"         # the photo checked is the one shown
    assert reader.read_photo() == photo


@pytest.mark.parametrize("photo", [b"\xff\xd8 another portrait", None], ids=["swapped", "missing"])
def test_photo_that_does_not_match_d1_makes_the_card_forged(reader: FakeCardReader, photo) -> None:
    card = reader.insert(FakeCard(identity(photo_digest=photo_digest(b"\xff\xd8 a portrait")), photo=photo,
                                  verdict=CardVerdict.EXPIRED))
    reader.connect()
    result = reader.authenticate("1234", today=TODAY)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert result.apdu_count == 7 + 1 + (1 if photo else 0)
    assert reader.read_photo() is None
    card.verdict = CardVerdict.CLONED                        # the chip fails first: the photo is not read
    assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.CLONED


def test_a_card_proves_only_with_a_chip_key_that_is_d0s(reader: FakeCardReader, issuer) -> None:
    from kiosk.card_proof import check_card_proof, new_challenge
    from kiosk.issuer_keys import TrustStore

    challenge = new_challenge()
    for card in (FakeCard(identity()),                                               # no chip key at all
                 FakeCard(identity(), card_key=ec.generate_private_key(ec.SECP256R1()))):   # not D0's
        reader.insert(card)
        reader.connect()
        assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.VALID
        assert reader.prove(challenge) is None
        reader.remove()
    issued = reader.insert(FakeCard.issued(identity(), issuer, photo=b"\xff\xd8 a portrait"))
    assert issued.identity.issuer_key_id == issuer.key_id and issued.identity.photo_digest is not None
    reader.connect()
    assert reader.prove(challenge) is None                                          # not read yet
    assert reader.authenticate("1234", today=TODAY).verdict is CardVerdict.VALID
    proof = reader.prove(challenge)
    assert check_card_proof(TrustStore([issuer.public_key]), proof, challenge).national_number == SECRET_NUMBER
    issued.unreadable = True                                                        # goes silent
    assert reader.prove(challenge) is None


def test_an_issued_clone_carries_another_chip_key(issuer) -> None:
    clone = FakeCard.issued(identity(), issuer, verdict=CardVerdict.CLONED)
    assert public_key_der(clone.card_key.public_key()) != clone.identity.card_public_key
    genuine = FakeCard.issued(identity(), issuer)
    assert public_key_der(genuine.card_key.public_key()) == genuine.identity.card_public_key
    assert genuine.identity.photo_digest is None


def test_a_second_card_cannot_go_in(reader: FakeCardReader) -> None:
    reader.insert(FakeCard(identity()))
    with pytest.raises(RuntimeError):
        reader.insert(FakeCard(identity()))


@pytest.mark.parametrize("options", [dict(verdict=CardVerdict.WRONG_PIN), dict(pin="12"), dict(tries_left=4)])
def test_a_card_no_card_could_be_is_refused(options) -> None:
    with pytest.raises(ValueError):
        FakeCard(identity(), **options)


def test_a_callback_may_call_back_into_the_reader_and_unwatch(reader: FakeCardReader) -> None:
    done = threading.Event()
    seen = []

    def on_event(event: CardEvent) -> None:
        seen.append((event, reader.connect()))
        reader.unwatch()
        done.set()

    reader.watch(on_event)
    reader.insert(FakeCard(identity()))
    assert done.wait(5)
    reader.remove()
    assert seen == [(CardEvent.INSERTED, ConnectResult.CONNECTED)]


def test_no_pin_or_personal_data_in_logs_or_reprs(reader: FakeCardReader, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.fakes")
    card = reader.insert(FakeCard(identity(), pin="735190"))
    reader.watch(EventLog())
    reader.connect()
    reader.authenticate("735191", today=TODAY)
    result = reader.authenticate("735190", today=TODAY)
    proof = reader.prove(bytes(32))                          # no chip key: no proof, and nothing logged of it
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(card) + str(card) + repr(reader) + repr(result)
    text += repr(proof)
    for private in ("735190", "735191", SECRET_NUMBER, SECRET_NAME, "SY0099999999"):
        assert private not in text
    assert "card.verdict verdict=valid apdus=7" in text


# --- the printer ----------------------------------------------------------------------------

def test_paper_runs_out_after_n_jobs() -> None:
    printer = FakeReceiptPrinter()
    printer.run_out_of_paper_after(2)
    outcomes = [printer.print_job(job()) for _ in range(3)]
    assert [o.result for o in outcomes] == [PrintResult.PRINTED, PrintResult.PRINTED, PrintResult.FAILED]
    assert outcomes[2].status is PrinterStatus.NO_PAPER and outcomes[2].bytes_sent > 0
    assert (len(printer.jobs), len(printer.torn_jobs)) == (2, 1)


def test_bytes_sent_counts_the_packed_raster() -> None:
    printer = FakeReceiptPrinter()
    small = printer.print_job(PrintJob(blocks=(RasterBlock(Image.new("1", (576, 10), 1)),)))
    large = printer.print_job(PrintJob(blocks=(RasterBlock(Image.new("1", (576, 110), 1)),)))
    assert large.bytes_sent - small.bytes_sent == 576 // 8 * 100


def test_unknown_status_is_tried_as_the_real_driver_does() -> None:
    printer = FakeReceiptPrinter(status=PrinterStatus.UNKNOWN)
    assert printer.print_job(job()).result is PrintResult.PRINTED


def test_status_change_is_logged_once(caplog) -> None:
    caplog.set_level(logging.INFO, logger="drivers.fakes")
    printer = FakeReceiptPrinter()
    printer.status()
    printer.status()
    printer.set_status(PrinterStatus.COVER_OPEN)
    printer.status()
    changes = [r.getMessage() for r in caplog.records if "printer.status_changed" in r.getMessage()]
    assert changes == ["printer.status_changed from=- to=READY", "printer.status_changed from=READY to=COVER_OPEN"]


# --- the payment terminal ---------------------------------------------------------------------------

def pay(terminal: FakePaymentTerminal, sale_id: str, amount: Money = FEE, **options) -> PaymentOutcome:
    return terminal.pay(amount, sale_id=sale_id, reference="r-1", label="Birth 1,500", **options)


def paying_in_the_background(terminal: FakePaymentTerminal, sale_id: str) -> tuple[threading.Thread, list]:
    result: list[PaymentOutcome] = []
    worker = threading.Thread(target=lambda: result.append(pay(terminal, sale_id)), daemon=True)
    worker.start()
    return worker, result


def test_nobody_pays_until_the_terminal_times_out() -> None:
    terminal = FakePaymentTerminal()
    earlier = pay(terminal, "s-0")
    terminal.script(CardOutcome.NO_ANSWER)
    worker, result = paying_in_the_background(terminal, "s-1")
    assert terminal.wait_until_waiting(10)
    assert terminal.check() is TerminalState.BUSY
    assert terminal.status("s-1").status is PaymentStatus.UNKNOWN        # still under way
    assert pay(terminal, "s-2").reason is PaymentReason.TERMINAL_BUSY    # one request at a time
    assert terminal.reverse(earlier, reversal_id="rv-0").status is ReversalStatus.FAILED
    terminal.release()
    worker.join(10)
    (outcome,) = result
    assert (outcome.status, outcome.reason) == (PaymentStatus.FAILED, PaymentReason.TIMED_OUT)
    assert terminal.check() is TerminalState.READY
    assert [(s.sale_id, s.status) for s in terminal.statement] == [
        ("s-0", PaymentStatus.APPROVED), ("s-1", PaymentStatus.FAILED)]


def test_abort_once_the_bank_is_answering_comes_too_late() -> None:
    terminal = FakePaymentTerminal()

    def on_prompt(prompt: PaymentPrompt) -> None:
        if prompt.kind is PromptKind.PROCESSING:
            terminal.abort()

    assert pay(terminal, "s-1", on_prompt=on_prompt).status is PaymentStatus.APPROVED
    assert [p.kind for p in terminal.prompts] == [PromptKind.PRESENT_CARD, PromptKind.PROCESSING]


def test_off_line_or_busy_nothing_is_taken_and_nothing_scripted_is_used_up() -> None:
    terminal = FakePaymentTerminal()
    approved = pay(terminal, "s-1")
    terminal.script(CardOutcome.WRONG_PIN)
    for fault_on, fault_off in ((lambda: terminal.set_online(False), lambda: terminal.set_online(True)),
                                (lambda: terminal.set_busy(True), lambda: terminal.set_busy(False))):
        fault_on()
        assert pay(terminal, "s-2").status is PaymentStatus.FAILED
        assert terminal.status("s-1").status is PaymentStatus.UNKNOWN
        assert terminal.reverse(approved, reversal_id="rv-1").status is ReversalStatus.FAILED
        fault_off()
    assert pay(terminal, "s-2").reason is PaymentReason.WRONG_PIN
    assert terminal.reverse(approved, reversal_id="rv-1").status is ReversalStatus.REVERSED
    assert [r.reversal_id for r in terminal.reversals] == ["rv-1"]
    assert terminal.prompts[-1].sale_id == "s-2"


def test_scripted_outcomes_go_to_new_sales_in_order() -> None:
    terminal = FakePaymentTerminal()
    pay(terminal, "s-1")
    terminal.script(CardOutcome.INSUFFICIENT_FUNDS, CardOutcome.REMOVED)
    assert pay(terminal, "s-1").status is PaymentStatus.APPROVED          # not new: the same answer
    assert pay(terminal, "s-2").reason is PaymentReason.INSUFFICIENT_FUNDS
    assert pay(terminal, "s-3", method=PaymentMethod.WALLET).reason is PaymentReason.CARD_REMOVED
    assert pay(terminal, "s-4").status is PaymentStatus.APPROVED
    assert len(terminal.statement) == 4


def test_a_lost_answer_hides_a_decline_too() -> None:
    terminal = FakePaymentTerminal()
    terminal.script(CardOutcome.EXPIRED)
    terminal.lose_next_answer()
    assert pay(terminal, "s-1").status is PaymentStatus.UNKNOWN
    assert terminal.status("s-1").reason is PaymentReason.CARD_EXPIRED
    assert pay(terminal, "s-2").status is PaymentStatus.APPROVED          # only the next answer is lost


@pytest.mark.parametrize("sale_id, amount", [("", FEE), ("with space", FEE), ("s-1", Money.of(0, "SYP"))])
def test_a_request_the_terminal_would_refuse_is_a_payment_error(sale_id: str, amount: Money) -> None:
    with pytest.raises(PaymentError):
        pay(FakePaymentTerminal(), sale_id, amount)


def test_a_sale_id_again_with_another_amount_is_a_payment_error() -> None:
    terminal = FakePaymentTerminal()
    pay(terminal, "s-1")
    with pytest.raises(PaymentError, match="sale_id_reused"):
        pay(terminal, "s-1", Money.of(1, "SYP"))


def test_reversal_rules_of_the_terminal() -> None:
    terminal = FakePaymentTerminal()
    first, second = pay(terminal, "s-1"), pay(terminal, "s-2")
    with pytest.raises(PaymentError, match="payment_mismatch"):
        terminal.reverse(PaymentOutcome(PaymentStatus.APPROVED, FEE, "s-1", payment_id="poi-other"),
                         reversal_id="rv-0")
    assert terminal.reverse(first, reversal_id="rv-1").status is ReversalStatus.REVERSED
    with pytest.raises(PaymentError, match="reversal_id_reused"):
        terminal.reverse(second, reversal_id="rv-1")
    with pytest.raises(PaymentError, match="already_reversed"):
        terminal.reverse(first, reversal_id="rv-2")
    terminal.cut_off()
    assert terminal.reverse(second, reversal_id="rv-3").status is ReversalStatus.REVERSED
    assert [(r.reversal_id, r.kind) for r in terminal.reversals] == [
        ("rv-1", ReversalKind.REVERSAL), ("rv-3", ReversalKind.REFUND)]
    assert [s.reversed for s in terminal.statement] == [True, True]


def test_no_card_data_in_logs_or_reprs(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.fakes")
    terminal = FakePaymentTerminal()
    outcome = pay(terminal, "s-1")
    terminal.reverse(outcome, reversal_id="rv-1")
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(terminal)
    assert outcome.receipt is not None and outcome.receipt.masked_pan[-4:] not in text
    assert "payment.pay sale_id=s-1 status=APPROVED" in text
