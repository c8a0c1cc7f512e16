"""Every effect the runtime carries out, with its success and its failure, on
the in-process fakes of the devices and of central: milliseconds each.

The test thread plays Kivy's part: every result a worker posts is run here,
one at a time, as the app's Clock would run it. The same stories run on the
real stack in test_runtime.py.
"""

from __future__ import annotations

import logging
import queue
import time
import typing
from datetime import date

import pytest

from drivers.fakes.cabinet import FakeCabinet
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue import Catalogue, Service
from kiosk.delivery import make_deliver
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.cabinet import Light
from kiosk.ports.card_reader import CardVerdict, Identity
from kiosk.ports.central import Central, Eligibility
from kiosk.ports.payment_terminal import PaymentStatus
from kiosk.ports.receipt_printer import PrinterStatus
from kiosk.runtime import EFFECTS, Devices, Runtime
from kiosk.session import PRINTER_RECHECK_S, Reason, Session, Step, Timeouts
from offline.delivery import DurableOutbox
from offline.outbox import Outbox

WAIT_S = 10.0
REPRINT_S = 120.0
TODAY = date(2026, 11, 29)
FEE = Money.of(150000, "SYP")
SERVICE = Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE)
IDENTITY = Identity(
    card_number="SY0012345678", national_number="01010012345", given_name_ar="سلمى",
    family_name_ar="الحلبي", given_name_latin="Salma", family_name_latin="Al-Halabi",
    date_of_birth=date(1990, 5, 1), date_of_expiry=date(2031, 1, 1),
    issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91,
)
PHOTO = b"\xff\xd8\xff\xe0 a portrait \xff\xd9"


class FakeCentral(Central):
    """Central as the runtime sees it, with its link and its answers set by the test."""

    def __init__(self) -> None:
        self.online = True
        self.eligibility = Eligibility.ELIGIBLE
        self.refuse_requests = False
        self.delivered: list[tuple[str, dict]] = []

    def fetch_catalogue(self) -> Catalogue:
        if not self.online:
            raise CentralError("central unreachable")
        return Catalogue(services=(SERVICE,))

    def check_eligibility(self, *, service_code: str, national_number: str, card_number: str) -> Eligibility:
        return self.eligibility if self.online else Eligibility.UNREACHABLE

    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        if not self.online:
            return None
        self.delivered.append((MessageKind(kind).value, payload))
        if kind == MessageKind.VOID_REQUEST:
            return {"status": "voided", "request_id": payload["request_id"]}
        if self.refuse_requests:
            return {"status": "rejected", "reason": "not_eligible"}
        return {"status": "issued", "document": IssuedDocument(
            request_id=payload["request_id"], serial="2026-ABCD2345", service_code=payload["service_code"],
            title=dict(SERVICE.names), fields=(), issued_at="2026-11-29T10:00:00Z",
            verification="KSK1.x.y").to_json()}


def broken(*_args, **_kwargs):
    raise RuntimeError("an unexpected fault in a driver")


class Kiosk:
    def __init__(self, *, document_timeout_s: float = WAIT_S, reprint_s: float = REPRINT_S) -> None:
        self.card = FakeCardReader()
        self.payment = FakePaymentTerminal()
        self.printer = FakeReceiptPrinter()
        self.cabinet = FakeCabinet()
        self.central = FakeCentral()
        self.outbox = DurableOutbox(Outbox(":memory:"), make_deliver(self.central, self.payment), retry_s=0.05)
        self.posted: queue.Queue = queue.Queue()
        self.now = 1000.0                                    # the session's clock, moved by the test
        self.runtime = Runtime(Session(device_id="kiosk-test-01", timeouts=Timeouts(reprint_s=reprint_s)),
                               Devices(self.card, self.payment, self.printer, self.cabinet),
                               self.central, self.outbox, post=self.posted.put,
                               document_timeout_s=document_timeout_s, today=lambda: TODAY,
                               clock=lambda: self.now)

    @property
    def view(self):
        return self.runtime.session.view()

    def run_until(self, step: Step, **view: object) -> None:
        """Run posted results on this thread until the session shows `step` (and `view`'s values)."""
        deadline = time.monotonic() + WAIT_S

        def reached() -> bool:
            current = self.view
            return current.step is step and all(getattr(current, k) == v for k, v in view.items())

        while not reached():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("the kiosk stayed on %s instead of reaching %s %s" % (self.view.step, step, view))
            try:
                self.posted.get(timeout=remaining)()
            except queue.Empty:
                continue

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the session's clock."""
        self.now += seconds
        self.runtime.tick()

    def settle(self) -> None:
        """Let every effect handed out so far finish, and run what it posted."""
        assert self.runtime.wait_idle(WAIT_S)
        while not self.posted.empty():
            self.posted.get_nowait()()

    def start(self) -> "Kiosk":
        self.runtime.start()
        self.run_until(Step.ATTRACT)
        return self

    def insert(self, card: FakeCard | None = None) -> None:
        self.runtime.dispatch(ev.LanguageChosen("en"))
        self.card.insert(card or FakeCard(IDENTITY, photo=PHOTO))

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            self.runtime.dispatch(ev.PinDigit(digit))
        self.runtime.dispatch(ev.PinSubmit())

    def identified(self) -> None:
        self.insert()
        self.run_until(Step.PIN_ENTRY)
        self.type_pin("1234")
        self.run_until(Step.IDENTITY)

    def pay(self) -> None:
        self.identified()
        self.runtime.dispatch(ev.ShowServices())
        self.runtime.dispatch(ev.ServiceChosen(SERVICE.code))
        self.runtime.dispatch(ev.Pay())

    def answer(self, kind: MessageKind) -> dict | None:
        """The far side's answer to the outbox's one message of `kind`."""
        assert self.runtime.wait_idle(WAIT_S)               # every message asked for is in the outbox
        (message_id,) = self.outbox.store.message_ids(kind.value)
        return self.outbox.wait_for_answer(message_id, timeout=WAIT_S)

    def refunded(self) -> int:
        return sum(charge.refunded.amount_minor for charge in self.payment.statement)


@pytest.fixture
def kiosk():
    kiosk = Kiosk()
    yield kiosk
    kiosk.runtime.stop()


def test_every_effect_has_a_handler_with_a_worker_and_a_fallback():
    assert set(EFFECTS) == set(typing.get_args(fx.Effect))


# ---------------------------------------------------------------- the catalogue


def test_catalogue_loaded_puts_the_kiosk_in_service_with_the_light_ready(kiosk):
    kiosk.start()
    assert kiosk.view.services == (SERVICE,)
    assert kiosk.cabinet.light is Light.READY


def test_central_unreachable_at_start_is_out_of_service_until_it_answers(kiosk):
    kiosk.central.online = False
    kiosk.runtime.start()
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.NO_CATALOGUE)
    assert kiosk.cabinet.light is Light.OUT_OF_SERVICE
    kiosk.central.online = True
    kiosk.advance(60)                                                # the session asks again
    kiosk.run_until(Step.ATTRACT)


def test_a_crash_while_loading_the_catalogue_is_out_of_service(kiosk, monkeypatch):
    monkeypatch.setattr(kiosk.central, "fetch_catalogue", broken)
    kiosk.runtime.start()
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.NO_CATALOGUE)


# ---------------------------------------------------------------- the ID card


def test_a_valid_card_and_pin_show_the_name_and_photo_with_the_light_busy(kiosk):
    kiosk.start()
    kiosk.identified()
    kiosk.settle()
    assert kiosk.view.holder_name == "Salma Al-Halabi" and kiosk.view.photo == PHOTO
    assert kiosk.cabinet.light is Light.BUSY


def test_a_crash_while_connecting_refuses_the_card(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.card, "connect", broken)
    kiosk.insert()
    kiosk.run_until(Step.CARD_REFUSED, reason=Reason.CARD_UNREADABLE)


def test_a_wrong_pin_says_how_many_tries_are_left(kiosk):
    kiosk.start()
    kiosk.insert()
    kiosk.run_until(Step.PIN_ENTRY)
    kiosk.type_pin("9999")
    kiosk.run_until(Step.PIN_ENTRY, tries_left=2)


def test_a_forged_card_is_refused(kiosk):
    kiosk.start()
    kiosk.insert(FakeCard(IDENTITY, verdict=CardVerdict.FORGED))
    kiosk.run_until(Step.PIN_ENTRY)
    kiosk.type_pin("1234")
    kiosk.run_until(Step.CARD_REFUSED, reason=Reason.CARD_FORGED)
    assert kiosk.view.holder_name is None


def test_a_crash_while_authenticating_refuses_the_card(kiosk, monkeypatch):
    kiosk.start()
    kiosk.insert()
    kiosk.run_until(Step.PIN_ENTRY)
    monkeypatch.setattr(kiosk.card, "authenticate", broken)
    kiosk.type_pin("1234")
    kiosk.run_until(Step.CARD_REFUSED, reason=Reason.CARD_UNREADABLE)


def test_a_crash_while_reading_the_photo_leaves_the_name_without_a_photo(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.card, "read_photo", broken)
    kiosk.identified()
    kiosk.settle()
    assert kiosk.view.step is Step.IDENTITY and kiosk.view.holder_name and kiosk.view.photo is None


def test_card_pulled_releases_the_reader_even_when_the_release_fails(kiosk, monkeypatch):
    kiosk.start()
    kiosk.identified()
    monkeypatch.setattr(kiosk.card, "disconnect", broken)
    kiosk.card.remove()
    kiosk.run_until(Step.ATTRACT)
    kiosk.settle()
    assert kiosk.view.holder_name is None


# ---------------------------------------------------------------- before the charge


@pytest.mark.parametrize("answer, reason", [(Eligibility.NOT_ELIGIBLE, Reason.DOCUMENT_REFUSED),
                                            (Eligibility.UNREACHABLE, Reason.DOCUMENT_UNAVAILABLE)])
def test_nobody_is_charged_for_a_document_central_would_not_issue(kiosk, answer, reason):
    kiosk.start()
    kiosk.central.eligibility = answer
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=reason)
    assert kiosk.payment.statement == () and not kiosk.view.refunded


def test_a_crash_while_asking_central_charges_nobody(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.central, "check_eligibility", broken)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE)
    assert kiosk.payment.statement == ()


@pytest.mark.parametrize("fault", ["no paper", "crash"])
def test_a_printer_that_cannot_print_charges_nobody(kiosk, monkeypatch, fault):
    kiosk.start()
    if fault == "no paper":
        kiosk.printer.set_status(PrinterStatus.NO_PAPER)
    else:
        monkeypatch.setattr(kiosk.printer, "status", broken)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PRINTER_UNAVAILABLE)
    assert kiosk.payment.statement == ()


# ---------------------------------------------------------------- the charge


def test_paid_document_is_printed_with_its_receipt_and_nothing_is_refunded(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    (charge,) = kiosk.payment.statement
    assert charge.status is PaymentStatus.APPROVED and charge.amount == FEE and kiosk.refunded() == 0
    assert len(kiosk.printer.jobs) == 2                     # the certificate, then the receipt
    assert [kind for kind, _ in kiosk.central.delivered] == ["certificate_request"]


def test_a_declined_card_can_pay_again_with_a_new_charge(kiosk):
    kiosk.start()
    kiosk.payment.script(PaymentStatus.DECLINED)
    kiosk.pay()
    kiosk.run_until(Step.PAYMENT_DECLINED)
    kiosk.runtime.dispatch(ev.RetryPayment())
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    declined, approved = kiosk.payment.statement
    assert declined.status is PaymentStatus.DECLINED and approved.status is PaymentStatus.APPROVED


def test_a_terminal_that_is_down_charges_nothing_and_says_so(kiosk):
    kiosk.start()
    kiosk.payment.set_online(False)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_FAILED, refunded=False)
    assert kiosk.payment.statement == ()


def test_a_lost_payment_answer_is_refunded_through_the_outbox(kiosk):
    kiosk.start()
    kiosk.payment.script(PaymentStatus.UNKNOWN)             # the money moved; its answer did not come back
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_FAILED, refunded=True)
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.refunded() == FEE.amount_minor and kiosk.printer.jobs == []


def test_a_crash_while_charging_is_settled_like_a_lost_answer(kiosk, monkeypatch):
    kiosk.start()
    charge = kiosk.payment.charge

    def charged_then_crashed(*args, **kwargs):
        charge(*args, **kwargs)
        raise RuntimeError("the terminal's driver failed after the bank approved")
    monkeypatch.setattr(kiosk.payment, "charge", charged_then_crashed)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_FAILED, refunded=True)
    monkeypatch.setattr(kiosk.payment, "charge", charge)    # the sync worker asks again by the charge id
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.refunded() == FEE.amount_minor


# ---------------------------------------------------------------- the document


def test_central_refusing_the_paid_request_refunds_and_voids(kiosk):
    kiosk.start()
    kiosk.central.refuse_requests = True
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_REFUSED, refunded=True)
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    assert kiosk.refunded() == FEE.amount_minor


def test_central_silent_after_the_charge_refunds_once_it_is_back():
    kiosk = Kiosk(document_timeout_s=0.2)
    try:
        kiosk.start()
        kiosk.pay()
        kiosk.run_until(Step.PAYING)
        kiosk.central.online = False                         # the link goes once the charge is on its way
        kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE, refunded=True)
        kiosk.central.online = True
        assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
        assert kiosk.refunded() == FEE.amount_minor
        assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    finally:
        kiosk.runtime.stop()


def test_a_crash_while_waiting_for_the_document_refunds(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.outbox, "wait_for_answer", broken)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE, refunded=True)
    monkeypatch.undo()                                      # the outbox answers again, for the test to read
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"


# ---------------------------------------------------------------- printing


def test_paper_out_mid_certificate_is_reprinted_as_a_copy_once_the_paper_is_in(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING, reprint_seconds_left=int(REPRINT_S))
    assert kiosk.cabinet.light is Light.FAULT and len(kiosk.printer.torn_jobs) == 1
    kiosk.advance(PRINTER_RECHECK_S)                        # still no paper: nothing printed
    kiosk.settle()
    assert kiosk.view.step is Step.PRINT_WAITING and kiosk.printer.jobs == []
    kiosk.printer.set_status(PrinterStatus.READY)           # an attendant puts a new roll in
    kiosk.advance(PRINTER_RECHECK_S)
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    certificate, _receipt = kiosk.printer.jobs
    assert certificate is not kiosk.printer.torn_jobs[0]
    (charge,) = kiosk.payment.statement
    assert kiosk.refunded() == 0 and charge.status is PaymentStatus.APPROVED
    assert [kind for kind, _ in kiosk.central.delivered] == ["certificate_request"]   # nothing voided


def test_printer_not_back_in_time_refunds_the_fee_and_voids_the_document(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)
    kiosk.advance(REPRINT_S)
    kiosk.run_until(Step.FAILED, reason=Reason.PRINT_FAILED, refunded=True)
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    assert kiosk.refunded() == FEE.amount_minor and kiosk.printer.jobs == []


def test_a_crash_while_printing_waits_for_the_printer_and_the_citizen_may_take_the_fee_back(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.printer, "print_job", broken)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)
    kiosk.runtime.dispatch(ev.Cancel())
    kiosk.run_until(Step.FAILED, reason=Reason.PRINT_FAILED, refunded=True)
    assert kiosk.answer(MessageKind.REFUND) == {"status": "refunded"}
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"


def test_paper_out_on_the_receipt_still_counts_the_certificate_as_delivered(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(1)
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    assert kiosk.refunded() == 0 and len(kiosk.printer.jobs) == 1


# ---------------------------------------------------------------- refunds without an outbox


@pytest.fixture
def impatient():
    """A kiosk that refunds at once when a print fails (no reprint window)."""
    kiosk = Kiosk(reprint_s=0)
    yield kiosk
    kiosk.runtime.stop()


def test_a_full_disk_after_payment_still_refunds_at_once(impatient):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PAYING)
    kiosk.outbox.store.close()                              # the outbox can keep nothing more
    kiosk.run_until(Step.FAILED, refunded=True)
    kiosk.settle()
    assert kiosk.refunded() == FEE.amount_minor


def test_a_refund_neither_kept_nor_delivered_raises_the_alarm(impatient, caplog):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    kiosk.outbox.store.close()
    kiosk.payment.set_online(False)                         # and the refund cannot go now either
    kiosk.central.online = False
    with caplog.at_level(logging.CRITICAL, logger="kiosk.runtime"):
        kiosk.run_until(Step.FAILED, refunded=True)
        kiosk.settle()
    assert any(r.getMessage().startswith("runtime.unsettled kind=refund") for r in caplog.records)


def test_a_crash_inside_the_outbox_raises_the_alarm(impatient, monkeypatch, caplog):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    monkeypatch.setattr(kiosk.outbox, "send", broken)
    with caplog.at_level(logging.CRITICAL, logger="kiosk.runtime"):
        kiosk.run_until(Step.FAILED, refunded=True)
        kiosk.settle()
    unsettled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("runtime.unsettled")]
    assert unsettled == ["runtime.unsettled effect=Refund txn=%s" % unsettled[0].split("txn=")[1],
                         "runtime.unsettled effect=VoidDocument txn=%s" % unsettled[0].split("txn=")[1]]


def test_no_personal_data_reaches_the_log(kiosk, caplog):
    with caplog.at_level(logging.DEBUG):
        kiosk.start()
        kiosk.pay()
        kiosk.run_until(Step.TAKE_CARD, printed=True)
        kiosk.settle()
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (IDENTITY.national_number, IDENTITY.card_number, IDENTITY.given_name_ar, "Salma", "1234"):
        assert secret not in text
