"""The session's rules, event by event, with no screen and no device."""

from datetime import date
import itertools

import pytest

from kiosk.ports.card_reader import CardReadResult, CardVerdict, ConnectResult, Identity
from kiosk.ports.payment_terminal import PaymentOutcome, PaymentStatus
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue import Catalogue, Category, Service
from kiosk.documents import IssuedDocument
from kiosk.money import Money
from kiosk.session import PRINTER_RECHECK_S, Reason, Session, Step, Timeouts

FEE = Money.of(150000, "SYP")
CATALOGUE = Catalogue(services=(
    Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE),
    Service("non-conviction", {"ar": "لا حكم عليه", "en": "Non-conviction certificate"}, Money.of(200000, "SYP")),
))
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


def prepared(k, service="civil-status-extract"):
    """From the identity screen to the printer check: central said it would issue."""
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen(service))
    (eligibility,) = k.send(ev.Pay())
    assert isinstance(eligibility, fx.CheckEligibility) and eligibility.national_number == IDENTITY.national_number
    (check,) = k.send(ev.EligibilityChecked(eligibility.txn_id, True))
    assert isinstance(check, fx.CheckPrinter)
    return check


def paying():
    k = verified()
    check = prepared(k)
    charge = k.send(ev.PrinterChecked(check.txn_id, ready=True))[0]
    return k, charge


def approved(charge):
    return ev.PaymentSettled(charge.txn_id, PaymentOutcome(PaymentStatus.APPROVED, FEE, charge.charge_id, "pay-1"))


def test_full_journey_ends_on_attract_with_nothing_kept():
    k, charge = paying()
    assert k.step is Step.PAYING and charge.amount == FEE
    issue = k.send(approved(charge))[0]
    assert isinstance(issue, fx.IssueDocument) and issue.payment_id == "pay-1"
    assert issue.national_number == IDENTITY.national_number and issue.language == "ar"
    assert k.step is Step.ISSUING
    printing = k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))[0]
    assert isinstance(printing, fx.PrintDocument) and printing.document is DOCUMENT
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.step is Step.TAKE_CARD
    assert k.send(ev.CardRemoved()) == [fx.ReleaseCard()]
    view = k.session.view()
    assert view.step is Step.ATTRACT and view.holder_name is None and view.selected is None
    assert not any(isinstance(e, fx.Refund) for e in k.effects)


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
    assert out == [fx.ReadPhoto(auth.session_id)]
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
    refund = [e for e in out if isinstance(e, fx.Refund)][0]
    assert refund.payment_id == "pay-1" and refund.amount == FEE
    assert not any(isinstance(e, fx.IssueDocument) for e in out)
    assert k.session.orphans == ()


def test_card_removed_during_payment_then_declined_needs_no_refund():
    k, charge = paying()
    k.send(ev.CardRemoved())
    out = k.send(ev.PaymentSettled(charge.txn_id, PaymentOutcome(PaymentStatus.DECLINED, FEE, charge.charge_id)))
    assert out == [] and k.session.orphans == ()


def test_card_removed_while_issuing_refunds_and_voids():
    k, charge = paying()
    issue = k.send(approved(charge))[0]
    k.send(ev.CardRemoved())
    out = k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    assert any(isinstance(e, fx.Refund) for e in out)
    assert fx.VoidDocument(charge.txn_id, issue.request_id) in out
    assert not any(isinstance(e, fx.PrintDocument) for e in out)


def test_card_removed_while_printing_keeps_the_printed_document_paid():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(ev.CardRemoved())
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert not any(isinstance(e, fx.Refund) for e in out) and k.session.orphans == ()


def print_failed(bytes_sent=0):
    """Paid, issued, and the certificate did not come out whole."""
    k, charge = paying()
    issue = k.send(approved(charge))[0]
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER,
                                                               bytes_sent=bytes_sent)))
    assert not any(isinstance(e, (fx.Refund, fx.VoidDocument)) for e in out)
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
    assert not any(isinstance(e, fx.Refund) for e in k.effects)


def test_a_print_that_sent_nothing_is_reprinted_as_the_original():
    k, charge, _issue = print_failed(bytes_sent=0)
    k.tick(PRINTER_RECHECK_S)
    (reprint,) = k.send(ev.PrinterChecked(charge.txn_id, ready=True))
    assert not reprint.copy


def test_printer_not_back_in_time_refunds_and_voids():
    k, charge, issue = print_failed()
    out = k.tick(300)
    assert any(isinstance(e, fx.Refund) for e in out) and fx.VoidDocument(charge.txn_id, issue.request_id) in out
    view = k.session.view()
    assert view.step is Step.FAILED and view.reason is Reason.PRINT_FAILED and view.refunded
    assert k.send(ev.PrinterChecked(charge.txn_id, ready=True)) == []     # a late answer prints nothing


def test_citizen_who_will_not_wait_gets_the_fee_back():
    k, charge, issue = print_failed()
    out = k.send(ev.Cancel())
    assert any(isinstance(e, fx.Refund) for e in out) and fx.VoidDocument(charge.txn_id, issue.request_id) in out
    assert k.step is Step.FAILED and k.session.view().refunded


def test_card_pulled_while_waiting_for_the_printer_refunds_at_once_and_prints_nothing_later():
    k, charge, issue = print_failed()
    out = k.send(ev.CardRemoved())
    assert any(isinstance(e, fx.Refund) for e in out) and fx.VoidDocument(charge.txn_id, issue.request_id) in out
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
    charge = k.send(ev.PrinterChecked(prepared(k).txn_id, ready=True))[0]
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER)))
    assert any(isinstance(e, fx.Refund) for e in out) and k.step is Step.FAILED


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
    k.send(ev.PaymentSettled(charge.txn_id, PaymentOutcome(PaymentStatus.DECLINED, FEE, charge.charge_id)))
    assert k.step is Step.PAYMENT_DECLINED
    eligibility = k.send(ev.RetryPayment())[0]
    check = k.send(ev.EligibilityChecked(eligibility.txn_id, True))[0]
    second = k.send(ev.PrinterChecked(check.txn_id, ready=True))[0]
    assert isinstance(second, fx.Charge) and second.charge_id != charge.charge_id


def test_lost_payment_answer_is_settled_by_a_durable_refund():
    k, charge = paying()
    out = k.send(ev.PaymentSettled(charge.txn_id, PaymentOutcome(PaymentStatus.UNKNOWN, FEE, charge.charge_id)))
    refund = [e for e in out if isinstance(e, fx.Refund)][0]
    assert refund.payment_id is None and refund.charge_id == charge.charge_id
    assert k.step is Step.FAILED


def test_document_not_issued_in_time_refunds_and_voids():
    k, charge = paying()
    issue = k.send(approved(charge))[0]
    out = k.send(ev.DocumentAnswered(charge.txn_id, None))
    assert any(isinstance(e, fx.Refund) for e in out) and fx.VoidDocument(charge.txn_id, issue.request_id) in out
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
