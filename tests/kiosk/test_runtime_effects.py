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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.fakes.cabinet import FakeCabinet
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import CardOutcome, FakePaymentTerminal, ReversalKind
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue import Catalogue, OfflineMode, OfflinePolicy, Service
from kiosk.catalogue_supply import CatalogueSupply
from kiosk.ports.catalogue_cache import CatalogueCache
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError, QueueError
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.cabinet import Light
from kiosk.ports.card_reader import CardVerdict, Identity
from kiosk.card_proof import CardProof
from kiosk.ports.central import Central, Challenge, Eligibility, EligibilityAnswer
from kiosk.ports.journal import TxnState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentReason, PaymentStatus, PromptKind
from kiosk.ports.receipt_printer import PrinterStatus
from kiosk.runtime import EFFECTS, Devices, Runtime
from tests.card_presence import CardChallenges, issued_card
from tests.posted_results import run_until
from kiosk.session import PRINTER_RECHECK_S, Reason, Session, Step, Timeouts
from offline.database import StateDatabase
from offline.delivery import DurableOutbox, void_sender
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.reconciler import Reconciler

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
CENTRAL_KEY = Ed25519PrivateKey.generate()          # central's: signs the catalogue


class FakeCentral(Central):
    """Central as the runtime sees it, with its link and its answers set by the test."""

    def __init__(self) -> None:
        self.online = True
        self.eligibility = Eligibility.ELIGIBLE
        self.fee = FEE                                       # central's fee for the service
        self.refuse_requests = False
        self.delivered: list[tuple[str, dict]] = []
        self.offline_policy = OfflinePolicy()                # central's word on the service while unreachable
        self.waiting: tuple[IssuedDocument, ...] = ()        # documents claimed earlier, for the card's holder
        self.cards = CardChallenges()                        # the cards that proved themselves to it
        self.refused: str | None = None                      # why it refuses this kiosk (revoked, ...), if it does

    def device_refused(self) -> str | None:
        return self.refused

    def fetch_catalogue(self) -> Catalogue:
        if not self.online:
            raise CentralError("central unreachable")
        return Catalogue(services=(Service(SERVICE.code, SERVICE.names, self.fee, offline=self.offline_policy),),
                         version=self.version)

    def challenge(self) -> Challenge | None:
        return self.cards.challenge() if self.online else None

    def waiting_documents(self, *, challenge: Challenge, proof: CardProof) -> tuple[IssuedDocument, ...] | None:
        if not self.online:
            return None
        holder = self.cards.prove(challenge, proof)
        return self.waiting if holder is not None and holder.national_number == IDENTITY.national_number else ()

    def fetch_signed_catalogue(self) -> dict:
        """Signed as central signs it, with CENTRAL_KEY, now."""
        from central.catalogue_store import served_catalogue
        from central.signing import sign_catalogue
        catalogue = self.fetch_catalogue()
        return sign_catalogue(CENTRAL_KEY, served_catalogue(catalogue, issued_at=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())))

    @property
    def version(self) -> str:
        return "v%d" % self.fee.amount_minor

    def check_eligibility(self, *, service_code: str, challenge: Challenge, proof: CardProof, fee: Money,
                          catalogue_version: str) -> EligibilityAnswer:
        if not self.online:
            return EligibilityAnswer(Eligibility.UNREACHABLE)
        if self.cards.prove(challenge, proof) is None:
            return EligibilityAnswer(Eligibility.NOT_ELIGIBLE, self.fee, self.version)
        return EligibilityAnswer(self.eligibility, self.fee, self.version, presence_id=challenge.challenge_id)

    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        if not self.online:
            return None
        self.delivered.append((MessageKind(kind).value, payload))
        if kind == MessageKind.VOID_REQUEST:
            return {"status": "voided", "request_id": payload["request_id"]}
        if kind == MessageKind.CLAIM_COLLECTED:
            return {"status": "collected", "serial": payload["serial"], "collected_at": "2026-11-29T10:00:00Z"}
        if self.refuse_requests or self.cards.requester(payload) is None:
            return {"status": "rejected", "reason": "not_eligible"}
        return {"status": "issued", "document": IssuedDocument(
            request_id=payload["request_id"], serial="2026-ABCD2345", service_code=payload["service_code"],
            title=dict(SERVICE.names), fields=(), issued_at="2026-11-29T10:00:00Z",
            verification="KSK1.x.y").to_json()}


def broken(*_args, **_kwargs):
    raise RuntimeError("an unexpected fault in a driver")


class Kiosk:
    """One run of the kiosk on fakes; `restarted()` is the next run on the same disk and world."""

    def __init__(self, *, document_timeout_s: float = WAIT_S, reprint_s: float = REPRINT_S,
                 run_id: str = "run-1", before: "Kiosk | None" = None,
                 catalogue_cache: "CatalogueCache | None" = None) -> None:
        """`catalogue_cache`: the kiosk holds central's key, checks its catalogue and keeps it there."""
        self.card = before.card if before else FakeCardReader()
        self.payment = before.payment if before else FakePaymentTerminal()
        self.printer = before.printer if before else FakeReceiptPrinter()
        self.cabinet = FakeCabinet()
        self.central = before.central if before else FakeCentral()
        self.database = before.database if before else StateDatabase(":memory:")
        self.alerts: list[str] = []
        self.outbox = DurableOutbox(Outbox(self.database), self.central.deliver, retry_s=0.05)
        self.journal = SqliteJournal(self.database)
        self.reconciler = Reconciler(self.journal, self.payment, void_sender(self.outbox), run_id=run_id,
                                     alert=self.alerts.append, retry_s=0.05, jitter=lambda _ceiling: 0.0,
                                     claim_answer=lambda request_id: self.outbox.wait_for_answer(request_id, 0.0))
        self.posted: queue.Queue = queue.Queue()
        self.now = 1000.0                                    # the session's clock, moved by the test
        self.runtime = Runtime(Session(device_id="kiosk-test-01", timeouts=Timeouts(reprint_s=reprint_s)),
                               Devices(self.card, self.payment, self.printer, self.cabinet),
                               self.central, self.outbox, self.journal, self.reconciler, post=self.posted.put,
                               run_id=run_id, document_timeout_s=document_timeout_s, today=lambda: TODAY,
                               clock=lambda: self.now,
                               catalogue=CatalogueSupply(self.central, keys=[CENTRAL_KEY.public_key()],
                                                         cache=catalogue_cache) if catalogue_cache else None)

    def restarted(self) -> "Kiosk":
        """A power cut: this run's threads are left as they are, and the next run starts on the same disk."""
        self.reconciler.stop()
        self.outbox.stop()
        return Kiosk(run_id="run-2", before=self)

    @property
    def view(self):
        return self.runtime.session.view()

    def run_until(self, step: Step, **view: object) -> None:
        """Run posted results on this thread until the session shows `step` (and `view`'s values)."""
        run_until(self.runtime, self.posted, step, timeout=WAIT_S, **view)

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
        self.card.insert(card or issued_card(IDENTITY, photo=PHOTO))

    def type_pin(self, pin: str) -> None:
        for digit in pin:
            self.runtime.dispatch(ev.PinDigit(digit))
        self.runtime.dispatch(ev.PinSubmit())

    def identified(self) -> None:
        self.insert()
        self.run_until(Step.PIN_ENTRY)
        self.type_pin("1234")
        self.run_until(Step.IDENTITY)

    def pay(self, method: PaymentMethod = PaymentMethod.CARD) -> None:
        self.identified()
        self.runtime.dispatch(ev.ShowServices())
        self.runtime.dispatch(ev.ServiceChosen(SERVICE.code))
        self.runtime.dispatch(ev.Pay(method))

    def answer(self, kind: MessageKind) -> dict | None:
        """The far side's answer to the outbox's one message of `kind`."""
        assert self.runtime.wait_idle(WAIT_S)               # every message asked for is in the outbox
        (message_id,) = self.outbox.store.message_ids(kind.value)
        return self.outbox.wait_for_answer(message_id, timeout=WAIT_S)

    def given_back(self) -> int:
        """Minor units the terminal gave back (a sale is given back once, in full)."""
        return sum(sale.amount.amount_minor for sale in self.payment.statement if sale.reversed)

    def settled(self) -> None:
        """Run reconciler passes here until the journal owes nothing more."""
        assert self.runtime.wait_idle(WAIT_S)               # the session's Settle is in the journal
        for _ in range(50):
            if not any(entry.state is TxnState.SETTLING or entry.run_id != self.runtime.run_id
                       for entry in self.journal.unfinished()):
                return
            self.reconciler.reconcile_once()
        pytest.fail("the journal still owes %s" % (self.journal.unfinished(),))


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
    assert kiosk.payment.statement == () and not kiosk.view.refunded and kiosk.journal.unfinished() == []


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


def test_paid_document_is_printed_with_its_receipt_and_nothing_is_given_back(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    (sale,) = kiosk.payment.statement
    assert sale.status is PaymentStatus.APPROVED and sale.amount == FEE and not sale.reversed
    assert len(kiosk.printer.jobs) == 2                     # the certificate, then the receipt
    assert [kind for kind, _ in kiosk.central.delivered] == ["certificate_request"]
    assert kiosk.journal.unfinished() == []                 # the journal's entry is finished: printed


def test_the_journal_holds_the_sale_before_the_terminal_is_asked(kiosk, monkeypatch):
    kiosk.start()
    seen = []
    pay = kiosk.payment.pay

    def journalled_first(*args, **kwargs):
        seen.extend(kiosk.journal.unfinished())
        return pay(*args, **kwargs)
    monkeypatch.setattr(kiosk.payment, "pay", journalled_first)
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    (entry,) = seen
    assert entry.state is TxnState.OPENED and entry.amount == FEE and entry.service_code == SERVICE.code


def test_a_journal_that_cannot_be_written_charges_nobody(kiosk, monkeypatch):
    kiosk.start()
    kiosk.identified()
    fill_the_disk(kiosk, monkeypatch)                       # the disk is full before the charge
    kiosk.runtime.dispatch(ev.ShowServices())
    kiosk.runtime.dispatch(ev.ServiceChosen(SERVICE.code))
    kiosk.runtime.dispatch(ev.Pay())
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_UNAVAILABLE, refunded=False)
    assert kiosk.payment.statement == ()


def test_an_insufficient_funds_decline_says_so_and_another_card_pays(kiosk):
    kiosk.start()
    kiosk.payment.script(CardOutcome.INSUFFICIENT_FUNDS)
    kiosk.pay()
    kiosk.run_until(Step.PAYMENT_DECLINED, payment_reason=PaymentReason.INSUFFICIENT_FUNDS)
    kiosk.runtime.dispatch(ev.RetryPayment())
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    declined, approved = kiosk.payment.statement
    assert declined.status is PaymentStatus.DECLINED and approved.status is PaymentStatus.APPROVED
    assert declined.sale_id != approved.sale_id and kiosk.given_back() == 0


def test_central_asks_the_card_in_the_reader_and_the_request_names_what_it_proved(kiosk):
    kiosk.start()
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    # The pre-check's challenge (and the waiting documents' one) were signed by the card itself.
    assert len(kiosk.central.cards.presences) == 2 and kiosk.central.cards.refused == 0
    (request,) = [payload for kind, payload in kiosk.central.delivered if kind == "certificate_request"]
    assert request["presence_id"] in kiosk.central.cards.presences
    assert IDENTITY.national_number not in str(request) and IDENTITY.card_number not in str(request)


def test_a_card_that_cannot_sign_centrals_challenge_is_charged_nothing(kiosk):
    kiosk.start()
    kiosk.insert(FakeCard(IDENTITY, photo=PHOTO))           # it reads well, but its chip signs nothing
    kiosk.run_until(Step.PIN_ENTRY)
    kiosk.type_pin("1234")
    kiosk.run_until(Step.IDENTITY)
    kiosk.runtime.dispatch(ev.ShowServices())
    kiosk.runtime.dispatch(ev.ServiceChosen(SERVICE.code))
    kiosk.runtime.dispatch(ev.Pay())
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_REFUSED, refunded=False)
    assert kiosk.payment.statement == () and kiosk.central.delivered == []


def test_a_kiosk_central_refuses_is_out_of_service_until_central_serves_it_again(kiosk):
    kiosk.start()
    kiosk.central.refused = "device_revoked"                 # central's staff revoked this kiosk
    kiosk.advance(1)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DEVICE_REFUSED)
    assert kiosk.cabinet.light is not Light.READY
    kiosk.central.refused = None                             # enrolled again
    kiosk.advance(1)
    kiosk.run_until(Step.ATTRACT)


@pytest.mark.parametrize("fault", ["busy", "offline"])
def test_a_terminal_busy_or_unreachable_charges_nothing_and_says_so(kiosk, fault):
    kiosk.start()
    if fault == "busy":
        kiosk.payment.set_busy(True)
    else:
        kiosk.payment.set_online(False)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_UNAVAILABLE, refunded=False)
    assert kiosk.payment.statement == () and kiosk.journal.unfinished() == []


def test_cancel_while_the_terminal_waits_for_a_card_aborts_it(kiosk):
    kiosk.start()
    kiosk.payment.script(CardOutcome.NO_ANSWER)
    kiosk.pay()
    kiosk.run_until(Step.PAYING, payment_prompt=PromptKind.PRESENT_CARD)
    assert kiosk.payment.wait_until_waiting(WAIT_S)
    kiosk.runtime.dispatch(ev.Cancel())
    kiosk.run_until(Step.TAKE_CARD)
    (sale,) = kiosk.payment.statement
    assert sale.status is not PaymentStatus.APPROVED and kiosk.journal.unfinished() == []
    assert kiosk.printer.jobs == [] and kiosk.central.delivered == []


def test_a_mobile_wallet_request_is_shown_as_a_qr_code_then_paid(kiosk):
    kiosk.start()
    kiosk.pay(PaymentMethod.WALLET)
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    (sale,) = kiosk.payment.statement
    assert sale.method is PaymentMethod.WALLET and sale.status is PaymentStatus.APPROVED
    (qr,) = [p for p in kiosk.payment.prompts if p.kind is PromptKind.SCAN_QR]
    assert qr.qr and qr.expires_in_s


def test_a_fee_changed_at_central_is_confirmed_at_the_new_fee_before_any_charge(kiosk):
    kiosk.start()
    kiosk.central.fee = Money.of(175000, "SYP")             # changed after the kiosk loaded its catalogue
    kiosk.pay()
    kiosk.run_until(Step.CONFIRM, fee_changed=True)
    assert kiosk.view.selected.fee == kiosk.central.fee and kiosk.payment.statement == ()
    kiosk.runtime.dispatch(ev.Pay())
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    (sale,) = kiosk.payment.statement
    assert sale.amount == kiosk.central.fee
    kiosk.settle()
    assert kiosk.view.services[0].fee == kiosk.central.fee   # the catalogue was loaded again


def test_a_lost_payment_answer_is_looked_up_and_given_back_without_charging_again(kiosk):
    kiosk.start()
    kiosk.payment.lose_next_answer()                        # the money moved; its answer did not come back
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_FAILED, refunded=True)
    kiosk.settled()
    (sale,) = kiosk.payment.statement                       # asked by `status`, never charged again
    assert sale.status is PaymentStatus.APPROVED and sale.reversed and kiosk.printer.jobs == []


def test_a_crash_while_paying_is_settled_like_a_lost_answer(kiosk, monkeypatch):
    kiosk.start()
    pay = kiosk.payment.pay

    def paid_then_crashed(*args, **kwargs):
        pay(*args, **kwargs)
        raise RuntimeError("the terminal's driver failed after the bank approved")
    monkeypatch.setattr(kiosk.payment, "pay", paid_then_crashed)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_FAILED, refunded=True)
    kiosk.settled()
    assert kiosk.given_back() == FEE.amount_minor


def test_a_sale_given_back_after_the_days_cut_off_is_refunded(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)
    kiosk.payment.cut_off()                                 # the terminal closes the day's batch meanwhile
    kiosk.advance(REPRINT_S)
    kiosk.run_until(Step.FAILED, reason=Reason.PRINT_FAILED, refunded=True)
    kiosk.settled()
    (sale,) = kiosk.payment.statement
    assert [r.kind for r in sale.reversals] == [ReversalKind.REFUND]


# ---------------------------------------------------------------- the document


def test_central_refusing_the_paid_request_gives_back_and_voids(kiosk):
    kiosk.start()
    kiosk.central.refuse_requests = True
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_REFUSED, refunded=True)
    kiosk.settled()
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    assert kiosk.given_back() == FEE.amount_minor


def test_central_silent_after_the_charge_gives_back_and_voids_once_it_is_back():
    kiosk = Kiosk(document_timeout_s=0.2)
    try:
        kiosk.start()
        kiosk.pay()
        kiosk.run_until(Step.PAYING)
        kiosk.central.online = False                         # the link goes once the charge is on its way
        kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE, refunded=True)
        kiosk.settled()
        assert kiosk.given_back() == FEE.amount_minor         # the terminal needs no link to central
        kiosk.central.online = True
        assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    finally:
        kiosk.runtime.stop()


def test_a_crash_while_waiting_for_the_document_gives_back(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.outbox, "wait_for_answer", broken)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, reason=Reason.DOCUMENT_UNAVAILABLE, refunded=True)
    monkeypatch.undo()                                      # the outbox answers again, for the test to read
    kiosk.settled()
    assert kiosk.given_back() == FEE.amount_minor
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
    (sale,) = kiosk.payment.statement
    assert kiosk.given_back() == 0 and sale.status is PaymentStatus.APPROVED
    assert [kind for kind, _ in kiosk.central.delivered] == ["certificate_request"]   # nothing voided
    assert kiosk.journal.unfinished() == []


def test_printer_not_back_in_time_gives_the_fee_back_and_voids_the_document(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)
    kiosk.advance(REPRINT_S)
    kiosk.run_until(Step.FAILED, reason=Reason.PRINT_FAILED, refunded=True)
    kiosk.settled()
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
    assert kiosk.given_back() == FEE.amount_minor and kiosk.printer.jobs == []


def test_a_crash_while_printing_waits_for_the_printer_and_the_citizen_may_take_the_fee_back(kiosk, monkeypatch):
    kiosk.start()
    monkeypatch.setattr(kiosk.printer, "print_job", broken)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)
    kiosk.runtime.dispatch(ev.Cancel())
    kiosk.run_until(Step.FAILED, reason=Reason.PRINT_FAILED, refunded=True)
    kiosk.settled()
    assert kiosk.given_back() == FEE.amount_minor
    assert kiosk.answer(MessageKind.VOID_REQUEST)["status"] == "voided"


def test_paper_out_on_the_receipt_still_counts_the_certificate_as_delivered(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(1)
    kiosk.pay()
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    assert kiosk.given_back() == 0 and len(kiosk.printer.jobs) == 1 and kiosk.journal.unfinished() == []


# ---------------------------------------------------------------- a power cut


def test_a_power_cut_while_the_document_waits_for_paper_is_settled_at_the_next_start(kiosk):
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINT_WAITING)                      # paid and issued, nothing printed
    kiosk.settle()
    after = kiosk.restarted()
    try:
        after.start()
        after.settled()
        assert after.given_back() == FEE.amount_minor
        assert after.answer(MessageKind.VOID_REQUEST)["status"] == "voided"
        (entry,) = [e for e in after.journal.unfinished()] or [None]
        assert entry is None
    finally:
        after.runtime.stop()


def test_a_power_cut_before_the_terminals_answer_is_looked_up_and_given_back(kiosk):
    kiosk.start()
    kiosk.payment.script(CardOutcome.NO_ANSWER)
    kiosk.pay()
    kiosk.run_until(Step.PAYING)
    assert kiosk.payment.wait_until_waiting(WAIT_S)
    after = kiosk.restarted()                                # the kiosk dies while the terminal waits
    kiosk.payment.release()                                  # the terminal gives up on its own
    try:
        after.start()
        after.settled()
        assert after.journal.unfinished() == [] and after.given_back() == 0
        assert [s.status for s in after.payment.statement] != [PaymentStatus.APPROVED]
    finally:
        after.runtime.stop()


# ---------------------------------------------------------------- settlements without a disk


def fill_the_disk(kiosk: Kiosk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk is full: the state database reads, and refuses every write."""
    run = kiosk.database.run

    def refuse_writes(sql: str, parameters=(), *, error=QueueError):
        if sql.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            raise error("the state database cannot %s: database or disk is full" % sql.split()[0].lower())
        return run(sql, parameters, error=error)
    monkeypatch.setattr(kiosk.database, "run", refuse_writes)


@pytest.fixture
def impatient():
    """A kiosk that gives the fee back at once when a print fails (no reprint window)."""
    kiosk = Kiosk(reprint_s=0)
    yield kiosk
    kiosk.runtime.stop()


def test_a_full_disk_after_payment_still_gives_back_at_once(impatient, monkeypatch):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    fill_the_disk(kiosk, monkeypatch)                       # neither the journal nor the outbox can write
    kiosk.run_until(Step.FAILED, refunded=True)
    kiosk.settle()
    for _ in range(50):
        if kiosk.given_back():
            break
        kiosk.reconciler.reconcile_once()
    assert kiosk.given_back() == FEE.amount_minor and "journal.unwritable" in kiosk.alerts
    assert ("void_request", {"request_id": kiosk.central.delivered[0][1]["request_id"]}) in kiosk.central.delivered


def test_a_settlement_neither_written_nor_done_raises_the_alarm_and_is_done_when_it_can_be(impatient, monkeypatch):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    fill_the_disk(kiosk, monkeypatch)
    kiosk.payment.set_online(False)                         # and the fee cannot go back now either
    kiosk.run_until(Step.FAILED, refunded=True)
    kiosk.settle()
    kiosk.reconciler.reconcile_once()
    assert "journal.unwritable" in kiosk.alerts and kiosk.given_back() == 0
    kiosk.payment.set_online(True)
    for _ in range(50):
        if kiosk.given_back():
            break
        kiosk.reconciler.reconcile_once()
    assert kiosk.given_back() == FEE.amount_minor


def test_a_crash_inside_the_reconciler_raises_the_alarm(impatient, monkeypatch, caplog):
    kiosk = impatient
    kiosk.start()
    kiosk.printer.run_out_of_paper_after(0)
    kiosk.pay()
    kiosk.run_until(Step.PRINTING)
    monkeypatch.setattr(kiosk.reconciler, "owe", broken)
    with caplog.at_level(logging.CRITICAL, logger="kiosk.runtime"):
        kiosk.run_until(Step.FAILED, refunded=True)
        kiosk.settle()
    txn = kiosk.journal.unfinished()[0].txn_id
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("runtime.unsettled")] == \
        ["runtime.unsettled txn=%s" % txn]
    monkeypatch.undo()                                      # the next start settles it
    after = kiosk.restarted()
    try:
        after.start()
        after.settled()
        assert after.given_back() == FEE.amount_minor
    finally:
        after.runtime.stop()


def test_no_personal_data_reaches_the_log(kiosk, caplog):
    with caplog.at_level(logging.DEBUG):
        kiosk.start()
        kiosk.pay()
        kiosk.run_until(Step.TAKE_CARD, printed=True)
        kiosk.settle()
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (IDENTITY.national_number, IDENTITY.card_number, IDENTITY.given_name_ar, "Salma", "1234"):
        assert secret not in text


# ---------------------------------------------------------------- the link to central


def test_the_session_hears_of_the_outbox_link_only_when_it_changes(kiosk, monkeypatch):
    from kiosk.ports.outbox import LinkState
    kiosk.start()
    seen: list = []
    kiosk.runtime.listen(lambda view: seen.append(view.link))
    link = {"state": LinkState.OFFLINE}
    monkeypatch.setattr(kiosk.outbox, "link", lambda: link["state"])
    handled: list = []
    real_handle = kiosk.runtime.session.handle
    monkeypatch.setattr(kiosk.runtime.session, "handle",
                        lambda event: handled.append(event) or real_handle(event))
    kiosk.advance(1)
    kiosk.advance(1)
    assert kiosk.view.link is LinkState.OFFLINE
    link["state"] = LinkState.ONLINE
    kiosk.advance(1)
    kiosk.advance(1)
    assert kiosk.view.link is LinkState.ONLINE
    assert [e.state for e in handled if isinstance(e, ev.LinkChanged)] == [LinkState.OFFLINE, LinkState.ONLINE]
    assert seen == [LinkState.OFFLINE, LinkState.ONLINE]


def test_central_silent_at_a_refresh_shows_the_link_down_and_keeps_the_catalogue(kiosk):
    from kiosk.ports.outbox import LinkState
    kiosk.start()
    kiosk.central.online = False
    kiosk.advance(60)                                                # idle: the catalogue asked again
    kiosk.run_until(Step.ATTRACT, link=LinkState.OFFLINE)
    assert kiosk.view.services == (SERVICE,) and kiosk.cabinet.light is Light.OFFLINE
    kiosk.central.online = True
    kiosk.advance(60)
    kiosk.run_until(Step.ATTRACT, link=LinkState.ONLINE)
    assert kiosk.cabinet.light is Light.READY


def test_a_kiosk_restarted_while_central_is_down_serves_from_its_signed_copy(tmp_path):
    from kiosk.ports.outbox import LinkState
    from offline.catalogue_cache import FileCatalogueCache
    cache = FileCatalogueCache(tmp_path / "catalogue.json")
    first = Kiosk(catalogue_cache=cache).start()
    first.runtime.stop()
    assert cache.load() is not None
    second = Kiosk(catalogue_cache=cache, before=first, run_id="run-2")
    second.central.online = False
    second.start()
    try:
        assert second.view.services == (SERVICE,) and second.view.link is LinkState.OFFLINE
    finally:
        second.runtime.stop()


def test_a_kiosk_whose_copy_was_altered_stays_out_of_service_while_central_is_down(tmp_path):
    import json as json_module
    from offline.catalogue_cache import FileCatalogueCache
    cache = FileCatalogueCache(tmp_path / "catalogue.json")
    first = Kiosk(catalogue_cache=cache).start()
    first.runtime.stop()
    kept = json_module.loads(cache.path.read_text(encoding="utf-8"))
    kept["document"]["services"][0]["fee"]["amount_minor"] = 1
    cache.path.write_text(json_module.dumps(kept), encoding="utf-8")
    second = Kiosk(catalogue_cache=cache, before=first, run_id="run-2")
    second.central.online = False
    second.runtime.start()
    try:
        second.run_until(Step.OUT_OF_SERVICE, reason=Reason.NO_CATALOGUE)
    finally:
        second.runtime.stop()


def test_a_request_the_journal_cannot_hold_never_reaches_central_and_the_fee_goes_back(impatient, monkeypatch):
    """Found by `make soak`: the disk filled between the approval and the request; the request went to
    central all the same (the outbox delivers what it cannot keep at once), the journal never knew it
    had, and the settlement after the restart gave the fee back without voiding the issued document."""
    kiosk = impatient
    kiosk.start()
    record_requested = kiosk.journal.record_requested

    def disk_full_now(txn_id: str) -> None:
        fill_the_disk(kiosk, monkeypatch)
        record_requested(txn_id)
    monkeypatch.setattr(kiosk.journal, "record_requested", disk_full_now)
    kiosk.pay()
    kiosk.run_until(Step.FAILED, refunded=True)
    kiosk.settle()
    for _ in range(50):
        if kiosk.given_back():
            break
        kiosk.reconciler.reconcile_once()
    assert kiosk.given_back() == FEE.amount_minor and "journal.unwritable" in kiosk.alerts
    assert kiosk.central.delivered == []            # no request went out: no document to void



# ---------------------------------------------------------------- offline claims, collected at any kiosk

CLAIM_POLICY = OfflinePolicy(OfflineMode.CLAIM, max_fee_minor=200000, daily_cap_minor=400000)


def claimed_offline(kiosk, policy: OfflinePolicy = CLAIM_POLICY) -> None:
    """Central goes silent after the catalogue; the pre-check goes unanswered; the claim is offered,
    paid, kept and slipped."""
    kiosk.central.offline_policy = policy
    kiosk.start()
    kiosk.central.online = False
    kiosk.pay()
    kiosk.run_until(Step.CONFIRM, claim=True)
    assert kiosk.payment.statement == ()                           # nothing charged while asking
    kiosk.runtime.dispatch(ev.Pay(PaymentMethod.CARD))
    kiosk.run_until(Step.TAKE_CARD)


def test_a_claim_offline_is_charged_kept_in_the_outbox_journalled_and_slipped(kiosk):
    from kiosk.ports.receipt_printer import QrBlock
    claimed_offline(kiosk)
    assert kiosk.journal.unfinished() == []                         # finished: nothing for the reconciler to settle
    (entry,) = kiosk.journal.claims_awaiting()
    assert entry.state is TxnState.CLAIMED and entry.offline and entry.serial is None
    (sale,) = kiosk.payment.statement
    assert sale.status is PaymentStatus.APPROVED and sale.amount == FEE and not sale.reversed
    (request,) = kiosk.outbox.store.pending()
    assert request.payload["claim"] is True and request.payload["claim_reference"] == kiosk.view.claim_reference
    (slip,) = kiosk.printer.jobs
    assert [b.data for b in slip.blocks if isinstance(b, QrBlock)] == [kiosk.view.claim_reference]
    assert kiosk.view.claim_slip_printed and kiosk.journal.offline_total("SYP", 0, float("inf")) == FEE.amount_minor


def test_a_claim_is_issued_when_the_link_comes_back_and_never_given_back(kiosk):
    claimed_offline(kiosk)
    request_id = kiosk.journal.claims_awaiting()[0].request_id
    kiosk.central.online = True
    assert kiosk.outbox.wait_for_answer(request_id, timeout=WAIT_S)["status"] == "issued"
    (claim,) = kiosk.journal.claims_awaiting()
    kiosk.reconciler.reconcile_once()
    assert kiosk.journal.claims_awaiting() == [] and kiosk.given_back() == 0
    entry = kiosk.journal.get(claim.txn_id)
    assert entry.state is TxnState.CLAIMED and entry.serial == "2026-ABCD2345"


def test_a_claim_central_refuses_for_good_is_voided_and_given_back(kiosk):
    claimed_offline(kiosk)
    (claim,) = kiosk.journal.claims_awaiting()
    kiosk.central.refuse_requests = True
    kiosk.central.online = True
    assert kiosk.outbox.wait_for_answer(claim.request_id, timeout=WAIT_S)["status"] == "rejected"
    kiosk.settled()
    kiosk.reconciler.reconcile_once()
    kiosk.settled()
    assert kiosk.journal.get(claim.txn_id).state is TxnState.SETTLED
    assert kiosk.given_back() == FEE.amount_minor
    assert kiosk.outbox.store.message_ids("void_request") == ["void-" + claim.request_id]


def test_a_claim_beyond_the_days_cap_is_refused_before_anything_is_charged(kiosk):
    claimed_offline(kiosk, OfflinePolicy(OfflineMode.CLAIM, max_fee_minor=200000, daily_cap_minor=200000))
    kiosk.card.remove()
    kiosk.run_until(Step.ATTRACT)
    kiosk.pay()                                                     # the link is known down now: a claim at once
    kiosk.run_until(Step.FAILED, reason=Reason.OFFLINE_LIMIT)
    assert len(kiosk.payment.statement) == 1


def test_documents_waiting_are_printed_and_each_is_confirmed_to_central_once(kiosk):
    documents = tuple(IssuedDocument(request_id="k2-r%d" % i, serial="2026-WAIT%04d" % i,
                                     service_code=SERVICE.code, title=dict(SERVICE.names), fields=(),
                                     issued_at="2026-11-28T10:00:00Z", verification="KSK2:x") for i in range(2))
    kiosk.central.waiting = documents
    kiosk.start()
    kiosk.identified()
    kiosk.run_until(Step.IDENTITY, waiting_documents=2)
    kiosk.runtime.dispatch(ev.CollectDocuments())
    kiosk.run_until(Step.TAKE_CARD, collected=("2026-WAIT0000", "2026-WAIT0001"))
    assert len(kiosk.printer.jobs) == 2 and kiosk.payment.statement == ()
    for document in documents:
        assert kiosk.outbox.wait_for_answer("collected-" + document.serial, timeout=WAIT_S)["status"] == "collected"
    assert sorted(p["serial"] for kind, p in kiosk.central.delivered if kind == "claim_collected") == \
        ["2026-WAIT0000", "2026-WAIT0001"]


def test_a_waiting_document_the_printer_could_not_print_is_not_confirmed(kiosk):
    document = IssuedDocument(request_id="k2-r", serial="2026-WAITNOPE", service_code=SERVICE.code,
                              title=dict(SERVICE.names), fields=(), issued_at="2026-11-28T10:00:00Z",
                              verification="KSK2:x")
    kiosk.central.waiting = (document,)
    kiosk.start()
    kiosk.identified()
    kiosk.run_until(Step.IDENTITY, waiting_documents=1)
    kiosk.printer.set_status(PrinterStatus.NO_PAPER)
    kiosk.runtime.dispatch(ev.CollectDocuments())
    kiosk.run_until(Step.FAILED, reason=Reason.COLLECTION_FAILED)
    kiosk.settle()
    assert kiosk.outbox.store.message_ids("claim_collected") == []
