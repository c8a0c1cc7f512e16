"""`CardReader` in process: a reader slot that holds a described card, no PC/SC.

A test (or a demo) puts a `FakeCard` into the reader and takes it out again,
unplugs the reader and plugs it back, as a technician would; the reader
reports each change to its watcher from a background thread, as the real one
does. A card keeps its own PIN try counter, so wrong PINs block it for good,
and a card's verdict for a correct PIN is part of its description (a forged
or cloned card answers a correct PIN too).

What the real driver checks from the card's own bytes, the fake checks too,
with the core's code: a photo that does not hash to the identity's
`photo_digest` (D1, profile 1.1) makes the card FORGED, and `prove` signs
with the card's chip key and hands out only a signature that verifies with
the key in D0. `FakeCard.issued` makes a card whose proofs an issuer's
public key accepts (`kiosk.card_proof.check_card_proof`).

Logs carry event names and verdicts only, never the PIN or the holder.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import math
import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Callable, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.event_relay import EventRelay
from kiosk.card_proof import CHALLENGE_LENGTH, CardProof, load_card_key, photo_matches, verify_signature
from kiosk.id_card_data import MalformedCardData, encode_identity, photo_digest
from kiosk.issuer_keys import public_key_der
from kiosk.ports.card_reader import (
    CardEvent, CardReader, CardReadResult, CardVerdict, ConnectResult, Identity, ReaderStatus,
)

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

PIN_TRIES = 3                    # a card's PIN tries, restored by a correct PIN
MIN_PIN_DIGITS = 4
MAX_PIN_DIGITS = 8
JPEG_START = b"\xff\xd8"

# The verdicts a card may give for a correct PIN. UNREADABLE is `FakeCard.unreadable`,
# BLOCKED is `tries_left` 0, WRONG_PIN is a wrong PIN.
CORRECT_PIN_VERDICTS = frozenset({CardVerdict.VALID, CardVerdict.FORGED, CardVerdict.CLONED, CardVerdict.EXPIRED})

READ_CHUNK = 256                 # what one READ BINARY reads, as the real driver asks

# How many commands the real profile spends on each outcome (VERIFY; SELECT and two
# READ BINARY for EF.ID; SELECT and READ BINARY for EF.ID_SIG; INTERNAL AUTHENTICATE),
# before the photo: a card with D1 adds SELECT EF.PHOTO and its READ BINARY (`_photo_apdus`).
_APDUS = {
    CardVerdict.WRONG_PIN: 1,
    CardVerdict.BLOCKED: 1,
    CardVerdict.FORGED: 6,
    CardVerdict.CLONED: 7,
    CardVerdict.EXPIRED: 7,
    CardVerdict.VALID: 7,
}


def _check_pin_format(pin: str) -> None:
    """The caller's mistake, refused before the card sees it, as the real driver does."""
    if not isinstance(pin, str) or not MIN_PIN_DIGITS <= len(pin) <= MAX_PIN_DIGITS \
            or not all("0" <= ch <= "9" for ch in pin):
        raise ValueError("a PIN is %d to %d ASCII digits" % (MIN_PIN_DIGITS, MAX_PIN_DIGITS))


class CardIssuer(Protocol):
    """Who signs a card's EF.ID (the simulator's `IssuerKey` is one)."""

    @property
    def key_id(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(repr=False, eq=False)
class FakeCard:
    """One national ID card as the fake reader sees it.

    `verdict` is what a correct PIN earns: VALID (a genuine card, which
    still reads as EXPIRED after the identity's date of expiry), FORGED,
    CLONED or EXPIRED. `tries_left` 0 is a blocked card. An `unreadable`
    card is not one of ours, or has stopped answering; it may be set while
    the card is in the reader. `photo` is the JPEG of EF.PHOTO, or None for
    a card without one; when the identity has a `photo_digest` (D1), a
    photo that does not match it (or none) makes the card FORGED, as the
    real driver finds. The reader changes `tries_left` as the card would.

    `card_key` is the chip's private key, which signs `prove`'s challenges;
    the reader hands out a proof only when it verifies with the identity's
    `card_public_key` (D0), so a card without one (None), or with another
    key, proves nothing. `ef_id_sig` is EF.ID_SIG, the issuer's signature
    over EF.ID (`encode_identity(identity)`). `issued` sets all three.
    """

    identity: Identity
    pin: str = "1234"
    tries_left: int = PIN_TRIES
    verdict: CardVerdict = CardVerdict.VALID
    photo: bytes | None = None
    unreadable: bool = False
    card_key: ec.EllipticCurvePrivateKey | None = None
    ef_id_sig: bytes = b""

    @classmethod
    def issued(cls, identity: Identity, issuer: CardIssuer, *, photo: bytes | None = None,
               **options: Any) -> "FakeCard":
        """A card as an issuer of profile 1.1 makes it: a fresh chip key in D0,
        the issuer's key id in CF, D1 the digest of `photo` (when there is
        one), and EF.ID_SIG the issuer's signature over EF.ID. Its proofs
        check with the issuer's public key. `options` are FakeCard's others
        (`pin`, `verdict`, ...); a CLONED card's chip key is not D0's."""
        chip = ec.generate_private_key(ec.SECP256R1())
        identity = dataclasses.replace(
            identity, issuer_key_id=issuer.key_id, card_public_key=public_key_der(chip.public_key()),
            photo_digest=None if photo is None else photo_digest(photo))
        if options.get("verdict") is CardVerdict.CLONED:
            chip = ec.generate_private_key(ec.SECP256R1())      # the data copied, not the chip's key
        return cls(identity, photo=photo, card_key=chip, ef_id_sig=issuer.sign(encode_identity(identity)),
                   **options)

    def __post_init__(self) -> None:
        _check_pin_format(self.pin)
        if self.verdict not in CORRECT_PIN_VERDICTS:
            raise ValueError("a card's verdict for a correct PIN is VALID, FORGED, CLONED or EXPIRED")
        if not 0 <= self.tries_left <= PIN_TRIES:
            raise ValueError("tries_left is 0 (blocked) to %d" % PIN_TRIES)

    def __repr__(self) -> str:
        return "FakeCard(verdict=%s, tries_left=%d, unreadable=%s)" % (
            self.verdict.name, self.tries_left, self.unreadable)

    __str__ = __repr__


class FakeCardReader(CardReader):
    """A card reader slot in process: instant, thread-safe, driven by tests.

    `pin_pad` True gives the reader a PIN pad: `authenticate(None, ...)`
    then takes the PIN given to `type_on_pin_pad`. Without one (the default,
    as the virtual reader), `authenticate(None, ...)` is UNREADABLE.
    """

    def __init__(self, *, pin_pad: bool = False) -> None:
        self._pin_pad = pin_pad
        self._lock = threading.RLock()           # the world and the connection
        self._reader_present = True
        self._card: FakeCard | None = None
        self._power_cycle = 0                    # bumped whenever the card loses power
        self._connection: int | None = None      # the power cycle connected to
        self._authenticated = False
        self._checked_photo: bytes | None = None   # EF.PHOTO matched with D1 by the last VALID authenticate
        self._card_error = False
        self._typed_pin: str | None = None
        self._logged_status: ReaderStatus | None = None
        # Watching: events go through a queue to a thread of their own.
        self._events: EventRelay[CardEvent] = EventRelay("card")

    def __repr__(self) -> str:
        return "FakeCardReader(status=%s)" % self.status.name

    # -- the world, as a technician changes it -------------------------------------------------

    @property
    def card(self) -> FakeCard | None:
        """The card in the reader, if any."""
        with self._lock:
            return self._card

    def insert(self, card: FakeCard) -> FakeCard:
        """Put `card` into the reader (INSERTED, if the reader is plugged in)."""
        if not isinstance(card, FakeCard):
            raise TypeError("insert takes a FakeCard")
        with self._lock:
            if self._card is not None:
                raise RuntimeError("a card is already in the reader")
            self._card = card
            self._power_cycle += 1
            self._card_error = False
            if self._reader_present:
                self._emit(CardEvent.INSERTED)
            self._note_status()
        return card

    def remove(self) -> None:
        """Pull the card out (REMOVED, if the reader is plugged in); nothing when empty."""
        with self._lock:
            if self._card is None:
                return
            self._card = None
            self._power_cycle += 1
            self._card_error = False
            if self._reader_present:
                self._emit(CardEvent.REMOVED)
            self._note_status()

    def unplug(self) -> None:
        """The reader goes away (READER_LOST). A card in it goes with it, without REMOVED."""
        with self._lock:
            if not self._reader_present:
                return
            self._reader_present = False
            self._power_cycle += 1
            self._card_error = False
            self._emit(CardEvent.READER_LOST)
            self._note_status()

    def plug_in(self) -> None:
        """The reader comes back (READER_FOUND, then INSERTED for a card in it)."""
        with self._lock:
            if self._reader_present:
                return
            self._reader_present = True
            self._card_error = False
            self._emit(CardEvent.READER_FOUND)
            if self._card is not None:
                self._emit(CardEvent.INSERTED)
            self._note_status()

    def type_on_pin_pad(self, pin: str | None) -> None:
        """The PIN the citizen types on the reader's pad at the next `authenticate(None)`;
        None: the citizen types nothing and the pad times out."""
        if pin is not None:
            _check_pin_format(pin)
        with self._lock:
            self._typed_pin = pin

    # -- status ----------------------------------------------------------------------------------

    @property
    def status(self) -> ReaderStatus:
        with self._lock:
            return self._status()

    def _status(self) -> ReaderStatus:
        if not self._reader_present:
            return ReaderStatus.NO_READER
        if self._card is None:
            return ReaderStatus.NO_CARD
        if self._card_error:
            return ReaderStatus.CARD_ERROR
        return ReaderStatus.READY

    def _note_status(self) -> None:
        """Log the status when it changed (called with the lock held)."""
        status = self._status()
        if status is not self._logged_status:
            self._logged_status = status
            log.info("card.status status=%s", status.name.lower())

    # -- events ------------------------------------------------------------------------------------

    def watch(self, on_event: Callable[[CardEvent], None]) -> None:
        """Deliver events on a thread of our own; a card already in is INSERTED at once."""
        self.unwatch()                            # waits for a callback in progress, outside our lock
        with self._lock:
            self._events.start(on_event)
            if self._reader_present and self._card is not None:
                self._emit(CardEvent.INSERTED)

    def unwatch(self) -> None:
        self._events.stop()

    def _emit(self, event: CardEvent) -> None:
        """Queue `event` for the watcher (called with the lock held, so events keep their order)."""
        log.info("card.%s", event.name.lower())
        self._events.put(event)

    # -- card operations ----------------------------------------------------------------------------

    def _connected_card(self) -> FakeCard | None:
        """The card of this connection, while it is still powered."""
        if self._connection is None or self._connection != self._power_cycle or not self._reader_present:
            return None
        return self._card

    def connect(self) -> ConnectResult:
        with self._lock:
            self._connection = None
            self._authenticated, self._checked_photo = False, None
            card = self._card if self._reader_present else None
            if card is None:
                result = ConnectResult.NO_CARD
            elif card.unreadable:
                self._card_error = True
                result = ConnectResult.UNREADABLE
            else:
                self._card_error = False
                self._connection = self._power_cycle
                result = ConnectResult.CONNECTED
            self._note_status()
        log.info("card.connect result=%s", result.name.lower())
        return result

    def authenticate(self, pin: str | None, *, today: date) -> CardReadResult:
        if pin is not None:
            _check_pin_format(pin)
        with self._lock:
            self._authenticated, self._checked_photo = False, None
            result = self._authenticate(pin, today)
            pin = None
            self._authenticated = result.verdict is CardVerdict.VALID
            if not self._authenticated:
                self._checked_photo = None
            if result.verdict is CardVerdict.UNREADABLE and self._card is not None and self._reader_present:
                self._card_error = True
            self._note_status()
        log.info("card.verdict verdict=%s apdus=%d", result.verdict.name.lower(), result.apdu_count)
        return result

    def _authenticate(self, pin: str | None, today: date) -> CardReadResult:
        card = self._connected_card()
        if card is None:
            return CardReadResult(CardVerdict.UNREADABLE, 0)
        if card.unreadable:
            return CardReadResult(CardVerdict.UNREADABLE, 1)
        if pin is None:
            if not self._pin_pad:
                return CardReadResult(CardVerdict.UNREADABLE, 0)       # no PIN pad on this reader
            pin, self._typed_pin = self._typed_pin, None
            if pin is None:
                return CardReadResult(CardVerdict.UNREADABLE, 1)       # the pad timed out
        if card.tries_left == 0:
            return CardReadResult(CardVerdict.BLOCKED, _APDUS[CardVerdict.BLOCKED])
        if not hmac.compare_digest(pin.encode("ascii"), card.pin.encode("ascii")):
            card.tries_left -= 1
            if card.tries_left == 0:
                return CardReadResult(CardVerdict.BLOCKED, _APDUS[CardVerdict.BLOCKED])
            return CardReadResult(CardVerdict.WRONG_PIN, _APDUS[CardVerdict.WRONG_PIN], tries_left=card.tries_left)
        card.tries_left = PIN_TRIES
        verdict = card.verdict
        apdus = _APDUS[verdict]
        digest = card.identity.photo_digest
        if digest is not None and verdict in (CardVerdict.VALID, CardVerdict.EXPIRED):
            # As the real driver: EF.PHOTO is read after both checks and must match D1.
            apdus += _photo_apdus(card.photo)
            if not photo_matches(digest, card.photo):
                return CardReadResult(CardVerdict.FORGED, apdus)
            self._checked_photo = bytes(card.photo)
        if verdict is CardVerdict.VALID and today > card.identity.date_of_expiry:
            verdict = CardVerdict.EXPIRED
        identity = card.identity if verdict in (CardVerdict.VALID, CardVerdict.EXPIRED) else None
        return CardReadResult(verdict, apdus, identity=identity)

    def read_photo(self) -> bytes | None:
        with self._lock:
            card = self._connected_card()
            if self._authenticated and self._checked_photo is not None:
                # Read and checked by `authenticate`, kept for the connection, as the real driver does.
                photo = self._checked_photo if self._checked_photo.startswith(JPEG_START) else None
                result = "checked" if photo is not None else "unreadable"
            elif not self._authenticated or card is None:
                result, photo = "not_authenticated", None
            elif card.unreadable:
                result, photo = "unreadable", None
            elif card.photo is None:
                result, photo = "absent", None
            elif not card.photo.startswith(JPEG_START):
                result, photo = "unreadable", None
            else:
                result, photo = "read", bytes(card.photo)
        log.info("card.photo result=%s", result)
        return photo

    def prove(self, challenge: bytes) -> CardProof | None:
        with self._lock:
            card = self._connected_card()
            proof = None
            if not self._authenticated or card is None:
                result = "not_authenticated"
            elif not isinstance(challenge, (bytes, bytearray)) or len(challenge) != CHALLENGE_LENGTH:
                result = "bad_challenge"
            elif card.unreadable:
                result = "unreadable"
            else:
                proof = _proof(card, bytes(challenge))
                result = "signed" if proof is not None else "unreadable"
        log.info("card.prove result=%s", result)
        return proof

    def disconnect(self) -> None:
        with self._lock:
            connected, self._connection = self._connection, None
            self._authenticated, self._checked_photo = False, None
        if connected is not None:
            log.info("card.disconnected")


def _photo_apdus(photo: bytes | None) -> int:
    """SELECT EF.PHOTO, and its READ BINARY in 256-byte chunks when it is there."""
    return 1 + (math.ceil(len(photo) / READ_CHUNK) if photo else 0)


def _proof(card: FakeCard, challenge: bytes) -> CardProof | None:
    """The chip's signature over `challenge`, if it verifies with D0, with EF.ID and EF.ID_SIG."""
    if card.card_key is None:
        return None
    signature = card.card_key.sign(challenge, ec.ECDSA(hashes.SHA256()))
    try:
        d0 = load_card_key(card.identity.card_public_key)
    except MalformedCardData:
        return None
    if not verify_signature(d0, signature, challenge):
        return None
    return CardProof(ef_id=encode_identity(card.identity), ef_id_sig=bytes(card.ef_id_sig), signature=signature)


def from_config(config: KioskConfig) -> FakeCardReader:
    """The `fake` card backend: a plugged-in reader with no card in it and no PIN pad."""
    return FakeCardReader()
