"""The session's rules, event by event, with no screen and no device."""

from datetime import date
import itertools

import pytest

from kiosk.ports.cabinet import Chime
from kiosk.ports.card_reader import CardReadResult, CardVerdict, ConnectResult, Identity
from kiosk.ports.payment_terminal import (
    PaymentMethod, PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus, PromptKind, TerminalState,
)
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue import Catalogue, Category, OfflineMode, OfflinePolicy, Service
from kiosk.documents import IssuedDocument
from kiosk.money import Money
from kiosk.session import PRINTER_RECHECK_S, Reason, Session, Step, Timeouts

FEE = Money.of(150000, "SYP")
PRESENCE = "ch-presence-1"        # what central names the presence the card proved, in the pre-check
CATALOGUE = Catalogue(services=(
    Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE),
    Service("non-conviction", {"ar": "لا حكم عليه", "en": "Non-conviction certificate"}, Money.of(200000, "SYP")),
), version="v1")
IDENTITY = Identity(
    card_number="SY0012345678", national_number="01010012345", given_name_ar="سلمى",
    family_name_ar="الحلبي", given_name_latin="Salma", family_name_latin="Al-Halabi",
    date_of_birth=date(1990, 5, 1), date_of_expiry=date(2031, 1, 1),
    issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91,
)
DOCUMENT = IssuedDocument(
    request_id="r", serial="S-1", service_code="civil-status-extract", title={"ar": "إخراج قيد", "en": "Extract"},
    fields=(), issued_at="2026-11-23T10:00:00Z", verification="KSK1.x.y",
)
TIMEOUTS = Timeouts(idle_s=60, warning_s=15, pin_s=30)


class Kiosk:
    """A session with a clock the test moves by hand."""

    def __init__(self):
        ids = itertools.count(1)
        self.session = Session(timeouts=TIMEOUTS, device_id="k1", new_id=lambda: "id%d" % next(ids))
        self.now = 0.0
        self.effects = []

    def send(self, event):
        out = self.session.handle(event)
        self.effects.extend(out)
        return out

    @property
    def step(self):
        return self.session.step

    def last(self, kind):
        return [e for e in self.effects if isinstance(e, kind)][-1]

    def tick(self, seconds):
        self.now += seconds
        return self.send(ev.Tick(self.now))


def started():
    k = Kiosk()
    assert k.send(ev.Start(0.0)) == [fx.LoadCatalogue()]
    k.send(ev.CatalogueLoaded(CATALOGUE))
    return k


def at_pin_entry(language="ar"):
    k = started()
    k.send(ev.LanguageChosen(language))
    k.send(ev.CardInserted())
    connect = k.last(fx.ConnectCard)
    k.send(ev.CardConnected(connect.session_id, ConnectResult.CONNECTED))
    return k


def type_pin(k, pin):
    for d in pin:
        k.send(ev.PinDigit(d))
    return k.send(ev.PinSubmit())


def verified(language="ar"):
    k = at_pin_entry(language)
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    return k


def prepared(k, service="civil-status-extract", method=PaymentMethod.CARD):
    """From the identity screen to the printer check: central said it would issue."""
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen(service))
    (eligibility,) = k.send(ev.Pay(method))
    # No number goes in the effect: the card in the reader signs central's challenge.
    assert isinstance(eligibility, fx.CheckEligibility) and eligibility.service_code == service
    assert IDENTITY.national_number not in repr(eligibility)
    (check,) = k.send(ev.EligibilityChecked(eligibility.txn_id, True, presence_id=PRESENCE))
    assert isinstance(check, fx.CheckPrinter)
    return check


def charged(k, check):
    """The printer is ready, then the terminal: the sale is asked for."""
    (terminal,) = k.send(ev.PrinterChecked(check.txn_id, ready=True))
    assert terminal == fx.CheckTerminal(check.txn_id)
    (charge,) = k.send(ev.TerminalChecked(check.txn_id, TerminalState.READY))
    assert isinstance(charge, fx.Charge)
    return charge


def paying(method=PaymentMethod.CARD):
    k = verified()
    check = prepared(k, method=method)
    return k, charged(k, check)


def approved(charge):
    return ev.PaymentSettled(charge.txn_id, PaymentOutcome(PaymentStatus.APPROVED, FEE, charge.sale_id, "pay-1"))


def outcome(charge, status, reason=None):
    return ev.PaymentSettled(charge.txn_id, PaymentOutcome(status, FEE, charge.sale_id, reason=reason))


def test_full_journey_ends_on_attract_with_nothing_kept():
    k, charge = paying()
    assert k.step is Step.PAYING and charge.amount == FEE
    issue = k.send(approved(charge))[0]
    assert isinstance(issue, fx.IssueDocument) and issue.payment_id == "pay-1"
    assert issue.presence_id == PRESENCE and issue.language == "ar"   # whose document: the card proved it
    assert k.step is Step.ISSUING
    printing = k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))[0]
    assert isinstance(printing, fx.PrintDocument) and printing.document is DOCUMENT
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.step is Step.TAKE_CARD
    assert k.send(ev.CardRemoved()) == [fx.ReleaseCard()]
    view = k.session.view()
    assert view.step is Step.ATTRACT and view.holder_name is None and view.selected is None
    assert not any(isinstance(e, fx.Settle) for e in k.effects)


def test_language_chosen_on_attract_asks_for_the_card_in_that_language():
    k = started()
    k.send(ev.LanguageChosen("en"))
    assert k.step is Step.INSERT_CARD and k.session.view().language == "en"


def test_card_inserted_on_attract_starts_a_session_in_the_first_language():
    k = started()
    assert isinstance(k.send(ev.CardInserted())[0], fx.ConnectCard)
    assert k.step is Step.READING_CARD and k.session.language == "ar"


def test_holder_name_follows_the_language():
    k = verified("en")
    assert k.session.view().holder_name == "Salma Al-Halabi"
    k.send(ev.LanguageChosen("ar"))
    assert k.session.view().holder_name == "سلمى الحلبي"


def test_photo_is_read_only_once_the_identity_is_shown():
    k = at_pin_entry()
    assert not any(isinstance(e, fx.ReadPhoto) for e in k.effects)
    auth = type_pin(k, "1234")[0]
    out = k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    assert out[0] == fx.ReadPhoto(auth.session_id)             # (and central asked for documents waiting)
    assert [type(e) for e in out[1:]] == [fx.FindWaitingDocuments]
    k.send(ev.PhotoRead(auth.session_id, b"\xff\xd8jpeg"))
    assert k.session.view().photo == b"\xff\xd8jpeg"


def test_pin_is_handed_over_once_and_not_kept():
    k = at_pin_entry()
    for d in "12":
        k.send(ev.PinDigit(d))
    assert k.send(ev.PinSubmit()) == []           # too short: nothing sent
    k.send(ev.PinErase())
    for d in "9876543":
        k.send(ev.PinDigit(d))
    assert k.session.view().pin_length == 8       # at most 8 digits
    (auth,) = k.send(ev.PinSubmit())
    assert auth.pin == "19876543"
    assert "19876543" not in repr(auth) and k.session.view().pin_length == 0
    assert "19876543" not in repr(vars(k.session))


def test_wrong_pin_shows_tries_left_and_asks_again():
    k = at_pin_entry()
    auth = type_pin(k, "0000")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.WRONG_PIN, 2, tries_left=2)))
    assert k.step is Step.PIN_ENTRY and k.session.view().tries_left == 2


@pytest.mark.parametrize("verdict, reason", [
    (CardVerdict.BLOCKED, Reason.CARD_BLOCKED),
    (CardVerdict.FORGED, Reason.CARD_FORGED),
    (CardVerdict.CLONED, Reason.CARD_CLONED),
    (CardVerdict.UNREADABLE, Reason.CARD_UNREADABLE),
])
def test_refused_card_gets_its_own_reason_and_an_audit_entry(verdict, reason):
    k = at_pin_entry()
    auth = type_pin(k, "1234")[0]
    out = k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(verdict, 5)))
    assert k.step is Step.CARD_REFUSED and k.session.view().reason is reason
    assert out == [fx.Audit("card.refused", reason.value)]


def test_expired_card_is_refused_with_its_expiry_date():
    k = at_pin_entry()
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.EXPIRED, 9, identity=IDENTITY)))
    view = k.session.view()
    assert view.reason is Reason.CARD_EXPIRED and view.expiry == date(2031, 1, 1)
    assert view.holder_name is None


def test_unreadable_card_on_connect_is_refused():
    k = started()
    connect = k.send(ev.CardInserted())[0]
    k.send(ev.CardConnected(connect.session_id, ConnectResult.UNREADABLE))
    assert k.step is Step.CARD_REFUSED and k.session.view().reason is Reason.CARD_UNREADABLE


@pytest.mark.parametrize("reach", ["pin", "identity", "catalogue", "confirm"])
def test_card_removed_ends_the_session_at_once_and_wipes_it(reach):
    k = verified() if reach != "pin" else at_pin_entry()
    if reach in ("catalogue", "confirm"):
        k.send(ev.ShowServices())
    if reach == "confirm":
        k.send(ev.ServiceChosen("non-conviction"))
    assert k.send(ev.CardRemoved()) == [fx.ReleaseCard()]
    view = k.session.view()
    assert view.step is Step.ATTRACT and view.holder_name is None and view.photo is None
    assert view.selected is None and view.language == "ar"


def test_late_card_answer_after_removal_is_ignored():
    k = at_pin_entry()
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardRemoved())
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    assert k.step is Step.ATTRACT and k.session.view().holder_name is None


def test_card_removed_during_payment_refunds_the_late_approval():
    k, charge = paying()
    k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT and k.session.orphans == (charge.txn_id,)
    out = k.send(approved(charge))
    assert fx.Settle(charge.txn_id, "card_removed") in out
    assert not any(isinstance(e, fx.IssueDocument) for e in out)
    assert k.session.orphans == ()


def test_card_removed_during_payment_then_declined_needs_no_refund():
    k, charge = paying()
    k.send(ev.CardRemoved())
    out = k.send(outcome(charge, PaymentStatus.DECLINED, PaymentReason.INSUFFICIENT_FUNDS))
    assert out == [] and k.session.orphans == ()


def test_card_removed_while_issuing_refunds_and_voids():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.CardRemoved())
    out = k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    assert fx.Settle(charge.txn_id, "card_removed") in out
    assert not any(isinstance(e, fx.PrintDocument) for e in out)


def test_card_removed_while_printing_keeps_the_printed_document_paid():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(ev.CardRemoved())
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert not any(isinstance(e, fx.Settle) for e in out) and k.session.orphans == ()


def print_failed(bytes_sent=0):
    """Paid, issued, and the certificate did not come out whole."""
    k, charge = paying()
    issue = k.send(approved(charge))[0]
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER,
                                                               bytes_sent=bytes_sent)))
    assert not any(isinstance(e, fx.Settle) for e in out)
    assert fx.Alert("printer.failed_mid_document") in out
    return k, charge, issue


def test_paper_out_mid_certificate_waits_for_the_printer_with_a_countdown():
    k, _charge, _issue = print_failed()
    view = k.session.view()
    assert view.step is Step.PRINT_WAITING and view.reprint_seconds_left == 300 and not view.refunded
    k.tick(100)
    assert k.session.view().reprint_seconds_left == 200


def test_printer_back_reprints_the_same_document_marked_as_a_copy_when_part_came_out():
    k, charge, _issue = print_failed(bytes_sent=4000)
    (check,) = k.tick(PRINTER_RECHECK_S)
    assert check == fx.CheckPrinter(charge.txn_id)
    assert k.tick(1) == []                                   # one question at a time
    assert k.send(ev.PrinterChecked(charge.txn_id, ready=False)) == []
    assert k.tick(PRINTER_RECHECK_S) == [fx.CheckPrinter(charge.txn_id)]
    k.send(ev.LanguageChosen("en"))                         # the citizen reads the waiting screen in English
    (reprint,) = k.send(ev.PrinterChecked(charge.txn_id, ready=True))
    assert isinstance(reprint, fx.PrintDocument) and reprint.document == DOCUMENT and reprint.copy
    assert reprint.language == "ar"                         # the document's language, as first printed
    assert k.step is Step.PRINTING
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.step is Step.TAKE_CARD and k.session.view().printed
    assert not any(isinstance(e, fx.Settle) for e in k.effects)


def test_a_print_that_sent_nothing_is_reprinted_as_the_original():
    k, charge, _issue = print_failed(bytes_sent=0)
    k.tick(PRINTER_RECHECK_S)
    (reprint,) = k.send(ev.PrinterChecked(charge.txn_id, ready=True))
    assert not reprint.copy


def test_printer_not_back_in_time_refunds_and_voids():
    k, charge, issue = print_failed()
    out = k.tick(300)
    assert any(isinstance(e, fx.Settle) and e.txn_id == charge.txn_id for e in out)
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.PRINT_FAILED and view.refunded
    assert k.send(ev.PrinterChecked(charge.txn_id, ready=True)) == []     # a late answer prints nothing


def test_citizen_who_will_not_wait_gets_the_fee_back():
    k, charge, issue = print_failed()
    out = k.send(ev.Cancel())
    assert any(isinstance(e, fx.Settle) and e.txn_id == charge.txn_id for e in out)
    assert k.step is Step.FAILED and k.session.view().refunded


def test_card_pulled_while_waiting_for_the_printer_refunds_at_once_and_prints_nothing_later():
    k, charge, issue = print_failed()
    out = k.send(ev.CardRemoved())
    assert any(isinstance(e, fx.Settle) and e.txn_id == charge.txn_id for e in out)
    assert k.step is Step.ATTRACT and k.session.orphans == ()
    assert k.send(ev.PrinterChecked(charge.txn_id, ready=True)) == []


def test_no_reprint_window_refunds_at_once():
    ids = itertools.count(1)
    k = Kiosk()
    k.session = Session(timeouts=Timeouts(reprint_s=0), device_id="k1", new_id=lambda: "id%d" % next(ids))
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(CATALOGUE))
    k.send(ev.LanguageChosen("ar"))
    connect = k.send(ev.CardInserted())[0]
    k.send(ev.CardConnected(connect.session_id, ConnectResult.CONNECTED))
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 7, identity=IDENTITY)))
    charge = charged(k, prepared(k))
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER)))
    assert any(isinstance(e, fx.Settle) for e in out) and k.step is Step.FAILED


def test_paper_running_low_alerts_the_technicians():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.PAPER_NEAR_END)))
    assert fx.Alert("printer.paper_near_end") in out and k.step is Step.TAKE_CARD


def test_printer_not_ready_means_no_charge():
    k = verified()
    check = prepared(k)
    out = k.send(ev.PrinterChecked(check.txn_id, ready=False))
    assert not any(isinstance(e, fx.Charge) for e in k.effects)
    assert k.step is Step.FAILED and k.session.view().reason is Reason.PRINTER_UNAVAILABLE
    assert not k.session.view().refunded and out == [fx.Audit("transaction.failed", "printer_unavailable")]


def test_declined_payment_can_be_retried_with_a_new_charge():
    k, charge = paying()
    k.send(outcome(charge, PaymentStatus.DECLINED, PaymentReason.INSUFFICIENT_FUNDS))
    view = k.session.view()
    assert view.step is Step.PAYMENT_DECLINED and view.payment_reason is PaymentReason.INSUFFICIENT_FUNDS
    eligibility = k.send(ev.RetryPayment(PaymentMethod.WALLET))[0]
    check = k.send(ev.EligibilityChecked(eligibility.txn_id, True))[0]
    second = charged(k, check)
    assert second.sale_id != charge.sale_id and second.method is PaymentMethod.WALLET


def test_lost_payment_answer_is_settled_by_a_durable_refund():
    k, charge = paying()
    out = k.send(outcome(charge, PaymentStatus.UNKNOWN))
    assert fx.Settle(charge.txn_id, "answer_lost") in out
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.PAYMENT_FAILED and view.refunded


def test_document_not_issued_in_time_refunds_and_voids():
    k, charge = paying()
    k.send(approved(charge))
    out = k.send(ev.DocumentAnswered(charge.txn_id, None))
    assert any(isinstance(e, fx.Settle) and e.txn_id == charge.txn_id for e in out)
    assert k.session.view().reason is Reason.DOCUMENT_UNAVAILABLE


def test_silence_warns_then_ends_the_session():
    k = verified()
    k.send(ev.Touched(k.now))
    k.tick(59)
    assert not k.session.view().idle_warning
    k.tick(1)
    view = k.session.view()
    assert view.idle_warning and view.seconds_left == 15
    k.send(ev.Touched(k.now))                   # a touch dismisses the warning
    assert not k.session.view().idle_warning
    k.tick(74)
    assert k.step is Step.IDENTITY
    out = k.tick(1)
    assert fx.ReleaseCard() in out
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.holder_name is None and view.reason is Reason.IDLE_TIMEOUT


def test_pin_entry_times_out():
    k = at_pin_entry()
    k.send(ev.PinDigit("1"))
    k.tick(30 + 15)
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.reason is Reason.PIN_TIMEOUT and view.pin_length == 0


def test_idle_insert_card_screen_goes_back_to_attract():
    k = started()
    k.send(ev.LanguageChosen("en"))
    k.tick(75)
    assert k.step is Step.ATTRACT and k.session.language == "ar"


def test_no_timeout_while_the_kiosk_is_working():
    k, charge = paying()
    k.tick(600)
    assert k.step is Step.PAYING


def test_no_catalogue_means_out_of_service_until_central_answers():
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(None))
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.NO_CATALOGUE
    assert k.tick(5) == []
    assert k.tick(10) == [fx.LoadCatalogue()]
    k.send(ev.CatalogueLoaded(CATALOGUE))
    assert k.step is Step.ATTRACT


def test_a_kiosk_central_refuses_is_out_of_service_until_central_serves_it_again():
    k = started()
    k.send(ev.DeviceRefused("device_revoked"))
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.DEVICE_REFUSED
    k.send(ev.CardInserted())
    assert k.step is Step.OUT_OF_SERVICE           # no citizen starts on a kiosk central does not serve
    k.send(ev.DeviceRefused(None))
    assert k.step is Step.ATTRACT


def test_a_refusal_in_the_middle_of_a_payment_lets_it_end_then_puts_the_kiosk_out_of_service():
    k, charge = paying()
    k.send(ev.DeviceRefused("device_revoked"))
    assert k.step is Step.PAYING                   # the citizen's money is settled first, whatever happens
    k.send(outcome(charge, PaymentStatus.DECLINED, PaymentReason.REFUSED))
    k.send(ev.Cancel())
    k.send(ev.CardRemoved())
    k.tick(120)
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.DEVICE_REFUSED


def test_reader_unplugged_ends_the_session_and_comes_back_by_itself():
    k = verified()
    k.send(ev.ReaderLost())
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.NO_READER
    assert k.session.view().holder_name is None
    k.send(ev.ReaderFound())
    assert k.step is Step.ATTRACT


def test_take_card_says_whether_a_document_came_out():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.session.view().printed
    cancelled = verified()
    cancelled.send(ev.Cancel())
    view = cancelled.session.view()
    assert view.step is Step.TAKE_CARD and not view.printed and view.reason is None


@pytest.mark.parametrize("eligible, reason", [(False, Reason.DOCUMENT_REFUSED), (None, Reason.DOCUMENT_UNAVAILABLE)])
def test_nobody_pays_for_a_document_central_would_not_issue(eligible, reason):
    k = verified()
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("non-conviction"))
    (eligibility,) = k.send(ev.Pay())
    assert k.step is Step.PREPARING
    k.send(ev.EligibilityChecked(eligibility.txn_id, eligible))
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is reason and not view.refunded
    assert not any(isinstance(e, (fx.CheckPrinter, fx.Charge)) for e in k.effects)


def test_every_event_has_exactly_one_handler_and_every_handler_an_event():
    import typing
    session = Session()
    assert set(session._handlers) == set(typing.get_args(ev.Event))


def test_pay_retry_and_show_services_act_only_on_their_own_screen():
    k = verified()
    assert k.send(ev.Pay()) == [] and k.step is Step.IDENTITY
    assert k.send(ev.RetryPayment()) == [] and k.step is Step.IDENTITY
    k.send(ev.ShowServices())
    assert k.step is Step.CATALOGUE
    k.send(ev.ShowServices())
    assert k.step is Step.CATALOGUE


GROUPED = Catalogue(
    services=(
        Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE,
                category="civil-status", rank=1),
        Service("family-statement", {"ar": "بيان عائلي", "en": "Family statement"}, FEE, category="civil-status"),
        Service("non-conviction", {"ar": "لا حكم عليه", "en": "Non-conviction"}, FEE, category="justice", rank=2),
        Service("boat-licence", {"ar": "رخصة قارب", "en": "Boat licence"}, FEE, category="transport",
                governorates=("latakia", "tartus")),
    ),
    categories=(Category("civil-status", {"ar": "الأحوال المدنية", "en": "Civil status"}),
                Category("justice", {"ar": "العدل", "en": "Justice"}),
                Category("transport", {"ar": "النقل", "en": "Transport"})),
)


def in_catalogue(governorate=""):
    k = Kiosk()
    k.session = Session(timeouts=TIMEOUTS, device_id="k1", governorate=governorate)
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(GROUPED))
    k.send(ev.LanguageChosen("ar"))
    connect = k.send(ev.CardInserted())[0]
    k.send(ev.CardConnected(connect.session_id, ConnectResult.CONNECTED))
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 7, identity=IDENTITY)))
    k.send(ev.ShowServices())
    return k


def test_the_catalogue_opens_on_its_categories_and_the_most_asked_services():
    view = in_catalogue().session.view()
    assert [c.code for c in view.categories] == ["civil-status", "justice", "transport"]
    assert view.category is None and [s.code for s in view.services] == ["civil-status-extract", "non-conviction"]


def test_a_category_shows_its_services_and_back_returns_to_the_categories():
    k = in_catalogue()
    k.send(ev.CategoryChosen("civil-status"))
    view = k.session.view()
    assert view.category.code == "civil-status"
    assert [s.code for s in view.services] == ["civil-status-extract", "family-statement"]
    k.send(ev.ServiceChosen("family-statement"))               # identity -> services -> category -> service
    assert k.step is Step.CONFIRM
    k.send(ev.Back())
    assert k.step is Step.CATALOGUE and k.session.view().category.code == "civil-status"
    k.send(ev.Back())
    assert k.step is Step.CATALOGUE and k.session.view().category is None


def test_a_service_not_offered_in_this_governorate_is_not_shown():
    view = in_catalogue(governorate="damascus").session.view()
    assert [c.code for c in view.categories] == ["civil-status", "justice"]
    assert in_catalogue(governorate="latakia").session.view().categories[-1].code == "transport"


def test_text_size_contrast_and_audio_are_kept_until_the_session_ends():
    k = in_catalogue()
    k.send(ev.TextSizeChosen(ev.TextSize.EXTRA_LARGE))
    k.send(ev.ContrastChosen(True))
    k.send(ev.AudioGuidanceChosen(True))
    k.send(ev.CategoryChosen("justice"))
    view = k.session.view()
    assert (view.text_size, view.high_contrast, view.audio_guidance) == (ev.TextSize.EXTRA_LARGE, True, True)
    k.send(ev.CardRemoved())
    view = k.session.view()
    assert (view.text_size, view.high_contrast, view.audio_guidance) == (ev.TextSize.NORMAL, False, False)


def test_the_end_screen_has_the_printed_documents_serial():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.serial == DOCUMENT.serial and view.selected.fee == FEE


# ---------------------------------------------------------------- paying at the terminal


def test_the_charge_names_the_sale_the_request_and_what_the_terminal_shows():
    k, charge = paying()
    assert (charge.amount, charge.method, charge.service_code) == (FEE, PaymentMethod.CARD, "civil-status-extract")
    assert charge.request_id == "k1-%s" % charge.txn_id and charge.sale_id
    assert "Civil-status extract" in charge.label and FEE.major_text() in charge.label
    view = k.session.view()
    assert view.payment_method is PaymentMethod.CARD and view.payment_prompt is PromptKind.PRESENT_CARD


def test_the_screen_follows_what_the_terminal_asks():
    k, charge = paying()
    k.send(ev.PaymentPrompted(charge.txn_id, PaymentPrompt(charge.sale_id, PromptKind.PROCESSING)))
    assert k.session.view().payment_prompt is PromptKind.PROCESSING


@pytest.mark.parametrize("state", [TerminalState.BUSY, TerminalState.UNREACHABLE])
def test_terminal_busy_or_unreachable_means_no_charge(state):
    k = verified()
    check = prepared(k)
    k.send(ev.PrinterChecked(check.txn_id, ready=True))
    out = k.send(ev.TerminalChecked(check.txn_id, state))
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.PAYMENT_UNAVAILABLE and not view.refunded
    assert not any(isinstance(e, fx.Charge) for e in k.effects) and not any(isinstance(e, fx.Settle) for e in out)


def test_a_terminal_that_went_down_during_the_sale_charged_nothing():
    k, charge = paying()
    k.send(outcome(charge, PaymentStatus.FAILED, PaymentReason.TERMINAL_UNREACHABLE))
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.PAYMENT_UNAVAILABLE and not view.refunded


@pytest.mark.parametrize("reason", [PaymentReason.WRONG_PIN, PaymentReason.CARD_EXPIRED, PaymentReason.CARD_REMOVED,
                                    PaymentReason.TIMED_OUT])
def test_a_card_that_did_not_go_through_says_why_and_offers_another_try(reason):
    k, charge = paying()
    status = PaymentStatus.DECLINED if reason is not PaymentReason.TIMED_OUT else PaymentStatus.FAILED
    out = k.send(outcome(charge, status, reason))
    view = k.session.view()
    assert view.step is Step.PAYMENT_DECLINED and view.payment_reason is reason
    assert fx.Audit("payment.declined", reason.value) in out and not any(isinstance(e, fx.Settle) for e in out)
    k.send(ev.Back())
    assert k.step is Step.CATALOGUE and k.session.view().payment_reason is None


def test_cancel_while_the_terminal_waits_aborts_it_then_gives_the_card_back():
    k, charge = paying()
    assert k.send(ev.Cancel()) == [fx.AbortPayment(charge.txn_id)]
    assert k.send(ev.Cancel()) == []                      # once is enough
    assert k.step is Step.PAYING and k.session.view().cancelling
    out = k.send(outcome(charge, PaymentStatus.FAILED, PaymentReason.CANCELLED))
    assert out == [fx.ReleaseCard(), fx.Chime(Chime.TAKE_CARD)] and k.step is Step.TAKE_CARD
    assert not any(isinstance(e, fx.Settle) for e in k.effects)


def test_a_sale_approved_before_the_cancel_reached_the_terminal_is_given_back():
    k, charge = paying()
    k.send(ev.Cancel())
    out = k.send(approved(charge))
    assert fx.Settle(charge.txn_id, "cancelled") in out
    assert not any(isinstance(e, fx.IssueDocument) for e in out) and k.step is Step.TAKE_CARD


def test_card_pulled_while_the_terminal_waits_stops_the_terminal():
    k, charge = paying()
    out = k.send(ev.CardRemoved())
    assert fx.AbortPayment(charge.txn_id) in out and k.session.orphans == (charge.txn_id,)
    assert k.send(outcome(charge, PaymentStatus.FAILED, PaymentReason.CANCELLED)) == []
    assert k.session.orphans == ()


def test_a_wallet_request_is_shown_with_its_countdown_and_stopped_when_long_expired():
    k, charge = paying(PaymentMethod.WALLET)
    assert charge.method is PaymentMethod.WALLET and k.session.view().payment_prompt is PromptKind.SCAN_QR
    qr = "https://pay.example/r/abc"
    k.send(ev.PaymentPrompted(charge.txn_id, PaymentPrompt(charge.sale_id, PromptKind.SCAN_QR, qr, 120.0)))
    view = k.session.view()
    assert (view.payment_qr, view.payment_seconds_left) == (qr, 120)
    k.tick(30)
    assert k.session.view().payment_seconds_left == 90
    assert k.tick(90) == []                               # the terminal answers its own expiry
    assert k.tick(20) == [fx.AbortPayment(charge.txn_id)]  # ... or is told to stop
    k.send(outcome(charge, PaymentStatus.FAILED, PaymentReason.TIMED_OUT))
    assert k.step is Step.TAKE_CARD and k.session.view().payment_qr is None


def test_a_fee_changed_at_central_is_shown_before_anything_is_charged():
    k = verified()
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("civil-status-extract"))
    (eligibility,) = k.send(ev.Pay())
    assert (eligibility.fee, eligibility.catalogue_version) == (FEE, "v1")
    new_fee = Money.of(175000, "SYP")
    out = k.send(ev.EligibilityChecked(eligibility.txn_id, True, new_fee, "v2"))
    assert fx.LoadCatalogue() in out and not any(isinstance(e, (fx.CheckPrinter, fx.Charge)) for e in k.effects)
    view = k.session.view()
    assert view.step is Step.CONFIRM and view.fee_changed and view.selected.fee == new_fee
    (again,) = k.send(ev.Pay())
    assert again.fee == new_fee
    check = k.send(ev.EligibilityChecked(again.txn_id, True, new_fee, "v2"))
    assert check == [fx.LoadCatalogue(), fx.CheckPrinter(again.txn_id)]
    assert charged(k, check[1]).amount == new_fee and not k.session.view().fee_changed


def test_the_same_fee_goes_on_to_the_printer_check():
    k = verified()
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("civil-status-extract"))
    (eligibility,) = k.send(ev.Pay())
    assert k.send(ev.EligibilityChecked(eligibility.txn_id, True, FEE, "v1")) == [fx.CheckPrinter(eligibility.txn_id)]


# ---------------------------------------------------------------- the link to central


def test_the_view_shows_the_link_as_the_outbox_last_saw_it():
    from kiosk.ports.outbox import LinkState
    k = started()
    assert k.session.view().link is LinkState.ONLINE            # central just gave the catalogue
    k.send(ev.LinkChanged(LinkState.OFFLINE))
    assert k.session.view().link is LinkState.OFFLINE
    k.send(ev.LinkChanged(LinkState.ONLINE))
    assert k.session.view().link is LinkState.ONLINE


def test_the_link_is_unknown_until_something_is_heard_then_central_silent_means_offline():
    from kiosk.ports.outbox import LinkState
    k = Kiosk()
    k.send(ev.Start(0.0))
    assert k.session.view().link is LinkState.UNKNOWN
    k.send(ev.CatalogueLoaded(None))
    assert k.session.view().link is LinkState.OFFLINE


def test_a_pre_check_central_did_not_answer_shows_the_link_down():
    from kiosk.ports.outbox import LinkState
    k = verified()
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("civil-status-extract"))
    (check,) = k.send(ev.Pay(PaymentMethod.CARD))
    k.send(ev.EligibilityChecked(check.txn_id, None))
    assert k.session.view().link is LinkState.OFFLINE


def test_an_idle_kiosk_asks_for_the_catalogue_now_and_then_but_never_while_serving():
    k = started()
    assert k.tick(59) == []
    assert k.tick(1) == [fx.LoadCatalogue()]                  # nobody there: central asked again
    assert k.tick(30) == []
    k.send(ev.LanguageChosen("en"))                           # a citizen begins
    k.send(ev.Touched(k.now))
    assert k.tick(45) == []


def test_the_kept_copy_serves_with_the_link_shown_down_and_a_refused_copy_puts_the_kiosk_out_of_service():
    from kiosk.ports.outbox import LinkState
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(CATALOGUE, cached=True))
    assert k.step is Step.ATTRACT and k.session.view().link is LinkState.OFFLINE
    k.tick(60)
    k.send(ev.CatalogueLoaded(None, expired=True))          # the copy is too old now
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.NO_CATALOGUE


def test_central_silent_without_a_verdict_on_the_copy_keeps_the_catalogue_shown():
    k = started()
    k.send(ev.CatalogueLoaded(None))
    assert k.step is Step.ATTRACT and k.session.view().services


# ---------------------------------------------------------------- offline: which services still work

CLAIMABLE = Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE,
                    offline=OfflinePolicy(OfflineMode.CLAIM, max_fee_minor=200000, daily_cap_minor=1000000))
ONLINE_ONLY = Service("non-conviction", {"ar": "لا حكم عليه", "en": "Non-conviction certificate"},
                      Money.of(250000, "SYP"))
DEAR = Service("family-book-replacement", {"ar": "بدل دفتر عائلة", "en": "Family book replacement"},
               Money.of(500000, "SYP"), offline=OfflinePolicy(OfflineMode.CLAIM, 300000, 1000000))
OFFLINE_CATALOGUE = Catalogue(services=(CLAIMABLE, ONLINE_ONLY, DEAR), version="v2")


def offline_at_services():
    from kiosk.ports.outbox import LinkState
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(OFFLINE_CATALOGUE, cached=True))      # central unreachable: the kept copy
    k.send(ev.LanguageChosen("ar"))
    k.send(ev.CardInserted())
    k.send(ev.CardConnected(k.last(fx.ConnectCard).session_id, ConnectResult.CONNECTED))
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    k.send(ev.ShowServices())
    assert k.session.view().link is LinkState.OFFLINE
    return k


def test_offline_a_service_that_needs_central_is_refused_at_confirm_before_any_payment():
    k = offline_at_services()
    k.send(ev.ServiceChosen("non-conviction"))
    view = k.session.view()
    assert view.step is Step.CONFIRM and view.needs_link and view.selected == ONLINE_ONLY
    effects = k.send(ev.Pay(PaymentMethod.CARD)) + k.send(ev.Pay(PaymentMethod.WALLET))
    assert all(isinstance(e, fx.Audit) for e in effects) and effects
    assert not any(isinstance(e, (fx.CheckEligibility, fx.CheckTerminal, fx.Charge)) for e in k.effects)
    assert k.step is Step.CONFIRM
    k.send(ev.Back())
    assert k.step is Step.CATALOGUE


def test_offline_a_claimable_service_within_its_limit_is_not_refused():
    k = offline_at_services()
    k.send(ev.ServiceChosen("civil-status-extract"))
    assert not k.session.view().needs_link


def test_offline_a_claimable_service_above_the_payment_limit_needs_central():
    k = offline_at_services()
    k.send(ev.ServiceChosen("family-book-replacement"))
    assert k.session.view().needs_link


def test_the_link_coming_back_lets_the_service_be_paid_as_usual():
    from kiosk.ports.outbox import LinkState
    k = offline_at_services()
    k.send(ev.ServiceChosen("non-conviction"))
    k.send(ev.LinkChanged(LinkState.ONLINE))
    assert not k.session.view().needs_link
    (check,) = k.send(ev.Pay(PaymentMethod.CARD))
    assert isinstance(check, fx.CheckEligibility) and check.service_code == "non-conviction"


# ---------------------------------------------------------------- offline claims

def claim_charged(k, service="civil-status-extract"):
    """Offline, a claimable service: the day's cap, the printer, the terminal, then the sale (offline)."""
    k.send(ev.ServiceChosen(service))
    assert k.session.view().claim and not k.session.view().needs_link
    audit, allowance = k.send(ev.Pay(PaymentMethod.CARD))
    assert isinstance(audit, fx.Audit) and isinstance(allowance, fx.CheckOfflineAllowance)
    assert allowance.amount == FEE and allowance.daily_cap == Money.of(1000000, "SYP")
    (printer,) = k.send(ev.OfflineAllowanceChecked(allowance.txn_id, True))
    assert printer == fx.CheckPrinter(allowance.txn_id)
    charge = charged(k, printer)
    assert charge.offline and charge.amount == FEE
    return charge


def test_offline_a_claim_is_paid_kept_and_slipped_without_asking_central():
    k = offline_at_services()
    charge = claim_charged(k)
    (queue,) = k.send(approved(charge))
    assert k.step is Step.CLAIMING and isinstance(queue, fx.QueueClaim)
    assert queue.service_code == "civil-status-extract" and queue.payment_id == "pay-1"
    assert queue.reference.startswith("CLM-") and "national" not in repr(queue) and IDENTITY.national_number \
        not in repr(queue)
    audit, slip = k.send(ev.ClaimQueued(charge.txn_id, True))
    assert isinstance(slip, fx.PrintClaimSlip) and slip.reference == queue.reference and k.step is Step.PRINTING
    assert k.session.view().claim_reference == queue.reference
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.claim_reference == queue.reference and view.claim_slip_printed
    assert not any(isinstance(e, (fx.Settle, fx.CheckEligibility, fx.IssueDocument)) for e in k.effects)


def test_a_claim_is_paid_by_bank_card_only():
    k = offline_at_services()
    k.send(ev.ServiceChosen("civil-status-extract"))
    assert k.send(ev.Pay(PaymentMethod.WALLET)) == [] and k.step is Step.CONFIRM


def test_a_claim_beyond_the_days_offline_cap_charges_nothing():
    k = offline_at_services()
    k.send(ev.ServiceChosen("civil-status-extract"))
    _audit, allowance = k.send(ev.Pay(PaymentMethod.CARD))
    k.send(ev.OfflineAllowanceChecked(allowance.txn_id, False))
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.OFFLINE_LIMIT and not view.refunded
    assert not any(isinstance(e, (fx.Charge, fx.CheckTerminal)) for e in k.effects)


def test_a_claim_that_could_not_be_kept_is_given_back():
    k = offline_at_services()
    charge = claim_charged(k)
    k.send(approved(charge))
    out = k.send(ev.ClaimQueued(charge.txn_id, False))
    assert fx.Settle(charge.txn_id, "claim_not_kept") in out
    assert k.step is Step.FAILED and k.session.view().refunded


def test_a_slip_that_did_not_print_leaves_the_claim_kept_and_shows_the_reference():
    k = offline_at_services()
    charge = claim_charged(k)
    (queue,) = k.send(approved(charge))
    k.send(ev.ClaimQueued(charge.txn_id, True))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER)))
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.claim_reference == queue.reference and not view.claim_slip_printed
    assert not any(isinstance(e, fx.Settle) for e in out)


@pytest.mark.parametrize("kept", [True, False])
def test_card_pulled_while_the_claim_is_kept_gives_back_only_a_claim_not_kept(kept):
    k = offline_at_services()
    charge = claim_charged(k)
    k.send(approved(charge))
    k.send(ev.CardRemoved())
    assert k.session.orphans == (charge.txn_id,)
    out = k.send(ev.ClaimQueued(charge.txn_id, kept))
    assert any(isinstance(e, fx.Settle) for e in out) is not kept and k.session.orphans == ()


def test_card_pulled_while_the_slip_prints_never_gives_the_claim_back():
    k = offline_at_services()
    charge = claim_charged(k)
    k.send(approved(charge))
    k.send(ev.ClaimQueued(charge.txn_id, True))
    out = k.send(ev.CardRemoved())
    out += k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.DISCONNECTED)))
    assert not any(isinstance(e, fx.Settle) for e in out) and k.session.orphans == ()


def test_a_pre_check_central_did_not_answer_offers_a_claim_for_a_claimable_service():
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(OFFLINE_CATALOGUE))                   # central answered: the link looks up
    k.send(ev.LanguageChosen("en"))
    k.send(ev.CardInserted())
    k.send(ev.CardConnected(k.last(fx.ConnectCard).session_id, ConnectResult.CONNECTED))
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("civil-status-extract"))
    assert not k.session.view().claim
    (check,) = k.send(ev.Pay(PaymentMethod.CARD))
    k.send(ev.EligibilityChecked(check.txn_id, None))               # ... but central did not answer
    view = k.session.view()
    assert view.step is Step.CONFIRM and view.claim and not view.refunded
    _audit, allowance = k.send(ev.Pay(PaymentMethod.CARD))
    assert isinstance(allowance, fx.CheckOfflineAllowance)


def test_claim_references_are_random_and_readable():
    from kiosk.session import new_claim_reference
    import re
    references = {new_claim_reference() for _ in range(200)}
    assert len(references) == 200
    assert all(re.fullmatch(r"CLM-[A-HJKMNP-TV-Z2-9]{4}-[A-HJKMNP-TV-Z2-9]{4}-[A-HJKMNP-TV-Z2-9]{4}", r)
               for r in references)


# ---------------------------------------------------------------- collecting documents claimed earlier

def waiting_document(serial):
    return IssuedDocument(request_id="k9-" + serial, serial=serial, service_code="civil-status-extract",
                          title={"ar": "إخراج قيد", "en": "Extract"}, fields=(), issued_at="2026-11-23T10:00:00Z",
                          verification="KSK2:x")


def with_documents_waiting(count=2):
    k = verified()
    (find,) = [e for e in k.effects if isinstance(e, fx.FindWaitingDocuments)]
    assert find.session_id and IDENTITY.national_number not in repr(find)
    documents = tuple(waiting_document("2026-AAAA%04d" % i) for i in range(count))
    k.send(ev.WaitingDocumentsFound(find.session_id, documents))
    assert k.session.view().waiting_documents == count
    return k, documents


def test_documents_waiting_are_printed_without_payment_and_the_card_comes_back():
    k, documents = with_documents_waiting()
    (collect,) = k.send(ev.CollectDocuments())
    assert collect == fx.PrintCollected(k.session._session_id, documents, "ar") and k.step is Step.COLLECTING
    k.send(ev.DocumentsCollected(collect.session_id, ("2026-AAAA0000", "2026-AAAA0001"),
                                 PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    view = k.session.view()
    assert view.step is Step.TAKE_CARD and view.collected == ("2026-AAAA0000", "2026-AAAA0001")
    assert not any(isinstance(e, (fx.CheckEligibility, fx.Charge, fx.Settle)) for e in k.effects)


def test_a_waiting_document_that_did_not_print_still_waits():
    k, _documents = with_documents_waiting()
    (collect,) = k.send(ev.CollectDocuments())
    k.send(ev.DocumentsCollected(collect.session_id, ("2026-AAAA0000",),
                                 PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER)))
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.COLLECTION_FAILED and not view.refunded
    assert view.waiting_documents == 1 and view.collected == ("2026-AAAA0000",)


def test_no_documents_are_asked_for_while_central_cannot_be_reached_nor_heard_for_another_session():
    k = offline_at_services()
    assert not any(isinstance(e, fx.FindWaitingDocuments) for e in k.effects)
    k.send(ev.WaitingDocumentsFound("another-session", (waiting_document("2026-BBBB0000"),)))
    assert k.session.view().waiting_documents == 0
    assert k.send(ev.CollectDocuments()) == []


def test_documents_waiting_are_forgotten_with_the_card():
    k, _documents = with_documents_waiting()
    k.send(ev.CardRemoved())
    assert k.session.view().waiting_documents == 0
