"""What happens after which event: the kiosk's session as a plain state machine.

Events come in (a card inserted, a PIN digit, a payment settled, a tick of
the clock); the session changes its step and answers with effects for the
runtime to carry out beside the UI thread (read the card, charge, print).
It imports no Kivy and no driver: it is tested without a screen or a device.

Money rule: once a charge may have been made, every path ends in a printed
document or a `Settle` (the fee given back and the document voided, by the
journal's reconciler, durably). A transaction whose session has ended (the
card was pulled mid-payment) is kept as an orphan until its last result
comes back, and then settled unless its document was printed. Nothing is
charged before central, the printer and the terminal have said they can go
on, and a fee changed at central is shown to the citizen before any charge.

Offline rule: while central cannot be reached (the link seen down, or the
pre-check unanswered), a service whose offline policy does not allow a claim
for its fee cannot be paid for: the confirm screen says it needs the link,
before anything is charged. One whose policy allows it is offered as a claim:
the day's offline payments are checked against the policy's cap, the fee is
taken at the terminal (by card, as card-present offline payments are), the
request is kept in the outbox as a claim (central issues it when the link is
back), and the citizen takes a claim slip with a random reference. Once the
claim is kept, its fee is never given back by the session: only central
refusing the request for good does that (the reconciler).

Collection: after the card is verified, central is asked whether documents
claimed earlier wait for this citizen; the identity screen says so, and the
citizen prints them here, with no payment; each printed is confirmed to
central, so it is collected once, and one that did not print still waits.

Privacy rule: what was read from the card lives only in the session and is
dropped when the session ends. The PIN is kept only while it is typed and is
handed to exactly one `Authenticate` effect.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from kiosk.catalogue import Catalogue, Category, Service
from kiosk.commands import (
    Announcement, AnnouncementsLoaded, CentralDecisionLoaded, Command, CommandFinished, CommandRefused,
    CommandTaken, FinishCommand, Refusal, RunCommand, VersionsAnnounced, audit_detail,
)
from kiosk.documents import IssuedDocument
from kiosk.money import Money
from kiosk.effects import (
    AbortPayment, Alert, Audit, Authenticate, Charge, CheckEligibility, CheckOfflineAllowance, CheckPrinter,
    CheckTechnicianPin, CheckTerminal, Chime, ConnectCard, Effect, FindWaitingDocuments, GatherTechnicianStatus,
    IssueDocument, LoadCatalogue, PrintClaimSlip, PrintCollected, PrintDocument, PrintTestPage, QueueClaim, ReadPhoto,
    RebootDevice, ReleaseCard, RestartApp, SaveTechnicianLockout, Settle, WalkLights,
)
from kiosk.events import (
    AudioGuidanceChosen, Back, CabinetChanged, Cancel, CardAuthenticated, CardConnected, CardInserted, CardRemoved,
    CatalogueLoaded, CategoryChosen, ClaimQueued, CollectDocuments, ContrastChosen, DeviceRefused, DocumentAnswered,
    DocumentsCollected, EligibilityChecked, Event, LanguageChosen, LinkChanged, OfflineAllowanceChecked, Pay,
    PaymentPrompted, PaymentSettled, PhotoRead, PinDigit, PinErase, PinSubmit, PrintFinished, PrinterChecked,
    ReaderFound, ReaderLost, RetryPayment, ServiceChosen, ShowServices, Start, TechnicianActionChosen,
    TechnicianActionDone, TechnicianLockoutLoaded, TechnicianPinChecked, TechnicianPinDigit, TechnicianPinErase,
    TechnicianPinSubmit, TechnicianStatusGathered, TerminalChecked, TextSize, TextSizeChosen, Tick, Touched,
    WaitingDocumentsFound,
)
from kiosk.ports.cabinet import CabinetInput
from kiosk.ports.cabinet import Chime as ChimeKind
from kiosk.ports.card_reader import CardVerdict, ConnectResult, Identity
from kiosk.ports.outbox import LinkState
from kiosk.ports.payment_terminal import (
    CardReceipt, PaymentMethod, PaymentOutcome, PaymentReason, PaymentStatus, PromptKind, TerminalState,
)
from kiosk.ports.receipt_printer import PrinterStatus, PrintOutcome, PrintResult
from kiosk.wire import CommandAction, CommandOutcome
from kiosk.technician import (
    PIN_MAX_DIGITS as TECHNICIAN_PIN_MAX_DIGITS,
    PIN_MIN_DIGITS as TECHNICIAN_PIN_MIN_DIGITS,
    TechnicianAction,
    TechnicianPolicy,
    TechnicianStatus,
)

log = logging.getLogger(__name__)

PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
CATALOGUE_RETRY_S = 15.0
CATALOGUE_REFRESH_S = 60.0           # while nobody is served: central's catalogue asked again (and the link seen)
PRINTER_RECHECK_S = 5.0              # how often the printer is asked whether it is back, while a reprint waits
WALLET_GRACE_S = 15.0                # after a wallet request expired, the terminal is told to stop if it has not
HELP_SHOWN_S = 10.0                  # the help button pressed: "an attendant has been called" shows this long


class Step(enum.Enum):
    STARTING = "starting"
    OUT_OF_SERVICE = "out of service"
    ATTRACT = "attract"
    INSERT_CARD = "insert card"
    READING_CARD = "reading card"
    PIN_ENTRY = "pin entry"
    VERIFYING = "verifying"
    IDENTITY = "identity"
    CATALOGUE = "catalogue"
    CONFIRM = "confirm"
    PREPARING = "preparing"           # central and the printer asked, before any charge
    PAYING = "paying"
    PAYMENT_DECLINED = "payment declined"
    ISSUING = "issuing"
    PRINTING = "printing"
    PRINT_WAITING = "print waiting"   # paid and issued, the print failed: waiting for the printer to reprint
    CLAIMING = "claiming"             # paid offline: the request is being kept as a claim
    COLLECTING = "collecting"         # the documents waiting for the citizen are printing
    TAKE_CARD = "take card"
    CARD_REFUSED = "card refused"
    FAILED = "failed"
    TECHNICIAN_PIN = "technician pin"   # the maintenance key is on: the technician's PIN opens the technician screen
    TECHNICIAN = "technician"           # the devices' status and the technician's actions


# Steps where the citizen is expected to act, so silence means they left.
INTERACTIVE_STEPS = frozenset({
    Step.INSERT_CARD, Step.PIN_ENTRY, Step.IDENTITY, Step.CATALOGUE, Step.CONFIRM,
    Step.PAYMENT_DECLINED, Step.CARD_REFUSED, Step.FAILED,
})
# Steps in which the ID card is in the reader and belongs to this session.
CARD_STEPS = frozenset({
    Step.READING_CARD, Step.PIN_ENTRY, Step.VERIFYING, Step.IDENTITY, Step.CATALOGUE,
    Step.CONFIRM, Step.PREPARING, Step.PAYING, Step.PAYMENT_DECLINED, Step.ISSUING,
    Step.PRINTING, Step.PRINT_WAITING, Step.TAKE_CARD, Step.CARD_REFUSED, Step.FAILED, Step.CLAIMING,
    Step.COLLECTING,
})


class Reason(enum.Enum):
    """Why a session cannot go on; each has its own message for the citizen."""

    CARD_UNREADABLE = "card_unreadable"
    CARD_FORGED = "card_forged"
    CARD_CLONED = "card_cloned"
    CARD_EXPIRED = "card_expired"
    CARD_BLOCKED = "card_blocked"
    PIN_TIMEOUT = "pin_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    PRINTER_UNAVAILABLE = "printer_unavailable"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_UNAVAILABLE = "payment_unavailable"   # the terminal is busy or unreachable: nothing was charged
    DOCUMENT_REFUSED = "document_refused"
    DOCUMENT_UNAVAILABLE = "document_unavailable"
    PRINT_FAILED = "print_failed"
    NO_CATALOGUE = "no_catalogue"
    NO_READER = "no_reader"
    DEVICE_REFUSED = "device_refused"           # central does not serve this kiosk (revoked, not enrolled)
    OFFLINE_LIMIT = "offline_limit"             # the day's offline payments reached the cap: nothing was charged
    COLLECTION_FAILED = "collection_failed"     # a waiting document did not print: it still waits
    DOOR_OPEN = "door_open"                     # the cabinet's door is open: out of service until it is shut
    TECHNICIAN = "technician"                   # a technician took the kiosk out of service
    CENTRAL_STAFF = "central_staff"             # central's staff took the kiosk out of service (a command)


# A sale that failed because the terminal could not take it: paid services are unavailable for now.
_TERMINAL_DOWN = frozenset({PaymentReason.TERMINAL_BUSY, PaymentReason.TERMINAL_UNREACHABLE, None})

_VERDICT_REASONS = {
    CardVerdict.UNREADABLE: Reason.CARD_UNREADABLE,
    CardVerdict.FORGED: Reason.CARD_FORGED,
    CardVerdict.CLONED: Reason.CARD_CLONED,
    CardVerdict.EXPIRED: Reason.CARD_EXPIRED,
    CardVerdict.BLOCKED: Reason.CARD_BLOCKED,
}


# ---------------------------------------------------------------- state


@dataclass
class Transaction:
    """One paid request: from asking central to the printed document."""

    txn_id: str
    service: Service
    sale_id: str
    request_id: str
    method: PaymentMethod = PaymentMethod.CARD
    payment_id: str | None = None
    receipt: CardReceipt | None = None       # the payment's, for the receipt
    charged: bool = False            # the charge may have gone through
    cancelling: bool = False         # the citizen pressed cancel while the terminal waited
    prompt: PromptKind | None = None         # what the terminal asks of the citizen now
    qr: str | None = None                    # a wallet's payment request, while it waits to be paid
    qr_expires_at: float | None = None
    document: IssuedDocument | None = None   # kept only until it is printed
    language: str = ""                       # the document's: asked for, printed and reprinted in it
    print_failed_at: float | None = None     # when the print failed, while a reprint is awaited
    partly_printed: bool = False             # part of a failed print came out: the reprint is a copy
    printer_asked: bool = False              # a printer check is on its way
    printer_asked_at: float = float("-inf")  # when the printer was last asked, while a reprint waits
    claim: bool = False                      # central cannot be reached: paid now, kept as a claim
    reference: str = ""                      # the claim slip's reference
    claimed: bool = False                    # the claim is kept (outbox and journal): its fee is central's to owe
    presence_id: str = ""                    # the card's proven presence, from the pre-check: the request names it


@dataclass(frozen=True, repr=False)
class View:
    """What the screens show; a fresh one after every event."""

    step: Step
    language: str
    holder_name: str | None = None
    photo: bytes | None = None
    pin_length: int = 0
    tries_left: int | None = None
    categories: tuple[Category, ...] = ()     # every category with a service offered here
    category: Category | None = None          # the one chosen; None: the categories and the most asked
    services: tuple[Service, ...] = ()        # the services to choose from now (of `category`, or the most asked)
    selected: Service | None = None
    reason: Reason | None = None
    payment_reason: PaymentReason | None = None   # why the last payment did not go through
    payment_method: PaymentMethod | None = None   # of the sale under way
    payment_prompt: PromptKind | None = None      # what the terminal asks of the citizen now
    payment_qr: str | None = None                 # the wallet payment request to show as a QR code
    payment_seconds_left: int | None = None       # how long the wallet request stays payable
    cancelling: bool = False                      # cancel pressed: waiting for the terminal to stop
    fee_changed: bool = False                     # central changed the fee: the new one is shown to confirm
    needs_link: bool = False                      # the service chosen needs central, which cannot be reached
    claim: bool = False                           # central cannot be reached: paying makes a claim (slip now)
    claim_reference: str | None = None            # the claim kept, for the slip and the end screen
    claim_slip_printed: bool = False
    waiting_documents: int = 0                    # documents claimed earlier that wait for this citizen
    collected: tuple[str, ...] = ()               # the serials of the waiting documents printed now
    expiry: date | None = None
    refunded: bool = False
    printed: bool = False           # this session's document came out of the printer
    idle_warning: bool = False
    seconds_left: int | None = None
    reprint_seconds_left: int | None = None   # while waiting for the printer: how long before the refund
    serial: str | None = None                 # the printed document's, for the summary at the end
    text_size: TextSize = TextSize.NORMAL     # the citizen's choices, kept until the session ends
    high_contrast: bool = False
    audio_guidance: bool = False
    link: LinkState = LinkState.UNKNOWN       # whether central can be reached, as last seen
    help_called: bool = False                 # the help button was pressed: "an attendant has been called"
    # The technician's screens (the maintenance key turned): the PIN typed, its check, the lockout, the status.
    technician_pin_length: int = 0
    technician_checking: bool = False             # the PIN is being checked (slow on purpose)
    technician_tries_left: int | None = None      # after a wrong technician PIN: tries before the lockout
    technician_locked_s: int | None = None        # locked out after too many wrong PINs: seconds left
    technician_status: TechnicianStatus | None = None
    technician_action: TechnicianAction | None = None   # the last test print or light walk asked for
    technician_outcome: str = ""                  # its outcome: "under_way", "ok" or "failed"
    taken_out_of_service: bool = False            # by the technician, until put back in service
    # Central's: its staff's decision on service (a command), and the announcement the attract screen shows.
    out_of_service_by_central: bool = False
    announcement: Announcement | None = None
    catalogue_version: str = ""                   # of the catalogue shown ("" none)

    def __repr__(self) -> str:
        return "View(step=%s, language=%s)" % (self.step.name, self.language)


@dataclass(frozen=True)
class Timeouts:
    idle_s: float = 60.0
    warning_s: float = 15.0
    pin_s: float = 30.0
    reprint_s: float = 300.0         # how long a paid document that failed to print waits for the printer


def _new_id() -> str:
    return uuid.uuid4().hex


_REFERENCE_LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ23456789"    # no 0/O, 1/I/L, U: read aloud without doubt


def new_claim_reference() -> str:
    """A claim slip's reference: 12 random letters (about 59 bits), never derived from anything else."""
    letters = "".join(secrets.choice(_REFERENCE_LETTERS) for _ in range(12))
    return "CLM-%s-%s-%s" % (letters[:4], letters[4:8], letters[8:])


class Session:
    def __init__(
        self,
        *,
        languages: tuple[str, ...] = ("ar", "en"),
        timeouts: Timeouts = Timeouts(),
        device_id: str = "kiosk",
        governorate: str = "",
        audio_guidance: bool = False,
        catalogue_refresh_s: float = CATALOGUE_REFRESH_S,
        new_id: Callable[[], str] = _new_id,
        new_reference: Callable[[], str] = new_claim_reference,
        technician: TechnicianPolicy = TechnicianPolicy(),
    ) -> None:
        self._languages = languages
        self._timeouts = timeouts
        self._device_id = device_id
        self._governorate = governorate      # only the services offered here are shown
        self._guidance_default = audio_guidance   # every session starts with guidance on or off
        self._new_id = new_id
        self._new_reference = new_reference
        self._catalogue_refresh_s = catalogue_refresh_s
        self._link = LinkState.UNKNOWN       # what the outbox and central's answers last said of the link
        self.step = Step.STARTING
        self.language = languages[0]
        self._catalogue: Catalogue | None = None
        self._catalogue_asked_at = 0.0
        self._reader_present = True
        self._device_refused = False         # central refuses this kiosk: out of service until it serves it again
        self._door_open = False              # the cabinet's door: open, out of service until it is shut
        self._paper_low = False              # the printer's paper-low sensor, as last heard
        self._help_until = float("-inf")     # the help banner shows until then
        self._card_present = False
        self._orphans: dict[str, Transaction] = {}
        self._now = 0.0
        self._clear()
        self._init_technician(technician)
        self._init_commands()
        # Which method handles which event: one entry per event type.
        self._handlers: dict[type, Callable[[Any], list[Effect] | None]] = {
            Start: self._on_start,
            Tick: self._on_tick,
            Touched: self._on_touched,
            LanguageChosen: self._on_language_chosen,
            CatalogueLoaded: self._on_catalogue_loaded,
            LinkChanged: self._on_link_changed,
            ReaderLost: self._on_reader_lost,
            ReaderFound: self._on_reader_found,
            CardInserted: self._on_card_inserted,
            CardRemoved: self._on_card_removed,
            CardConnected: self._on_card_connected,
            PinDigit: self._on_pin_digit,
            PinErase: self._on_pin_erase,
            PinSubmit: self._on_pin_submit,
            CardAuthenticated: self._on_card_authenticated,
            PhotoRead: self._on_photo_read,
            ShowServices: self._on_show_services,
            Back: self._on_back,
            Cancel: self._on_cancel,
            CategoryChosen: self._on_category_chosen,
            ServiceChosen: self._on_service_chosen,
            TextSizeChosen: self._on_text_size_chosen,
            ContrastChosen: self._on_contrast_chosen,
            AudioGuidanceChosen: self._on_audio_guidance_chosen,
            Pay: self._on_pay,
            RetryPayment: self._on_retry_payment,
            EligibilityChecked: self._on_eligibility_checked,
            PrinterChecked: self._on_printer_checked,
            TerminalChecked: self._on_terminal_checked,
            PaymentPrompted: self._on_payment_prompted,
            PaymentSettled: self._on_payment_settled,
            DocumentAnswered: self._on_document_answered,
            PrintFinished: self._on_print_finished,
            OfflineAllowanceChecked: self._on_offline_allowance_checked,
            ClaimQueued: self._on_claim_queued,
            WaitingDocumentsFound: self._on_waiting_documents_found,
            DeviceRefused: self._on_device_refused,
            CabinetChanged: self._on_cabinet_changed,
            TechnicianPinDigit: self._on_technician_pin_digit,
            TechnicianPinErase: self._on_technician_pin_erase,
            TechnicianPinSubmit: self._on_technician_pin_submit,
            TechnicianPinChecked: self._on_technician_pin_checked,
            TechnicianStatusGathered: self._on_technician_status_gathered,
            TechnicianActionChosen: self._on_technician_action_chosen,
            TechnicianActionDone: self._on_technician_action_done,
            TechnicianLockoutLoaded: self._on_technician_lockout_loaded,
            CollectDocuments: self._on_collect_documents,
            DocumentsCollected: self._on_documents_collected,
            CommandTaken: self._on_command_taken,
            CommandRefused: self._on_command_refused,
            CommandFinished: self._on_command_finished,
            CentralDecisionLoaded: self._on_central_decision_loaded,
            AnnouncementsLoaded: self._on_announcements_loaded,
            VersionsAnnounced: self._on_versions_announced,
        }

    # ------------------------------------------------------------ the view

    def view(self) -> View:
        warning, seconds_left = self._idle_state()
        txn = self._txn
        return View(
            step=self.step,
            language=self.language,
            holder_name=self._identity.full_name(self.language) if self._identity else None,
            photo=self._photo,
            pin_length=len(self._pin),
            tries_left=self._tries_left,
            categories=self._catalogue.categories if self._catalogue else (),
            category=self._category,
            services=self._services_shown(),
            selected=self._txn.service if self._txn else self._selected,
            reason=self._reason,
            payment_reason=self._payment_reason,
            payment_method=txn.method if txn is not None and self.step is Step.PAYING else None,
            payment_prompt=txn.prompt if txn is not None and self.step is Step.PAYING else None,
            payment_qr=txn.qr if txn is not None and self.step is Step.PAYING else None,
            payment_seconds_left=self._wallet_seconds_left(),
            cancelling=txn is not None and txn.cancelling,
            fee_changed=self._fee_changed,
            needs_link=self.step is Step.CONFIRM and self._selected is not None
            and self._needs_link(self._selected),
            claim=self.step is Step.CONFIRM and self._selected is not None and self._offline()
            and not self._needs_link(self._selected),
            claim_reference=self._claim_reference,
            claim_slip_printed=self._slip_printed,
            waiting_documents=len(self._waiting),
            collected=self._collected,
            expiry=self._expiry,
            refunded=self._refunded,
            printed=self._printed,
            idle_warning=warning,
            seconds_left=seconds_left,
            reprint_seconds_left=self._reprint_seconds_left(),
            serial=self._serial,
            text_size=self._text_size,
            high_contrast=self._high_contrast,
            audio_guidance=self._audio_guidance,
            link=self._link,
            help_called=self._now < self._help_until,
            **self._technician_view(),
            out_of_service_by_central=self._out_of_service_by_central,
            announcement=self._announcement,
            catalogue_version=self._catalogue.version if self._catalogue is not None else "",
        )

    @property
    def orphans(self) -> tuple[str, ...]:
        """Transactions whose session ended before their last result came back."""
        return tuple(self._orphans)

    # ------------------------------------------------------------ events

    def handle(self, event: Event) -> list[Effect]:
        before = self.step
        effects: list[Effect] = self._handlers[type(event)](event) or []
        effects += self._technician_after(event)   # the maintenance key waits for nobody to be served
        effects += self._commands_after()            # central's commands wait for nobody to be served
        if self.step is Step.TAKE_CARD and before is not Step.TAKE_CARD:
            effects.append(Chime(ChimeKind.TAKE_CARD))     # by ear too: the card waits in the reader
        if self.step is not before:
            log.info("session.step from=%s to=%s", before.name, self.step.name)
        return effects

    def _on_start(self, event: Start) -> list[Effect]:
        self._now = event.now
        self._catalogue_asked_at = event.now
        return [LoadCatalogue()]

    def _on_tick(self, event: Tick) -> list[Effect]:
        self._now = event.now
        effects: list[Effect] = []
        if self._catalogue is None and self.step in (Step.OUT_OF_SERVICE, Step.STARTING) \
                and event.now - self._catalogue_asked_at >= CATALOGUE_RETRY_S:
            self._catalogue_asked_at = event.now
            effects.append(LoadCatalogue())
        elif self._catalogue is not None and self.step in (Step.ATTRACT, Step.OUT_OF_SERVICE) \
                and event.now - self._catalogue_asked_at >= self._catalogue_refresh_s:
            # Nobody is served: central's catalogue again (and its announcements with it), so that a changed
            # fee, or a link that went down or came back, is seen before the next citizen comes.
            self._catalogue_asked_at = event.now
            effects.append(LoadCatalogue())
        if self.step is Step.PRINT_WAITING and self._txn is not None:
            effects += self._wait_for_printer(self._txn)
        if self.step is Step.PAYING and self._txn is not None:
            effects += self._stop_expired_wallet(self._txn)
        if self.step in INTERACTIVE_STEPS:
            limit = self._timeouts.pin_s if self.step is Step.PIN_ENTRY else self._timeouts.idle_s
            if event.now - self._last_touch >= limit + self._timeouts.warning_s:
                reason = Reason.PIN_TIMEOUT if self.step is Step.PIN_ENTRY else Reason.IDLE_TIMEOUT
                log.info("session.timed_out step=%s", self.step.name)
                effects += self._end_session(reason)
        return effects

    def _on_touched(self, event: Touched) -> None:
        self._now = event.now
        self._last_touch = event.now

    def _on_language_chosen(self, event: LanguageChosen) -> None:
        if event.language not in self._languages:
            return
        self.language = event.language
        if self.step is Step.ATTRACT:
            self.step = Step.INSERT_CARD
            self._last_touch = self._now

    def _on_link_changed(self, event: LinkChanged) -> None:
        self._link = event.state

    def _on_catalogue_loaded(self, event: CatalogueLoaded) -> None:
        self._link = LinkState.OFFLINE if event.catalogue is None or event.cached else LinkState.ONLINE
        offered = event.catalogue.offered_in(self._governorate) if event.catalogue is not None else None
        if offered is not None and offered.services:
            self._catalogue = offered
        elif event.expired and self.step in (Step.STARTING, Step.ATTRACT, Step.OUT_OF_SERVICE):
            self._catalogue = None       # too old, or refused: out of service until central answers
        self._update_service_state()

    def _on_reader_lost(self, event: ReaderLost) -> list[Effect]:
        self._reader_present = False
        self._card_present = False
        effects = self._end_session(None) if self.step in CARD_STEPS else []
        self._update_service_state()
        return effects

    def _on_reader_found(self, event: ReaderFound) -> None:
        self._reader_present = True
        self._update_service_state()

    def _on_card_inserted(self, event: CardInserted) -> list[Effect]:
        self._card_present = True
        if self.step not in (Step.ATTRACT, Step.INSERT_CARD):
            return []
        self._session_id = self._new_id()
        self._last_touch = self._now
        self.step = Step.READING_CARD
        return [ConnectCard(self._session_id)]

    def _on_card_removed(self, event: CardRemoved) -> list[Effect]:
        self._card_present = False
        return self._end_session(None) if self.step in CARD_STEPS else []

    def _on_card_connected(self, event: CardConnected) -> list[Effect]:
        if event.session_id != self._session_id or self.step is not Step.READING_CARD:
            return []
        if event.result is ConnectResult.CONNECTED:
            self.step = Step.PIN_ENTRY
            self._last_touch = self._now
            return []
        if event.result is ConnectResult.NO_CARD:
            return self._end_session(None)
        return self._refuse_card(Reason.CARD_UNREADABLE)

    def _on_pin_digit(self, event: PinDigit) -> None:
        if self.step is Step.PIN_ENTRY and event.digit in "0123456789" and len(event.digit) == 1 \
                and len(self._pin) < PIN_MAX_DIGITS:
            self._pin.append(event.digit)

    def _on_pin_erase(self, event: PinErase) -> None:
        if self.step is Step.PIN_ENTRY and self._pin:
            self._pin.pop()

    def _on_pin_submit(self, event: PinSubmit) -> list[Effect]:
        if self.step is not Step.PIN_ENTRY or len(self._pin) < PIN_MIN_DIGITS:
            return []
        pin = "".join(self._pin)
        self._pin.clear()
        self.step = Step.VERIFYING
        return [Authenticate(self._session_id, pin)]

    def _on_card_authenticated(self, event: CardAuthenticated) -> list[Effect]:
        if event.session_id != self._session_id or self.step is not Step.VERIFYING:
            return []
        result = event.result
        log.info("session.card_verdict verdict=%s apdus=%d", result.verdict.name, result.apdu_count)
        if result.verdict is CardVerdict.VALID and result.identity is not None:
            self._identity = result.identity
            self._tries_left = None
            self.step = Step.IDENTITY
            self._last_touch = self._now
            waiting: list[Effect] = [] if self._offline() else [FindWaitingDocuments(self._session_id)]
            return [ReadPhoto(self._session_id)] + waiting
        if result.verdict is CardVerdict.WRONG_PIN:
            self._tries_left = result.tries_left
            self.step = Step.PIN_ENTRY
            self._last_touch = self._now
            return []
        if result.verdict is CardVerdict.EXPIRED and result.identity is not None:
            self._expiry = result.identity.date_of_expiry
        reason = _VERDICT_REASONS.get(result.verdict, Reason.CARD_UNREADABLE)
        return self._refuse_card(reason)

    def _on_photo_read(self, event: PhotoRead) -> None:
        if event.session_id == self._session_id and self._identity is not None:
            self._photo = event.photo

    def _on_show_services(self, event: ShowServices) -> None:
        if self.step is Step.IDENTITY:
            self.step = Step.CATALOGUE

    def _on_pay(self, event: Pay) -> list[Effect]:
        return self._pay(event.method) if self.step is Step.CONFIRM else []

    def _on_retry_payment(self, event: RetryPayment) -> list[Effect]:
        return self._pay(event.method) if self.step is Step.PAYMENT_DECLINED else []

    def _on_back(self, event: Back) -> None:
        if self.step is Step.CATALOGUE and self._category is not None:
            self._category = None
        elif self.step is Step.CONFIRM:
            self._selected = None
            self.step = Step.CATALOGUE
        elif self.step is Step.INSERT_CARD:
            self._to_attract()
        elif self.step is Step.PAYMENT_DECLINED:
            self._txn = None
            self._payment_reason = None
            self.step = Step.CATALOGUE

    def _on_cancel(self, event: Cancel) -> list[Effect]:
        if self.step is Step.INSERT_CARD:
            self._to_attract()
            return []
        if self.step is Step.PRINT_WAITING and self._txn is not None:
            return self._give_up_printing(self._txn)
        if self.step is Step.PAYING and self._txn is not None:
            return self._cancel_payment(self._txn)
        if self.step in INTERACTIVE_STEPS or self.step is Step.TAKE_CARD:
            return self._end_session(None)
        return []

    def _on_category_chosen(self, event: CategoryChosen) -> None:
        if self.step is not Step.CATALOGUE or self._catalogue is None:
            return
        self._category = self._catalogue.category(event.code) if event.code else None

    def _on_text_size_chosen(self, event: TextSizeChosen) -> None:
        self._text_size = TextSize(event.size)

    def _on_contrast_chosen(self, event: ContrastChosen) -> None:
        self._high_contrast = event.high

    def _on_audio_guidance_chosen(self, event: AudioGuidanceChosen) -> None:
        self._audio_guidance = event.on

    def _on_service_chosen(self, event: ServiceChosen) -> None:
        if self.step is not Step.CATALOGUE or self._catalogue is None:
            return
        service = self._catalogue.get(event.code)
        if service is not None:
            self._selected = service
            self._fee_changed = False
            self.step = Step.CONFIRM

    def _on_eligibility_checked(self, event: EligibilityChecked) -> list[Effect]:
        self._link = LinkState.OFFLINE if event.eligible is None else LinkState.ONLINE
        txn = self._live(event.txn_id)
        if txn is None or self.step is not Step.PREPARING:
            return []                                # nothing was charged yet
        if event.eligible is None and txn.service.offline.allows_claim(txn.service.fee):
            # Central did not answer, and the service may be claimed: the confirm screen offers the claim.
            self._txn = None
            self._selected = txn.service
            self.step = Step.CONFIRM
            self._last_touch = self._now
            return [Audit("claim.offered", txn.service.code)]
        if event.eligible is not True:
            self._txn = None
            reason = Reason.DOCUMENT_UNAVAILABLE if event.eligible is None else Reason.DOCUMENT_REFUSED
            return self._fail(reason, refunded=False)
        refresh: list[Effect] = []
        if event.catalogue_version and self._catalogue is not None \
                and event.catalogue_version != self._catalogue.version:
            refresh = [LoadCatalogue()]              # central's catalogue changed: shown from now on
        if event.fee is not None and event.fee != txn.service.fee:
            # The fee changed at central: the citizen confirms the new one before anything is charged.
            self._selected = dataclasses.replace(txn.service, fee=event.fee)
            self._txn = None
            self._fee_changed = True
            self.step = Step.CONFIRM
            self._last_touch = self._now
            return refresh + [Audit("transaction.fee_changed", txn.service.code)]
        txn.presence_id = event.presence_id
        return refresh + [CheckPrinter(txn.txn_id)]

    def _on_printer_checked(self, event: PrinterChecked) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is not None and self.step is Step.PRINT_WAITING:
            return self._reprint_if_ready(txn, event.ready)
        if txn is None or self.step is not Step.PREPARING:
            return []                                # nothing was charged yet
        if not event.ready:
            self._txn = None
            return self._fail(Reason.PRINTER_UNAVAILABLE, refunded=False)
        return [CheckTerminal(txn.txn_id)]

    def _on_terminal_checked(self, event: TerminalChecked) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is None or self.step is not Step.PREPARING:
            return []                                # nothing was charged yet
        if event.state is not TerminalState.READY:
            self._txn = None
            return self._fail(Reason.PAYMENT_UNAVAILABLE, refunded=False)
        self.step = Step.PAYING
        txn.charged = True
        txn.prompt = PromptKind.SCAN_QR if txn.method is PaymentMethod.WALLET else PromptKind.PRESENT_CARD
        fee = txn.service.fee
        return [Charge(txn.txn_id, fee, txn.sale_id, txn.request_id, txn.service.code, txn.method,
                       label="%s  %s %s" % (txn.service.name("en"), fee.major_text(), fee.currency),
                       offline=txn.claim)]

    def _on_payment_prompted(self, event: PaymentPrompted) -> None:
        txn = self._live(event.txn_id)
        if txn is None or self.step is not Step.PAYING:
            return
        prompt = event.prompt
        txn.prompt = prompt.kind
        if prompt.kind is PromptKind.SCAN_QR and prompt.qr:
            txn.qr = prompt.qr
            txn.qr_expires_at = self._now + prompt.expires_in_s if prompt.expires_in_s is not None else None

    def _on_payment_settled(self, event: PaymentSettled) -> list[Effect]:
        outcome = event.outcome
        txn = self._live(event.txn_id)
        if txn is None:
            return self._settle_orphan(event.txn_id, payment=outcome)
        txn.qr = None
        if outcome.status is PaymentStatus.APPROVED:
            txn.payment_id = outcome.payment_id
            txn.receipt = outcome.receipt
            if txn.cancelling:
                # Approved before the terminal heard the cancel: the citizen still gets their money back.
                self._txn = None
                return [Settle(txn.txn_id, "cancelled")] + self._end_session(None)
            txn.language = self.language
            if txn.claim:
                self.step = Step.CLAIMING
                return [QueueClaim(txn.txn_id, txn.request_id, txn.service.code, txn.language,
                                   outcome.payment_id or "", txn.reference)]
            self.step = Step.ISSUING
            return [IssueDocument(txn.txn_id, txn.request_id, txn.service.code, txn.presence_id, txn.language,
                                  outcome.payment_id or "")]
        if outcome.status is PaymentStatus.UNKNOWN:
            # The answer was lost: the journal and the reconciler find out and give it back.
            self._txn = None
            return [Settle(txn.txn_id, "answer_lost")] + self._fail(Reason.PAYMENT_FAILED, refunded=True)
        txn.charged = False
        if txn.cancelling:
            self._txn = None
            return self._end_session(None)
        if outcome.status is PaymentStatus.FAILED and outcome.reason in _TERMINAL_DOWN:
            self._txn = None
            return self._fail(Reason.PAYMENT_UNAVAILABLE, refunded=False)
        # Declined, or the card or wallet did not go through: another card, the other method, or cancel.
        self._payment_reason = outcome.reason or PaymentReason.REFUSED
        self.step = Step.PAYMENT_DECLINED
        self._last_touch = self._now
        return [Audit("payment.declined", self._payment_reason.value)]

    def _on_document_answered(self, event: DocumentAnswered) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is None:
            return self._settle_orphan(event.txn_id, document=event)
        if event.document is None:
            self._txn = None
            reason = Reason.DOCUMENT_REFUSED if event.refused else Reason.DOCUMENT_UNAVAILABLE
            return [Settle(txn.txn_id, reason.value)] + self._fail(reason, refunded=True)
        txn.document = event.document
        self.step = Step.PRINTING
        return [PrintDocument(txn.txn_id, event.document, txn.service, txn.payment_id or "", txn.receipt,
                              txn.language)]

    def _on_print_finished(self, event: PrintFinished) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is None:
            return self._settle_orphan(event.txn_id, printed=event.outcome)
        alerts: list[Effect] = [Alert("printer.paper_near_end")] \
            if event.outcome.status is PrinterStatus.PAPER_NEAR_END else []
        if txn.claimed:
            # The claim is kept whatever the slip did: the end screen shows its reference too.
            self._txn = None
            self._slip_printed = event.outcome.result is PrintResult.PRINTED
            self.step = Step.TAKE_CARD
            chime: list[Effect] = [Chime(ChimeKind.TAKE_DOCUMENT)] if self._slip_printed else []
            return alerts + [Audit("claim.slip_printed" if self._slip_printed else "claim.slip_not_printed",
                                   txn.service.code)] + chime
        if event.outcome.result is PrintResult.PRINTED:
            self._txn = None
            self._printed = True
            self._serial = txn.document.serial if txn.document is not None else None
            self.step = Step.TAKE_CARD
            return alerts + [Audit("document.printed", txn.service.code), Chime(ChimeKind.TAKE_DOCUMENT)]
        if txn.document is None or self._timeouts.reprint_s <= 0:
            self._txn = None
            return alerts + [Settle(txn.txn_id, Reason.PRINT_FAILED.value)] + self._fail(
                Reason.PRINT_FAILED, refunded=True)
        # Paid and issued: the document waits for the printer (paper, cable, power) for a while.
        txn.print_failed_at = self._now
        txn.partly_printed = txn.partly_printed or event.outcome.bytes_sent > 0
        self.step = Step.PRINT_WAITING
        return alerts + [Alert("printer.failed_mid_document"),
                         Audit("document.print_failed", event.outcome.status.name.lower())]

    def _on_offline_allowance_checked(self, event: OfflineAllowanceChecked) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is None or self.step is not Step.PREPARING:
            return []                                # nothing was charged yet
        if not event.allowed:
            self._txn = None
            return self._fail(Reason.OFFLINE_LIMIT, refunded=False)
        return [CheckPrinter(txn.txn_id)]

    def _on_claim_queued(self, event: ClaimQueued) -> list[Effect]:
        txn = self._live(event.txn_id)
        if txn is None:
            return self._settle_orphan(event.txn_id, claim_kept=event.kept)
        if not event.kept:
            self._txn = None
            return [Settle(txn.txn_id, "claim_not_kept")] + self._fail(Reason.DOCUMENT_UNAVAILABLE, refunded=True)
        txn.claimed = True
        self._claim_reference = txn.reference
        self.step = Step.PRINTING
        return [Audit("claim.kept", txn.service.code),
                PrintClaimSlip(txn.txn_id, txn.service, txn.reference, txn.payment_id or "", txn.receipt,
                               txn.language)]

    def _on_waiting_documents_found(self, event: WaitingDocumentsFound) -> None:
        if event.session_id == self._session_id and self._identity is not None and event.documents:
            self._waiting = tuple(event.documents)

    def _on_collect_documents(self, event: CollectDocuments) -> list[Effect]:
        if self.step not in (Step.IDENTITY, Step.CATALOGUE) or not self._waiting:
            return []
        self.step = Step.COLLECTING
        return [PrintCollected(self._session_id, self._waiting, self.language)]

    def _on_documents_collected(self, event: DocumentsCollected) -> list[Effect]:
        if event.session_id != self._session_id or self.step is not Step.COLLECTING:
            return []
        self._collected = self._collected + tuple(event.collected)
        self._waiting = tuple(d for d in self._waiting if d.serial not in event.collected)
        alerts: list[Effect] = [Alert("printer.paper_near_end")] \
            if event.outcome.status is PrinterStatus.PAPER_NEAR_END else []
        audit = [Audit("claim.collected", str(len(event.collected)))] \
            + ([Chime(ChimeKind.TAKE_DOCUMENT)] if event.collected else [])
        if event.outcome.result is not PrintResult.PRINTED or self._waiting:
            return alerts + audit + self._fail(Reason.COLLECTION_FAILED, refunded=False)
        self.step = Step.TAKE_CARD
        return alerts + audit

    # ------------------------------------------------------------ helpers

    def _clear(self) -> None:
        """Forget everything about the citizen."""
        self._session_id = ""
        self._identity: Identity | None = None
        self._photo: bytes | None = None
        self._pin: list[str] = []
        self._tries_left: int | None = None
        self._selected: Service | None = None
        self._txn: Transaction | None = None
        self._reason: Reason | None = None
        self._payment_reason: PaymentReason | None = None
        self._fee_changed = False
        self._expiry: date | None = None
        self._refunded = False
        self._printed = False
        self._serial: str | None = None
        self._category: Category | None = None
        self._text_size = TextSize.NORMAL
        self._high_contrast = False
        self._audio_guidance = self._guidance_default
        self._claim_reference: str | None = None
        self._slip_printed = False
        self._waiting: tuple[IssuedDocument, ...] = ()
        self._collected: tuple[str, ...] = ()
        self._last_touch = self._now

    def _idle_state(self) -> tuple[bool, int | None]:
        if self.step not in INTERACTIVE_STEPS:
            return False, None
        limit = self._timeouts.pin_s if self.step is Step.PIN_ENTRY else self._timeouts.idle_s
        quiet = self._now - self._last_touch
        if quiet < limit:
            return False, None
        left = limit + self._timeouts.warning_s - quiet
        return True, max(0, int(left + 0.999))

    def _on_cabinet_changed(self, event: CabinetChanged) -> list[Effect]:
        """The cabinet's inputs: each has its own handler (the door, the technician's key, help, paper)."""
        log.info("session.cabinet input=%s", event.what.name)
        if event.what in (CabinetInput.MAINTENANCE_ON, CabinetInput.MAINTENANCE_OFF):
            return self._on_maintenance_key(event.what is CabinetInput.MAINTENANCE_ON)
        if event.what in (CabinetInput.DOOR_OPENED, CabinetInput.DOOR_CLOSED):
            return self._on_door(event.what is CabinetInput.DOOR_OPENED)
        if event.what is CabinetInput.HELP_PRESSED:
            return self._on_help_pressed()
        if event.what in (CabinetInput.PAPER_LOW, CabinetInput.PAPER_OK):
            return self._on_paper(event.what is CabinetInput.PAPER_LOW)
        return []

    def _on_door(self, opened: bool) -> list[Effect]:
        """Opened: any session ends as if the card were pulled (the money rules hold: what a charge is
        owed is settled), and the kiosk is out of service until the door is shut. A technician at the
        technician screen stays there. Shut: in service again, a card left in the reader asked back first."""
        if opened == self._door_open:
            return []
        self._door_open = opened
        if not opened:
            self._update_service_state()
            if self.step is Step.ATTRACT and self._card_present and self._reader_present:
                self.step = Step.TAKE_CARD
            return [Audit("cabinet.door_closed", self.step.name.lower())]
        effects: list[Effect] = [Audit("cabinet.door_opened", self.step.name.lower()), Alert("cabinet.door_opened")]
        if self.step in _TECHNICIAN_STEPS:
            return effects
        if self.step in CARD_STEPS:
            effects += self._end_session(Reason.DOOR_OPEN)
        if self.step is Step.TAKE_CARD:
            self.step = Step.OUT_OF_SERVICE      # the card stays where it is: asked back once the door is shut
        self._update_service_state()
        return effects

    def _on_help_pressed(self) -> list[Effect]:
        """An attendant is alerted and the screen says so for a while; pressed again meanwhile, once."""
        shown = self._now < self._help_until
        self._help_until = self._now + HELP_SHOWN_S
        return [] if shown else [Alert("cabinet.help"), Audit("cabinet.help", self.step.name.lower())]

    def _on_paper(self, low: bool) -> list[Effect]:
        if low == self._paper_low:
            return []
        self._paper_low = low
        return [Alert("printer.paper_low")] if low else [Audit("printer.paper_ok")]

    def _on_device_refused(self, event: DeviceRefused) -> None:
        self._device_refused = event.reason is not None
        self._update_service_state()

    def _update_service_state(self) -> None:
        if self._device_refused:
            reason = Reason.DEVICE_REFUSED
        elif not self._reader_present:
            reason = Reason.NO_READER
        elif self._catalogue is None:
            reason = Reason.NO_CATALOGUE
        else:
            reason = None
        if self._out_of_service_by_central:
            reason = Reason.CENTRAL_STAFF       # central's staff's decision, until they put it back
        if self._out_of_service_by_technician:
            reason = Reason.TECHNICIAN          # the technician's decision, until they put it back
        if self._door_open:
            reason = Reason.DOOR_OPEN           # nobody is served with the cabinet open
        if reason is not None:
            if self.step in (Step.STARTING, Step.ATTRACT, Step.INSERT_CARD, Step.OUT_OF_SERVICE):
                self.step = Step.OUT_OF_SERVICE
                self._reason = reason
        elif self.step in (Step.STARTING, Step.OUT_OF_SERVICE):
            self.step = Step.ATTRACT
            self._reason = None

    def _services_shown(self) -> tuple[Service, ...]:
        if self._catalogue is None:
            return ()
        if self._category is not None:
            return self._catalogue.in_category(self._category.code)
        return self._catalogue.most_asked() or self._catalogue.services

    def _reprint_seconds_left(self) -> int | None:
        txn = self._txn
        if self.step is not Step.PRINT_WAITING or txn is None or txn.print_failed_at is None:
            return None
        return max(0, int(txn.print_failed_at + self._timeouts.reprint_s - self._now + 0.999))

    def _wait_for_printer(self, txn: Transaction) -> list[Effect]:
        """A tick while a reprint waits: give up after the window, else ask the printer now and then."""
        if txn.print_failed_at is not None and self._now - txn.print_failed_at >= self._timeouts.reprint_s:
            return self._give_up_printing(txn)
        if txn.printer_asked or self._now - txn.printer_asked_at < PRINTER_RECHECK_S:
            return []
        txn.printer_asked = True
        txn.printer_asked_at = self._now
        return [CheckPrinter(txn.txn_id)]

    def _reprint_if_ready(self, txn: Transaction, ready: bool) -> list[Effect]:
        txn.printer_asked = False
        if not ready or txn.document is None:
            return []
        self.step = Step.PRINTING
        log.info("session.reprint copy=%s", txn.partly_printed)
        return [PrintDocument(txn.txn_id, txn.document, txn.service, txn.payment_id or "", txn.receipt,
                              txn.language, copy=txn.partly_printed)]

    def _give_up_printing(self, txn: Transaction) -> list[Effect]:
        """The printer did not come back in time, or the citizen would not wait: the money rules."""
        self._txn = None
        return [Settle(txn.txn_id, Reason.PRINT_FAILED.value)] + self._fail(Reason.PRINT_FAILED, refunded=True)

    def _live(self, txn_id: str) -> Transaction | None:
        return self._txn if self._txn is not None and self._txn.txn_id == txn_id else None

    def _offline(self) -> bool:
        return self._link is LinkState.OFFLINE

    def _needs_link(self, service: Service) -> bool:
        """Central cannot be reached, and the service may not be asked for without it."""
        return self._offline() and not service.offline.allows_claim(service.fee)

    def _pay(self, method: PaymentMethod) -> list[Effect]:
        service = self._selected
        if service is None or self._identity is None:
            return []
        if self._needs_link(service):
            return [Audit("transaction.needs_link", service.code)]     # the confirm screen says so
        if self._offline():
            return self._claim(service, method)
        txn_id = self._new_id()
        self._txn = Transaction(txn_id=txn_id, service=service, sale_id=txn_id, method=method,
                                request_id="%s-%s" % (self._device_id, txn_id))
        self._payment_reason = None
        self._fee_changed = False
        self.step = Step.PREPARING
        return [CheckEligibility(txn_id, service.code, service.fee,
                                 self._catalogue.version if self._catalogue else "")]

    def _claim(self, service: Service, method: PaymentMethod) -> list[Effect]:
        """Central cannot be reached and the service may be claimed: the day's offline cap first."""
        if method is not PaymentMethod.CARD:
            return []                 # paid at the terminal by card, as card-present offline payments are
        txn_id = self._new_id()
        self._txn = Transaction(txn_id=txn_id, service=service, sale_id=txn_id, method=method,
                                request_id="%s-%s" % (self._device_id, txn_id), claim=True,
                                reference=self._new_reference())
        self._payment_reason = None
        self._fee_changed = False
        self.step = Step.PREPARING
        cap = Money(service.fee.currency, service.offline.daily_cap_minor)
        return [Audit("claim.asked", service.code), CheckOfflineAllowance(txn_id, service.fee, cap)]

    def _cancel_payment(self, txn: Transaction) -> list[Effect]:
        """Cancel pressed while the terminal waits: tell it to stop; its answer ends the session."""
        if txn.cancelling:
            return []
        txn.cancelling = True
        return [AbortPayment(txn.txn_id)]

    def _stop_expired_wallet(self, txn: Transaction) -> list[Effect]:
        """A wallet request well past its expiry: the terminal should have said so; tell it to stop."""
        if txn.qr_expires_at is None or txn.cancelling or self._now < txn.qr_expires_at + WALLET_GRACE_S:
            return []
        txn.cancelling = True
        return [AbortPayment(txn.txn_id)]

    def _wallet_seconds_left(self) -> int | None:
        txn = self._txn
        if self.step is not Step.PAYING or txn is None or txn.qr_expires_at is None:
            return None
        return max(0, int(txn.qr_expires_at - self._now + 0.999))

    def _refuse_card(self, reason: Reason) -> list[Effect]:
        self._identity = None
        self._photo = None
        self._reason = reason
        self.step = Step.CARD_REFUSED
        self._last_touch = self._now
        return [Audit("card.refused", reason.value)]

    def _fail(self, reason: Reason, *, refunded: bool) -> list[Effect]:
        self._reason = reason
        self._refunded = refunded
        self.step = Step.FAILED
        self._last_touch = self._now
        return [Audit("transaction.failed", reason.value)]

    def _end_session(self, reason: Reason | None) -> list[Effect]:
        """End at once: drop what was read; keep any money in flight as an orphan."""
        effects: list[Effect] = []
        if self._txn is not None and self.step is Step.PRINT_WAITING:
            # Nothing is on its way that would settle it later, and no document prints for nobody.
            effects += [Settle(self._txn.txn_id, "card_removed"), Audit("transaction.refunded_after_card_removed")]
        elif self._txn is not None and self._txn.charged and not self._txn.claimed:
            self._orphans[self._txn.txn_id] = self._txn
            log.info("session.orphaned_transaction txn=%s", self._txn.txn_id)
            if self.step is Step.PAYING and not self._txn.cancelling:
                effects.append(AbortPayment(self._txn.txn_id))     # nobody is there to pay any more
        had_card_session = bool(self._session_id)
        choices = (self._text_size, self._high_contrast, self._audio_guidance)
        self._clear()
        if had_card_session:
            effects.append(ReleaseCard())
        if self._card_present and self._reader_present:
            # The card is still in the reader: ask for it back before anything else, as the
            # citizen set the screen up (their choices go with the card).
            self.step = Step.TAKE_CARD
            self._reason = reason
            self._text_size, self._high_contrast, self._audio_guidance = choices
        else:
            self._to_attract()
        return effects

    def _to_attract(self) -> None:
        self.step = Step.ATTRACT
        self.language = self._languages[0]
        self._update_service_state()

    def _settle_orphan(self, txn_id: str, *, payment: PaymentOutcome | None = None,
                       document: DocumentAnswered | None = None,
                       printed: PrintOutcome | None = None, claim_kept: bool | None = None) -> list[Effect]:
        """A late result for a transaction whose session has ended."""
        txn = self._orphans.get(txn_id)
        if txn is None:
            return []
        del self._orphans[txn_id]
        if claim_kept:
            return [Audit("claim.kept_after_card_removed", txn.service.code)]   # central owes the document
        if payment is not None and payment.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED):
            return []                                # nothing was charged
        if printed is not None and printed.result is PrintResult.PRINTED:
            return [Audit("document.printed", txn.service.code), Chime(ChimeKind.TAKE_DOCUMENT)]
        return [Settle(txn_id, "card_removed"), Audit("transaction.refunded_after_card_removed")]

    # ------------------------------------------------------------ the technician (the maintenance key)
    #
    # The key turned on asks for the technician screen: at once when nobody is served (attract, insert
    # card, out of service), else once the citizen's session has ended (a payment is never cut short).
    # A PIN of 6 to 12 digits opens it, checked on a worker against the configured hash; after
    # `max_tries` wrong PINs no PIN is taken for `lockout_s`, however often the key is turned. The key
    # turned off goes back to the citizens' screens, or out of service if the technician took the kiosk
    # out of service. Every PIN attempt and every action is audited (never the PIN). The wrong tries and
    # the lockout are kept on the disk after each change (`SaveTechnicianLockout`) and told back at start
    # (`TechnicianLockoutLoaded`), so that a restart clears neither; both count in seconds left, the
    # runtime converting to and from the wall clock the disk keeps.

    def _init_technician(self, policy: TechnicianPolicy) -> None:
        self._technician_policy = policy
        self._maintenance_key = False              # the key switch is on
        self._out_of_service_by_technician = False
        self._technician_pin: list[str] = []
        self._technician_attempt: str | None = None     # a PIN check on its way
        self._technician_failures = 0              # wrong PINs since the last right one or the last lockout
        self._technician_locked_until = float("-inf")
        self._technician_status: TechnicianStatus | None = None
        self._technician_status_asked = False      # a status gathering is on its way
        self._technician_status_at = float("-inf")
        self._technician_action: TechnicianAction | None = None
        self._technician_outcome = ""

    def _technician_view(self) -> dict[str, Any]:
        locked = self._technician_locked_until - self._now
        at_pin = self.step is Step.TECHNICIAN_PIN
        return dict(
            technician_pin_length=len(self._technician_pin) if at_pin else 0,
            technician_checking=at_pin and self._technician_attempt is not None,
            technician_tries_left=self._technician_policy.max_tries - self._technician_failures
            if at_pin and self._technician_failures else None,
            technician_locked_s=int(locked + 0.999) if at_pin and locked > 0 else None,
            technician_status=self._technician_status if self.step is Step.TECHNICIAN else None,
            technician_action=self._technician_action if self.step is Step.TECHNICIAN else None,
            technician_outcome=self._technician_outcome if self.step is Step.TECHNICIAN else "",
            taken_out_of_service=self._out_of_service_by_technician,
        )

    def _technician_locked(self) -> bool:
        return self._now < self._technician_locked_until

    def _on_maintenance_key(self, on: bool) -> list[Effect]:
        self._maintenance_key = on
        if on:
            waiting = self.step not in _NOBODY_SERVED and self.step not in _TECHNICIAN_STEPS
            return [Audit("technician.key_on", "waiting_for_session_end" if waiting else "")]
        if self.step not in _TECHNICIAN_STEPS:
            return [Audit("technician.key_off", "")]
        # Back to the citizens: the attract screen, or out of service (the technician's, or any other reason).
        self._leave_technician()
        return [Audit("technician.key_off", "out_of_service" if self._out_of_service_by_technician else "")] \
            + self._end_session(None)

    def _leave_technician(self) -> None:
        self._technician_pin.clear()
        self._technician_status = None
        self._technician_action = None
        self._technician_outcome = ""

    def _technician_after(self, event: Event) -> list[Effect]:
        """After every event: the key on and nobody served goes to the PIN; the status is kept fresh."""
        if self._maintenance_key and self.step in _NOBODY_SERVED:
            log.info("session.technician_pin_asked")
            self._leave_technician()
            self.step = Step.TECHNICIAN_PIN
            return []
        if self.step is Step.TECHNICIAN and isinstance(event, Tick) and not self._technician_status_asked \
                and self._now - self._technician_status_at >= TECHNICIAN_STATUS_REFRESH_S:
            return self._gather_technician_status()
        return []

    def _gather_technician_status(self) -> list[Effect]:
        if self._technician_status_asked:
            return []
        self._technician_status_asked = True
        self._technician_status_at = self._now
        return [GatherTechnicianStatus()]

    def _on_technician_pin_digit(self, event: TechnicianPinDigit) -> None:
        if self.step is Step.TECHNICIAN_PIN and self._technician_attempt is None and not self._technician_locked() \
                and len(event.digit) == 1 and event.digit in "0123456789" \
                and len(self._technician_pin) < TECHNICIAN_PIN_MAX_DIGITS:
            self._technician_pin.append(event.digit)

    def _on_technician_pin_erase(self, event: TechnicianPinErase) -> None:
        if self.step is Step.TECHNICIAN_PIN and self._technician_pin:
            self._technician_pin.pop()

    def _on_technician_pin_submit(self, event: TechnicianPinSubmit) -> list[Effect]:
        if self.step is not Step.TECHNICIAN_PIN or self._technician_attempt is not None:
            return []
        if self._technician_locked():
            self._technician_pin.clear()
            return [Audit("technician.pin_locked_out", "%ds_left" % int(self._technician_locked_until - self._now
                                                                        + 0.999))]
        if len(self._technician_pin) < TECHNICIAN_PIN_MIN_DIGITS:
            return []
        pin = "".join(self._technician_pin)
        self._technician_pin.clear()
        self._technician_attempt = self._new_id()
        return [CheckTechnicianPin(self._technician_attempt, pin)]

    def _on_technician_pin_checked(self, event: TechnicianPinChecked) -> list[Effect]:
        if event.attempt_id != self._technician_attempt:
            return []
        self._technician_attempt = None
        # Counted even when the key was turned off meanwhile: turning the key never resets the count.
        if event.accepted:
            self._technician_failures = 0
            kept = SaveTechnicianLockout(0, 0.0)
            if self.step is not Step.TECHNICIAN_PIN:
                return [Audit("technician.pin_accepted", "key_off"), kept]
            self.step = Step.TECHNICIAN
            self._technician_status_asked = False
            return [Audit("technician.pin_accepted", ""), kept] + self._gather_technician_status()
        self._technician_failures += 1
        policy = self._technician_policy
        if self._technician_failures < policy.max_tries:
            return [Audit("technician.pin_refused", "tries_left:%d" % (policy.max_tries - self._technician_failures)),
                    SaveTechnicianLockout(self._technician_failures, 0.0)]
        self._technician_failures = 0          # after the lockout, the tries are counted from zero
        self._technician_locked_until = self._now + policy.lockout_s
        log.warning("session.technician_locked_out seconds=%d", int(policy.lockout_s))
        return [Audit("technician.pin_refused", "tries_left:0"),
                Audit("technician.pin_lockout", "%ds" % int(policy.lockout_s)),
                SaveTechnicianLockout(0, policy.lockout_s)]

    def _on_technician_lockout_loaded(self, event: TechnicianLockoutLoaded) -> None:
        """What the last run kept: its wrong tries (one short of a lockout at most, should `max_tries`
        have been lowered since) and what is left of its lockout, never more than one whole lockout (a
        wall clock set back while the kiosk was off must not stretch it)."""
        policy = self._technician_policy
        tries = min(max(0, event.tries), max(0, policy.max_tries - 1))
        self._technician_failures = max(self._technician_failures, tries)
        left = min(max(0.0, event.locked_s), policy.lockout_s)
        if left > 0:
            self._technician_locked_until = max(self._technician_locked_until, event.now + left)
            log.warning("session.technician_still_locked_out seconds=%d", int(left + 0.999))

    def _on_technician_status_gathered(self, event: TechnicianStatusGathered) -> None:
        self._technician_status_asked = False
        if self.step is Step.TECHNICIAN:
            self._technician_status = event.status

    def _on_technician_action_chosen(self, event: TechnicianActionChosen) -> list[Effect]:
        if self.step is not Step.TECHNICIAN:
            return []
        action = event.action
        audit = Audit("technician." + action.value, "asked")
        if action is TechnicianAction.REFRESH:
            self._technician_status_asked = False
            return [audit] + self._gather_technician_status()
        if action in (TechnicianAction.TEST_PRINT, TechnicianAction.LIGHT_WALK):
            if self._technician_outcome == "under_way":
                return [Audit("technician." + action.value, "busy")]   # one at a time
            self._technician_action = action
            self._technician_outcome = "under_way"
            return [audit, PrintTestPage() if action is TechnicianAction.TEST_PRINT else WalkLights()]
        if action is TechnicianAction.RESTART:
            return [audit, RestartApp()]
        if action is TechnicianAction.REBOOT:
            return [audit, RebootDevice()]
        self._out_of_service_by_technician = action is TechnicianAction.OUT_OF_SERVICE
        return [Audit("technician." + action.value, "")]

    def _on_technician_action_done(self, event: TechnicianActionDone) -> list[Effect]:
        if self._technician_action is event.action and self._technician_outcome == "under_way":
            self._technician_outcome = "ok" if event.ok else "failed"
        effects: list[Effect] = [Audit("technician." + event.action.value, "ok" if event.ok else "failed")]
        if self.step is Step.TECHNICIAN and event.action is TechnicianAction.TEST_PRINT:
            effects += self._gather_technician_status()     # the printer's status after the page
        return effects

    # ------------------------------------------------------------ central's commands and announcements
    #
    # A command taken (kiosk/commands.py: checked and kept in the ledger) waits until nobody is served
    # (the attract screen, or out of service: never in a citizen's session, nor while a technician has
    # the kiosk), then is carried out, one at a time. Out of service and back in service are central's
    # decision, beside the technician's (either keeps the kiosk out of service; central's outlives a
    # restart: `CentralDecisionLoaded`); resync has the runtime deliver the outbox and fetch the catalogue
    # (and the announcements with it) now, the catalogue told before the result; reboot, selftest and
    # collect-logs are the runtime's. A command whose time ran out while it waited is refused as expired.
    # Every command taken, refused, started and done is audited, and what became of it is a
    # `FinishCommand` (the ledger, then central). A catalogue or announcements version central named that
    # is not the one shown is fetched the same way, between sessions: a fee changed at central is the fee
    # the next citizen confirms.

    def _init_commands(self) -> None:
        self._out_of_service_by_central = False
        self._commands: list[tuple[Command, float]] = []     # taken, waiting: (command, deadline on our clock)
        self._command_running: Command | None = None         # the runtime is carrying it out
        self._announcement: Announcement | None = None
        self._announcements_version = ""
        self._stale = False                                  # central named versions not shown: fetch anew

    def _on_command_taken(self, event: CommandTaken) -> list[Effect]:
        self._commands.append((event.command, self._now + event.seconds_left))
        return [Audit("command.taken", event.command.action.value)]

    def _on_command_refused(self, event: CommandRefused) -> list[Effect]:
        return [Audit("command.refused", audit_detail(event.action, event.reason.value)),
                FinishCommand(event.command_id, event.action, CommandOutcome.REFUSED, event.reason.value,
                              taken=event.taken)]

    def _on_command_finished(self, event: CommandFinished) -> list[Effect]:
        command = self._command_running
        if command is None or command.command_id != event.command_id:
            return []
        self._command_running = None
        if event.ok:
            return self._finish_command(command, CommandOutcome.DONE)
        return self._finish_command(command, CommandOutcome.REFUSED, (event.reason or Refusal.FAILED).value)

    def _on_central_decision_loaded(self, event: CentralDecisionLoaded) -> None:
        self._out_of_service_by_central = event.out_of_service
        self._update_service_state()

    def _on_announcements_loaded(self, event: AnnouncementsLoaded) -> None:
        self._announcement = event.announcement
        self._announcements_version = event.version

    def _on_versions_announced(self, event: VersionsAnnounced) -> None:
        if event.catalogue and (self._catalogue is None or event.catalogue != self._catalogue.version):
            self._stale = True
        if event.announcements and event.announcements != self._announcements_version:
            self._stale = True

    def _commands_after(self) -> list[Effect]:
        """After every event: what central asked for, carried out while nobody is served."""
        if self.step not in _BETWEEN_SESSIONS:
            return []
        effects: list[Effect] = []
        if self._stale:
            self._stale = False
            self._catalogue_asked_at = self._now
            effects.append(LoadCatalogue())
        while self._commands and self._command_running is None and self.step in _BETWEEN_SESSIONS:
            command, deadline = self._commands.pop(0)
            if self._now >= deadline:
                effects += self._finish_command(command, CommandOutcome.REFUSED, Refusal.EXPIRED.value)
            else:
                effects += self._carry_out_command(command)
        return effects

    def _carry_out_command(self, command: Command) -> list[Effect]:
        action = command.action
        if action in (CommandAction.OUT_OF_SERVICE, CommandAction.IN_SERVICE):
            self._out_of_service_by_central = action is CommandAction.OUT_OF_SERVICE
            self._update_service_state()
            # Back in service, but out of service still for a reason of its own: central hears which.
            still = self._reason.value if action is CommandAction.IN_SERVICE and self._reason is not None \
                and self.step is Step.OUT_OF_SERVICE else None
            return self._finish_command(command, CommandOutcome.DONE, still)
        self._command_running = command
        if action is CommandAction.RESYNC:
            self._catalogue_asked_at = self._now       # the runtime fetches it with the resync
        return [Audit("command.started", action.value), RunCommand(command)]

    def _finish_command(self, command: Command, outcome: CommandOutcome, reason: str | None = None) -> list[Effect]:
        event = "command.done" if outcome is CommandOutcome.DONE else "command.refused"
        return [Audit(event, audit_detail(command.action.value, reason)),
                FinishCommand(command.command_id, command.action.value, outcome, reason)]


# Nobody is served: the maintenance key takes the kiosk at once.
_NOBODY_SERVED = frozenset({Step.ATTRACT, Step.INSERT_CARD, Step.OUT_OF_SERVICE})
# Between two citizens (and no technician at the kiosk): central's commands are carried out.
_BETWEEN_SESSIONS = frozenset({Step.ATTRACT, Step.OUT_OF_SERVICE})
_TECHNICIAN_STEPS = frozenset({Step.TECHNICIAN_PIN, Step.TECHNICIAN})
TECHNICIAN_STATUS_REFRESH_S = 10.0      # the technician screen's status, gathered again this often
