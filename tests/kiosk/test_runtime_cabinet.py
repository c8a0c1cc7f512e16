"""The cabinet driving the runtime: the door, help, paper and the chime, on the fakes, and the GPIO
driver on gpiozero's MockFactory pins; the money rules hold when the door opens mid-journey."""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from drivers.gpio_cabinet import GpioCabinet
from kiosk.ports.cabinet import CabinetInput, Chime, Light
from kiosk.ports.payment_terminal import PaymentStatus
from kiosk.session import Reason, Step
from tests.contracts.test_cabinet_contract import BOUNCE_S, ManualTimers
from tests.kiosk.test_runtime_effects import FEE, WAIT_S, Kiosk


@pytest.fixture
def kiosk():
    kiosk = Kiosk()
    yield kiosk
    kiosk.runtime.stop()


def held(monkeypatch: pytest.MonkeyPatch, device: object, method: str) -> tuple[threading.Event, threading.Event]:
    """`device.method` waits, once called, until the test lets it go: (called, let_go)."""
    called, let_go = threading.Event(), threading.Event()
    real = getattr(device, method)

    def waiting(*args, **kwargs):
        called.set()
        assert let_go.wait(WAIT_S)
        return real(*args, **kwargs)
    monkeypatch.setattr(device, method, waiting)
    return called, let_go


def no_charge_without_a_document(kiosk: Kiosk) -> None:
    """Every sale approved was given back, or its document came out (a certificate and its receipt)."""
    kiosk.settled()
    approved = [sale for sale in kiosk.payment.statement if sale.status is PaymentStatus.APPROVED]
    kept = [sale for sale in approved if not sale.reversed]
    assert len(kiosk.printer.jobs) == 2 * len(kept)
    assert kiosk.journal.unfinished() == []


def door(kiosk: Kiosk, what: CabinetInput) -> None:
    kiosk.cabinet.work(what)


def test_door_opened_while_the_bank_answers_gives_the_fee_back_and_is_out_of_service_until_shut(kiosk, monkeypatch):
    kiosk.start()
    asked, answer = held(monkeypatch, kiosk.payment, "pay")
    kiosk.pay()
    kiosk.run_until(Step.PAYING)
    assert asked.wait(WAIT_S)                                 # the terminal has the sale
    door(kiosk, CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    assert kiosk.cabinet.light is Light.OUT_OF_SERVICE
    answer.set()                                              # approved, for a citizen no longer served
    kiosk.settle()
    no_charge_without_a_document(kiosk)
    assert kiosk.given_back() == FEE.amount_minor and kiosk.printer.jobs == []
    assert kiosk.view.step is Step.OUT_OF_SERVICE             # still open
    door(kiosk, CabinetInput.DOOR_CLOSED)
    kiosk.run_until(Step.TAKE_CARD)                           # the card left in the reader, asked back
    kiosk.card.remove()
    kiosk.run_until(Step.ATTRACT)
    assert kiosk.cabinet.light is Light.READY


def test_door_opened_mid_print_keeps_the_document_paid(kiosk, monkeypatch):
    kiosk.start()
    printing, finish = held(monkeypatch, kiosk.printer, "print_job")
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    assert printing.wait(WAIT_S)                              # paid, issued, the certificate on its way
    door(kiosk, CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    finish.set()
    kiosk.settle()
    no_charge_without_a_document(kiosk)
    assert kiosk.given_back() == 0 and len(kiosk.printer.jobs) == 2
    assert Chime.TAKE_DOCUMENT in kiosk.cabinet.chimes        # whoever is there hears it came out


def test_door_opened_while_a_sale_waits_for_a_card_stops_it_and_charges_nothing(kiosk):
    from drivers.fakes.payment_terminal import CardOutcome

    kiosk.start()
    kiosk.payment.script(CardOutcome.NO_ANSWER)
    kiosk.pay()
    kiosk.run_until(Step.PAYING)
    assert kiosk.payment.wait_until_waiting(WAIT_S)
    door(kiosk, CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    kiosk.settle()
    (sale,) = kiosk.payment.statement
    assert sale.status is not PaymentStatus.APPROVED
    no_charge_without_a_document(kiosk)


def test_a_paid_journey_chimes_take_your_document_then_take_your_card(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    assert kiosk.cabinet.chimes == (Chime.TAKE_DOCUMENT, Chime.TAKE_CARD)


def test_help_pressed_shows_the_banner_and_alerts(kiosk, caplog):
    kiosk.start()
    kiosk.identified()
    with caplog.at_level("WARNING", logger="kiosk.runtime"):
        kiosk.cabinet.work(CabinetInput.HELP_PRESSED)
        kiosk.run_until(Step.IDENTITY, help_called=True)
    assert "alert.cabinet.help" in caplog.text


def test_paper_low_alerts_the_technicians(kiosk, caplog):
    kiosk.start()
    with caplog.at_level("WARNING", logger="kiosk.runtime"):
        kiosk.cabinet.work(CabinetInput.PAPER_LOW)
        kiosk.cabinet.work(CabinetInput.HELP_PRESSED)         # after the paper: the session heard both
        kiosk.run_until(Step.ATTRACT, help_called=True)
    assert caplog.text.count("alert.printer.paper_low") == 1


def test_a_door_open_when_the_kiosk_starts_keeps_it_out_of_service(kiosk):
    kiosk.cabinet.work(CabinetInput.DOOR_OPENED)
    kiosk.runtime.start()
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    kiosk.settle()                                             # the catalogue came meanwhile
    assert kiosk.view.step is Step.OUT_OF_SERVICE and kiosk.cabinet.light is Light.OUT_OF_SERVICE


# ---------------------------------------------------------------- the GPIO driver, on MockFactory pins

RED, GREEN, BLUE, BUZZER, DOOR = 17, 27, 22, 18, 5


def test_the_door_pin_puts_the_kiosk_out_of_service_and_the_light_pins_say_so():
    factory = MockFactory(pin_class=MockPWMPin)
    timers = ManualTimers()
    kiosk = Kiosk()
    cabinet = GpioCabinet(light=(RED, GREEN, BLUE), buzzer=BUZZER, door=DOOR, bounce_s=BOUNCE_S,
                          pin_factory=factory, timers=timers)
    kiosk.runtime.devices.cabinet = cabinet
    try:
        factory.pin(DOOR).drive_low()                          # the door shut
        timers.advance(BOUNCE_S * 2)
        kiosk.start()
        assert [float(factory.pin(n).state) for n in (RED, GREEN, BLUE)] == [0, 1, 0]      # ready: green

        factory.pin(DOOR).drive_high()                         # opened
        timers.advance(BOUNCE_S * 2)
        kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
        assert [float(factory.pin(n).state) for n in (RED, GREEN, BLUE)] == [1, 0, 0]      # out of service: red

        factory.pin(DOOR).drive_low()                          # shut again
        timers.advance(BOUNCE_S * 2)
        kiosk.run_until(Step.ATTRACT)
        assert [float(factory.pin(n).state) for n in (RED, GREEN, BLUE)] == [0, 1, 0]
    finally:
        kiosk.runtime.stop()
        cabinet.close()
