"""The national-ID card reader as the kiosk sees it.

One reader slot, one card at a time. Every call that talks to a card blocks
and must run beside the UI thread; each returns a value that says what
happened (a wrong PIN, a forged card) rather than raising. Exceptions are
for the unexpected only.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:                     # kiosk.card_proof imports Identity from here
    from kiosk.card_proof import CardProof


class ReaderStatus(enum.Enum):
    UNKNOWN = "unknown"
    NO_READER = "no reader"
    NO_CARD = "no card"
    READY = "ready"          # a card is in the reader
    CARD_ERROR = "card error"


class CardEvent(enum.Enum):
    INSERTED = "inserted"
    REMOVED = "removed"
    READER_LOST = "reader lost"
    READER_FOUND = "reader found"


class ConnectResult(enum.Enum):
    CONNECTED = "connected"    # a card of our profile answered SELECT
    NO_CARD = "no card"
    UNREADABLE = "unreadable"  # not our card, or it answers wrongly


class CardVerdict(enum.Enum):
    VALID = "valid"
    WRONG_PIN = "wrong pin"
    BLOCKED = "blocked"
    FORGED = "forged"          # unknown issuer key id, EF.ID_SIG does not verify, or EF.PHOTO does not match D1
    CLONED = "cloned"          # INTERNAL AUTHENTICATE does not verify with the key in D0
    EXPIRED = "expired"        # authentic, but today is after the date of expiry
    UNREADABLE = "unreadable"  # any answer outside the profile, a silent card, a pulled card


@dataclass(frozen=True, repr=False)
class Identity:
    """What EF.ID says about the holder. Personal data: never log it."""

    card_number: str
    national_number: str
    given_name_ar: str
    family_name_ar: str
    date_of_birth: date
    date_of_expiry: date
    issuer_key_id: bytes
    card_public_key: bytes
    given_name_latin: str | None = None
    family_name_latin: str | None = None
    father_name_ar: str | None = None
    mother_name_ar: str | None = None
    place_of_birth_ar: str | None = None
    sex: str | None = None
    civil_registry_ar: str | None = None
    date_of_issue: date | None = None
    photo_digest: bytes | None = None   # D1 (profile 1.1): SHA-256 of EF.PHOTO, covered by the issuer's signature

    def __repr__(self) -> str:
        return "Identity(<personal data withheld>)"

    __str__ = __repr__

    def full_name(self, language: str) -> str:
        """The holder's name for a screen in `language` (Latin when the card has it)."""
        if language != "ar" and self.given_name_latin and self.family_name_latin:
            return "%s %s" % (self.given_name_latin, self.family_name_latin)
        return "%s %s" % (self.given_name_ar, self.family_name_ar)


@dataclass(frozen=True, repr=False)
class CardReadResult:
    """The outcome of PIN verification, reading and both authenticity checks."""

    verdict: CardVerdict
    apdu_count: int
    identity: Identity | None = None   # set for VALID, and for EXPIRED (to show the date)
    tries_left: int | None = None      # set for WRONG_PIN

    def __repr__(self) -> str:
        return "CardReadResult(verdict=%s, apdu_count=%d, tries_left=%r)" % (
            self.verdict.name, self.apdu_count, self.tries_left)

    __str__ = __repr__


class CardReader(abc.ABC):
    """One ID-card reader slot."""

    @property
    @abc.abstractmethod
    def status(self) -> ReaderStatus:
        """The reader's last known status."""

    @abc.abstractmethod
    def watch(self, on_event: Callable[[CardEvent], None]) -> None:
        """Call `on_event` (from a background thread) on every insertion,
        removal, and loss or return of the reader, until `unwatch`."""

    @abc.abstractmethod
    def unwatch(self) -> None:
        """Stop watching; no more events after this returns."""

    @abc.abstractmethod
    def connect(self) -> ConnectResult:
        """Power the card and select the ID application."""

    @abc.abstractmethod
    def authenticate(self, pin: str | None, *, today: date) -> CardReadResult:
        """VERIFY the PIN, read EF.ID and EF.ID_SIG, check both authenticity
        checks and the expiry. `pin` None means the reader's own PIN pad.
        The PIN is not kept after VERIFY. When EF.ID carries D1 (profile
        1.1), EF.PHOTO is read here too and must hash to D1, else the card
        is FORGED: a swapped photo is never trusted nor shown."""

    @abc.abstractmethod
    def read_photo(self) -> bytes | None:
        """EF.PHOTO (JPEG), None when the card has no photo or cannot be read.
        Only after a VALID `authenticate` in the same connection. For a card
        with D1, the photo `authenticate` already read and checked (no
        exchange with the card); one that did not match is never returned."""

    @abc.abstractmethod
    def prove(self, challenge: bytes) -> CardProof | None:
        """The card's proof that it is in the reader now, for a verifier who
        was not there (central): INTERNAL AUTHENTICATE over exactly these 32
        bytes, with EF.ID and EF.ID_SIG as `authenticate` read them (kept for
        this connection only). Only after a VALID `authenticate` in the same
        connection. None, never an exception, when there is no such card, the
        challenge is not 32 bytes, or the card fails or answers with
        anything but its D0 key's signature over the challenge."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Drop the connection and everything read from the card."""
