"""Runs a session: feeds it events, carries out its effects beside the UI thread.

The session is only ever touched on one thread (Kivy's, in the app), through
`dispatch`. Effects that block (a card, the network, the printer) run on
worker threads, one per party so that each sees one caller at a time, and
their results come back as events through `post`, which schedules a call on
the session's thread (Kivy's Clock in the app, a queue in tests).

`EFFECTS` below says, for every effect, which worker carries it out, which
method does the work, and which event answers when that work fails in an
unexpected way: the one that keeps the citizen and the money safe (an
unreadable card, a payment whose answer was lost, a document that did not
print).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Generic, TypeVar

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.config import SiteConfig
from kiosk.documents import IssuedDocument
from kiosk.errors import CentralError
from kiosk.messages import MessageKind
from kiosk.ports.cabinet import Cabinet, Light, NoCabinet
from kiosk.ports.central import Central, Eligibility
from kiosk.ports.card_reader import CardEvent, CardReader, CardReadResult, CardVerdict, ConnectResult
from kiosk.ports.outbox import Outbox
from kiosk.ports.payment_terminal import PaymentOutcome, PaymentStatus, PaymentTerminal
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult, ReceiptPrinter
from kiosk.session import Session, Step, View
from kiosk.wire import AnswerStatus

log = logging.getLogger(__name__)

READY_STATUSES = (PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END)

E = TypeVar("E")


@dataclass
class Devices:
    card_reader: CardReader
    payment: PaymentTerminal
    printer: ReceiptPrinter
    cabinet: Cabinet = field(default_factory=NoCabinet)


@dataclass(frozen=True)
class EffectHandler(Generic[E]):
    """How one kind of effect is carried out."""

    worker: str                                        # the party's thread; "" for at once, on the caller's
    work: Callable[[Runtime, E], ev.Event | None]      # blocks; returns the event that answers the effect
    fallback: Callable[[E], ev.Event | None]           # the answer when `work` raised


def _nothing(_effect: object) -> None:
    return None


_CARD_EVENTS = {
    CardEvent.INSERTED: ev.CardInserted(),
    CardEvent.REMOVED: ev.CardRemoved(),
    CardEvent.READER_LOST: ev.ReaderLost(),
    CardEvent.READER_FOUND: ev.ReaderFound(),
}

_LIGHTS = {
    Step.STARTING: Light.OUT_OF_SERVICE,
    Step.OUT_OF_SERVICE: Light.OUT_OF_SERVICE,
    Step.ATTRACT: Light.READY,
    Step.PRINT_WAITING: Light.FAULT,        # a paid document waits for the printer: an attendant may help
}


class Runtime:
    def __init__(
        self,
        session: Session,
        devices: Devices,
        central: Central,
        outbox: Outbox,
        *,
        post: Callable[[Callable[[], None]], None],
        document_timeout_s: float = 30.0,
        site: SiteConfig = SiteConfig(),
        digits: str = "western",
        today: Callable[[], date] = date.today,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.devices = devices
        self.central = central
        self.outbox = outbox
        self._post = post
        self._document_timeout_s = document_timeout_s
        self._site = site
        self._digits = digits
        self._today = today
        self.clock = clock
        self._listeners: list[Callable[[View], None]] = []
        self._shown: View | None = None
        self._light: Light | None = None
        self._stopped = False
        self._workers = {
            name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
            for name in {effect.worker for effect in EFFECTS.values() if effect.worker}
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.outbox.start()
        self.devices.card_reader.watch(self._on_card_event)
        self.dispatch(ev.Start(self.clock()))

    def stop(self) -> None:
        """Stop watching and working; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self.devices.card_reader.unwatch()
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
        self.outbox.stop()
        self.devices.cabinet.show(Light.OFF)

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
            self._show_light(view.step)
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
        self._report(_CARD_EVENTS[event])

    def _show_light(self, step: Step) -> None:
        light = _LIGHTS.get(step, Light.BUSY)
        if light is not self._light:
            self._light = light
            self.devices.cabinet.show(light)

    # ------------------------------------------------------------ effects

    def _carry_out(self, effect: fx.Effect) -> None:
        how = EFFECTS[type(effect)]
        if not how.worker:
            self._run(how, effect)
        else:
            self._workers[how.worker].submit(self._run, how, effect)

    def _run(self, how: EffectHandler[Any], effect: fx.Effect) -> None:
        try:
            result = how.work(self, effect)
        except Exception:
            log.exception("runtime.effect_failed effect=%s", type(effect).__name__)
            result = how.fallback(effect)
        if result is not None:
            self._report(result)

    def _audit(self, effect: fx.Audit) -> None:
        log.info("audit.%s detail=%s", effect.event, effect.detail)

    def _alert(self, effect: fx.Alert) -> None:
        log.warning("alert.%s", effect.kind)

    def _load_catalogue(self, _effect: fx.LoadCatalogue) -> ev.Event:
        try:
            return ev.CatalogueLoaded(self.central.fetch_catalogue())
        except CentralError as exc:
            log.warning("runtime.catalogue_unavailable error=%s", type(exc).__name__)
            return ev.CatalogueLoaded(None)

    def _connect_card(self, effect: fx.ConnectCard) -> ev.Event:
        return ev.CardConnected(effect.session_id, self.devices.card_reader.connect())

    def _authenticate(self, effect: fx.Authenticate) -> ev.Event:
        return ev.CardAuthenticated(effect.session_id,
                                    self.devices.card_reader.authenticate(effect.pin, today=self._today()))

    def _read_photo(self, effect: fx.ReadPhoto) -> ev.Event:
        return ev.PhotoRead(effect.session_id, self.devices.card_reader.read_photo())

    def _release_card(self, _effect: fx.ReleaseCard) -> None:
        self.devices.card_reader.disconnect()

    def _check_eligibility(self, effect: fx.CheckEligibility) -> ev.Event:
        answer = self.central.check_eligibility(service_code=effect.service_code,
                                                national_number=effect.national_number,
                                                card_number=effect.card_number)
        eligible = {Eligibility.ELIGIBLE: True, Eligibility.NOT_ELIGIBLE: False}.get(answer)
        return ev.EligibilityChecked(effect.txn_id, eligible)

    def _check_printer(self, effect: fx.CheckPrinter) -> ev.Event:
        return ev.PrinterChecked(effect.txn_id, self.devices.printer.status() in READY_STATUSES)

    def _charge(self, effect: fx.Charge) -> ev.Event:
        return ev.PaymentSettled(effect.txn_id, self.devices.payment.charge(
            effect.amount, charge_id=effect.charge_id, reference=effect.reference))

    def _issue(self, effect: fx.IssueDocument) -> ev.Event:
        self._send(MessageKind.CERTIFICATE_REQUEST, effect.request_id, {
            "request_id": effect.request_id, "service_code": effect.service_code,
            "national_number": effect.national_number, "card_number": effect.card_number,
            "language": effect.language, "payment_id": effect.payment_id,
            "place": {"ar": self._site.place_ar, "en": self._site.place_en}, "time_zone": self._site.time_zone,
        })
        answer = self.outbox.wait_for_answer(effect.request_id, timeout=self._document_timeout_s)
        if answer is None:
            log.warning("runtime.document_late request=%s", effect.request_id)
            return ev.DocumentAnswered(effect.txn_id, None)
        if answer.get("status") == AnswerStatus.ISSUED:
            return ev.DocumentAnswered(effect.txn_id, IssuedDocument.from_json(answer["document"]))
        log.warning("runtime.document_refused request=%s reason=%s", effect.request_id, answer.get("reason"))
        return ev.DocumentAnswered(effect.txn_id, None, refused=True)

    def _print(self, effect: fx.PrintDocument) -> ev.Event:
        # Laid out here, on the printer's thread: Pillow's drawing and qrcode are not needed to start.
        from kiosk.document_layout import render_certificate, render_receipt

        printer = self.devices.printer
        place = self._site.place(effect.language)
        outcome = printer.print_job(render_certificate(effect.document, effect.language, paper_width=printer.paper_width,
                                                       time_zone=self._site.time_zone, place=place,
                                                       copy=effect.copy, digits=self._digits))
        if outcome.result is not PrintResult.PRINTED:
            return ev.PrintFinished(effect.txn_id, outcome)
        receipt = printer.print_job(render_receipt(
            effect.service.name(effect.language), effect.service.fee, effect.payment_id,
            effect.document.serial, effect.document.issued_at, effect.language, paper_width=printer.paper_width,
            time_zone=self._site.time_zone, place=place, digits=self._digits))
        if receipt.result is not PrintResult.PRINTED:
            log.warning("runtime.receipt_not_printed status=%s", receipt.status.name)
        return ev.PrintFinished(effect.txn_id, PrintOutcome(PrintResult.PRINTED, receipt.status,
                                                            outcome.bytes_sent + receipt.bytes_sent))

    def _refund(self, effect: fx.Refund) -> None:
        self._send(MessageKind.REFUND, effect.refund_id, {
            "payment_id": effect.payment_id, "charge_id": effect.charge_id,
            "amount": effect.amount.to_json(), "refund_id": effect.refund_id,
        })

    def _void(self, effect: fx.VoidDocument) -> None:
        self._send(MessageKind.VOID_REQUEST, "void-" + effect.request_id, {"request_id": effect.request_id})

    def _send(self, kind: MessageKind, message_id: str, payload: dict) -> None:
        if not self.outbox.send(kind, message_id, payload):
            log.critical("runtime.unsettled kind=%s id=%s", kind.value, message_id)


def _unsettled(effect: fx.Refund | fx.VoidDocument) -> None:
    """The outbox itself failed unexpectedly: nothing more can be done here but raise the alarm."""
    log.critical("runtime.unsettled effect=%s txn=%s", type(effect).__name__, effect.txn_id)


# Every effect the session can ask for: its worker, its work, and its answer when the work fails.
EFFECTS: dict[type, EffectHandler[Any]] = {
    fx.Audit: EffectHandler("", Runtime._audit, _nothing),
    fx.Alert: EffectHandler("", Runtime._alert, _nothing),
    fx.LoadCatalogue: EffectHandler("central", Runtime._load_catalogue, lambda e: ev.CatalogueLoaded(None)),
    fx.ConnectCard: EffectHandler("card", Runtime._connect_card,
                           lambda e: ev.CardConnected(e.session_id, ConnectResult.UNREADABLE)),
    fx.Authenticate: EffectHandler("card", Runtime._authenticate,
                            lambda e: ev.CardAuthenticated(e.session_id, CardReadResult(CardVerdict.UNREADABLE, 0))),
    fx.ReadPhoto: EffectHandler("card", Runtime._read_photo, lambda e: ev.PhotoRead(e.session_id, None)),
    fx.ReleaseCard: EffectHandler("card", Runtime._release_card, _nothing),
    fx.CheckEligibility: EffectHandler("central", Runtime._check_eligibility,
                                lambda e: ev.EligibilityChecked(e.txn_id, None)),
    fx.CheckPrinter: EffectHandler("printer", Runtime._check_printer, lambda e: ev.PrinterChecked(e.txn_id, False)),
    fx.Charge: EffectHandler("payment", Runtime._charge, lambda e: ev.PaymentSettled(
        e.txn_id, PaymentOutcome(PaymentStatus.UNKNOWN, e.amount, e.charge_id))),
    fx.IssueDocument: EffectHandler("central", Runtime._issue, lambda e: ev.DocumentAnswered(e.txn_id, None)),
    fx.PrintDocument: EffectHandler("printer", Runtime._print, lambda e: ev.PrintFinished(
        e.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.UNKNOWN))),
    fx.Refund: EffectHandler("outbox", Runtime._refund, _unsettled),
    fx.VoidDocument: EffectHandler("outbox", Runtime._void, _unsettled),
}
