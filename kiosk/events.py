"""Events into the session: what the citizen did, what a device or central answered."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from kiosk.ports.card_reader import CardReadResult, ConnectResult
from kiosk.ports.payment_terminal import PaymentOutcome
from kiosk.ports.receipt_printer import PrintOutcome
from kiosk.catalogue import Catalogue
from kiosk.documents import IssuedDocument


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
    catalogue: Catalogue | None      # None: central could not be reached


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
    """The citizen confirmed the service and its fee: prepare, then charge."""


@dataclass(frozen=True)
class RetryPayment:
    """After a declined payment, the citizen tries again (another card)."""


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
class EligibilityChecked:
    txn_id: str
    eligible: bool | None            # None: central could not be asked


@dataclass(frozen=True)
class PrinterChecked:
    txn_id: str
    ready: bool


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


Event = Union[
    Start, Tick, Touched, LanguageChosen, CardInserted, CardRemoved, ReaderLost, ReaderFound,
    CatalogueLoaded, CardConnected, PinDigit, PinErase, PinSubmit, CardAuthenticated, PhotoRead,
    ShowServices, Pay, RetryPayment, Back, Cancel, CategoryChosen, ServiceChosen, TextSizeChosen, ContrastChosen,
    AudioGuidanceChosen, EligibilityChecked, PrinterChecked, PaymentSettled, DocumentAnswered,
    PrintFinished,
]
