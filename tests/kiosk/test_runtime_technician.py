"""The technician's key, PIN, status and actions carried out by the runtime on the fakes."""

from __future__ import annotations

import logging
import threading

import pytest

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.messages import MessageKind
from kiosk.ports.cabinet import CabinetInput, Light
from kiosk.ports.card_reader import ReaderStatus
from kiosk.ports.outbox import LinkState
from kiosk.ports.payment_terminal import TerminalState
from kiosk.ports.receipt_printer import PrinterStatus, TextBlock
from kiosk.runtime import EFFECTS, Maintenance
from kiosk.session import Reason, Step
from kiosk.technician import RESTART_EXIT_STATUS, TechnicianAction, hash_pin
from tests.kiosk.test_runtime_effects import Kiosk

PIN = "40721953"
PIN_HASH = hash_pin(PIN, log2_n=14)      # the cheapest scrypt a configuration may hold: quick tests


class Device:
    """What the composition root injects: restart and reboot, noted instead of done."""

    def __init__(self) -> None:
        self.exits: list[int] = []
        self.reboots = 0
        self.pauses: list[float] = []

    def reboot(self) -> None:
        self.reboots += 1


@pytest.fixture
def device():
    return Device()


@pytest.fixture
def kiosk(device):
    kiosk = Kiosk()
    kiosk.runtime.maintenance = Maintenance(pin_hash=PIN_HASH, device_id="kiosk-test-01", version="9.8.7",
                                            exit_app=device.exits.append, reboot=device.reboot,
                                            light_step_s=2.0, pause=device.pauses.append, status_timeout_s=2.0)
    yield kiosk
    kiosk.runtime.stop()


def turn_key(kiosk, on=True):
    kiosk.cabinet.work(CabinetInput.MAINTENANCE_ON if on else CabinetInput.MAINTENANCE_OFF)


def type_pin(kiosk, pin):
    for digit in pin:
        kiosk.runtime.dispatch(ev.TechnicianPinDigit(digit))
    kiosk.runtime.dispatch(ev.TechnicianPinSubmit())


def signed_in(kiosk, *, started=False):
    if not started:
        kiosk.start()
    turn_key(kiosk)
    kiosk.run_until(Step.TECHNICIAN_PIN)
    type_pin(kiosk, PIN)
    kiosk.run_until(Step.TECHNICIAN)
    kiosk.settle()
    return kiosk.view.technician_status


def act(kiosk, action):
    kiosk.runtime.dispatch(ev.TechnicianActionChosen(action))
    kiosk.settle()


def test_the_key_the_pin_and_the_status_of_every_device(kiosk):
    status = signed_in(kiosk)
    assert status.reader is ReaderStatus.NO_CARD
    assert status.terminal is TerminalState.READY
    assert status.printer is PrinterStatus.READY
    assert status.light is Light.OUT_OF_SERVICE          # a technician has the kiosk: nobody is served
    assert (status.pending, status.dead) == (0, 0)
    assert status.link in tuple(LinkState)
    assert (status.version, status.device_id) == ("9.8.7", "kiosk-test-01")
    assert kiosk.cabinet.light is Light.OUT_OF_SERVICE
    turn_key(kiosk, on=False)
    kiosk.run_until(Step.ATTRACT)
    assert kiosk.cabinet.light is Light.READY


def test_the_status_shows_a_printer_without_paper_a_terminal_off_line_and_the_queue(kiosk):
    kiosk.printer.set_status(PrinterStatus.NO_PAPER)
    kiosk.payment.set_online(False)
    kiosk.start()
    kiosk.central.online = False                          # the message waits
    kiosk.outbox.send(MessageKind.CERTIFICATE_REQUEST, "req-waiting", {"request_id": "req-waiting"})
    kiosk.outbox.store.put("req-refused", MessageKind.CERTIFICATE_REQUEST.value, {"request_id": "req-refused"})
    kiosk.outbox.store.dead_letter("req-refused", "not_eligible")
    status = signed_in(kiosk, started=True)
    assert status.printer is PrinterStatus.NO_PAPER
    assert status.terminal is TerminalState.UNREACHABLE
    assert (status.pending, status.dead) == (1, 1)
    assert status.last_sync is not None                   # the refusal was central's last answer


def test_a_device_that_does_not_answer_is_shown_unknown_and_the_rest_still_shows(kiosk, monkeypatch):
    release = threading.Event()

    def hangs():
        release.wait(10)
        return PrinterStatus.READY
    monkeypatch.setattr(kiosk.printer, "status", hangs)
    kiosk.start()
    turn_key(kiosk)
    kiosk.run_until(Step.TECHNICIAN_PIN)
    type_pin(kiosk, PIN)
    try:
        while kiosk.view.technician_status is None:      # the results posted, run here as the UI would
            kiosk.posted.get(timeout=10)()
        status = kiosk.view.technician_status
    finally:
        release.set()
    assert status.printer is PrinterStatus.UNKNOWN and status.reader is ReaderStatus.NO_CARD


def test_the_pin_is_checked_on_a_worker_never_on_the_ui_thread_and_never_logged(kiosk, monkeypatch, caplog):
    import kiosk.runtime as runtime_module
    threads = []
    real = runtime_module.check_pin

    def check(pin, pin_hash):
        threads.append(threading.current_thread())
        return real(pin, pin_hash)
    monkeypatch.setattr(runtime_module, "check_pin", check)
    caplog.set_level(logging.DEBUG)
    signed_in(kiosk)
    assert EFFECTS[fx.CheckTechnicianPin].worker
    assert threads and threading.main_thread() not in threads
    assert PIN not in caplog.text and PIN_HASH not in caplog.text
    assert "audit.technician.pin_accepted" in caplog.text


def test_a_wrong_pin_is_refused_and_a_kiosk_without_a_pin_hash_opens_to_no_pin(kiosk):
    kiosk.start()
    turn_key(kiosk)
    kiosk.run_until(Step.TECHNICIAN_PIN)
    type_pin(kiosk, "40721954")
    kiosk.run_until(Step.TECHNICIAN_PIN, technician_tries_left=4, technician_checking=False)
    kiosk.runtime.maintenance = Maintenance()             # `[technician] pin_hash` not set
    type_pin(kiosk, PIN)
    kiosk.run_until(Step.TECHNICIAN_PIN, technician_tries_left=3, technician_checking=False)


def test_the_test_page_goes_through_the_printer_port(kiosk):
    signed_in(kiosk)
    act(kiosk, TechnicianAction.TEST_PRINT)
    kiosk.run_until(Step.TECHNICIAN, technician_outcome="ok")
    (page,) = kiosk.printer.jobs
    lines = [block.text for block in page.blocks if isinstance(block, TextBlock)]
    assert lines[0] == "KIOSK TEST PAGE" and "device   kiosk-test-01" in lines and "software 9.8.7" in lines


def test_a_test_page_without_paper_says_it_failed(kiosk):
    signed_in(kiosk)
    kiosk.printer.set_status(PrinterStatus.NO_PAPER)
    act(kiosk, TechnicianAction.TEST_PRINT)
    kiosk.run_until(Step.TECHNICIAN, technician_outcome="failed")
    assert kiosk.printer.jobs == []


def test_the_light_walk_shows_every_pattern_then_the_kiosks_own(kiosk, device):
    signed_in(kiosk)
    before = len(kiosk.cabinet.lights)
    act(kiosk, TechnicianAction.LIGHT_WALK)
    kiosk.run_until(Step.TECHNICIAN, technician_outcome="ok")
    assert kiosk.cabinet.lights[before:] == tuple(Light) + (Light.OUT_OF_SERVICE,)
    assert device.pauses == [2.0] * len(Light)


def test_restart_exits_with_the_status_systemd_restarts_on(kiosk, device, caplog):
    caplog.set_level(logging.INFO)
    signed_in(kiosk)
    act(kiosk, TechnicianAction.RESTART)
    assert device.exits == [RESTART_EXIT_STATUS] and device.reboots == 0
    assert caplog.text.index("audit.technician.restart") < caplog.text.index("runtime.restart")


def test_reboot_goes_through_the_injected_reboot(kiosk, device):
    signed_in(kiosk)
    act(kiosk, TechnicianAction.REBOOT)
    assert device.reboots == 1 and device.exits == []


def test_without_an_injected_restart_or_reboot_the_action_fails_audited(kiosk, caplog):
    caplog.set_level(logging.INFO)
    signed_in(kiosk)
    kiosk.runtime.maintenance = Maintenance()
    act(kiosk, TechnicianAction.RESTART)
    act(kiosk, TechnicianAction.REBOOT)
    assert "audit.technician.restart detail=failed" in caplog.text
    assert "audit.technician.reboot detail=failed" in caplog.text


def test_taken_out_of_service_the_light_and_the_screen_say_so_until_put_back(kiosk):
    signed_in(kiosk)
    act(kiosk, TechnicianAction.OUT_OF_SERVICE)
    turn_key(kiosk, on=False)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.TECHNICIAN)
    assert kiosk.cabinet.light is Light.OUT_OF_SERVICE
    kiosk.advance(120)                                    # the catalogue comes again: still out of service
    kiosk.settle()
    assert kiosk.view.step is Step.OUT_OF_SERVICE
    turn_key(kiosk)
    kiosk.run_until(Step.TECHNICIAN_PIN)
    type_pin(kiosk, PIN)
    kiosk.run_until(Step.TECHNICIAN)
    act(kiosk, TechnicianAction.BACK_IN_SERVICE)
    turn_key(kiosk, on=False)
    kiosk.run_until(Step.ATTRACT)
    assert kiosk.cabinet.light is Light.READY


def test_the_key_turned_during_a_payment_waits_for_the_document(kiosk):
    kiosk.start()
    kiosk.pay()
    turn_key(kiosk)
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    kiosk.card.remove()
    kiosk.run_until(Step.TECHNICIAN_PIN)
    assert len(kiosk.printer.jobs) == 2                   # the certificate and its receipt


# ---------------------------------------------------------------- the lockout kept across a restart


class Clocks:
    """The wall clock the runtime keeps the lockout's end in, moved by the test with the session's."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0


def kept_on_disk(kiosk, device, clocks):
    """`kiosk` with its technician lockout kept in its state database, on the test's wall clock."""
    from offline.technician_lockout import SqliteTechnicianLockout
    kiosk.runtime.lockout = SqliteTechnicianLockout(kiosk.database)
    kiosk.runtime._wall = lambda: clocks.wall
    kiosk.runtime.maintenance = Maintenance(pin_hash=PIN_HASH, exit_app=device.exits.append, reboot=device.reboot)
    return kiosk


def at_the_pin(kiosk):
    kiosk.start()
    turn_key(kiosk)
    kiosk.run_until(Step.TECHNICIAN_PIN)


def wrong_pins(kiosk, count):
    for _ in range(count):
        type_pin(kiosk, "40721954")
        kiosk.run_until(Step.TECHNICIAN_PIN, technician_checking=False)
    kiosk.settle()                                        # what was kept is on the disk


def power_cycle(kiosk, device, clocks, seconds_off):
    """The power cut, `seconds_off` with the kiosk off, and the next run (its monotonic clock anew)."""
    kiosk.runtime.stop()
    clocks.wall += seconds_off
    return kept_on_disk(kiosk.restarted(), device, clocks)


def later(kiosk, clocks, seconds):
    clocks.wall += seconds
    kiosk.advance(seconds)


def test_wrong_tries_outlast_a_restart(device):
    clocks = Clocks()
    first = kept_on_disk(Kiosk(), device, clocks)
    at_the_pin(first)
    wrong_pins(first, 3)
    assert first.view.technician_tries_left == 2
    kiosk = power_cycle(first, device, clocks, 60)
    try:
        at_the_pin(kiosk)
        assert kiosk.view.technician_tries_left == 2      # not 5 again
        wrong_pins(kiosk, 2)
        assert kiosk.view.technician_locked_s == 300
    finally:
        kiosk.runtime.stop()


def test_a_lockout_outlasts_a_restart_and_then_the_tries_count_from_zero(device, caplog):
    caplog.set_level(logging.INFO)
    clocks = Clocks()
    first = kept_on_disk(Kiosk(), device, clocks)
    at_the_pin(first)
    wrong_pins(first, 5)
    assert first.view.technician_locked_s == 300
    kiosk = power_cycle(first, device, clocks, 100)
    try:
        at_the_pin(kiosk)
        assert kiosk.view.technician_locked_s == 200      # still locked out: what was left of it
        type_pin(kiosk, PIN)                              # even the right PIN is not taken
        kiosk.settle()
        assert kiosk.view.step is Step.TECHNICIAN_PIN and "audit.technician.pin_locked_out" in caplog.text
        later(kiosk, clocks, 200)
        assert kiosk.view.technician_locked_s is None
        type_pin(kiosk, "40721954")
        kiosk.run_until(Step.TECHNICIAN_PIN, technician_tries_left=4, technician_checking=False)
    finally:
        kiosk.runtime.stop()


def test_a_lockout_over_while_the_kiosk_was_off_is_over(device):
    clocks = Clocks()
    first = kept_on_disk(Kiosk(), device, clocks)
    at_the_pin(first)
    wrong_pins(first, 5)
    kiosk = power_cycle(first, device, clocks, 301)
    try:
        at_the_pin(kiosk)
        assert (kiosk.view.technician_locked_s, kiosk.view.technician_tries_left) == (None, None)
        type_pin(kiosk, PIN)
        kiosk.run_until(Step.TECHNICIAN)
    finally:
        kiosk.runtime.stop()


def test_the_right_pin_clears_what_was_kept(device):
    clocks = Clocks()
    first = kept_on_disk(Kiosk(), device, clocks)
    at_the_pin(first)
    wrong_pins(first, 4)
    type_pin(first, PIN)
    first.run_until(Step.TECHNICIAN)
    first.settle()
    kiosk = power_cycle(first, device, clocks, 10)
    try:
        at_the_pin(kiosk)
        assert kiosk.view.technician_tries_left is None
        type_pin(kiosk, "40721954")
        kiosk.run_until(Step.TECHNICIAN_PIN, technician_tries_left=4, technician_checking=False)
    finally:
        kiosk.runtime.stop()


def test_a_wall_clock_set_back_never_stretches_the_lockout(device):
    clocks = Clocks()
    first = kept_on_disk(Kiosk(), device, clocks)
    at_the_pin(first)
    wrong_pins(first, 5)
    kiosk = power_cycle(first, device, clocks, -86_400)   # the wall clock a day behind at the next boot
    try:
        at_the_pin(kiosk)
        assert kiosk.view.technician_locked_s == 300      # one whole lockout, not a day and five minutes
    finally:
        kiosk.runtime.stop()


def test_the_lockout_is_kept_on_a_worker_never_on_the_ui_thread(device):
    clocks = Clocks()
    kiosk = kept_on_disk(Kiosk(), device, clocks)
    threads = []
    real = kiosk.runtime.lockout.save

    def save(tries, locked_until):
        threads.append(threading.current_thread())
        real(tries, locked_until)
    kiosk.runtime.lockout.save = save
    try:
        at_the_pin(kiosk)
        wrong_pins(kiosk, 1)
        assert EFFECTS[fx.SaveTechnicianLockout].worker
        assert threads and threading.main_thread() not in threads
        assert kiosk.runtime.lockout.load().tries == 1
    finally:
        kiosk.runtime.stop()
