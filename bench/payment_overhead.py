"""The kiosk's own time around a payment: what it adds to the terminal's and the bank's.

    pay -> terminal asked      from the citizen's "pay" touch to the terminal asked for the sale:
                               central's pre-check, the printer's and the terminal's checks (each
                               answered at once here), and the journal's entry written to disk
    answer -> request queued   from the terminal's approval to the certificate request kept in the
                               outbox: the approval and the request journalled, the request stored

Central, the devices and the terminal are the in-process fakes, answering at once, so that what is
timed is the kiosk alone: the session, the runtime's workers and their hand-offs, and the state
database on disk (WAL, synchronous FULL: one fsync per fact). The goal is under 20 ms each; a
card payment itself takes about 3.7 s at the median from card in to approval.
"""

from __future__ import annotations

import os
import queue
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from drivers.card_sim.issuer import IssuerKey
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import events as ev
from kiosk.catalogue import Catalogue, Service
from kiosk.documents import IssuedDocument
from kiosk.messages import MessageKind
from kiosk.money import Money
from kiosk.ports.card_reader import Identity
from kiosk.ports.central import Central, Challenge, Eligibility, EligibilityAnswer
from kiosk.runtime import Devices, Runtime
from kiosk.session import Session, Step
from offline.database import StateDatabase
from offline.delivery import DurableOutbox, void_sender
from offline.journal import SqliteJournal
from offline.outbox import Outbox
from offline.reconciler import Reconciler

GOAL_MS = 20.0
ISSUER = IssuerKey.generate()
FEE = Money.of(150000, "SYP")
SERVICE = Service("civil-status-extract", {"ar": "إخراج قيد مدني", "en": "Civil-status extract"}, FEE)
IDENTITY = Identity(
    card_number="SY0000000001", national_number="00000000001", given_name_ar="اختبار",
    family_name_ar="اختبار", given_name_latin="Bench", family_name_latin="Citizen",
    date_of_birth=date(1990, 1, 1), date_of_expiry=date(2031, 1, 1),
    issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91,
)


class InstantCentral(Central):
    def fetch_catalogue(self) -> Catalogue:
        return Catalogue(services=(SERVICE,), version="bench")

    def challenge(self) -> Challenge:
        return Challenge("ch-bench", os.urandom(32))

    def check_eligibility(self, *, service_code, challenge, proof, fee, catalogue_version):
        return EligibilityAnswer(Eligibility.ELIGIBLE, FEE, "bench", presence_id=challenge.challenge_id)

    def deliver(self, kind, payload):
        return {"status": "issued", "document": IssuedDocument(
            request_id=payload["request_id"], serial="2026-BENCH", service_code=SERVICE.code,
            title=dict(SERVICE.names), fields=(), issued_at="2026-11-29T10:00:00Z",
            verification="KSK1.x.y").to_json()}


class Stopwatch:
    """The moments a run goes through, stamped on whichever thread reaches them."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.queued = threading.Event()

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())


def _one(workdir: Path, index: int) -> tuple[float, float]:
    """One journey to the certificate request queued; (pay -> asked, answer -> queued) in ms."""
    watch = Stopwatch()
    terminal = FakePaymentTerminal()
    pay = terminal.pay

    def timed_pay(*args, **kwargs):
        watch.mark("asked")
        outcome = pay(*args, **kwargs)
        watch.mark("answered")
        return outcome
    terminal.pay = timed_pay                                       # type: ignore[method-assign]

    database = StateDatabase(workdir / ("state-%d.sqlite3" % index))
    central = InstantCentral()
    outbox = DurableOutbox(Outbox(database), central.deliver)
    send = outbox.send

    def timed_send(kind, message_id, payload):
        kept = send(kind, message_id, payload)
        if kind is MessageKind.CERTIFICATE_REQUEST:
            watch.mark("queued")
            watch.queued.set()
        return kept
    outbox.send = timed_send                                       # type: ignore[method-assign]

    journal = SqliteJournal(database)
    reconciler = Reconciler(journal, terminal, void_sender(outbox), run_id="bench", alert=lambda _kind: None)
    posted: queue.Queue = queue.Queue()
    reader = FakeCardReader()
    runtime = Runtime(Session(device_id="bench"), Devices(reader, terminal, FakeReceiptPrinter()), central,
                      outbox, journal, reconciler, post=posted.put, run_id="bench")

    def run_until(done) -> None:
        while not done():
            posted.get(timeout=10)()

    runtime.start()
    try:
        run_until(lambda: runtime.session.step is Step.ATTRACT)
        runtime.dispatch(ev.LanguageChosen("en"))
        reader.insert(FakeCard.issued(IDENTITY, ISSUER))      # it signs central's challenge, as a card does
        run_until(lambda: runtime.session.step is Step.PIN_ENTRY)
        for digit in "1234":
            runtime.dispatch(ev.PinDigit(digit))
        runtime.dispatch(ev.PinSubmit())
        run_until(lambda: runtime.session.step is Step.IDENTITY)
        runtime.dispatch(ev.ShowServices())
        runtime.dispatch(ev.ServiceChosen(SERVICE.code))
        watch.mark("pay")
        runtime.dispatch(ev.Pay())
        run_until(watch.queued.is_set)
    finally:
        runtime.stop()
        database.close()
    m = watch.marks
    return (m["asked"] - m["pay"]) * 1000, (m["queued"] - m["answered"]) * 1000


def run(runs: int = 30) -> dict:
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-payment-") as scratch:
        times = [_one(Path(scratch), i) for i in range(runs)]
    to_terminal = [t[0] for t in times]
    to_queue = [t[1] for t in times]
    return {"runs": runs,
            "pay_to_terminal_ms": (statistics.median(to_terminal), _p95(to_terminal)),
            "answer_to_queued_ms": (statistics.median(to_queue), _p95(to_queue))}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def report(figures: dict) -> str:
    lines = ["the kiosk's own time around a payment, %d journeys on the fakes, state on disk (goal: under %g ms)"
             % (figures["runs"], GOAL_MS)]
    for label, key in (("pay -> terminal asked", "pay_to_terminal_ms"),
                       ("answer -> request queued", "answer_to_queued_ms")):
        median, p95 = figures[key]
        lines.append("  %-26s median %6.2f ms   p95 %6.2f ms   %s" % (label, median, p95,
                                                                     "ok" if p95 < GOAL_MS else "over"))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
