"""The runtime on the real stack without a screen: what happens to the money
when a device fails after the citizen has paid.

The test thread plays Kivy's part: every result the workers post is run
here, one at a time, as the app's Clock would run it.
"""

import queue

import pytest

from kiosk import config as kiosk_config
from kiosk import events as ev
from kiosk.app import build_runtime
from drivers.demo.stack import DEMO_PIN, ID_READER, DemoStack
from drivers.printer_sim.server import PaperLevel
from kiosk.ports.journal import TxnState
from kiosk.session import PRINTER_RECHECK_S, Reason, Step
from tests.drivers.conftest import wait_for_reader_state
from tests.posted_results import run_until

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

WAIT_S = 30


class Kiosk:
    def __init__(self, stack: DemoStack) -> None:
        self.stack = stack
        self.posted: queue.Queue = queue.Queue()
        self.config = kiosk_config.load(stack.config_path)
        self.runtime = build_runtime(self.config, self.posted.put)

    @property
    def view(self):
        return self.runtime.session.view()

    def run_until(self, step: Step) -> None:
        """Run posted results on this thread until the session reaches `step`."""
        run_until(self.runtime, self.posted, step, timeout=WAIT_S)

    def pay_for(self, citizen: str, service: str) -> None:
        self.runtime.start()
        self.run_until(Step.ATTRACT)
        self.runtime.dispatch(ev.LanguageChosen("ar"))
        self.stack.insert(citizen)
        self.run_until(Step.PIN_ENTRY)
        for digit in DEMO_PIN:
            self.runtime.dispatch(ev.PinDigit(digit))
        self.runtime.dispatch(ev.PinSubmit())
        self.run_until(Step.IDENTITY)
        self.runtime.dispatch(ev.ShowServices())
        self.runtime.dispatch(ev.ServiceChosen(service))
        self.runtime.dispatch(ev.Pay())

    def settle(self) -> None:
        """Let every effect handed out so far finish, and run what it posted."""
        assert self.runtime.wait_idle(WAIT_S)
        while not self.posted.empty():
            self.posted.get_nowait()()

    def settled(self) -> None:
        """Run the reconciler here until the journal owes nothing more."""
        assert self.runtime.wait_idle(WAIT_S)               # the session's Settle is in the journal
        for _ in range(50):
            if not any(entry.state is TxnState.SETTLING for entry in self.runtime.journal.unfinished()):
                return
            self.runtime.reconciler.reconcile_once()
        pytest.fail("the journal still owes %s" % (self.runtime.journal.unfinished(),))

    def outbox_answer(self, kind: str) -> dict:
        """Central's answer to the outbox's one message of `kind`, once the sync worker has delivered it."""
        (message_id,) = self.runtime.outbox.store.message_ids(kind)
        answer = self.runtime.outbox.wait_for_answer(message_id, timeout=WAIT_S)
        assert answer is not None, "%s not delivered" % kind
        return answer


@pytest.fixture
def kiosk(tmp_path, pcscd):
    with DemoStack(tmp_path / "stack") as stack:
        # The reader is shared with the tests before: their card must be out before ours goes in.
        assert wait_for_reader_state(ID_READER, present=False, timeout=60), "another card stays in the reader"
        kiosk = Kiosk(stack)
        yield kiosk
        kiosk.runtime.stop()
    assert wait_for_reader_state(ID_READER, present=False), "the card did not leave the reader"


def statement(stack):
    """The payments the terminal's acquirer holds."""
    return stack.terminal.statement()["payments"]


def printer_fault_mid_certificate(kiosk, fault) -> None:
    """Pay, then `fault` the printer once 4,000 bytes of the certificate are in:
    the kiosk waits for the printer, with the fee kept and the document held."""
    kiosk.pay_for(kiosk.stack.citizen_numbers()[0], "civil-status-extract")
    kiosk.run_until(Step.ISSUING)                    # paid; the certificate comes next
    fault(4000)
    kiosk.run_until(Step.PRINT_WAITING)
    assert not any(job.complete for job in kiosk.stack.printer.jobs)


def printer_back(kiosk) -> None:
    """The session asks the printer again (it does so every few seconds) and reprints."""
    kiosk.runtime.dispatch(ev.Tick(kiosk.runtime.clock() + PRINTER_RECHECK_S))
    kiosk.run_until(Step.TAKE_CARD)
    assert kiosk.view.printed
    jobs = kiosk.stack.printer.wait_for_jobs(2)
    certificate, receipt = [job for job in jobs if job.complete]
    assert [q.data for q in certificate.qr_codes]
    (payment,) = statement(kiosk.stack)
    assert payment["status"] == "approved" and payment["given_back"] == ""
    assert kiosk.runtime.journal.unfinished() == []


def test_paper_out_mid_certificate_is_reprinted_once_the_paper_is_in(kiosk):
    printer_fault_mid_certificate(kiosk, kiosk.stack.printer.run_out_of_paper_after)
    kiosk.stack.printer.set_paper(PaperLevel.OK)
    printer_back(kiosk)


def test_cable_pulled_mid_certificate_is_reprinted_once_it_is_back(kiosk):
    printer_fault_mid_certificate(kiosk, kiosk.stack.printer.pull_cable_after)
    printer_back(kiosk)


def test_printer_power_cycled_mid_certificate_is_reprinted_once_it_is_on(kiosk):
    printer_fault_mid_certificate(kiosk, kiosk.stack.printer.power_off_after)
    kiosk.runtime.dispatch(ev.Tick(kiosk.runtime.clock() + PRINTER_RECHECK_S))
    kiosk.settle()                                   # asked: still off
    assert kiosk.view.step is Step.PRINT_WAITING
    kiosk.stack.printer.set_offline(False)
    kiosk.runtime.dispatch(ev.Tick(kiosk.runtime.clock() + 2 * PRINTER_RECHECK_S))
    printer_back(kiosk)


def test_printer_not_back_in_time_gives_the_fee_back_and_voids_the_document(kiosk):
    printer_fault_mid_certificate(kiosk, kiosk.stack.printer.run_out_of_paper_after)
    kiosk.runtime.dispatch(ev.Tick(kiosk.runtime.clock() + kiosk.config.printer.reprint_window_s))
    kiosk.run_until(Step.FAILED)
    assert kiosk.view.reason is Reason.PRINT_FAILED and kiosk.view.refunded
    kiosk.settled()
    assert kiosk.outbox_answer("void_request")["status"] == "voided"
    (payment,) = statement(kiosk.stack)
    assert payment["given_back"] == "reversal" and payment["amount_minor"] == 150000


@pytest.mark.parametrize("fault", ["drop-answer", "garble"])
def test_lost_payment_answer_is_looked_up_at_the_terminal_and_given_back(kiosk, fault):
    kiosk.stack.terminal.fault(fault)                # the bank approves; no readable answer reaches the kiosk
    kiosk.pay_for(kiosk.stack.citizen_numbers()[0], "birth-certificate")
    kiosk.run_until(Step.FAILED)
    assert kiosk.view.reason is Reason.PAYMENT_FAILED and kiosk.view.refunded
    assert kiosk.stack.printer.jobs == []
    kiosk.settled()
    # The money did move, though its answer was lost; it came back, once, and nothing was charged again.
    (payment,) = statement(kiosk.stack)
    assert payment["status"] == "approved" and payment["given_back"] == "reversal"
