"""The fakes' own knobs, where the contract suites do not already reach them."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pytest
from PIL import Image

from drivers.fakes import card_reader, payment_terminal, receipt_printer
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk.config import CardConfig, CentralConfig, KioskConfig, PrinterConfig
from kiosk.errors import PaymentError
from kiosk.money import Money
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult, Identity, ReaderStatus
from kiosk.ports.payment_terminal import PaymentStatus, RefundStatus
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
    assert terminal.charge(FEE, charge_id="c-1", reference="r-1").status is PaymentStatus.APPROVED


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
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(card) + str(card) + repr(reader) + repr(result)
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

def test_off_line_everything_fails_and_nothing_scripted_is_used_up() -> None:
    terminal = FakePaymentTerminal()
    payment_id = terminal.charge(FEE, charge_id="c-1", reference="r-1").payment_id
    terminal.script(PaymentStatus.DECLINED)
    terminal.set_online(False)
    assert terminal.charge(FEE, charge_id="c-2", reference="r-1").status is PaymentStatus.FAILED
    assert terminal.refund(payment_id, FEE, refund_id="rf-1").status is RefundStatus.FAILED
    terminal.set_online(True)
    assert terminal.charge(FEE, charge_id="c-2", reference="r-1").status is PaymentStatus.DECLINED
    assert terminal.refund(payment_id, FEE, refund_id="rf-1").status is RefundStatus.REFUNDED
    assert [c.refunded for c in terminal.statement] == [FEE, Money.of(0, "SYP")]
    assert [r.refund_id for r in terminal.refunds] == ["rf-1"]


def test_scripted_outcomes_go_to_new_charges_in_order() -> None:
    terminal = FakePaymentTerminal()
    terminal.charge(FEE, charge_id="c-1", reference="r-1")
    terminal.script(PaymentStatus.DECLINED, PaymentStatus.UNKNOWN)
    assert terminal.charge(FEE, charge_id="c-1", reference="r-1").status is PaymentStatus.APPROVED   # not new
    assert terminal.charge(FEE, charge_id="c-2", reference="r-1").status is PaymentStatus.DECLINED
    assert terminal.charge(FEE, charge_id="c-3", reference="r-1").status is PaymentStatus.UNKNOWN
    assert terminal.charge(FEE, charge_id="c-4", reference="r-1").status is PaymentStatus.APPROVED


@pytest.mark.parametrize("charge_id, amount", [("", FEE), ("with space", FEE), ("c-1", Money.of(0, "SYP"))])
def test_a_request_the_gateway_would_refuse_is_a_payment_error(charge_id: str, amount: Money) -> None:
    with pytest.raises(PaymentError):
        FakePaymentTerminal().charge(amount, charge_id=charge_id, reference="r-1")


def test_refund_rules_of_the_gateway() -> None:
    terminal = FakePaymentTerminal()
    terminal.script(PaymentStatus.DECLINED)
    declined = terminal.charge(FEE, charge_id="c-0", reference="r-1")
    paid = terminal.charge(FEE, charge_id="c-1", reference="r-1").payment_id
    declined_payment = terminal.statement[0].payment_id
    assert declined.payment_id is None
    with pytest.raises(PaymentError, match="not_refundable"):
        terminal.refund(declined_payment, FEE, refund_id="rf-0")
    with pytest.raises(PaymentError, match="currency_mismatch"):
        terminal.refund(paid, Money.of(100, "USD"), refund_id="rf-1")
    assert terminal.refund(paid, Money.of(100, "SYP"), refund_id="rf-2").status is RefundStatus.REFUNDED
    with pytest.raises(PaymentError, match="refund_id_reused"):
        terminal.refund(paid, Money.of(200, "SYP"), refund_id="rf-2")
