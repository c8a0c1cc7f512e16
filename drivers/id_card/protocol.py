"""The national ID card profile spoken to one card, over any transport.

`IdCardSession` runs the profile's commands (specs/national-id-card.md)
through a `transmit` callable that sends one C-APDU and returns the answer's
data and status word. It follows a T=0 card's `61xx` (GET RESPONSE) and
`6Cxx` (repeat with the Le it asks for), reads EF.ID, EF.ID_SIG and EF.PHOTO,
makes both authenticity checks (`kiosk.card_proof`), compares the expiry
with `today`, and counts the APDUs it sends. Status words, sizes and
signatures are checked against the profile; anything outside it is
UNREADABLE.

Profile 1.1: when EF.ID carries D1, EF.PHOTO is read during `authenticate`,
after both checks, and must hash to D1, else the card is FORGED (its photo
was swapped); `read_photo` then hands out that checked photo. Without D1
(profile 1.0), the photo is read when asked for, as before.

After a VALID `authenticate`, `prove` has the chip sign a caller's
challenge and hands it out with EF.ID and EF.ID_SIG as read, for a verifier
who was not there. Those bytes stay in the session until the next
`authenticate` or `forget`, never longer than the connection.

It knows nothing of pyscard, pcscd or threads: the driver hands in its PC/SC
channel's transmit, the tests a simulated card's. A transmit that cannot
reach the card raises `CardUnreadable`; anything else it raises is logged as
unexpected. Either way the answer is UNREADABLE, never an exception.

The PIN block is wiped once VERIFY is sent. Logs carry event names and
reasons, never card data.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.card_proof import (
    CHALLENGE_LENGTH, MAX_SIGNATURE_LENGTH, CardProof, active_check, load_card_key, new_challenge,
    passive_check, photo_matches,
)
from kiosk.id_card_data import MAX_EF_ID_SIZE, MalformedCardData, decode_identity
from kiosk.issuer_keys import TrustStore
from kiosk.ports.card_reader import CardReadResult, CardVerdict, ConnectResult, Identity
from drivers.id_card import apdu
from drivers.id_card.errors import CardUnreadable
from drivers.id_card.pin_pad import pin_verify_structure

log = logging.getLogger(__name__)

# Sends one C-APDU; the answer's data and status word (SW1 << 8 | SW2).
Transmit = Callable[[bytes | bytearray], tuple[bytes, int]]
# Hands a PIN_VERIFY_STRUCTURE to the reader's PIN pad; the card's answer to VERIFY (SW1 SW2).
PinPad = Callable[[bytes], bytes]

MAX_PHOTO_SIZE = 0x8000          # READ BINARY offsets are 15 bits
MAX_RESPONSE_SIZE = 4096         # one command's answer, GET RESPONSE chain included
MAX_GET_RESPONSES = 16
JPEG_START = b"\xff\xd8"


@dataclass(frozen=True, repr=False)
class _CardRead:
    """What a VALID `authenticate` read, for `prove` and `read_photo`.
    Personal data: the repr withholds it."""

    ef_id: bytes
    ef_id_sig: bytes
    card_key: ec.EllipticCurvePublicKey
    photo_checked: bool                # EF.PHOTO was read and matched D1 (profile 1.1)
    photo: bytes | None = None         # that photo

    def __repr__(self) -> str:
        return "_CardRead(<card data withheld>)"


class IdCardSession:
    """The ID application of the card on one connection.

    `t0` says the card speaks T=0, so a READ BINARY asks for exactly the bytes
    left rather than earn a `6Cxx` and a second exchange. `pin_pad`, when the
    reader has one, takes VERIFY for `authenticate(None, ...)`.
    """

    def __init__(self, transmit: Transmit, trust_store: TrustStore, *, t0: bool = False,
                 pin_pad: PinPad | None = None) -> None:
        self._send = transmit
        self._trust = trust_store
        self._t0 = t0
        self._pin_pad = pin_pad
        self._apdus = 0
        self._authenticated = False
        self._read: _CardRead | None = None       # set while authenticated

    def __repr__(self) -> str:
        return "IdCardSession(t0=%r, authenticated=%r)" % (self._t0, self._authenticated)

    @property
    def authenticated(self) -> bool:
        """True after a VALID `authenticate`: EF.PHOTO may be read, the card may prove."""
        return self._authenticated

    def forget(self) -> None:
        """Drop everything read from the card (the connection is going)."""
        self._authenticated = False
        self._read = None

    # -- the operations ----------------------------------------------------------------

    def select(self) -> ConnectResult:
        """SELECT the ID application: CONNECTED, or UNREADABLE for another card."""
        try:
            data, sw = self._exchange(apdu.select_aid())
            if sw == apdu.SW_NOT_FOUND:
                raise CardUnreadable("not_an_id_card")
            _expect(sw == apdu.SW_OK and not data, "select_aid_sw_%04X" % sw)
        except CardUnreadable as exc:
            log.info("card.unreadable operation=select reason=%s", exc.reason)
            return ConnectResult.UNREADABLE
        except Exception as exc:
            log_unexpected("select", exc)
            return ConnectResult.UNREADABLE
        return ConnectResult.CONNECTED

    def authenticate(self, block: bytearray | None, *, today: dt.date) -> CardReadResult:
        """VERIFY with the PIN `block` (wiped after; None: on the reader's PIN
        pad), read EF.ID and EF.ID_SIG, make both authenticity checks, then,
        when EF.ID carries D1, read EF.PHOTO and match it with D1 (FORGED if
        not), and compare the expiry with `today`."""
        self.forget()
        self._apdus = 0
        read: _CardRead | None = None
        try:
            result, read = self._authenticate(block, today)
        except CardUnreadable as exc:
            log.info("card.unreadable reason=%s", exc.reason)
            result = CardReadResult(CardVerdict.UNREADABLE, self._apdus)
        except Exception as exc:
            log_unexpected("authenticate", exc)
            result = CardReadResult(CardVerdict.UNREADABLE, self._apdus)
        finally:
            if block is not None:
                block[:] = bytes(len(block))
        self._authenticated = result.verdict is CardVerdict.VALID
        self._read = read if self._authenticated else None
        return result

    def read_photo(self) -> bytes | None:
        """EF.PHOTO (JPEG) after a VALID `authenticate`; None when the card
        has none, it cannot be read, or the card is not authenticated. A
        card with D1 gives the photo `authenticate` read and checked."""
        if not self._authenticated:
            log.info("card.photo result=not_authenticated")
            return None
        if self._read is not None and self._read.photo_checked:
            return _jpeg_or_none(self._read.photo, "checked")
        try:
            photo = self._read_photo_file()
        except CardUnreadable as exc:
            log.info("card.photo result=unreadable reason=%s", exc.reason)
            return None
        except Exception as exc:
            log_unexpected("read_photo", exc)
            return None
        return _jpeg_or_none(photo, "read")

    def prove(self, challenge: bytes) -> CardProof | None:
        """INTERNAL AUTHENTICATE over `challenge` (32 bytes) after a VALID
        `authenticate`: the chip's signature, checked with the key in D0,
        with EF.ID and EF.ID_SIG as read. None when the card is not
        authenticated, the challenge is not 32 bytes, or the card fails or
        answers anything but a signature that verifies."""
        read = self._read
        if not self._authenticated or read is None:
            log.info("card.prove result=not_authenticated")
            return None
        if not isinstance(challenge, (bytes, bytearray)) or len(challenge) != CHALLENGE_LENGTH:
            log.info("card.prove result=bad_challenge")
            return None
        challenge = bytes(challenge)
        try:
            signature = self._sign(challenge)
        except CardUnreadable as exc:
            log.info("card.prove result=unreadable reason=%s", exc.reason)
            return None
        except Exception as exc:
            log_unexpected("prove", exc)
            return None
        if not active_check(read.card_key, challenge, signature):
            log.info("card.prove result=unreadable reason=signature_does_not_verify")
            return None
        log.info("card.prove result=signed")
        return CardProof(ef_id=read.ef_id, ef_id_sig=read.ef_id_sig, signature=signature)

    # -- authentication --------------------------------------------------------------

    def _authenticate(self, block: bytearray | None, today: dt.date) -> tuple[CardReadResult, _CardRead | None]:
        """The verdict, and what was read when the card is authentic."""
        sw = self._verify_pin(block)
        tries = apdu.wrong_pin_tries(sw)
        if sw == apdu.SW_PIN_BLOCKED or tries == 0:
            return CardReadResult(CardVerdict.BLOCKED, self._apdus), None
        if tries is not None:
            return CardReadResult(CardVerdict.WRONG_PIN, self._apdus, tries_left=tries), None
        _expect(sw == apdu.SW_OK, "verify_sw_%04X" % sw)

        ef_id = self._read_file(apdu.FID_ID, MAX_EF_ID_SIZE)
        ef_id_sig = self._read_file(apdu.FID_ID_SIG, MAX_SIGNATURE_LENGTH)
        try:
            identity = decode_identity(ef_id)
        except MalformedCardData:
            raise CardUnreadable("ef_id_malformed") from None
        if not passive_check(self._trust, identity.issuer_key_id, ef_id, ef_id_sig):
            return CardReadResult(CardVerdict.FORGED, self._apdus), None
        card_key = self._active_check(identity)
        if card_key is None:
            return CardReadResult(CardVerdict.CLONED, self._apdus), None
        read = _CardRead(ef_id, ef_id_sig, card_key, photo_checked=False)
        if identity.photo_digest is not None:
            photo = self._read_photo_file()
            if not photo_matches(identity.photo_digest, photo):
                log.info("card.photo result=%s", "missing" if photo is None else "does_not_match_d1")
                return CardReadResult(CardVerdict.FORGED, self._apdus), None
            read = _CardRead(ef_id, ef_id_sig, card_key, photo_checked=True, photo=photo)
        if today > identity.date_of_expiry:
            return CardReadResult(CardVerdict.EXPIRED, self._apdus, identity=identity), None
        return CardReadResult(CardVerdict.VALID, self._apdus, identity=identity), read

    def _verify_pin(self, block: bytearray | None) -> int:
        if block is None:
            return self._verify_on_pin_pad()
        command = apdu.verify(block)
        try:
            data, sw = self._exchange(command)
        finally:
            command[:] = bytes(len(command))
            block[:] = bytes(len(block))
        _expect(not data, "verify_data")
        return sw

    def _verify_on_pin_pad(self) -> int:
        """VERIFY with the PIN typed on the reader; counted once the pad answers."""
        if self._pin_pad is None:
            raise CardUnreadable("no_pin_pad")
        answer = self._pin_pad(pin_verify_structure())
        self._apdus += 1
        _expect(len(answer) == 2, "pin_pad_answer")
        return answer[0] << 8 | answer[1]

    def _active_check(self, identity: Identity) -> ec.EllipticCurvePublicKey | None:
        """The chip's key (D0) once it signed a fresh challenge; None when it did not."""
        try:
            card_key = load_card_key(identity.card_public_key)
        except MalformedCardData:
            raise CardUnreadable("card_key_malformed") from None
        challenge = new_challenge()
        return card_key if active_check(card_key, challenge, self._sign(challenge)) else None

    def _sign(self, challenge: bytes) -> bytes:
        """INTERNAL AUTHENTICATE: the chip's answer, checked for its size only."""
        answer, sw = self._exchange(apdu.internal_authenticate(challenge))
        _expect(sw == apdu.SW_OK, "internal_authenticate_sw_%04X" % sw)
        _expect(0 < len(answer) <= MAX_SIGNATURE_LENGTH, "internal_authenticate_length")
        return answer

    def _read_photo_file(self) -> bytes | None:
        """EF.PHOTO, None when the card has none."""
        fcp = self._select_ef(apdu.FID_PHOTO, MAX_PHOTO_SIZE, optional=True)
        return None if fcp is None else self._read_binary(fcp)

    # -- exchanges, with T=0 handling -----------------------------------------------

    def _transmit(self, command: bytes | bytearray) -> tuple[bytes, int]:
        self._apdus += 1
        answer = self._send(command)
        if answer is None:
            raise CardUnreadable("no_answer")
        data, sw = answer
        _expect(isinstance(sw, int) and 0 <= sw <= 0xFFFF, "sw_malformed")
        return bytes(data), sw

    def _exchange(self, command: bytes | bytearray) -> tuple[bytes, int]:
        """Send `command`; follow `6Cxx` (repeat with Le = xx) and `61xx`
        (GET RESPONSE) as a T=0 card asks. Checks the answer's length."""
        le = apdu.expected_length(command)
        data, sw = self._transmit(command)
        if sw >> 8 == apdu.SW1_WRONG_LE:
            _expect(le is not None and not data, "wrong_le_unexpected")
            command = apdu.with_le(command, sw & 0xFF or apdu.MAX_LE)
            le = sw & 0xFF or apdu.MAX_LE
            data, sw = self._transmit(command)
            _expect(sw >> 8 != apdu.SW1_WRONG_LE, "wrong_le_twice")
        collected = bytearray(data)
        rounds = 0
        while sw >> 8 == apdu.SW1_MORE_DATA:
            rounds += 1
            _expect(rounds <= MAX_GET_RESPONSES, "get_response_loop")
            wanted = sw & 0xFF or apdu.MAX_LE
            more, sw = self._transmit(apdu.get_response(wanted))
            if sw >> 8 == apdu.SW1_WRONG_LE:
                wanted = sw & 0xFF or apdu.MAX_LE
                _expect(not more, "get_response_wrong_le")
                more, sw = self._transmit(apdu.get_response(wanted))
            _expect(len(more) <= wanted, "get_response_overlong")
            collected += more
            _expect(len(collected) <= MAX_RESPONSE_SIZE, "response_too_long")
            le = None                           # the chain's total is checked above
        if le is None:
            _expect(len(collected) <= MAX_RESPONSE_SIZE, "response_too_long")
        else:
            _expect(len(collected) <= le, "response_overlong")
        return bytes(collected), sw

    def _read_file(self, fid: int, max_size: int) -> bytes:
        fcp = self._select_ef(fid, max_size)
        if fcp is None:                         # only an optional file may be absent
            raise CardUnreadable("file_absent")
        return self._read_binary(fcp)

    def _select_ef(self, fid: int, max_size: int, *, optional: bool = False) -> apdu.Fcp | None:
        """SELECT with FCP; the file's FCP, None when an `optional` file is absent."""
        data, sw = self._exchange(apdu.select_ef(fid, fcp=True))
        if optional and sw == apdu.SW_NOT_FOUND and not data:
            return None
        _expect(sw == apdu.SW_OK, "select_ef_sw_%04X" % sw)
        try:
            fcp = apdu.parse_fcp(data)
        except MalformedCardData:
            raise CardUnreadable("fcp_malformed") from None
        _expect(fcp.fid == fid, "fcp_fid")
        _expect(1 <= fcp.size <= max_size, "file_size")
        return fcp

    def _read_binary(self, fcp: apdu.Fcp) -> bytes:
        """READ BINARY of the selected file in 256-byte chunks up to its FCP size.

        The end of the file may come as `6282` or as a short `9000`. Under T=0
        a longer Le than what is left only earns a `6Cxx` and a second
        exchange, so there the last chunk asks for exactly what is left."""
        content = bytearray()
        while len(content) < fcp.size:
            wanted = min(apdu.MAX_LE, fcp.size - len(content)) if self._t0 else apdu.MAX_LE
            data, sw = self._exchange(apdu.read_binary(len(content), wanted))
            _expect(sw in (apdu.SW_OK, apdu.SW_END_OF_FILE), "read_binary_sw_%04X" % sw)
            _expect(len(data) > 0, "read_binary_empty")
            content += data
            _expect(len(content) <= fcp.size, "file_longer_than_fcp")
            if len(data) < wanted or sw == apdu.SW_END_OF_FILE:
                break
        _expect(len(content) == fcp.size, "file_shorter_than_fcp")
        return bytes(content)


def _jpeg_or_none(photo: bytes | None, how: str) -> bytes | None:
    if photo is None:
        log.info("card.photo result=absent")
        return None
    if not photo.startswith(JPEG_START):
        log.info("card.photo result=unreadable reason=not_jpeg")
        return None
    log.info("card.photo result=%s size=%d", how, len(photo))
    return photo


def _expect(condition: bool, reason: str) -> None:
    if not condition:
        raise CardUnreadable(reason)


def log_unexpected(operation: str, exc: BaseException) -> None:
    """Log an error nobody planned for: its type and stack only, as its
    message might quote bytes read from the card."""
    log.error("card.unexpected_error operation=%s type=%s\n%s", operation, type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))
