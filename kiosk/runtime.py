"""Runs a session: feeds it events, carries out its effects beside the UI thread.

The session is only ever touched on one thread (Kivy's, in the app), through
`dispatch`. Effects that block (a card, the network, the printer) run on
worker threads, one per device so that each device sees one caller at a time,
and their results come back as events through `post`, which schedules a call
on the session's thread (Kivy's Clock in the app, a queue in tests).

A worker that fails in an unexpected way still answers: with the event that
keeps the citizen and the money safe (an unreadable card, a payment whose
answer was lost, a document that did not print).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Callable

from kiosk.ports.card_reader import (
    CardEvent,
    CardReader,
    CardReadResult,
    CardVerdict,
    ConnectResult,
)
from kiosk.ports.payment_terminal import (
    PaymentOutcome,
    PaymentStatus,
    PaymentTerminal,
    RefundStatus,
)
from kiosk.ports.receipt_printer import (
    PrinterStatus,
    PrintOutcome,
    PrintResult,
    ReceiptPrinter,
)
from kiosk import effects as fx
from kiosk import events as ev
from kiosk.central_client import CentralClient, Eligibility
from kiosk.document_layout import render_certificate, render_receipt
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError, QueueError
from kiosk.money import Money
from kiosk.session import Session, View
from offline.outbox import Outbox
from offline.sync import SyncWorker

log = logging.getLogger(__name__)

READY_STATUSES = (PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END)
# One thread per party, so that each sees one caller at a time and a slow one
# (central, while a document is awaited) holds up nobody else.
WORKERS = ("card", "payment", "central", "outbox", "printer")


@dataclass
class Devices:
    card_reader: CardReader
    payment: PaymentTerminal
    printer: ReceiptPrinter


class Runtime:
    def __init__(
        self,
        session: Session,
        devices: Devices,
        central: CentralClient,
        outbox: Outbox,
        sync: SyncWorker,
        *,
        post: Callable[[Callable[[], None]], None],
        document_timeout_s: float = 30.0,
        today: Callable[[], date] = date.today,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.devices = devices
        self.central = central
        self.outbox = outbox
        self.sync = sync
        self._post = post
        self._document_timeout_s = document_timeout_s
        self._today = today
        self.clock = clock
        self._listeners: list[Callable[[View], None]] = []
        self._shown: View | None = None
        self._workers = {
            name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
            for name in WORKERS
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.sync.start()
        self.devices.card_reader.watch(self._on_card_event)
        self.dispatch(ev.Start(self.clock()))

    def stop(self) -> None:
        self.devices.card_reader.unwatch()
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
        self.sync.stop()

    def listen(self, on_view: Callable[[View], None]) -> None:
        self._listeners.append(on_view)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every effect handed out so far has been carried out."""
        done = [worker.submit(lambda: None) for worker in self._workers.values()]
        deadline = time.monotonic() + timeout
        try:
            for marker in done:
                marker.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ events

    def dispatch(self, event: ev.Event) -> None:
        """Hand an event to the session; call on the session's thread only."""
        for effect in self.session.handle(event):
            self._carry_out(effect)
        view = self.session.view()
        if view != self._shown:          # most ticks and touches change nothing on screen
            self._shown = view
            for listener in self._listeners:
                listener(view)

    def tick(self) -> None:
        self.dispatch(ev.Tick(self.clock()))

    def touched(self) -> None:
        self.dispatch(ev.Touched(self.clock()))

    def _report(self, event: ev.Event) -> None:
        """From a worker thread: deliver a result to the session's thread."""
        self._post(lambda: self.dispatch(event))

    def _on_card_event(self, event: CardEvent) -> None:
        self._report({
            CardEvent.INSERTED: ev.CardInserted(),
            CardEvent.REMOVED: ev.CardRemoved(),
            CardEvent.READER_LOST: ev.ReaderLost(),
            CardEvent.READER_FOUND: ev.ReaderFound(),
        }[event])

    # ------------------------------------------------------------ effects

    def _carry_out(self, effect: fx.Effect) -> None:
        if isinstance(effect, fx.Audit):
            log.info("audit.%s detail=%s", effect.event, effect.detail)
            return
        worker, work, fallback = self._plan(effect)
        self._workers[worker].submit(self._run, effect, work, fallback)

    def _run(self, effect: fx.Effect, work: Callable[[], ev.Event | None],
             fallback: Callable[[], ev.Event | None]) -> None:
        try:
            result = work()
        except Exception:
            log.exception("runtime.effect_failed effect=%s", type(effect).__name__)
            result = fallback()
        if result is not None:
            self._report(result)

    def _plan(self, effect: fx.Effect):
        """(worker, work, fallback) for an effect; work and fallback return the result event."""
        reader = self.devices.card_reader
        if isinstance(effect, fx.LoadCatalogue):
            return "central", self._load_catalogue, lambda: ev.CatalogueLoaded(None)
        if isinstance(effect, fx.ConnectCard):
            return ("card", lambda: ev.CardConnected(effect.session_id, reader.connect()),
                    lambda: ev.CardConnected(effect.session_id, ConnectResult.UNREADABLE))
        if isinstance(effect, fx.Authenticate):
            return ("card",
                    lambda: ev.CardAuthenticated(effect.session_id, reader.authenticate(effect.pin, today=self._today())),
                    lambda: ev.CardAuthenticated(effect.session_id, CardReadResult(CardVerdict.UNREADABLE, 0)))
        if isinstance(effect, fx.ReadPhoto):
            return ("card", lambda: ev.PhotoRead(effect.session_id, reader.read_photo()),
                    lambda: ev.PhotoRead(effect.session_id, None))
        if isinstance(effect, fx.ReleaseCard):
            return "card", lambda: reader.disconnect(), lambda: None
        if isinstance(effect, fx.CheckEligibility):
            return ("central", lambda: ev.EligibilityChecked(effect.txn_id, self._eligible(effect)),
                    lambda: ev.EligibilityChecked(effect.txn_id, None))
        if isinstance(effect, fx.CheckPrinter):
            return ("printer",
                    lambda: ev.PrinterChecked(effect.txn_id, self.devices.printer.status() in READY_STATUSES),
                    lambda: ev.PrinterChecked(effect.txn_id, False))
        if isinstance(effect, fx.Charge):
            return ("payment", lambda: ev.PaymentSettled(effect.txn_id, self.devices.payment.charge(
                        effect.amount, charge_id=effect.charge_id, reference=effect.reference)),
                    lambda: ev.PaymentSettled(effect.txn_id, PaymentOutcome(
                        PaymentStatus.UNKNOWN, effect.amount, effect.charge_id)))
        if isinstance(effect, fx.IssueDocument):
            return "central", lambda: self._issue(effect), lambda: ev.DocumentAnswered(effect.txn_id, None)
        if isinstance(effect, fx.PrintDocument):
            return ("printer", lambda: ev.PrintFinished(effect.txn_id, self._print(effect)),
                    lambda: ev.PrintFinished(effect.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.UNKNOWN)))
        if isinstance(effect, fx.Refund):
            return "outbox", lambda: self._queue("refund", effect.refund_id, {
                "payment_id": effect.payment_id, "charge_id": effect.charge_id,
                "amount": effect.amount.to_json(), "refund_id": effect.refund_id,
            }), lambda: None
        if isinstance(effect, fx.VoidDocument):
            return ("outbox", lambda: self._queue("void_request", "void-" + effect.request_id,
                                                 {"request_id": effect.request_id}), lambda: None)
        raise TypeError("no plan for effect %s" % type(effect).__name__)

    def _load_catalogue(self) -> ev.Event:
        try:
            return ev.CatalogueLoaded(self.central.fetch_catalogue())
        except CentralError as exc:
            log.warning("runtime.catalogue_unavailable error=%s", type(exc).__name__)
            return ev.CatalogueLoaded(None)

    def _eligible(self, effect: fx.CheckEligibility) -> bool | None:
        answer = self.central.check_eligibility(service_code=effect.service_code,
                                                national_number=effect.national_number,
                                                card_number=effect.card_number)
        return {Eligibility.ELIGIBLE: True, Eligibility.NOT_ELIGIBLE: False}.get(answer)

    def _queue(self, kind: str, message_id: str, payload: dict) -> None:
        """Into the outbox for the sync worker; when the outbox cannot store it
        (a full disk), one delivery attempt at once, so a refund is not lost
        with the disk."""
        try:
            self.outbox.put(message_id, kind, payload)
        except QueueError as exc:
            log.error("runtime.outbox_unwritable kind=%s id=%s error=%s", kind, message_id, exc)
            if self.sync.deliver_now(message_id, kind, payload) is None:
                log.critical("runtime.unsettled kind=%s id=%s", kind, message_id)
            return
        self.sync.wake()

    def _issue(self, effect: fx.IssueDocument) -> ev.Event:
        self._queue("certificate_request", effect.request_id, {
            "request_id": effect.request_id, "service_code": effect.service_code,
            "national_number": effect.national_number, "card_number": effect.card_number,
            "language": effect.language, "payment_id": effect.payment_id,
        })
        answer = self.sync.wait_for_answer(effect.request_id, timeout=self._document_timeout_s)
        if answer is None:
            log.warning("runtime.document_late request=%s", effect.request_id)
            return ev.DocumentAnswered(effect.txn_id, None)
        if answer.get("status") == "issued":
            return ev.DocumentAnswered(effect.txn_id, IssuedDocument.from_json(answer["document"]))
        log.warning("runtime.document_refused request=%s reason=%s", effect.request_id, answer.get("reason"))
        return ev.DocumentAnswered(effect.txn_id, None, refused=True)

    def _print(self, effect: fx.PrintDocument) -> PrintOutcome:
        printer = self.devices.printer
        outcome = printer.print_job(render_certificate(effect.document, effect.language,
                                                       paper_width=printer.paper_width))
        if outcome.result is not PrintResult.PRINTED:
            return outcome
        receipt = printer.print_job(render_receipt(
            effect.service.name(effect.language), effect.service.fee, effect.payment_id,
            effect.document.serial, effect.document.issued_at, effect.language, paper_width=printer.paper_width))
        if receipt.result is not PrintResult.PRINTED:
            log.warning("runtime.receipt_not_printed status=%s", receipt.status.name)
        return PrintOutcome(PrintResult.PRINTED, receipt.status, outcome.bytes_sent + receipt.bytes_sent)


def make_deliver(central: CentralClient, payment: PaymentTerminal) -> Callable[[str, dict], dict | None]:
    """The sync worker's delivery: refunds to the payment side, the rest to central."""

    def deliver(kind: str, payload: dict) -> dict | None:
        if kind != "refund":
            return central.deliver(kind, payload)
        amount = Money.from_json(payload["amount"])
        payment_id = payload["payment_id"]
        if payment_id is None:
            # The charge's answer was lost: ask again by its id (answered idempotently).
            outcome = payment.charge(amount, charge_id=payload["charge_id"], reference=payload["refund_id"])
            if outcome.status is PaymentStatus.UNKNOWN:
                return None
            if outcome.status is not PaymentStatus.APPROVED:
                return {"status": "nothing_to_refund"}
            payment_id = outcome.payment_id
        refund = payment.refund(payment_id, amount, refund_id=payload["refund_id"])
        return {"status": "refunded"} if refund.status is RefundStatus.REFUNDED else None

    return deliver
