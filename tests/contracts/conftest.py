"""Worlds for the contract tests: each port's implementations, and a way to change their world.

A contract test asks a world for what it needs (a valid card with PIN 1234
in the reader, a printer out of paper, a declined bank card next) and then
uses the port alone. Every world fixture is parametrized over the in-process
fake and the real driver on the real stack (marked `realstack`):

* card reader: PyscardCardReader -> pcscd -> vpcd -> a SimulatedCard in a
  VirtualCardSlot, on the vpcd slot shared with other test runs (a world
  waits for the slot to be free, and for vpcd to take its card);
* receipt printer: EscposReceiptPrinter over TCP to a PrinterSimulator;
* payment terminal: NexoPaymentTerminal over loopback TCP to a
  TerminalSimulator (not `realstack`: it shares nothing with other runs).

Worlds wait on events (pcscd's reader state, vpcd asking for the card),
never on sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import CardOutcome, FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk.ports.card_reader import CardReader, CardVerdict, Identity
from kiosk.ports.payment_terminal import PaymentTerminal
from kiosk.ports.receipt_printer import PrinterStatus, ReceiptPrinter

CITIZENS_FILE = Path(__file__).resolve().parents[1] / "drivers" / "citizens.json"
NATIONAL_NUMBER = "01020304050"
PIN = "1234"
READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
SLOT_FREE_TIMEOUT_S = 60.0       # another test run may be using the shared slot
APDU_TIMEOUT_S = 1.0
STATUS_QUERIES = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"   # what the ESC/POS driver asks before a job

FAKE = "fake"
REAL = pytest.param("real", marks=pytest.mark.realstack)


@pytest.fixture(scope="session")
def citizen() -> dict[str, Any]:
    """A citizen record with Latin names and every optional field."""
    from drivers.card_sim.registry import load_citizens
    return load_citizens(CITIZENS_FILE)[NATIONAL_NUMBER]


# --- the card reader ---------------------------------------------------------------------------

class CardWorld:
    """A reader and the hand that puts cards into it.

    `insert` returns once the card is in the reader as far as the reader's
    host can tell (for the real stack: vpcd took the card and pcscd reports
    it), not once the driver has reported it: that is for the test to see.
    `verdict` picks the card: VALID, FORGED, CLONED, or EXPIRED (an
    authentic card that expired 30 days ago); every card is of profile 1.1
    (D1, the digest of its photo, signed by the issuer). `photo_swapped`
    makes a genuine card whose photo was replaced after issue.
    `issuer_keys` are the keys the reader trusts, for checking its proofs.
    """

    reader: CardReader
    national_number: str
    issuer_keys: Any

    def insert(self, verdict: CardVerdict = CardVerdict.VALID, *, pin: str = PIN,
               photo_swapped: bool = False) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.reader.unwatch()
        self.reader.disconnect()


class FakeCardWorld(CardWorld):
    def __init__(self, citizen: dict[str, Any], issuer: Any, issuer_keys: Any) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from drivers.card_sim.card import identity_from_record
        from drivers.card_sim.portrait import portrait_jpeg

        self.reader = FakeCardReader()
        self.national_number = citizen["national_number"]
        self.issuer_keys = issuer_keys
        self._issuer = issuer
        self._identity = identity_from_record(citizen, ec.generate_private_key(ec.SECP256R1()).public_key(), issuer)
        self._photo = portrait_jpeg(self._identity.card_number, self._identity.sex)
        self._other_photo = portrait_jpeg(self._identity.card_number + "/swapped", self._identity.sex)

    def insert(self, verdict: CardVerdict = CardVerdict.VALID, *, pin: str = PIN,
               photo_swapped: bool = False) -> None:
        identity: Identity = self._identity
        if verdict is CardVerdict.EXPIRED:      # as the simulator's expired card: authentic, 30 days past
            identity = dataclasses.replace(identity, date_of_expiry=dt.date.today() - dt.timedelta(days=30))
            verdict = CardVerdict.VALID
        card = FakeCard.issued(identity, self._issuer, photo=self._photo, pin=pin, verdict=verdict)
        if photo_swapped:
            card.photo = self._other_photo      # after the issuer signed D1
        self.reader.insert(card)

    def remove(self) -> None:
        self.reader.remove()


class RealCardWorld(CardWorld):
    def __init__(self, citizen: dict[str, Any], make_card: Callable[..., Any], trust_store: Any) -> None:
        from drivers.card_sim.slot import VirtualCardSlot
        from drivers.pyscard_reader import PyscardCardReader

        self.national_number = citizen["national_number"]
        self.issuer_keys = trust_store
        self._citizen = citizen
        self._make_card = make_card
        self._slot = VirtualCardSlot(port=VPCD_PORT)
        self._holding = False
        self.reader = PyscardCardReader(trust_store, reader_name=READER, apdu_timeout_s=APDU_TIMEOUT_S)

    def insert(self, verdict: CardVerdict = CardVerdict.VALID, *, pin: str = PIN,
               photo_swapped: bool = False) -> None:
        from drivers.card_sim.card import CardProfile
        from tests.drivers.conftest import Attended, wait_for_reader_state

        profile = {CardVerdict.VALID: CardProfile.VALID, CardVerdict.FORGED: CardProfile.FORGED,
                   CardVerdict.CLONED: CardProfile.CLONED, CardVerdict.EXPIRED: CardProfile.EXPIRED}[verdict]
        if photo_swapped:
            if verdict is not CardVerdict.VALID:
                raise ValueError("the simulator swaps the photo of a genuine card only")
            profile = CardProfile.SWAPPED_PHOTO
        card = Attended(self._make_card(self._citizen, profile=profile, pin=pin))
        self._slot.insert(card)
        self._holding = True
        assert card.reached.wait(SLOT_FREE_TIMEOUT_S), "vpcd never took the card (slot busy? rerun)"
        assert wait_for_reader_state(READER, present=True), "pcscd saw no card"

    def remove(self) -> None:
        from tests.drivers.conftest import wait_for_reader_state

        self._slot.remove()
        self._holding = False
        assert wait_for_reader_state(READER, present=False), "the card did not leave the reader"

    def close(self) -> None:
        from tests.drivers.conftest import wait_for_reader_state

        super().close()
        if self._holding:
            self._slot.remove()         # our card is out once its link is closed; another
            wait_for_reader_state(READER, present=False)   # run's card may follow at once


@pytest.fixture(scope="session")
def trust_store(issuer: Any) -> Any:
    from kiosk.issuer_keys import TrustStore
    return TrustStore([issuer.public_key])


@pytest.fixture(params=[FAKE, REAL])
def card_world(request: pytest.FixtureRequest, citizen: dict[str, Any], issuer: Any) -> Iterator[CardWorld]:
    if request.param == FAKE:
        world: CardWorld = FakeCardWorld(citizen, issuer, request.getfixturevalue("trust_store"))
    else:
        from tests.drivers.conftest import wait_for_reader_state

        request.getfixturevalue("pcscd")
        if not wait_for_reader_state(READER, present=False, timeout=SLOT_FREE_TIMEOUT_S):
            pytest.fail("another card stays in %s (is `kiosk-sim card serve` running?)" % READER)
        world = RealCardWorld(citizen, request.getfixturevalue("make_card"), request.getfixturevalue("trust_store"))
    yield world
    world.close()


# --- the receipt printer ---------------------------------------------------------------------------

class PrinterWorld:
    """A printer, and the hand that loads paper, opens the cover and pulls the cable."""

    printer: ReceiptPrinter

    def set_status(self, status: PrinterStatus) -> None:
        raise NotImplementedError

    def paper_runs_out_in_next_job(self) -> None:
        """The roll ends in the middle of the next job."""
        raise NotImplementedError

    def printed(self) -> int:
        """How many jobs came out whole."""
        raise NotImplementedError


class FakePrinterWorld(PrinterWorld):
    def __init__(self) -> None:
        self.printer = self.fake = FakeReceiptPrinter()

    def set_status(self, status: PrinterStatus) -> None:
        self.fake.set_status(status)

    def paper_runs_out_in_next_job(self) -> None:
        self.fake.run_out_of_paper_after(0)

    def printed(self) -> int:
        return len(self.fake.jobs)


class RealPrinterWorld(PrinterWorld):
    def __init__(self, simulator: Any) -> None:
        from drivers.escpos_printer import EscposReceiptPrinter

        self.simulator = simulator
        self.printer = EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=5.0)

    def set_status(self, status: PrinterStatus) -> None:
        from drivers.printer_sim.server import PaperLevel

        if status is PrinterStatus.UNKNOWN:
            raise ValueError("the printer simulator cannot be made to say UNKNOWN")
        paper = {PrinterStatus.PAPER_NEAR_END: PaperLevel.NEAR_END, PrinterStatus.NO_PAPER: PaperLevel.OUT}
        self.simulator.set_paper(paper.get(status, PaperLevel.OK))
        self.simulator.set_cover_open(status is PrinterStatus.COVER_OPEN)
        self.simulator.set_offline(status is PrinterStatus.DISCONNECTED)

    def paper_runs_out_in_next_job(self) -> None:
        # A thousand bytes into the job: inside the first raster block.
        self.simulator.run_out_of_paper_after(len(STATUS_QUERIES) + 1000)

    def printed(self) -> int:
        return sum(1 for job in self.simulator.jobs if job.complete)


@pytest.fixture(params=[FAKE, REAL])
def printer_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrinterWorld]:
    if request.param == FAKE:
        yield FakePrinterWorld()
        return
    from drivers.printer_sim.server import PrinterSimulator

    with PrinterSimulator(tmp_path / "printed") as simulator:
        yield RealPrinterWorld(simulator)


# --- the payment terminal ------------------------------------------------------------------------------

class PaymentFault(enum.Enum):
    """What can go wrong with the terminal rather than with the citizen's card."""

    BUSY = "busy"                  # busy with something else: takes no sale, gives nothing back
    OFFLINE = "offline"            # cannot be reached: takes no sale, gives nothing back, cannot tell
    ANSWER_LOST = "answer_lost"    # the next sale goes through but its answer is lost (one sale)
    CUTOFF = "cutoff"              # the day's batch closes now: earlier sales are given back by refund


@dataclass(frozen=True)
class StatementLine:
    """One sale as the terminal's acquirer holds it."""

    sale_id: str
    payment_id: str | None
    status: str                 # "approved", "declined" or "failed"
    amount_minor: int
    given_back: str             # "" (not given back), "reversal" or "refund"


class PaymentWorld:
    """A payment terminal, the citizen at it, and the acquirer behind it.

    A world takes `CardOutcome` (drivers.fakes.payment_terminal) for what
    the next sale meets, whatever its method, and `PaymentFault` for the
    terminal's own trouble. Anything else a test does goes through the port
    (`terminal`) alone. A world for another driver implements these four
    methods and `close`, and joins the `payment_world` fixture's params.
    """

    terminal: PaymentTerminal

    def present(self, outcome: CardOutcome) -> None:
        """The next new sale meets this card (or wallet payer); then approvals again."""
        raise NotImplementedError

    def fault(self, fault: PaymentFault, active: bool = True) -> None:
        """Start (or, with `active=False`, end) BUSY or OFFLINE; ANSWER_LOST and CUTOFF happen once."""
        raise NotImplementedError

    def statement(self) -> list[StatementLine]:
        """Every sale the terminal took, oldest first."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class FakePaymentWorld(PaymentWorld):
    def __init__(self) -> None:
        self.terminal = self.fake = FakePaymentTerminal()

    def present(self, outcome: CardOutcome) -> None:
        self.fake.script(outcome)

    def fault(self, fault: PaymentFault, active: bool = True) -> None:
        match fault:
            case PaymentFault.BUSY:
                self.fake.set_busy(active)
            case PaymentFault.OFFLINE:
                self.fake.set_online(not active)
            case PaymentFault.ANSWER_LOST:
                self.fake.lose_next_answer()
            case PaymentFault.CUTOFF:
                self.fake.cut_off()

    def statement(self) -> list[StatementLine]:
        return [StatementLine(s.sale_id, s.payment_id, s.status.value, s.amount.amount_minor,
                              s.reversals[0].kind.value if s.reversals else "")
                for s in self.fake.statement]

    def close(self) -> None:
        self.fake.abort()                 # a sale a failed test left waiting


class NexoPaymentWorld(PaymentWorld):
    """NexoPaymentTerminal over loopback TCP to a TerminalSimulator, whose citizen presents an
    approving card (or pays the wallet) at once unless a test presents another."""

    def __init__(self) -> None:
        from drivers.nexo_terminal import NexoPaymentTerminal
        from drivers.terminal_sim.simulator import TerminalSimulator

        self.simulator = TerminalSimulator(auto_present="approve", auto_present_delay_s=0.0).start()
        self.terminal = NexoPaymentTerminal("127.0.0.1", self.simulator.nexo_port, sale_system_id="contract-kiosk",
                                            poi_id=self.simulator.poi_id, timeout_s=10.0, answer_timeout_s=5.0)

    def present(self, outcome: CardOutcome) -> None:
        self.simulator.present(outcome.value.replace("_", "-"))     # the simulator's card names

    def fault(self, fault: PaymentFault, active: bool = True) -> None:
        match fault:
            case PaymentFault.BUSY:
                self.simulator.fault("busy" if active else "clear")
            case PaymentFault.OFFLINE:
                self.simulator.set_offline(active)
            case PaymentFault.ANSWER_LOST:
                self.simulator.fault("drop-answer")
            case PaymentFault.CUTOFF:
                self.simulator.cutoff()

    def statement(self) -> list[StatementLine]:
        return [StatementLine(p["sale_id"], p["payment_id"] if p["status"] == "approved" else None, p["status"],
                              p["amount_minor"], p["given_back"]) for p in self.simulator.statement()["payments"]]

    def close(self) -> None:
        self.terminal.abort()             # a sale a failed test left waiting
        self.simulator.stop()


NEXO = "nexo"       # loopback TCP only: not the shared real stack


@pytest.fixture(params=[FAKE, NEXO])
def payment_world(request: pytest.FixtureRequest) -> Iterator[PaymentWorld]:
    world: PaymentWorld = FakePaymentWorld() if request.param == FAKE else NexoPaymentWorld()
    yield world
    world.close()
