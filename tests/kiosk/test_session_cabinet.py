"""The session's rules for the cabinet: the door, the help button, the paper sensor and the chime."""

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.ports.cabinet import CabinetInput, Chime
from kiosk.ports.payment_terminal import PaymentStatus
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk.session import HELP_SHOWN_S, Reason, Step
from tests.kiosk.test_session import (
    CATALOGUE, DOCUMENT, Kiosk, approved, outcome, paying, print_failed, started, verified,
)

DOOR_OPENED = ev.CabinetChanged(CabinetInput.DOOR_OPENED)
DOOR_CLOSED = ev.CabinetChanged(CabinetInput.DOOR_CLOSED)
PRINTED = PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)


def out_of_service_for_the_door(k) -> bool:
    view = k.session.view()
    return view.step is Step.OUT_OF_SERVICE and view.reason is Reason.DOOR_OPEN


# ---------------------------------------------------------------- the door


def test_door_opened_on_attract_is_out_of_service_until_it_is_shut():
    k = started()
    out = k.send(DOOR_OPENED)
    assert out_of_service_for_the_door(k)
    assert fx.Alert("cabinet.door_opened") in out and fx.Audit("cabinet.door_opened", "attract") in out
    k.send(ev.CatalogueLoaded(CATALOGUE))          # a refreshed catalogue does not reopen it
    assert out_of_service_for_the_door(k)
    out = k.send(DOOR_CLOSED)
    assert k.step is Step.ATTRACT and fx.Audit("cabinet.door_closed", "attract") in out
    assert not any(isinstance(e, fx.Alert) for e in out)


def test_door_open_at_start_keeps_the_kiosk_out_of_service_when_the_catalogue_comes():
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(DOOR_OPENED)
    k.send(ev.CatalogueLoaded(CATALOGUE))
    assert out_of_service_for_the_door(k)
    k.send(DOOR_CLOSED)
    assert k.step is Step.ATTRACT


def test_door_opened_or_closed_twice_says_it_once():
    k = started()
    k.send(DOOR_OPENED)
    assert k.send(DOOR_OPENED) == []
    k.send(DOOR_CLOSED)
    assert k.send(DOOR_CLOSED) == []


def test_door_opened_mid_payment_ends_the_session_and_gives_a_late_approval_back():
    k, charge = paying()
    out = k.send(DOOR_OPENED)
    assert out_of_service_for_the_door(k) and k.session.view().holder_name is None
    assert fx.AbortPayment(charge.txn_id) in out and fx.ReleaseCard() in out      # nobody is there to pay
    assert k.session.orphans == (charge.txn_id,)
    late = k.send(approved(charge))
    assert fx.Settle(charge.txn_id, "card_removed") in late
    assert not any(isinstance(e, fx.IssueDocument) for e in late) and k.session.orphans == ()
    assert out_of_service_for_the_door(k)


def test_door_opened_mid_payment_that_was_declined_owes_nothing():
    k, charge = paying()
    k.send(DOOR_OPENED)
    assert k.send(outcome(charge, PaymentStatus.DECLINED)) == [] and k.session.orphans == ()


def test_door_opened_while_issuing_voids_and_gives_back():
    k, charge = paying()
    k.send(approved(charge))
    k.send(DOOR_OPENED)
    out = k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    assert fx.Settle(charge.txn_id, "card_removed") in out
    assert not any(isinstance(e, fx.PrintDocument) for e in out)


def test_door_opened_mid_print_keeps_a_document_that_came_out_paid():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(DOOR_OPENED)
    out = k.send(ev.PrintFinished(charge.txn_id, PRINTED))
    assert not any(isinstance(e, fx.Settle) for e in out) and k.session.orphans == ()
    assert fx.Chime(Chime.TAKE_DOCUMENT) in out             # it came out: whoever is there is told by ear


def test_door_opened_mid_print_gives_back_a_document_that_did_not_come_out():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(DOOR_OPENED)
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.NO_PAPER)))
    assert fx.Settle(charge.txn_id, "card_removed") in out


def test_door_opened_while_a_reprint_waits_gives_the_fee_back_at_once():
    k, charge, _issue = print_failed()
    out = k.send(DOOR_OPENED)
    assert fx.Settle(charge.txn_id, "card_removed") in out and out_of_service_for_the_door(k)


def test_a_card_left_in_the_reader_is_asked_back_once_the_door_is_shut():
    k = verified()
    k.send(DOOR_OPENED)
    assert out_of_service_for_the_door(k)                   # not "take your card": the kiosk is open
    out = k.send(DOOR_CLOSED)
    assert k.step is Step.TAKE_CARD and fx.Chime(Chime.TAKE_CARD) in out
    k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT


def test_a_card_taken_while_the_door_is_open_leaves_nothing_to_ask_for():
    k = verified()
    k.send(DOOR_OPENED)
    k.send(ev.CardRemoved())
    k.send(DOOR_CLOSED)
    assert k.step is Step.ATTRACT


def test_a_card_inserted_while_the_door_is_open_starts_nothing():
    k = started()
    k.send(DOOR_OPENED)
    assert k.send(ev.CardInserted()) == [] and out_of_service_for_the_door(k)


# ---------------------------------------------------------------- help and paper


def test_help_pressed_alerts_an_attendant_and_says_so_on_screen_for_a_while():
    k = verified()
    out = k.send(ev.CabinetChanged(CabinetInput.HELP_PRESSED))
    assert fx.Alert("cabinet.help") in out
    assert k.session.view().help_called and k.step is Step.IDENTITY     # the citizen's session goes on
    k.tick(HELP_SHOWN_S / 2)
    assert k.send(ev.CabinetChanged(CabinetInput.HELP_PRESSED)) == []     # shown already: one alert
    k.tick(HELP_SHOWN_S / 2)
    assert k.session.view().help_called                                 # the second press showed it longer
    k.tick(HELP_SHOWN_S)
    assert not k.session.view().help_called
    assert fx.Alert("cabinet.help") in k.send(ev.CabinetChanged(CabinetInput.HELP_PRESSED))


def test_paper_low_alerts_once_per_change():
    k = started()
    assert k.send(ev.CabinetChanged(CabinetInput.PAPER_LOW)) == [fx.Alert("printer.paper_low")]
    assert k.send(ev.CabinetChanged(CabinetInput.PAPER_LOW)) == []
    assert not any(isinstance(e, fx.Alert) for e in k.send(ev.CabinetChanged(CabinetInput.PAPER_OK)))
    assert k.send(ev.CabinetChanged(CabinetInput.PAPER_LOW)) == [fx.Alert("printer.paper_low")]
    assert k.step is Step.ATTRACT


# ---------------------------------------------------------------- the chime


def test_a_printed_document_chimes_take_your_document_then_take_your_card():
    k, charge = paying()
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    out = k.send(ev.PrintFinished(charge.txn_id, PRINTED))
    chimes = [e.kind for e in out if isinstance(e, fx.Chime)]
    assert chimes == [Chime.TAKE_DOCUMENT, Chime.TAKE_CARD] and k.step is Step.TAKE_CARD


def test_take_card_without_a_document_chimes_take_your_card_once():
    k = verified()
    out = k.send(ev.Cancel())
    assert k.step is Step.TAKE_CARD and [e for e in out if isinstance(e, fx.Chime)] == [fx.Chime(Chime.TAKE_CARD)]
    assert not any(isinstance(e, fx.Chime) for e in k.send(ev.Cancel()))      # still there: no second chime


def test_a_failed_print_does_not_chime():
    k, _charge, _issue = print_failed()
    assert not any(isinstance(e, fx.Chime) for e in k.effects)
