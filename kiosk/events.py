"""Events into the session: what the citizen did, what a device or central answered."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from kiosk.ports.cabinet import CabinetInput
from kiosk.ports.card_reader import CardReadResult, ConnectResult
from kiosk.money import Money
from kiosk.ports.outbox import LinkState
from kiosk.ports.payment_terminal import PaymentMethod, PaymentOutcome, PaymentPrompt, TerminalState
from kiosk.ports.receipt_printer import PrintOutcome
from kiosk.catalogue import Catalogue
from kiosk.commands import (  # central's commands and announcements: their events are theirs
    AnnouncementsLoaded, CentralDecisionLoaded, CommandFinished, CommandRefused, CommandTaken,
    VersionsAnnounced,
)
from kiosk.documents import IssuedDocument
from kiosk.technician import TechnicianAction, TechnicianStatus


@dataclass(frozen=True)
class Start:
    now: float


@dataclass(frozen=True)
class Tick:
    now: float


@dataclass(frozen=True)
class Touched:
    now: float


@dataclass(frozen=True)
class LanguageChosen:
    language: str


@dataclass(frozen=True)
class CardInserted:
    pass


@dataclass(frozen=True)
class CardRemoved:
    pass


@dataclass(frozen=True)
class ReaderLost:
    pass


@dataclass(frozen=True)
class ReaderFound:
    pass


@dataclass(frozen=True)
class CatalogueLoaded:
    catalogue: Catalogue | None      # None: central could not be reached, and no usable copy was kept
    cached: bool = False             # the kiosk's own signed copy: central could not be reached
    expired: bool = False            # with None: the catalogue shown before may not be used any more


@dataclass(frozen=True)
class LinkChanged:
    """The outbox saw its link to central change (the runtime tells only changes)."""

    state: LinkState


@dataclass(frozen=True)
class CardConnected:
    session_id: str
    result: ConnectResult


@dataclass(frozen=True)
class PinDigit:
    digit: str


@dataclass(frozen=True)
class PinErase:
    pass


@dataclass(frozen=True)
class PinSubmit:
    pass


@dataclass(frozen=True)
class CardAuthenticated:
    session_id: str
    result: CardReadResult


@dataclass(frozen=True, repr=False)
class PhotoRead:
    session_id: str
    photo: bytes | None

    def __repr__(self) -> str:
        return "PhotoRead(session_id=%s)" % self.session_id


@dataclass(frozen=True)
class ShowServices:
    """The citizen has seen their name and photo and goes on to the services."""


@dataclass(frozen=True)
class Pay:
    """The citizen confirmed the service and its fee, and chose how to pay: prepare, then charge."""

    method: PaymentMethod = PaymentMethod.CARD


@dataclass(frozen=True)
class RetryPayment:
    """After a declined payment, the citizen tries again (another card, or the other method)."""

    method: PaymentMethod = PaymentMethod.CARD


@dataclass(frozen=True)
class Back:
    """The citizen goes back one screen (insert card to attract, confirm or a
    declined payment to the services)."""


@dataclass(frozen=True)
class Cancel:
    """The citizen asked to stop: the session ends and the card comes back."""


@dataclass(frozen=True)
class CategoryChosen:
    code: str                        # "" goes back to the categories and the most asked services


@dataclass(frozen=True)
class ServiceChosen:
    code: str


class TextSize(str, enum.Enum):
    NORMAL = "normal"
    LARGE = "large"
    EXTRA_LARGE = "extra-large"


@dataclass(frozen=True)
class TextSizeChosen:
    size: TextSize


@dataclass(frozen=True)
class ContrastChosen:
    high: bool


@dataclass(frozen=True)
class AudioGuidanceChosen:
    """Every screen's prompt spoken as it comes (the "listen" button speaks one on request)."""

    on: bool


@dataclass(frozen=True)
class CabinetChanged:
    """A cabinet input changed (the door, the technician's key, the help button, the paper sensor)."""

    what: CabinetInput


@dataclass(frozen=True)
class DeviceRefused:
    """Central stopped (a reason) or started again (None) serving this kiosk."""

    reason: str | None


@dataclass(frozen=True)
class EligibilityChecked:
    txn_id: str
    eligible: bool | None            # None: central could not be asked
    fee: Money | None = None         # central's fee now, when it answered
    catalogue_version: str = ""      # central's catalogue version now, when it answered
    presence_id: str = ""            # when eligible: the card's proven presence, named by the request


@dataclass(frozen=True)
class PrinterChecked:
    txn_id: str
    ready: bool


@dataclass(frozen=True)
class TerminalChecked:
    txn_id: str
    state: TerminalState


@dataclass(frozen=True)
class PaymentPrompted:
    """The terminal asks something of the citizen while the sale is under way."""

    txn_id: str
    prompt: PaymentPrompt


@dataclass(frozen=True)
class PaymentSettled:
    txn_id: str
    outcome: PaymentOutcome


@dataclass(frozen=True)
class DocumentAnswered:
    """Central's answer to the certificate request, or none in time."""

    txn_id: str
    document: IssuedDocument | None
    refused: bool = False            # central answered: this request can never be issued


@dataclass(frozen=True)
class PrintFinished:
    txn_id: str
    outcome: PrintOutcome


@dataclass(frozen=True)
class OfflineAllowanceChecked:
    txn_id: str
    allowed: bool                    # the claim keeps the day's offline payments within the cap


@dataclass(frozen=True)
class ClaimQueued:
    txn_id: str
    kept: bool                       # the claim's request is in the outbox and journalled: False, it is given back


@dataclass(frozen=True, repr=False)
class WaitingDocumentsFound:
    session_id: str
    documents: tuple[IssuedDocument, ...] | None     # None: central could not be asked

    def __repr__(self) -> str:
        return "WaitingDocumentsFound(session_id=%s, count=%s)" % (
            self.session_id, "?" if self.documents is None else len(self.documents))


@dataclass(frozen=True)
class CollectDocuments:
    """The citizen asks for the documents waiting for them."""


@dataclass(frozen=True)
class DocumentsCollected:
    session_id: str
    collected: tuple[str, ...]       # the serials printed (and confirmed to central), in order
    outcome: PrintOutcome            # the last print's: not PRINTED when one failed (the rest still wait)


# ---------------------------------------------------------------- the technician's


@dataclass(frozen=True)
class TechnicianPinDigit:
    digit: str


@dataclass(frozen=True)
class TechnicianPinErase:
    pass


@dataclass(frozen=True)
class TechnicianPinSubmit:
    pass


@dataclass(frozen=True)
class TechnicianPinChecked:
    attempt_id: str
    accepted: bool


@dataclass(frozen=True)
class TechnicianLockoutLoaded:
    """At start, what the last run left of the technician PIN's wrong tries and lockout (kept on the
    disk, `kiosk.ports.technician_lockout`): `locked_s` seconds of lockout left from `now` (the
    session's monotonic clock; the runtime converted the kept wall-clock end), 0 when none."""

    tries: int
    locked_s: float
    now: float


@dataclass(frozen=True)
class TechnicianStatusGathered:
    status: TechnicianStatus


@dataclass(frozen=True)
class TechnicianActionChosen:
    """A button of the technician screen."""

    action: TechnicianAction


@dataclass(frozen=True)
class TechnicianActionDone:
    """A test print or a light walk finished (`ok`: it went through)."""

    action: TechnicianAction
    ok: bool


Event = Union[
    Start, Tick, Touched, LanguageChosen, CardInserted, CardRemoved, ReaderLost, ReaderFound,
    CatalogueLoaded, LinkChanged, CardConnected, PinDigit, PinErase, PinSubmit, CardAuthenticated, PhotoRead,
    ShowServices, Pay, RetryPayment, Back, Cancel, CategoryChosen, ServiceChosen, TextSizeChosen, ContrastChosen,
    AudioGuidanceChosen, EligibilityChecked, PrinterChecked, TerminalChecked, PaymentPrompted, PaymentSettled,
    DocumentAnswered, PrintFinished, OfflineAllowanceChecked, ClaimQueued, WaitingDocumentsFound, CollectDocuments,
    DocumentsCollected, DeviceRefused, CabinetChanged,
    TechnicianPinDigit, TechnicianPinErase, TechnicianPinSubmit, TechnicianPinChecked, TechnicianStatusGathered,
    TechnicianActionChosen, TechnicianActionDone, TechnicianLockoutLoaded,
    CommandTaken, CommandRefused, CommandFinished, CentralDecisionLoaded, AnnouncementsLoaded,
    VersionsAnnounced,
]
