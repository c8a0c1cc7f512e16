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
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, Generic, TypeVar

from kiosk import effects as fx
from kiosk import events as ev
from kiosk.catalogue_supply import CatalogueSupply
from kiosk.commands import AnnouncementsLoaded, AnnouncementSupply, CommandDesk, CommandFinished, Refusal
from kiosk.config import SiteConfig
from kiosk.documents import IssuedDocument
from kiosk.errors import QueueError
from kiosk.messages import MessageKind
from kiosk.ports.audit import REFUSED_EVENT, AuditLog, is_detail, is_event, is_technician
from kiosk.ports.cabinet import AT_REST, Cabinet, CabinetInput, Light, NoCabinet
from kiosk.card_proof import CardProof, claim_challenge
from kiosk.ports.central import Central, Challenge, Eligibility
from kiosk.ports.card_reader import CardEvent, CardReader, CardReadResult, CardVerdict, ConnectResult, ReaderStatus
from kiosk.ports.journal import Journal, JournalEntry, Reconciler, TxnState
from kiosk.ports.outbox import LinkState, Outbox
from kiosk.ports.payment_terminal import (
    PaymentOutcome, PaymentPrompt, PaymentReason, PaymentStatus, PaymentTerminal, TerminalState,
)
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult, ReceiptPrinter
from kiosk.ports.technician_lockout import TechnicianLockout
from kiosk.session import Reason, Session, Step, View
from kiosk.technician import RESTART_EXIT_STATUS, TechnicianAction, TechnicianStatus, check_pin
from kiosk.telemetry import STATES, KioskFacts, Telemetry, code_of, door_of, paper_of
from kiosk.wire import AnswerStatus, CommandAction

log = logging.getLogger(__name__)

READY_STATUSES = (PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END)
RESYNC_CATALOGUE_S = 120.0          # the longest a resync waits for the catalogue (central's retries)

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
    Step.TECHNICIAN_PIN: Light.OUT_OF_SERVICE,  # a technician has the kiosk: nobody is served
    Step.TECHNICIAN: Light.OUT_OF_SERVICE,
}
# Telemetry (kiosk/telemetry.py): why the kiosk is out of service on steps that carry no reason of their own,
# the steps in which nobody is served (its devices may be asked how they are), and the reasons a citizen was
# shown that are the kiosk's own fault (a heartbeat's last error).
_STATE_REASONS = {Step.STARTING: "starting", Step.TECHNICIAN_PIN: "technician", Step.TECHNICIAN: "technician",
                  Step.PRINT_WAITING: "print_waiting"}
_IDLE_STEPS = frozenset({Step.STARTING, Step.ATTRACT, Step.OUT_OF_SERVICE})
_INPUT_PAIRS = {CabinetInput.DOOR_OPENED: CabinetInput.DOOR_CLOSED, CabinetInput.DOOR_CLOSED: CabinetInput.DOOR_OPENED,
                CabinetInput.PAPER_LOW: CabinetInput.PAPER_OK, CabinetInput.PAPER_OK: CabinetInput.PAPER_LOW}
_KIOSK_FAULTS = frozenset({Reason.PRINTER_UNAVAILABLE, Reason.PAYMENT_UNAVAILABLE, Reason.DOCUMENT_UNAVAILABLE,
                           Reason.PRINT_FAILED, Reason.NO_CATALOGUE, Reason.NO_READER, Reason.COLLECTION_FAILED})


def light_for(view: View) -> Light:
    """The status light's pattern for what the screen shows."""
    light = _LIGHTS.get(view.step, Light.BUSY)
    if light is Light.READY and view.link is LinkState.OFFLINE:
        light = Light.OFFLINE             # serving, but central cannot be reached: claims only
    return light


@dataclass(frozen=True)
class Maintenance:
    """What the technician screen needs of the device, injected (the composition root gives the real
    ones; a test gives fakes, so that no test reboots the machine it runs on)."""

    pin_hash: str = ""                                         # `[technician] pin_hash`; "": no PIN opens it
    device_id: str = ""
    version: str = ""                                          # the software's, as installed
    exit_app: Callable[[int], None] | None = None              # the frontend exits with this status
    reboot: Callable[[], None] | None = None                   # `systemctl reboot`
    light_step_s: float = 1.5                                  # how long each pattern shows in a light walk
    pause: Callable[[float], None] = time.sleep                # waits between the light walk's patterns
    status_timeout_s: float = 15.0                             # the longest a device may take to say its status


class Runtime:
    def __init__(
        self,
        session: Session,
        devices: Devices,
        central: Central,
        outbox: Outbox,
        journal: Journal,
        reconciler: Reconciler,
        *,
        post: Callable[[Callable[[], None]], None],
        run_id: str,
        document_timeout_s: float = 30.0,
        site: SiteConfig = SiteConfig(),
        digits: str = "western",
        today: Callable[[], date] = date.today,
        clock: Callable[[], float] = time.monotonic,
        catalogue: CatalogueSupply | None = None,
        wall: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
        maintenance: Maintenance = Maintenance(),
        lockout: TechnicianLockout | None = None,
        telemetry: Telemetry | None = None,
        commands: CommandDesk | None = None,
        announcements: AnnouncementSupply | None = None,
    ) -> None:
        """`catalogue` is where the catalogue comes from: central, checked and kept on the disk
        (default: central's as it comes, nothing kept); `lockout` is where the technician PIN's wrong
        tries and lockout are kept across restarts (default: nowhere, a restart clears them)."""
        self.session = session
        self.devices = devices
        self.central = central
        self.outbox = outbox
        self.journal = journal
        self.reconciler = reconciler
        self.catalogue = catalogue or CatalogueSupply(central)
        self.run_id = run_id              # this run's mark on the journal: other runs' open entries are settled
        self._post = post
        self._document_timeout_s = document_timeout_s
        self._site = site
        self._digits = digits
        self._today = today
        self.clock = clock
        self._wall = wall                 # wall time: the day a claim counts to, the time on its slip
        self.audit = audit                # the tamper-evident audit log (None: the log line only)
        self.maintenance = maintenance    # the technician screen's PIN hash, restart and reboot
        self.lockout = lockout            # the technician PIN's wrong tries and lockout, kept on the disk
        self.telemetry = telemetry        # the reports to central (kiosk/telemetry.py; None: none sent)
        self.commands = commands          # central's commands (kiosk/commands.py; None: none is taken)
        self.announcements = announcements or AnnouncementSupply(central)   # fetched with the catalogue
        self._printer_seen = PrinterStatus.UNKNOWN        # each device's status as last seen, for the telemetry
        self._terminal_seen: TerminalState | None = None
        self._inputs_seen = AT_REST                       # the cabinet's inputs, as its watch last told them
        self._listeners: list[Callable[[View], None]] = []
        self._shown: View | None = None
        self._light: Light | None = None
        self._link = LinkState.UNKNOWN    # the outbox's link as last told to the session
        self._device_refused: str | None = None    # why central refuses this kiosk, as last told to the session
        self._stopped = False
        self._workers = {
            name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
            for name in {effect.worker for effect in EFFECTS.values() if effect.worker}
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.outbox.start()
        if self.telemetry is not None:
            self.telemetry.start(self.telemetry_facts, link=self.outbox.link, audit=self.audit)
        self.reconciler.start()           # settles what a crash left open, before anyone pays
        self.devices.card_reader.watch(self._on_card_event)
        self.devices.cabinet.watch(self._on_cabinet_input)
        self.dispatch(ev.Start(self.clock()))
        self._load_technician_lockout()
        if self.commands is not None:     # central's last word on service, and what a stopped run left
            for event in self.commands.start(self._report):
                self.dispatch(event)

    def _load_technician_lockout(self) -> None:
        """What the last run kept of the technician PIN's wrong tries and lockout, told to the session.
        Read here, at start (one row), before any PIN can be typed; saved on a worker after each change.
        The kept end is wall-clock time, the session's clock monotonic (it starts again at each boot):
        seconds left = the kept end - the wall clock now, counted by the session from its own now (it
        never takes more than one whole lockout, in case the wall clock went back)."""
        if self.lockout is None:
            return
        try:
            kept = self.lockout.load()
        except Exception as exc:          # the lockout is a brake on guessing: the kiosk still starts
            log.error("runtime.technician_lockout_unreadable error=%s", type(exc).__name__)
            return
        left = 0.0 if kept.locked_until is None else max(0.0, kept.locked_until - self._wall())
        if kept.tries or left:
            log.info("runtime.technician_lockout_kept tries=%d locked_s=%d", kept.tries, int(left + 0.999))
        self.dispatch(ev.TechnicianLockoutLoaded(kept.tries, left, self.clock()))

    def stop(self) -> None:
        """Stop watching and working; a second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self.telemetry is not None:
            self.telemetry.stop()
        if self.commands is not None:
            self.commands.stop()
        self.devices.card_reader.unwatch()
        self.devices.cabinet.unwatch()
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)
        self.reconciler.stop()
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
        self._note_device(event)
        for effect in self.session.handle(event):
            self._carry_out(effect)
        view = self.session.view()
        if view != self._shown:          # most ticks and touches change nothing on screen
            self._shown = view
            self._show_light(view)
            for listener in self._listeners:
                listener(view)
            if self.telemetry is not None:
                if view.reason in _KIOSK_FAULTS:
                    self.telemetry.error(view.reason.value)
                self.telemetry.changed()

    def tick(self) -> None:
        """The clock's second: the outbox's link first, told to the session only when it changed."""
        link = self.outbox.link()
        if link is not self._link:
            self._link = link
            log.info("runtime.link state=%s", link.value)
            self.dispatch(ev.LinkChanged(link))
        refused = self.central.device_refused()
        if refused != self._device_refused:
            self._device_refused = refused
            log.info("runtime.device_refused reason=%s", refused or "-")
            self.dispatch(ev.DeviceRefused(refused))
        self.dispatch(ev.Tick(self.clock()))

    def touched(self) -> None:
        self.dispatch(ev.Touched(self.clock()))

    def _report(self, event: ev.Event) -> None:
        """From a worker thread: deliver a result to the session's thread."""
        self._post(lambda: self.dispatch(event))

    def _on_cabinet_input(self, what: CabinetInput) -> None:
        self._report(ev.CabinetChanged(what))

    def _on_card_event(self, event: CardEvent) -> None:
        self._report(_CARD_EVENTS[event])

    def _note_device(self, event: ev.Event) -> None:
        """A device's status an event tells, kept for the telemetry, which hears of the change."""
        match event:
            case ev.PrintFinished(outcome=outcome) | ev.DocumentsCollected(outcome=outcome):
                self._printer_seen = outcome.status
            case ev.TerminalChecked(state=state):
                self._terminal_seen = state
            case ev.PaymentSettled(outcome=outcome) if outcome.reason is PaymentReason.TERMINAL_UNREACHABLE:
                self._terminal_seen = TerminalState.UNREACHABLE
            case ev.CabinetChanged(what=what) if what in _INPUT_PAIRS:
                self._inputs_seen = (self._inputs_seen - {_INPUT_PAIRS[what]}) | {what}
            case ev.CabinetChanged() | ev.ReaderLost() | ev.ReaderFound():
                pass
            case _:
                return
        if self.telemetry is not None:
            self.telemetry.changed()

    def _show_light(self, view: View) -> None:
        light = light_for(view)
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
        """The log line, and an entry in the audit log; never raises into the session. On the session's
        thread, at once: an entry is on the disk before whatever it records goes on (a restart)."""
        event = effect.event if is_event(effect.event) else "malformed"
        codes = event == effect.event and is_detail(effect.detail) and (
            effect.technician is None or is_technician(effect.technician))
        log.info("audit.%s detail=%s%s", event, effect.detail if codes else "<refused>",
                 " technician=%s" % effect.technician if codes and effect.technician else "")
        if self.audit is None:
            return
        try:
            if codes:
                self.audit.append(effect.event, effect.detail, technician=effect.technician)
            else:                         # not codes (perhaps personal data): only that something was refused
                log.error("runtime.audit_refused event=%s", event)
                self.audit.append(REFUSED_EVENT, event)
        except QueueError as exc:         # a full disk: the citizen is still served, a technician is called
            log.critical("runtime.audit_unwritable event=%s error=%s", event, exc)
            self._alert(fx.Alert("audit.unwritable"))
        except Exception:                 # an audit log's own fault never stops a session
            log.exception("runtime.audit_failed event=%s", event)

    def _alert(self, effect: fx.Alert) -> None:
        log.warning("alert.%s", effect.kind)
        if self.telemetry is not None:
            self.telemetry.alert(effect.kind)         # kept, and sent to central (no I/O here)

    def _chime(self, effect: fx.Chime) -> None:
        self.devices.cabinet.chime(effect.kind)         # returns at once: the cabinet sounds it

    def _load_catalogue(self, _effect: fx.LoadCatalogue) -> ev.Event:
        supplied = self.catalogue.load()
        try:                              # central's announcements come with each catalogue (kiosk/commands.py)
            self._report(AnnouncementsLoaded(*self.announcements.load()))
        except Exception:
            log.exception("runtime.announcements_failed")
        return ev.CatalogueLoaded(supplied.catalogue, cached=supplied.cached, expired=supplied.expired)

    def _connect_card(self, effect: fx.ConnectCard) -> ev.Event:
        return ev.CardConnected(effect.session_id, self.devices.card_reader.connect())

    def _authenticate(self, effect: fx.Authenticate) -> ev.Event:
        return ev.CardAuthenticated(effect.session_id,
                                    self.devices.card_reader.authenticate(effect.pin, today=self._today()))

    def _read_photo(self, effect: fx.ReadPhoto) -> ev.Event:
        return ev.PhotoRead(effect.session_id, self.devices.card_reader.read_photo())

    def _release_card(self, _effect: fx.ReleaseCard) -> None:
        self.devices.card_reader.disconnect()

    def _proven(self, what: str) -> tuple[Challenge, CardProof] | None | bool:
        """Central's challenge, signed by the card in the reader: None when central gave none (it
        cannot be reached), False when the card did not sign it (taken out, or failing)."""
        challenge = self.central.challenge()
        if challenge is None:
            return None
        proof = self.devices.card_reader.prove(challenge.nonce)
        if proof is None:
            log.warning("runtime.card_not_proven call=%s", what)
            return False
        return challenge, proof

    def _check_eligibility(self, effect: fx.CheckEligibility) -> ev.Event:
        proven = self._proven("eligibility")
        if not proven:
            return ev.EligibilityChecked(effect.txn_id, None if proven is None else False)
        challenge, proof = proven
        answer = self.central.check_eligibility(service_code=effect.service_code, challenge=challenge, proof=proof,
                                                fee=effect.fee, catalogue_version=effect.catalogue_version)
        eligible = {Eligibility.ELIGIBLE: True, Eligibility.NOT_ELIGIBLE: False}.get(answer.eligibility)
        return ev.EligibilityChecked(effect.txn_id, eligible, answer.fee, answer.catalogue_version,
                                     answer.presence_id)

    def _check_printer(self, effect: fx.CheckPrinter) -> ev.Event:
        self._printer_seen = status = self.devices.printer.status()
        return ev.PrinterChecked(effect.txn_id, status in READY_STATUSES)

    def _check_terminal(self, effect: fx.CheckTerminal) -> ev.Event:
        if not self.outbox.can_take_payment():
            # The state disk is into its reserve: no transaction could be kept, so none is charged;
            # the session shows paid services unavailable, as for a terminal that cannot be reached.
            log.warning("runtime.no_room_for_a_transaction txn=%s", effect.txn_id)
            return ev.TerminalChecked(effect.txn_id, TerminalState.UNREACHABLE)
        return ev.TerminalChecked(effect.txn_id, self.devices.payment.check())

    def _charge(self, effect: fx.Charge) -> ev.Event:
        """Written down first: a sale the journal does not hold is never asked for."""
        try:
            self.journal.open(JournalEntry(
                txn_id=effect.txn_id, sale_id=effect.sale_id, request_id=effect.request_id,
                service_code=effect.service_code, amount=effect.amount, method=effect.method,
                state=TxnState.OPENED, run_id=self.run_id, offline=effect.offline))
        except QueueError as exc:
            log.error("runtime.journal_unwritable txn=%s error=%s", effect.txn_id, exc)
            self._alert(fx.Alert("journal.unwritable"))
            return ev.PaymentSettled(effect.txn_id, PaymentOutcome(PaymentStatus.FAILED, effect.amount, effect.sale_id))

        def prompted(prompt: PaymentPrompt) -> None:
            self._report(ev.PaymentPrompted(effect.txn_id, prompt))

        outcome = self.devices.payment.pay(effect.amount, sale_id=effect.sale_id, reference=effect.request_id,
                                           label=effect.label, method=effect.method, on_prompt=prompted)
        self._journal("payment", effect.txn_id, lambda: self.journal.record_payment(effect.txn_id, outcome))
        return ev.PaymentSettled(effect.txn_id, outcome)

    def _abort_payment(self, effect: fx.AbortPayment) -> None:
        self.devices.payment.abort()

    def _issue(self, effect: fx.IssueDocument) -> ev.Event:
        # Journalled before it is sent: a settlement then always voids what central may have issued.
        # A request the journal cannot hold (a full disk) is never sent: no document, the fee goes back.
        if not self._journal("requested", effect.txn_id, lambda: self.journal.record_requested(effect.txn_id)):
            return ev.DocumentAnswered(effect.txn_id, None)
        self._send(MessageKind.CERTIFICATE_REQUEST, effect.request_id, {
            "request_id": effect.request_id, "service_code": effect.service_code,
            "presence_id": effect.presence_id, "language": effect.language, "payment_id": effect.payment_id,
            "place": {"ar": self._site.place_ar, "en": self._site.place_en}, "time_zone": self._site.time_zone,
        })
        answer = self.outbox.wait_for_answer(effect.request_id, timeout=self._document_timeout_s)
        if answer is None:
            log.warning("runtime.document_late request=%s", effect.request_id)
            return ev.DocumentAnswered(effect.txn_id, None)
        if answer.get("status") == AnswerStatus.ISSUED:
            document = IssuedDocument.from_json(answer["document"])
            self._journal("issued", effect.txn_id, lambda: self.journal.record_issued(effect.txn_id, document.serial))
            return ev.DocumentAnswered(effect.txn_id, document)
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
        self._journal("printed", effect.txn_id, lambda: self.journal.record_printed(effect.txn_id))
        receipt = printer.print_job(render_receipt(
            effect.service.name(effect.language), effect.service.fee, effect.payment_id,
            effect.document.serial, effect.document.issued_at, effect.language, paper_width=printer.paper_width,
            time_zone=self._site.time_zone, place=place, digits=self._digits, payment=effect.receipt))
        if receipt.result is not PrintResult.PRINTED:
            log.warning("runtime.receipt_not_printed status=%s", receipt.status.name)
        return ev.PrintFinished(effect.txn_id, PrintOutcome(PrintResult.PRINTED, receipt.status,
                                                            outcome.bytes_sent + receipt.bytes_sent))

    # ------------------------------------------------------------ claims, made offline and collected anywhere

    def _today_bounds(self) -> tuple[float, float]:
        """Today, in the kiosk's time zone, as [start, end) in wall time."""
        day = datetime.fromtimestamp(self._wall(), zoneinfo.ZoneInfo(self._site.time_zone)).date()
        start = datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(self._site.time_zone))
        return start.timestamp(), (start + timedelta(days=1)).timestamp()

    def _check_offline_allowance(self, effect: fx.CheckOfflineAllowance) -> ev.Event:
        since, until = self._today_bounds()
        try:
            total = self.journal.offline_total(effect.amount.currency, since, until)
        except QueueError as exc:
            log.error("runtime.journal_unreadable txn=%s error=%s", effect.txn_id, exc)
            return ev.OfflineAllowanceChecked(effect.txn_id, False)
        allowed = total + effect.amount.amount_minor <= effect.daily_cap.amount_minor
        log.info("runtime.offline_allowance txn=%s allowed=%s", effect.txn_id, allowed)
        return ev.OfflineAllowanceChecked(effect.txn_id, allowed)

    def _queue_claim(self, effect: fx.QueueClaim) -> ev.Event:
        """The request, marked as a claim, durably in the outbox, and the journal says CLAIMED; anything
        short of that is not kept (the session settles it: whatever was sent is voided after it)."""
        # Central cannot be asked for a challenge: the card signs the claim itself, which central takes
        # for a claim only, once, within its age limit.
        taken_at = datetime.fromtimestamp(self._wall(), zoneinfo.ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
        proof = self.devices.card_reader.prove(claim_challenge(effect.request_id, effect.service_code, taken_at))
        if proof is None:
            log.warning("runtime.card_not_proven call=claim txn=%s", effect.txn_id)
            return ev.ClaimQueued(effect.txn_id, False)
        if not self._journal("requested", effect.txn_id, lambda: self.journal.record_requested(effect.txn_id)):
            return ev.ClaimQueued(effect.txn_id, False)
        sent = self.outbox.send(MessageKind.CERTIFICATE_REQUEST, effect.request_id, {
            "request_id": effect.request_id, "service_code": effect.service_code,
            "language": effect.language, "payment_id": effect.payment_id,
            "place": {"ar": self._site.place_ar, "en": self._site.place_en}, "time_zone": self._site.time_zone,
            "claim": True, "claim_reference": effect.reference, "card_proof": proof.to_json(), "taken_at": taken_at,
        })
        if not sent:
            log.critical("runtime.unsent kind=claim id=%s", effect.request_id)
            return ev.ClaimQueued(effect.txn_id, False)
        if not self._journal("claimed", effect.txn_id, lambda: self.journal.record_claimed(effect.txn_id)):
            return ev.ClaimQueued(effect.txn_id, False)
        log.info("runtime.claim_kept txn=%s request=%s", effect.txn_id, effect.request_id)
        return ev.ClaimQueued(effect.txn_id, True)

    def _print_claim_slip(self, effect: fx.PrintClaimSlip) -> ev.Event:
        from kiosk.document_layout import render_claim_slip

        printer = self.devices.printer
        taken_at = datetime.fromtimestamp(self._wall(), zoneinfo.ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome = printer.print_job(render_claim_slip(
            effect.service.name(effect.language), effect.service.fee, effect.reference, taken_at, effect.language,
            paper_width=printer.paper_width, time_zone=self._site.time_zone,
            place=self._site.place(effect.language), digits=self._digits, payment_id=effect.payment_id,
            payment=effect.receipt))
        return ev.PrintFinished(effect.txn_id, outcome)

    def _find_waiting_documents(self, effect: fx.FindWaitingDocuments) -> ev.Event:
        proven = self._proven("claims_waiting")
        if not proven:
            return ev.WaitingDocumentsFound(effect.session_id, None)
        challenge, proof = proven
        return ev.WaitingDocumentsFound(effect.session_id, self.central.waiting_documents(challenge=challenge,
                                                                                          proof=proof))

    def _print_collected(self, effect: fx.PrintCollected) -> ev.Event:
        """Each waiting document printed as the certificate it is (its place of issue is the claiming
        kiosk's, in its signed QR code: none is printed here), then confirmed to central through the
        outbox. The first that does not print stops the rest: they still wait."""
        from kiosk.document_layout import render_certificate

        printer = self.devices.printer
        collected: list[str] = []
        outcome = PrintOutcome(PrintResult.PRINTED, PrinterStatus.READY)
        for document in effect.documents:
            outcome = printer.print_job(render_certificate(document, effect.language, paper_width=printer.paper_width,
                                                           time_zone=self._site.time_zone, digits=self._digits))
            if outcome.result is not PrintResult.PRINTED:
                log.warning("runtime.collection_not_printed serial=%s status=%s", document.serial,
                            outcome.status.name)
                break
            collected.append(document.serial)
            self._send(MessageKind.CLAIM_COLLECTED, "collected-" + document.serial,
                       {"serial": document.serial, "request_id": document.request_id})
        return ev.DocumentsCollected(effect.session_id, tuple(collected), outcome)

    def _settle(self, effect: fx.Settle) -> None:
        """The fee goes back and the document is voided: owed in the journal, done by the reconciler."""
        self.reconciler.owe(effect.txn_id, effect.reason)

    def _journal(self, fact: str, txn_id: str, write: Callable[[], None]) -> bool:
        """Write one fact down; False when the journal cannot (a full disk). The entry then keeps its last
        state, which the reconciler settles at the next start: the money rules still hold, an attendant is called."""
        try:
            write()
        except QueueError as exc:
            log.critical("runtime.journal_unwritable fact=%s txn=%s error=%s", fact, txn_id, exc)
            self._alert(fx.Alert("journal.unwritable"))
            return False
        return True

    def _send(self, kind: MessageKind, message_id: str, payload: dict) -> None:
        if not self.outbox.send(kind, message_id, payload):
            log.critical("runtime.unsent kind=%s id=%s", kind.value, message_id)

    # ------------------------------------------------------------ central's commands (kiosk/commands.py)

    def _run_command(self, effect: fx.RunCommand) -> ev.Event | None:
        """Reboot, resync, selftest, collect-logs, on the commands worker. A resync also fetches the
        catalogue (and the announcements) on their worker, told to the session before the result."""
        if self.commands is None:
            return CommandFinished(effect.command.command_id, False, Refusal.UNAVAILABLE)
        if effect.command.action is CommandAction.RESYNC:
            loaded = self._workers["catalogue"].submit(self._load_catalogue, fx.LoadCatalogue())
            self._report(loaded.result(timeout=RESYNC_CATALOGUE_S))
        return self.commands.run(effect.command)

    def _finish_command(self, effect: fx.FinishCommand) -> None:
        """Written in the ledger on the session's thread, at once (as the audit log is), then told to central."""
        if self.commands is None:
            return
        try:
            self.commands.finish(effect)
        except QueueError as exc:         # a full disk: central is not told; the command is not carried out again
            log.critical("runtime.command_ledger_unwritable action=%s error=%s", effect.action, exc)

    # ------------------------------------------------------------ the technician's

    def _check_technician_pin(self, effect: fx.CheckTechnicianPin) -> ev.Event:
        """Slow on purpose (scrypt): on its own worker, never the UI thread; the PIN is never logged."""
        accepted = check_pin(effect.pin, self.maintenance.pin_hash)
        log.info("runtime.technician_pin accepted=%s", accepted)
        return ev.TechnicianPinChecked(effect.attempt_id, accepted)

    def _save_technician_lockout(self, effect: fx.SaveTechnicianLockout) -> None:
        """Seconds of lockout left become a wall-clock end, read here on the worker: the worker's delay can
        only lengthen the lockout by as much, never shorten it."""
        if self.lockout is not None:
            self.lockout.save(effect.tries, self._wall() + effect.locked_s if effect.locked_s > 0 else None)

    def _ask(self, worker: str, call: Callable[[], Any], unknown: Any) -> Any:
        """`call` on the party's own worker (each device sees one caller at a time), waited for a while;
        `unknown` when it fails or does not answer in time."""
        try:
            return self._workers[worker].submit(call).result(timeout=self.maintenance.status_timeout_s)
        except Exception as exc:          # a timeout, a driver's fault: the status is not known
            log.warning("runtime.technician_status_unknown party=%s error=%s", worker, type(exc).__name__)
            return unknown

    def _gather_technician_status(self, _effect: fx.GatherTechnicianStatus) -> ev.Event:
        depth = self._ask("outbox", self.outbox.depth, None)
        last = None
        if depth is not None and depth.last_answered_at is not None:
            last = datetime.fromtimestamp(depth.last_answered_at, zoneinfo.ZoneInfo(self._site.time_zone)) \
                .strftime("%Y-%m-%d %H:%M")
        reader, terminal, printer = self._ask_devices()
        return ev.TechnicianStatusGathered(TechnicianStatus(
            reader=reader,
            terminal=terminal,
            printer=printer,
            light=self._light,
            pending=depth.pending if depth is not None else None,
            dead=depth.dead if depth is not None else None,
            last_sync=last,
            link=self._technician_link(),
            version=self.maintenance.version,
            device_id=self.maintenance.device_id,
        ))

    def _ask_devices(self) -> tuple[ReaderStatus, TerminalState | None, PrinterStatus]:
        """Each device's status now, each asked on its party's worker (UNKNOWN or None when it does not say)."""
        reader = self._ask("card", lambda: self.devices.card_reader.status, ReaderStatus.UNKNOWN)
        self._terminal_seen = self._ask("payment", self.devices.payment.check, None)
        self._printer_seen = self._ask("printer", self.devices.printer.status, PrinterStatus.UNKNOWN)
        return reader, self._terminal_seen, self._printer_seen

    def telemetry_facts(self, *, ask_devices: bool = False) -> KioskFacts:
        """What a heartbeat says of the kiosk now (kiosk/telemetry.py), on the telemetry's thread: the state
        its light shows, why when out of service, each device's status (asked anew when `ask_devices` and
        nobody is being served, else as last seen), the cabinet's inputs as its watch told them, the outbox's
        counts."""
        view = self._shown
        if ask_devices and (view is None or view.step in _IDLE_STEPS):
            reader, _terminal, _printer = self._ask_devices()
        else:
            reader = self.devices.card_reader.status
        light = self._light or Light.OUT_OF_SERVICE
        reason = None
        if light in (Light.OUT_OF_SERVICE, Light.FAULT, Light.OFF):
            reason = view.reason.value if view is not None and view.reason is not None \
                else _STATE_REASONS.get(view.step if view is not None else Step.STARTING, "stopped")
        inputs = self._inputs_seen
        try:
            depth = self.outbox.depth()
        except QueueError as exc:
            log.error("runtime.outbox_unreadable error=%s", exc)
            depth = None
        return KioskFacts(
            state=STATES[light], reason=reason, card_reader=code_of(reader), terminal=code_of(self._terminal_seen),
            printer=code_of(self._printer_seen), paper=paper_of(self._printer_seen, inputs), door=door_of(inputs),
            queue_depth=depth.pending if depth is not None else 0, dead_letters=depth.dead if depth is not None else 0,
            last_sync_at=depth.last_answered_at if depth is not None else None)

    def _technician_link(self) -> LinkState:
        """The outbox's link, or, before it has sent anything, the link as the session last saw it
        (central's catalogue answered or not): what the header shows."""
        link = self.outbox.link()
        shown = self._shown
        return shown.link if link is LinkState.UNKNOWN and shown is not None else link

    def _print_test_page(self, _effect: fx.PrintTestPage) -> ev.Event:
        """A short page in plain ASCII through the printer port: the device, the software, the time."""
        from kiosk.ports.receipt_printer import PrintJob, TextBlock

        now = datetime.fromtimestamp(self._wall(), zoneinfo.ZoneInfo(self._site.time_zone))
        outcome = self.devices.printer.print_job(PrintJob((
            TextBlock("KIOSK TEST PAGE", centered=True),
            TextBlock("device   %s" % self.maintenance.device_id),
            TextBlock("software %s" % self.maintenance.version),
            TextBlock("printed  %s" % now.strftime("%Y-%m-%d %H:%M %Z")),
            TextBlock("0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            TextBlock("-" * 32, centered=True),
        )))
        log.info("runtime.test_page result=%s status=%s", outcome.result.name, outcome.status.name)
        return ev.TechnicianActionDone(TechnicianAction.TEST_PRINT, outcome.result is PrintResult.PRINTED)

    def _walk_lights(self, _effect: fx.WalkLights) -> ev.Event:
        """Each pattern in turn, then the one the kiosk shows now."""
        for light in Light:
            self.devices.cabinet.show(light)
            self.maintenance.pause(self.maintenance.light_step_s)
        self.devices.cabinet.show(self._light or Light.OFF)
        return ev.TechnicianActionDone(TechnicianAction.LIGHT_WALK, True)

    def _restart_app(self, _effect: fx.RestartApp) -> ev.Event | None:
        """On the session's thread: the frontend stops, and exits with the status systemd restarts on."""
        if self.maintenance.exit_app is None:
            log.warning("runtime.restart_unavailable")
            return ev.TechnicianActionDone(TechnicianAction.RESTART, False)
        log.warning("runtime.restart status=%d", RESTART_EXIT_STATUS)
        self.maintenance.exit_app(RESTART_EXIT_STATUS)
        return None

    def _reboot(self, _effect: fx.RebootDevice) -> ev.Event | None:
        if self.maintenance.reboot is None:
            log.warning("runtime.reboot_unavailable")
            return ev.TechnicianActionDone(TechnicianAction.REBOOT, False)
        log.warning("runtime.reboot")
        self.maintenance.reboot()
        return None


def _unsettled(effect: fx.Settle) -> None:
    """The reconciler failed unexpectedly: the journal still holds the entry, which the next start
    settles; nothing more can be done here but raise the alarm."""
    log.critical("runtime.unsettled txn=%s", effect.txn_id)


# Every effect the session can ask for: its worker, its work, and its answer when the work fails.
EFFECTS: dict[type, EffectHandler[Any]] = {
    fx.Audit: EffectHandler("", Runtime._audit, _nothing),
    fx.Alert: EffectHandler("", Runtime._alert, _nothing),
    fx.Chime: EffectHandler("", Runtime._chime, _nothing),
    # On its own thread: a refresh waiting on a link that is down never holds up a citizen's pre-check.
    fx.LoadCatalogue: EffectHandler("catalogue", Runtime._load_catalogue, lambda e: ev.CatalogueLoaded(None)),
    fx.ConnectCard: EffectHandler("card", Runtime._connect_card,
                           lambda e: ev.CardConnected(e.session_id, ConnectResult.UNREADABLE)),
    fx.Authenticate: EffectHandler("card", Runtime._authenticate,
                            lambda e: ev.CardAuthenticated(e.session_id, CardReadResult(CardVerdict.UNREADABLE, 0))),
    fx.ReadPhoto: EffectHandler("card", Runtime._read_photo, lambda e: ev.PhotoRead(e.session_id, None)),
    fx.ReleaseCard: EffectHandler("card", Runtime._release_card, _nothing),
    fx.CheckEligibility: EffectHandler("central", Runtime._check_eligibility,
                                lambda e: ev.EligibilityChecked(e.txn_id, None)),
    fx.CheckPrinter: EffectHandler("printer", Runtime._check_printer, lambda e: ev.PrinterChecked(e.txn_id, False)),
    fx.CheckTerminal: EffectHandler("payment", Runtime._check_terminal,
                                    lambda e: ev.TerminalChecked(e.txn_id, TerminalState.UNREACHABLE)),
    fx.Charge: EffectHandler("payment", Runtime._charge, lambda e: ev.PaymentSettled(
        e.txn_id, PaymentOutcome(PaymentStatus.UNKNOWN, e.amount, e.sale_id))),
    # On its own thread: the payment's is blocked in `pay`, waiting for the card this cancels.
    fx.AbortPayment: EffectHandler("payment-abort", Runtime._abort_payment, _nothing),
    fx.IssueDocument: EffectHandler("central", Runtime._issue, lambda e: ev.DocumentAnswered(e.txn_id, None)),
    fx.PrintDocument: EffectHandler("printer", Runtime._print, lambda e: ev.PrintFinished(
        e.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.UNKNOWN))),
    fx.Settle: EffectHandler("outbox", Runtime._settle, _unsettled),
    fx.CheckOfflineAllowance: EffectHandler("outbox", Runtime._check_offline_allowance,
                                            lambda e: ev.OfflineAllowanceChecked(e.txn_id, False)),
    # Whatever may have been kept of a claim that failed unexpectedly is settled: voided after it, given back.
    fx.QueueClaim: EffectHandler("outbox", Runtime._queue_claim, lambda e: ev.ClaimQueued(e.txn_id, False)),
    fx.PrintClaimSlip: EffectHandler("printer", Runtime._print_claim_slip, lambda e: ev.PrintFinished(
        e.txn_id, PrintOutcome(PrintResult.FAILED, PrinterStatus.UNKNOWN))),
    # On its own thread: a link that is down never holds up the pre-check behind it.
    fx.FindWaitingDocuments: EffectHandler("waiting", Runtime._find_waiting_documents,
                                           lambda e: ev.WaitingDocumentsFound(e.session_id, None)),
    fx.PrintCollected: EffectHandler("printer", Runtime._print_collected, lambda e: ev.DocumentsCollected(
        e.session_id, (), PrintOutcome(PrintResult.FAILED, PrinterStatus.UNKNOWN))),
    # The technician's. The PIN's hash is slow on purpose, and the status asks each party on its own
    # worker: on a worker of their own, so that neither holds up the other nor the UI.
    fx.CheckTechnicianPin: EffectHandler("technician-pin", Runtime._check_technician_pin,
                                         lambda e: ev.TechnicianPinChecked(e.attempt_id, False)),
    # Kept in order on a worker of its own: the disk never holds up the UI, nor waits behind a status.
    fx.SaveTechnicianLockout: EffectHandler("technician-lockout", Runtime._save_technician_lockout, _nothing),
    fx.GatherTechnicianStatus: EffectHandler("technician", Runtime._gather_technician_status,
                                             lambda e: ev.TechnicianStatusGathered(TechnicianStatus())),
    fx.PrintTestPage: EffectHandler("printer", Runtime._print_test_page,
                                    lambda e: ev.TechnicianActionDone(TechnicianAction.TEST_PRINT, False)),
    fx.WalkLights: EffectHandler("cabinet", Runtime._walk_lights,
                                 lambda e: ev.TechnicianActionDone(TechnicianAction.LIGHT_WALK, False)),
    fx.RestartApp: EffectHandler("", Runtime._restart_app,
                                 lambda e: ev.TechnicianActionDone(TechnicianAction.RESTART, False)),
    fx.RebootDevice: EffectHandler("technician", Runtime._reboot,
                                   lambda e: ev.TechnicianActionDone(TechnicianAction.REBOOT, False)),
    # Central's commands: carried out on a worker of their own (a self-test takes a while); what became of
    # each is written at once, as the audit log is.
    fx.RunCommand: EffectHandler("commands", Runtime._run_command,
                                 lambda e: CommandFinished(e.command.command_id, False, Refusal.FAILED)),
    fx.FinishCommand: EffectHandler("", Runtime._finish_command, _nothing),
}
