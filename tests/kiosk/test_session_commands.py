"""Central's commands and pushes in the session (kiosk/session.py, kiosk/commands.py): carried out only
between two citizens, never in a citizen's session or a payment, nor while a technician has the kiosk;
central's out of service beside the technician's; every command taken, refused and done audited; a fee
changed at central shown on the confirm screen before the next charge."""

from __future__ import annotations

import dataclasses

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue import Catalogue
from kiosk.commands import (
    Announcement, AnnouncementsLoaded, CentralDecisionLoaded, Command, CommandFinished, CommandRefused, CommandTaken,
    FinishCommand, Refusal, RunCommand, VersionsAnnounced,
)
from kiosk.money import Money
from kiosk.ports.cabinet import CabinetInput
from kiosk.ports.card_reader import CardReadResult, CardVerdict, ConnectResult
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk.ports.payment_terminal import TerminalState
from kiosk.session import Reason, Step
from kiosk.technician import TechnicianAction
from kiosk.wire import CommandAction, CommandOutcome
from tests.kiosk.test_session import (
    CATALOGUE, DOCUMENT, FEE, IDENTITY, approved, paying, prepared, started, type_pin, verified,
)
from tests.kiosk.test_session_technician import RIGHT, type_technician_pin

LIFETIME_S = 3600.0


def command(action: CommandAction, command_id: str = "c1") -> Command:
    return Command(command_id, action, issued_at=1_000_000.0, expires_at=1_000_000.0 + LIFETIME_S)


def taken(k, action: CommandAction, command_id: str = "c1", seconds_left: float = LIFETIME_S) -> list:
    return k.send(CommandTaken(command(action, command_id), seconds_left))


def finished(effects) -> list[FinishCommand]:
    return [e for e in effects if isinstance(e, FinishCommand)]


def audits(effects) -> list[tuple[str, str]]:
    return [(e.event, e.detail) for e in effects if isinstance(e, fx.Audit)]


def finish_paid_session(k, charge) -> list:
    """Paid, issued, printed, the card taken: back to the attract screen; the effects of the last event."""
    k.send(approved(charge))
    k.send(ev.DocumentAnswered(charge.txn_id, DOCUMENT))
    k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert k.step is Step.TAKE_CARD
    out = k.send(ev.CardRemoved())
    assert k.step in (Step.ATTRACT, Step.OUT_OF_SERVICE)
    return out


# --- between sessions only ----------------------------------------------------------------------------------

def test_out_of_service_waits_for_the_citizen_then_takes_the_kiosk_out():
    k = verified()
    assert audits(taken(k, CommandAction.OUT_OF_SERVICE)) == [("command.taken", "out-of-service")]
    assert k.step is Step.IDENTITY and not k.session.view().out_of_service_by_central
    out = k.send(ev.CardRemoved())
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.CENTRAL_STAFF
    assert audits(out) == [("command.done", "out-of-service")]
    assert finished(out) == [FinishCommand("c1", "out-of-service", CommandOutcome.DONE, None)]
    # Nobody is served until central puts it back.
    assert k.send(ev.CardInserted()) == [] and k.step is Step.OUT_OF_SERVICE


def test_a_reboot_never_interrupts_a_payment():
    k, charge = paying()
    assert not any(isinstance(e, RunCommand) for e in taken(k, CommandAction.REBOOT))
    for event in (approved(charge), ev.DocumentAnswered(charge.txn_id, DOCUMENT)):
        assert not any(isinstance(e, RunCommand) for e in k.send(event))
    out = k.send(ev.PrintFinished(charge.txn_id, PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)))
    assert not any(isinstance(e, RunCommand) for e in out) and k.step is Step.TAKE_CARD
    out = k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT
    assert [e for e in out if isinstance(e, RunCommand)] == [RunCommand(command(CommandAction.REBOOT))]
    assert ("command.started", "reboot") in audits(out)


def test_commands_wait_while_a_technician_has_the_kiosk():
    k = started()
    k.send(ev.CabinetChanged(CabinetInput.MAINTENANCE_ON))
    assert k.step is Step.TECHNICIAN_PIN
    assert not any(isinstance(e, RunCommand) for e in taken(k, CommandAction.COLLECT_LOGS))
    out = k.send(ev.CabinetChanged(CabinetInput.MAINTENANCE_OFF))
    assert k.step is Step.ATTRACT and RunCommand(command(CommandAction.COLLECT_LOGS)) in out


def test_commands_are_carried_out_one_at_a_time_in_the_order_taken():
    k = started()
    first = taken(k, CommandAction.SELFTEST, "c1")
    assert [e for e in first if isinstance(e, RunCommand)] == [RunCommand(command(CommandAction.SELFTEST, "c1"))]
    assert not any(isinstance(e, RunCommand) for e in taken(k, CommandAction.COLLECT_LOGS, "c2"))
    out = k.send(CommandFinished("c1", True))
    assert finished(out)[0] == FinishCommand("c1", "selftest", CommandOutcome.DONE, None)
    assert [e for e in out if isinstance(e, RunCommand)] == [RunCommand(command(CommandAction.COLLECT_LOGS, "c2"))]
    out = k.send(CommandFinished("c2", False, Refusal.UNREACHABLE))
    assert finished(out) == [FinishCommand("c2", "collect-logs", CommandOutcome.REFUSED, "unreachable")]
    assert audits(out) == [("command.refused", "collect-logs:unreachable")]


def test_a_command_whose_time_ran_out_while_it_waited_is_refused_as_expired():
    k = verified()
    taken(k, CommandAction.OUT_OF_SERVICE, seconds_left=30)
    k.tick(45)                          # the citizen is still there, within the idle limit
    out = k.send(ev.CardRemoved())
    assert k.step is Step.ATTRACT and not k.session.view().out_of_service_by_central
    assert finished(out) == [FinishCommand("c1", "out-of-service", CommandOutcome.REFUSED, "expired")]
    assert audits(out) == [("command.refused", "out-of-service:expired")]


def test_an_envelope_refused_on_arrival_is_audited_and_reported_never_carried_out():
    k = verified()
    out = k.send(CommandRefused("c9", "reboot", Refusal.WRONG_DEVICE))
    assert audits(out) == [("command.refused", "reboot:wrong_device")]
    assert finished(out) == [FinishCommand("c9", "reboot", CommandOutcome.REFUSED, "wrong_device", taken=False)]
    assert not any(isinstance(e, RunCommand) for e in k.send(ev.CardRemoved()))
    # One whose id cannot be read is audited only (the runtime reports nothing without an id).
    out = k.send(CommandRefused(None, "", Refusal.MALFORMED))
    assert audits(out) == [("command.refused", "unknown:malformed")]


# --- out of service and back, beside the technician ---------------------------------------------------------

def test_in_service_puts_back_only_centrals_decision():
    k = started()
    taken(k, CommandAction.OUT_OF_SERVICE, "c1")
    assert k.step is Step.OUT_OF_SERVICE
    # A technician takes it out of service too, then central puts it back in service: still out, the
    # technician's decision, and central hears why.
    technician_does(k, TechnicianAction.OUT_OF_SERVICE)
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.TECHNICIAN
    out = taken(k, CommandAction.IN_SERVICE, "c2")
    assert finished(out) == [FinishCommand("c2", "in-service", CommandOutcome.DONE, "technician")]
    assert k.step is Step.OUT_OF_SERVICE
    technician_does(k, TechnicianAction.BACK_IN_SERVICE)
    assert k.step is Step.ATTRACT


def test_the_technician_cannot_lift_centrals_out_of_service():
    k = started()
    taken(k, CommandAction.OUT_OF_SERVICE)
    technician_does(k, TechnicianAction.BACK_IN_SERVICE)
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.CENTRAL_STAFF


def technician_does(k, action: TechnicianAction) -> None:
    """The maintenance key on, the right PIN, `action` on the technician screen, the key off."""
    k.send(ev.CabinetChanged(CabinetInput.MAINTENANCE_ON))
    (check,) = type_technician_pin(k, RIGHT)
    k.send(ev.TechnicianPinChecked(check.attempt_id, True))
    assert k.step is Step.TECHNICIAN
    k.send(ev.TechnicianActionChosen(action))
    k.send(ev.CabinetChanged(CabinetInput.MAINTENANCE_OFF))


def test_centrals_out_of_service_outlives_a_restart():
    k = started()
    k.send(CentralDecisionLoaded(True))
    assert k.step is Step.OUT_OF_SERVICE and k.session.view().reason is Reason.CENTRAL_STAFF
    taken(k, CommandAction.IN_SERVICE)
    assert k.step is Step.ATTRACT


def test_a_command_interrupted_by_a_restart_is_refused_as_interrupted():
    k = started()
    out = k.send(CommandRefused("c1", "selftest", Refusal.INTERRUPTED, taken=True))
    assert finished(out) == [FinishCommand("c1", "selftest", CommandOutcome.REFUSED, "interrupted", taken=True)]


# --- resync, versions and the fee ------------------------------------------------------------------------------

def test_resync_is_the_runtimes_to_carry_out():
    k = started()
    out = taken(k, CommandAction.RESYNC)
    assert RunCommand(command(CommandAction.RESYNC)) in out
    assert finished(k.send(CommandFinished("c1", True))) == [FinishCommand("c1", "resync", CommandOutcome.DONE)]


NEW_FEE = Money.of(175000, "SYP")
CHANGED = Catalogue(services=(dataclasses.replace(CATALOGUE.services[0], fee=NEW_FEE),) + CATALOGUE.services[1:],
                    version="v2")


def test_a_fee_changed_at_central_is_the_fee_confirmed_and_charged_at_the_next_session():
    k = verified()
    # Central announces another catalogue while a citizen is served: fetched only once they are gone.
    assert fx.LoadCatalogue() not in k.send(VersionsAnnounced(catalogue="v2"))
    assert fx.LoadCatalogue() in k.send(ev.CardRemoved())
    k.send(ev.CatalogueLoaded(CHANGED))
    k.send(ev.LanguageChosen("ar"))
    k.send(ev.CardInserted())
    k.send(ev.CardConnected(k.last(fx.ConnectCard).session_id, ConnectResult.CONNECTED))
    auth = type_pin(k, "1234")[0]
    k.send(ev.CardAuthenticated(auth.session_id, CardReadResult(CardVerdict.VALID, 9, identity=IDENTITY)))
    k.send(ev.ShowServices())
    k.send(ev.ServiceChosen("civil-status-extract"))
    view = k.session.view()
    assert view.step is Step.CONFIRM and view.selected.fee == NEW_FEE      # what the confirm screen shows
    (eligibility,) = k.send(ev.Pay())
    assert eligibility.fee == NEW_FEE and eligibility.catalogue_version == "v2"
    (check,) = k.send(ev.EligibilityChecked(eligibility.txn_id, True, NEW_FEE, "v2", presence_id="p"))
    k.send(ev.PrinterChecked(check.txn_id, ready=True))
    (charge,) = k.send(ev.TerminalChecked(check.txn_id, TerminalState.READY))
    assert charge.amount == NEW_FEE


def test_a_version_already_shown_fetches_nothing():
    k = started()
    assert k.send(VersionsAnnounced(catalogue=CATALOGUE.version)) == []
    k.send(AnnouncementsLoaded(None, "a1"))
    assert k.send(VersionsAnnounced(catalogue=CATALOGUE.version, announcements="a1")) == []
    assert k.send(VersionsAnnounced(announcements="a2")) == [fx.LoadCatalogue()]   # they come with it


def test_the_announcement_is_in_the_view():
    k = started()
    announcement = Announcement("a1", {"ar": "مغلق يوم الجمعة", "en": "Closed on Friday"}, "", "2026-11-29T10:00:00Z",
                                None)
    k.send(AnnouncementsLoaded(announcement, "v1"))
    assert k.session.view().announcement is announcement
    k.send(AnnouncementsLoaded(None, "v2"))
    assert k.session.view().announcement is None


def test_pay_after_a_command_taken_mid_session_still_charges_the_fee_shown():
    k = verified()
    taken(k, CommandAction.RESYNC)
    check = prepared(k)
    assert k.step is Step.PREPARING
    (terminal,) = k.send(ev.PrinterChecked(check.txn_id, ready=True))
    (charge,) = k.send(ev.TerminalChecked(check.txn_id, TerminalState.READY))
    assert charge.amount == FEE and not any(isinstance(e, RunCommand) for e in k.effects)
    out = finish_paid_session(k, charge)
    assert RunCommand(command(CommandAction.RESYNC)) in out
