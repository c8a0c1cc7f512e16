"""The technician's key, PIN and screen, event by event, with no screen and no device."""

import pytest

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.ports.cabinet import CabinetInput
from kiosk.ports.card_reader import ReaderStatus
from kiosk.ports.payment_terminal import TerminalState
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk.session import Reason, Step
from kiosk.technician import TechnicianAction, TechnicianStatus
from tests.kiosk.test_session import CATALOGUE, DOCUMENT, Kiosk, approved, at_pin_entry, paying, started, verified

KEY_ON = ev.CabinetChanged(CabinetInput.MAINTENANCE_ON)
KEY_OFF = ev.CabinetChanged(CabinetInput.MAINTENANCE_OFF)
RIGHT, WRONG = "246810", "135790"


def audits(effects, prefix="technician."):
    return [(e.event, e.detail) for e in effects if isinstance(e, fx.Audit) and e.event.startswith(prefix)]


def type_technician_pin(k, pin):
    for digit in pin:
        k.send(ev.TechnicianPinDigit(digit))
    return k.send(ev.TechnicianPinSubmit())


def try_pin(k, pin):
    """Type `pin`; the worker answers whether it matched RIGHT. Returns what the answer led to."""
    (check,) = type_technician_pin(k, pin)
    assert isinstance(check, fx.CheckTechnicianPin) and check.pin == pin and pin not in repr(check)
    return k.send(ev.TechnicianPinChecked(check.attempt_id, pin == RIGHT))


def at_technician_pin():
    k = started()
    k.send(KEY_ON)
    assert k.step is Step.TECHNICIAN_PIN
    return k


def signed_in():
    k = at_technician_pin()
    effects = try_pin(k, RIGHT)
    assert k.step is Step.TECHNICIAN and fx.GatherTechnicianStatus() in effects
    return k


# ---------------------------------------------------------------- the key


@pytest.mark.parametrize("reach", ["attract", "insert_card", "out_of_service"])
def test_key_on_while_nobody_is_served_asks_for_the_technician_pin_at_once(reach):
    k = Kiosk()
    k.send(ev.Start(0.0))
    if reach == "out_of_service":
        k.send(ev.CatalogueLoaded(None))
    else:
        k.send(ev.CatalogueLoaded(CATALOGUE))
    if reach == "insert_card":
        k.send(ev.LanguageChosen("en"))
    assert k.step.value == reach.replace("_", " ")
    assert audits(k.send(KEY_ON)) == [("technician.key_on", "")]
    assert k.step is Step.TECHNICIAN_PIN
    assert k.session.view().technician_pin_length == 0


def test_key_on_before_the_catalogue_came_asks_for_the_pin_once_the_kiosk_has_started():
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(KEY_ON)
    assert k.step is Step.STARTING
    k.send(ev.CatalogueLoaded(CATALOGUE))
    assert k.step is Step.TECHNICIAN_PIN


@pytest.mark.parametrize("reach", ["pin_entry", "identity", "catalogue", "confirm"])
def test_key_on_while_a_citizen_is_served_waits_for_their_session_to_end(reach):
    k = at_pin_entry() if reach == "pin_entry" else verified()
    if reach in ("catalogue", "confirm"):
        k.send(ev.ShowServices())
    if reach == "confirm":
        k.send(ev.ServiceChosen("civil-status-extract"))
    before = k.step
    assert audits(k.send(KEY_ON)) == [("technician.key_on", "waiting_for_session_end")]
    assert k.step is before                     # the citizen goes on
    k.send(ev.CardRemoved())
    assert k.step is Step.TECHNICIAN_PIN


def test_key_on_never_interrupts_a_payment_and_the_pin_comes_after_the_document():
    k, charge = paying()
    k.send(KEY_ON)
    assert k.step is Step.PAYING
    (issue,) = k.send(approved(charge))
    assert k.step is Step.ISSUING
    (print_,) = k.send(ev.DocumentAnswered(issue.txn_id, DOCUMENT))
    k.send(ev.PrintFinished(print_.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.step is Step.TAKE_CARD and k.session.view().printed
    k.send(ev.CardRemoved())
    assert k.step is Step.TECHNICIAN_PIN
    assert not any(isinstance(e, (fx.AbortPayment, fx.Settle)) for e in k.effects)


def test_key_on_then_off_while_a_citizen_is_served_changes_nothing_for_them():
    k = verified()
    k.send(KEY_ON)
    k.send(KEY_OFF)
    k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT


def test_key_off_at_the_pin_goes_back_to_the_citizens_screens():
    k = at_technician_pin()
    k.send(ev.TechnicianPinDigit("1"))
    assert audits(k.send(KEY_OFF)) == [("technician.key_off", "")]
    assert k.step is Step.ATTRACT and k.session.view().technician_pin_length == 0


def test_key_off_on_the_technician_screen_goes_back_to_attract_in_the_first_language():
    k = signed_in()
    k.send(ev.LanguageChosen("en"))
    k.send(KEY_OFF)
    assert k.step is Step.ATTRACT and k.session.view().language == "ar"
    assert k.session.view().technician_status is None


def test_key_off_with_an_id_card_left_in_the_reader_asks_for_it_back():
    k = signed_in()
    k.send(ev.CardInserted())                   # someone pushed a card in meanwhile: no session starts
    assert k.step is Step.TECHNICIAN
    k.send(KEY_OFF)
    assert k.step is Step.TAKE_CARD
    k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT


def test_the_other_cabinet_inputs_do_not_open_the_technician_screen():
    k = started()
    for what in (CabinetInput.DOOR_OPENED, CabinetInput.HELP_PRESSED, CabinetInput.PAPER_LOW):
        k.send(ev.CabinetChanged(what))
        assert k.step not in (Step.TECHNICIAN_PIN, Step.TECHNICIAN)


def test_no_idle_timeout_throws_the_technician_out():
    k = signed_in()
    k.tick(3600)
    assert k.step is Step.TECHNICIAN


def test_an_id_card_inserted_on_the_technician_pin_starts_no_session():
    k = at_technician_pin()
    assert k.send(ev.CardInserted()) == []
    assert k.step is Step.TECHNICIAN_PIN


# ---------------------------------------------------------------- the PIN


def test_the_right_pin_opens_the_technician_screen_and_is_audited_without_the_pin():
    k = at_technician_pin()
    (check,) = type_technician_pin(k, RIGHT)
    assert k.session.view().technician_checking and k.step is Step.TECHNICIAN_PIN
    effects = k.send(ev.TechnicianPinChecked(check.attempt_id, True))
    assert k.step is Step.TECHNICIAN
    assert audits(effects) == [("technician.pin_accepted", "")]
    assert all(RIGHT not in repr(e) for e in k.effects)


def test_a_pin_shorter_than_six_digits_is_not_checked_and_digits_stop_at_twelve():
    k = at_technician_pin()
    assert type_technician_pin(k, "12345") == []
    for _ in range(20):
        k.send(ev.TechnicianPinDigit("7"))
    assert k.session.view().technician_pin_length == 12
    k.send(ev.TechnicianPinErase())
    assert k.session.view().technician_pin_length == 11


def test_a_wrong_pin_says_how_many_tries_are_left():
    k = at_technician_pin()
    assert audits(try_pin(k, WRONG)) == [("technician.pin_refused", "tries_left:4")]
    assert k.step is Step.TECHNICIAN_PIN
    assert k.session.view().technician_tries_left == 4 and k.session.view().technician_pin_length == 0


def test_digits_typed_while_the_pin_is_checked_are_not_taken():
    k = at_technician_pin()
    type_technician_pin(k, RIGHT)
    k.send(ev.TechnicianPinDigit("1"))
    assert k.send(ev.TechnicianPinSubmit()) == []
    assert k.session.view().technician_pin_length == 0


def test_five_wrong_pins_lock_the_pin_out_for_five_minutes():
    k = at_technician_pin()
    for _ in range(4):
        try_pin(k, WRONG)
    assert audits(try_pin(k, WRONG)) == [("technician.pin_refused", "tries_left:0"),
                                         ("technician.pin_lockout", "300s")]
    assert k.session.view().technician_locked_s == 300
    # Locked out: even the right PIN is not checked, and the attempt is audited.
    k.send(ev.TechnicianPinDigit("2"))
    assert k.session.view().technician_pin_length == 0
    assert audits(k.send(ev.TechnicianPinSubmit())) == [("technician.pin_locked_out", "300s_left")]
    k.tick(299)
    assert k.session.view().technician_locked_s == 1
    assert type_technician_pin(k, RIGHT) == [fx.Audit("technician.pin_locked_out", "1s_left")]
    k.tick(1)
    assert k.session.view().technician_locked_s is None
    try_pin(k, RIGHT)
    assert k.step is Step.TECHNICIAN


def test_turning_the_key_off_and_on_neither_resets_the_count_nor_the_lockout():
    k = at_technician_pin()
    for _ in range(3):
        try_pin(k, WRONG)
    k.send(KEY_OFF)
    k.send(KEY_ON)
    assert k.step is Step.TECHNICIAN_PIN and k.session.view().technician_tries_left == 2
    try_pin(k, WRONG)
    k.send(KEY_OFF)
    k.send(KEY_ON)
    try_pin(k, WRONG)
    assert k.session.view().technician_locked_s == 300
    k.send(KEY_OFF)
    k.tick(100)
    k.send(KEY_ON)
    assert k.session.view().technician_locked_s == 200
    assert type_technician_pin(k, RIGHT)[0].event == "technician.pin_locked_out"


def test_a_wrong_pin_answered_after_the_key_was_turned_off_still_counts():
    k = at_technician_pin()
    (check,) = type_technician_pin(k, WRONG)
    k.send(KEY_OFF)
    assert audits(k.send(ev.TechnicianPinChecked(check.attempt_id, False))) == [
        ("technician.pin_refused", "tries_left:4")]
    assert k.step is Step.ATTRACT
    k.send(KEY_ON)
    assert k.session.view().technician_tries_left == 4


def test_a_right_pin_answered_after_the_key_was_turned_off_opens_nothing():
    k = at_technician_pin()
    (check,) = type_technician_pin(k, RIGHT)
    k.send(KEY_OFF)
    k.send(ev.TechnicianPinChecked(check.attempt_id, True))
    assert k.step is Step.ATTRACT


def test_the_right_pin_resets_the_count_of_wrong_ones():
    k = at_technician_pin()
    for _ in range(4):
        try_pin(k, WRONG)
    try_pin(k, RIGHT)
    k.send(KEY_OFF)
    k.send(KEY_ON)
    assert k.session.view().technician_tries_left is None
    assert audits(try_pin(k, WRONG)) == [("technician.pin_refused", "tries_left:4")]


def test_a_stale_pin_answer_is_ignored():
    k = at_technician_pin()
    assert k.send(ev.TechnicianPinChecked("not-asked", True)) == []
    assert k.step is Step.TECHNICIAN_PIN


# ---------------------------------------------------------------- the technician screen


STATUS = TechnicianStatus(reader=ReaderStatus.NO_CARD, terminal=TerminalState.READY, printer=PrinterStatus.READY,
                          pending=3, dead=1, version="0.1.0", device_id="k1")


def test_the_status_gathered_is_shown_and_gathered_again_every_ten_seconds():
    k = signed_in()
    assert k.session.view().technician_status is None
    k.send(ev.TechnicianStatusGathered(STATUS))
    assert k.session.view().technician_status == STATUS
    assert k.tick(5) == []
    assert k.tick(5) == [fx.GatherTechnicianStatus()]
    assert k.tick(10) == []                              # the last one has not answered yet


def test_refresh_gathers_the_status_again_and_is_audited():
    k = signed_in()
    effects = k.send(ev.TechnicianActionChosen(TechnicianAction.REFRESH))
    assert effects == [fx.Audit("technician.refresh", "asked"), fx.GatherTechnicianStatus()]


@pytest.mark.parametrize("action, effect", [(TechnicianAction.TEST_PRINT, fx.PrintTestPage()),
                                            (TechnicianAction.LIGHT_WALK, fx.WalkLights())])
def test_a_test_print_or_light_walk_is_audited_asked_and_done(action, effect):
    k = signed_in()
    assert k.send(ev.TechnicianActionChosen(action)) == [fx.Audit("technician." + action.value, "asked"), effect]
    view = k.session.view()
    assert (view.technician_action, view.technician_outcome) == (action, "under_way")
    assert k.send(ev.TechnicianActionChosen(action)) == [fx.Audit("technician." + action.value, "busy")]
    done = k.send(ev.TechnicianActionDone(action, ok=False))
    assert audits(done) == [("technician." + action.value, "failed")]
    assert k.session.view().technician_outcome == "failed"


def test_restart_and_reboot_are_audited_before_they_are_carried_out():
    k = signed_in()
    assert k.send(ev.TechnicianActionChosen(TechnicianAction.RESTART)) == [
        fx.Audit("technician.restart", "asked"), fx.RestartApp()]
    assert k.send(ev.TechnicianActionChosen(TechnicianAction.REBOOT)) == [
        fx.Audit("technician.reboot", "asked"), fx.RebootDevice()]


def test_no_action_is_taken_before_the_pin():
    k = at_technician_pin()
    for action in TechnicianAction:
        assert k.send(ev.TechnicianActionChosen(action)) == []
    k.send(KEY_OFF)
    assert k.step is Step.ATTRACT


def test_taken_out_of_service_the_kiosk_stays_out_of_service_until_put_back():
    k = signed_in()
    assert audits(k.send(ev.TechnicianActionChosen(TechnicianAction.OUT_OF_SERVICE))) == [
        ("technician.out_of_service", "")]
    assert k.session.view().taken_out_of_service and k.step is Step.TECHNICIAN
    assert audits(k.send(KEY_OFF)) == [("technician.key_off", "out_of_service")]
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.TECHNICIAN
    # Nothing a citizen or central does puts it back: the catalogue, a card.
    k.send(ev.CatalogueLoaded(CATALOGUE))
    k.send(ev.CardInserted())
    k.send(ev.LanguageChosen("en"))
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.TECHNICIAN
    k.send(ev.CardRemoved())
    # The technician comes back and puts it back in service.
    k.send(KEY_ON)
    try_pin(k, RIGHT)
    assert k.session.view().taken_out_of_service
    assert audits(k.send(ev.TechnicianActionChosen(TechnicianAction.BACK_IN_SERVICE))) == [
        ("technician.back_in_service", "")]
    k.send(KEY_OFF)
    assert k.step is Step.ATTRACT and k.session.view().reason is None


def test_put_back_in_service_the_kiosk_is_still_out_of_service_for_another_reason():
    k = Kiosk()
    k.send(ev.Start(0.0))
    k.send(ev.CatalogueLoaded(None))
    k.send(KEY_ON)
    try_pin(k, RIGHT)
    k.send(ev.TechnicianActionChosen(TechnicianAction.OUT_OF_SERVICE))
    k.send(ev.TechnicianActionChosen(TechnicianAction.BACK_IN_SERVICE))
    k.send(KEY_OFF)
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.NO_CATALOGUE


def test_every_technician_action_and_pin_attempt_is_audited():
    k = at_technician_pin()
    try_pin(k, WRONG)
    try_pin(k, RIGHT)
    for action in TechnicianAction:
        k.send(ev.TechnicianActionChosen(action))
    events = {event for event, _detail in audits(k.effects)}
    assert {"technician.key_on", "technician.pin_refused", "technician.pin_accepted"} <= events
    assert {"technician." + action.value for action in TechnicianAction} <= events
    assert all(RIGHT not in detail and WRONG not in detail for _event, detail in audits(k.effects))
