"""`CardReader` over PC/SC (pyscard): the national ID card profile on a real reader.

Every exchange with the card runs on a worker thread with a deadline, so a
card that stops answering, or a reader that hangs, turns into an UNREADABLE
verdict instead of a hang. Status words, sizes and signatures are checked
against specs/national-id-card.md; anything outside it is UNREADABLE.

The PIN is turned into its block at once, sent, and the block wiped; it is
never logged, stored or put in a message. Logs carry event names and verdicts,
never card data.

The watch follows the reader through pcscd and outlives both: a reader
unplugged or pcscd gone is READER_LOST, their return READER_FOUND (and
INSERTED for a card already in), with no restart of the kiosk.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import queue
import struct
import threading
import traceback
from typing import Any, Callable

from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import NoCardException, SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.pcsc.PCSCPart10 import CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_VERIFY_PIN_DIRECT
from smartcard.ReaderMonitoring import ReaderObserver
from smartcard.scard import (
    SCARD_E_CANCELLED, SCARD_E_NO_READERS_AVAILABLE, SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER,
    SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCARD_STATE_CHANGED, SCARD_STATE_IGNORE,
    SCARD_STATE_PRESENT, SCARD_STATE_UNAVAILABLE, SCARD_STATE_UNAWARE, SCARD_STATE_UNKNOWN,
    SCardCancel, SCardEstablishContext, SCardGetStatusChange, SCardListReaders,
    SCardReleaseContext,
)
from smartcard.System import readers as list_readers

from kiosk.ports.card_reader import (
    CardEvent, CardReader, CardReadResult, CardVerdict, ConnectResult, Identity, ReaderStatus,
)
from drivers.id_card import apdu
from drivers.id_card.authenticity import (
    MAX_SIGNATURE_LENGTH, active_check, load_card_key, new_challenge, passive_check,
)
from drivers.id_card.errors import MalformedCardData
from drivers.id_card.pin import pin_block
from drivers.id_card.tlv import decode_identity
from drivers.id_card.trust import TrustStore

log = logging.getLogger(__name__)

# pyscard raises both families when pcscd, a reader or a card goes away.
_PCSC_ERRORS = (SmartcardException, BaseSCardException)

MAX_EF_ID_SIZE = 4096
MAX_PHOTO_SIZE = 0x8000          # READ BINARY offsets are 15 bits
MAX_RESPONSE_SIZE = 4096         # one command's answer, GET RESPONSE chain included
MAX_GET_RESPONSES = 16
PIN_PAD_ENTRY_S = 30             # how long the citizen has on the reader's PIN pad
WATCH_POLL_S = 1.0               # the watch's pace, as pyscard's own monitors: every wait, every retry
WATCH_MIN_GAP_S = 0.05           # the least time between two looks at pcscd


class _Unreadable(Exception):
    """The card answered outside the profile, went silent, or was pulled.

    Internal: turned into an UNREADABLE verdict at the public methods.
    `reason` is a stable word for the log, never card data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NoCard(Exception):
    """The reader holds no card."""


# --- one PC/SC connection, every call on a worker with a deadline ---------------------

class _Channel:
    """One card connection whose pyscard calls run on a private daemon thread.

    A call that overruns its deadline leaves the channel broken; closing it
    queues the disconnect behind the stuck call, so nothing here ever waits
    for the card past the deadline."""

    def __init__(self, reader: Any, timeout_s: float) -> None:
        self._reader = reader
        self._timeout_s = timeout_s
        self._connection: Any = None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="card-apdu", daemon=True)
        self._thread.start()
        self.broken = False
        self.t0 = False

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def _call(self, function: Callable[[], Any], timeout_s: float | None = None) -> Any:
        if self.broken:
            raise _Unreadable("channel_broken")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def job() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._jobs.put(job)
        try:
            return future.result(timeout=self._timeout_s if timeout_s is None else timeout_s)
        except concurrent.futures.TimeoutError:
            self.broken = True
            raise _Unreadable("timeout") from None

    def open(self) -> None:
        """Power the card and connect (T=0 or T=1)."""
        def connect() -> None:
            connection = self._reader.createConnection()
            self._connection = connection
            connection.connect()
            self.t0 = connection.getProtocol() == CardConnection.T0_protocol

        try:
            self._call(connect)
        except NoCardException:
            raise _NoCard() from None
        except _PCSC_ERRORS as exc:
            raise _Unreadable("connect_failed_%s" % _hresult_name(exc)) from None

    def transmit(self, command: bytes | bytearray) -> tuple[bytes, int]:
        """(data, SW) for one C-APDU. The command list is cleared after sending."""
        def exchange() -> tuple[list[int], int, int]:
            payload = list(command)
            try:
                return self._connection.transmit(payload)
            finally:
                payload.clear()

        try:
            data, sw1, sw2 = self._call(exchange)
        except _PCSC_ERRORS as exc:
            raise _Unreadable("transmit_failed_%s" % _hresult_name(exc)) from None
        return bytes(data), sw1 << 8 | sw2

    def control(self, code: int, data: bytes, timeout_s: float) -> bytes:
        """SCardControl to the reader."""
        try:
            return bytes(self._call(lambda: self._connection.control(code, list(data)), timeout_s))
        except _PCSC_ERRORS as exc:
            raise _Unreadable("control_failed_%s" % _hresult_name(exc)) from None

    def close(self) -> None:
        """Disconnect (powering the card down) and release the context.

        Waits at most the deadline; a broken channel is left to clean up
        after its stuck call returns."""
        done = threading.Event()

        def release() -> None:
            connection, self._connection = self._connection, None
            if connection is not None:
                _quietly(connection.disconnect)     # a pulled card fails this
                _quietly(connection.release)
            done.set()

        self._jobs.put(release)
        self._jobs.put(None)
        if not self.broken:
            done.wait(self._timeout_s)


def _hresult_name(exc: Exception) -> str:
    hresult = getattr(exc, "hresult", None)
    return "%08X" % (hresult & 0xFFFFFFFF) if isinstance(hresult, int) and hresult != -1 else "error"


# --- the driver -------------------------------------------------------------------------

class PyscardCardReader(CardReader):
    """The national ID card in a PC/SC reader.

    `reader_name` "" takes the first reader; otherwise the first whose name
    starts with it (so an ID slot and a payment slot are told apart by
    configuration). `apdu_timeout_s` bounds every exchange with the card.
    """

    def __init__(self, trust_store: TrustStore, *, reader_name: str = "",
                 apdu_timeout_s: float = 5.0) -> None:
        if apdu_timeout_s <= 0:
            raise ValueError("apdu_timeout_s must be positive")
        self._trust = trust_store
        self._reader_prefix = reader_name
        self._timeout_s = apdu_timeout_s
        self._operation = threading.RLock()       # one card operation at a time
        self._channel: _Channel | None = None
        self._authenticated = False
        self._apdus = 0
        # Status and watching.
        self._state_lock = threading.RLock()
        self._status = ReaderStatus.UNKNOWN
        self._reader_name: str | None = None
        self._reader_present = False
        self._card_present = False
        self._watch_lock = threading.RLock()
        self._on_event: Callable[[CardEvent], None] | None = None
        self._events: queue.SimpleQueue[CardEvent | None] | None = None
        self._watcher: _Watcher | None = None

    def __repr__(self) -> str:
        return "PyscardCardReader(reader_name=%r, status=%s)" % (self._reader_prefix, self._status.name)

    # -- status ------------------------------------------------------------------------

    @property
    def status(self) -> ReaderStatus:
        """Event-driven while watching; otherwise asked of pcscd now."""
        if self._on_event is None:
            self._poll_status()
        return self._status

    def _set_status(self, status: ReaderStatus) -> None:
        with self._state_lock:
            if status is self._status:
                return
            self._status = status
        log.info("card.status status=%s", status.name.lower())

    def _card_error(self) -> None:
        """CARD_ERROR, unless the watch already saw the card go."""
        with self._state_lock:
            if self._on_event is None or self._card_present:
                self._set_status(ReaderStatus.CARD_ERROR)

    def _poll_status(self) -> None:
        name = self._find_reader_name()
        if name is None:
            self._set_status(ReaderStatus.NO_READER)
            return
        present = _card_present(name)
        if present is None:
            self._set_status(ReaderStatus.UNKNOWN)
        elif not present:
            self._set_status(ReaderStatus.NO_CARD)
        elif self._status is not ReaderStatus.CARD_ERROR:
            self._set_status(ReaderStatus.READY)

    def _find_reader(self) -> Any:
        try:
            available = list_readers()
        except _PCSC_ERRORS:
            return None
        for reader in available:
            if str(reader).startswith(self._reader_prefix):
                with self._state_lock:
                    self._reader_name = str(reader)
                return reader
        return None

    def _find_reader_name(self) -> str | None:
        reader = self._find_reader()
        return None if reader is None else str(reader)

    # -- events --------------------------------------------------------------------------

    def watch(self, on_event: Callable[[CardEvent], None]) -> None:
        """Deliver events on a thread of our own. A card already in the reader
        is reported as INSERTED at once. The watch outlives the reader and
        pcscd: both may go and come back (READER_LOST, READER_FOUND)."""
        self.unwatch()
        with self._state_lock:
            name = self._find_reader_name()
            self._reader_present = name is not None
            self._card_present = False
            self._set_status(ReaderStatus.NO_CARD if name else ReaderStatus.NO_READER)
        events: queue.SimpleQueue[CardEvent | None] = queue.SimpleQueue()
        with self._watch_lock:
            self._on_event = on_event
            self._events = events
        threading.Thread(target=self._dispatch, args=(events, on_event),
                         name="card-events", daemon=True).start()
        _READERS.subscribe(self)
        watcher = _Watcher(self, self._reader_prefix, name)
        with self._state_lock:
            self._watcher = watcher
            watcher.start()

    def unwatch(self) -> None:
        with self._state_lock:                 # no report from the watcher after this
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher.stopping.set()
        if watcher is not None:
            watcher.stop()
        _READERS.unsubscribe(self)
        with self._watch_lock:                 # waits for a callback in progress
            events, self._events, self._on_event = self._events, None, None
        if events is not None:
            events.put(None)

    def _dispatch(self, events: queue.SimpleQueue[CardEvent | None],
                  on_event: Callable[[CardEvent], None]) -> None:
        while True:
            event = events.get()
            if event is None:
                return
            with self._watch_lock:
                if self._on_event is not on_event:
                    return
                try:
                    on_event(event)
                except Exception:
                    log.exception("card.event_callback_failed event=%s", event.name.lower())

    def _emit(self, event: CardEvent) -> None:
        # No lock: the callback may hold _watch_lock and call back into us.
        log.info("card.%s", event.name.lower())
        events = self._events
        if events is not None:
            events.put(event)

    # Transitions, from the watcher or a pyscard-style reader notification.
    # Each is called with _state_lock held and does nothing when nothing changed.

    def _reader_lost(self) -> None:
        if not self._reader_present:
            return
        self._reader_present = False
        self._card_present = False             # the card went with the reader: no REMOVED
        self._set_status(ReaderStatus.NO_READER)
        self._emit(CardEvent.READER_LOST)

    def _reader_found(self, name: str) -> None:
        if self._reader_present:
            return
        self._reader_name = name
        self._reader_present = True
        self._set_status(ReaderStatus.READY if self._card_present else ReaderStatus.NO_CARD)
        self._emit(CardEvent.READER_FOUND)

    def _card_seen(self, present: bool) -> None:
        if present == self._card_present:
            return
        self._card_present = present
        if present:
            self._reader_present = True
            self._set_status(ReaderStatus.READY)
            self._emit(CardEvent.INSERTED)
        else:
            self._set_status(ReaderStatus.NO_CARD if self._reader_present else ReaderStatus.NO_READER)
            self._emit(CardEvent.REMOVED)

    def _readers_changed(self, added: list[Any], removed: list[Any]) -> None:
        with self._state_lock:
            ours = self._reader_name
            if ours is not None and any(str(r) == ours for r in removed):
                self._reader_lost()
            found = next((str(r) for r in added if str(r).startswith(self._reader_prefix)), None)
            if found is not None:
                self._reader_found(found)

    # -- card operations ----------------------------------------------------------------

    def connect(self) -> ConnectResult:
        with self._operation:
            self._drop_channel()
            reader = self._find_reader()
            if reader is None:
                self._set_status(ReaderStatus.NO_READER)
                log.info("card.connect result=no_reader")
                return ConnectResult.NO_CARD
            channel = _Channel(reader, self._timeout_s)
            self._channel = channel
            try:
                channel.open()
                data, sw = self._exchange(apdu.select_aid())
                if sw == apdu.SW_NOT_FOUND:
                    raise _Unreadable("not_an_id_card")
                _expect(sw == apdu.SW_OK and not data, "select_aid_sw_%04X" % sw)
            except _NoCard:
                self._drop_channel()
                self._set_status(ReaderStatus.NO_CARD)
                log.info("card.connect result=no_card")
                return ConnectResult.NO_CARD
            except _Unreadable as exc:
                self._drop_channel()
                self._card_error()
                log.info("card.connect result=unreadable reason=%s", exc.reason)
                return ConnectResult.UNREADABLE
            except Exception as exc:
                self._drop_channel()
                self._card_error()
                _log_unexpected("connect", exc)
                return ConnectResult.UNREADABLE
            self._set_status(ReaderStatus.READY)
            log.info("card.connect result=connected")
            return ConnectResult.CONNECTED

    def authenticate(self, pin: str | None, *, today: dt.date) -> CardReadResult:
        # The block is built first, so the PIN string is dropped before any I/O;
        # a malformed PIN is the caller's mistake (PinFormatError, a ValueError).
        block = None if pin is None else pin_block(pin)
        pin = None
        with self._operation:
            self._authenticated = False
            self._apdus = 0
            try:
                result = self._authenticate(block, today)
            except _Unreadable as exc:
                log.info("card.unreadable reason=%s", exc.reason)
                result = CardReadResult(CardVerdict.UNREADABLE, self._apdus)
            except Exception as exc:
                _log_unexpected("authenticate", exc)
                result = CardReadResult(CardVerdict.UNREADABLE, self._apdus)
            finally:
                if block is not None:
                    block[:] = bytes(len(block))
            self._authenticated = result.verdict is CardVerdict.VALID
            if result.verdict is CardVerdict.UNREADABLE:
                self._card_error()
            log.info("card.verdict verdict=%s apdus=%d", result.verdict.name.lower(), result.apdu_count)
            return result

    def _authenticate(self, block: bytearray | None, today: dt.date) -> CardReadResult:
        if self._channel is None:
            raise _Unreadable("not_connected")
        sw = self._verify_pin(block)
        tries = apdu.wrong_pin_tries(sw)
        if sw == apdu.SW_PIN_BLOCKED or tries == 0:
            return CardReadResult(CardVerdict.BLOCKED, self._apdus)
        if tries is not None:
            return CardReadResult(CardVerdict.WRONG_PIN, self._apdus, tries_left=tries)
        _expect(sw == apdu.SW_OK, "verify_sw_%04X" % sw)

        ef_id = self._read_file(apdu.FID_ID, MAX_EF_ID_SIZE)
        ef_id_sig = self._read_file(apdu.FID_ID_SIG, MAX_SIGNATURE_LENGTH)
        try:
            identity = decode_identity(ef_id)
        except MalformedCardData:
            raise _Unreadable("ef_id_malformed") from None
        if not passive_check(self._trust, identity.issuer_key_id, ef_id, ef_id_sig):
            return CardReadResult(CardVerdict.FORGED, self._apdus)
        if not self._active_check(identity):
            return CardReadResult(CardVerdict.CLONED, self._apdus)
        if today > identity.date_of_expiry:
            return CardReadResult(CardVerdict.EXPIRED, self._apdus, identity=identity)
        return CardReadResult(CardVerdict.VALID, self._apdus, identity=identity)

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
        """VERIFY with the PIN typed on the reader (PC/SC part 10,
        FEATURE_VERIFY_PIN_DIRECT); the PIN never reaches the kiosk."""
        channel = self._require_channel()
        features = channel.control(CM_IOCTL_GET_FEATURE_REQUEST, b"", self._timeout_s)
        code = _feature_code(features, FEATURE_VERIFY_PIN_DIRECT)
        if code is None:
            raise _Unreadable("no_pin_pad")
        self._apdus += 1
        answer = channel.control(code, _pin_verify_structure(), PIN_PAD_ENTRY_S + self._timeout_s)
        _expect(len(answer) == 2, "pin_pad_answer")
        return answer[0] << 8 | answer[1]

    def _active_check(self, identity: Identity) -> bool:
        try:
            card_key = load_card_key(identity.card_public_key)
        except MalformedCardData:
            raise _Unreadable("card_key_malformed") from None
        challenge = new_challenge()
        answer, sw = self._exchange(apdu.internal_authenticate(challenge))
        _expect(sw == apdu.SW_OK, "internal_authenticate_sw_%04X" % sw)
        _expect(0 < len(answer) <= MAX_SIGNATURE_LENGTH, "internal_authenticate_length")
        return active_check(card_key, challenge, answer)

    def read_photo(self) -> bytes | None:
        with self._operation:
            if not self._authenticated:
                log.info("card.photo result=not_authenticated")
                return None
            try:
                photo = self._read_file(apdu.FID_PHOTO, MAX_PHOTO_SIZE, optional=True)
            except _Unreadable as exc:
                log.info("card.photo result=unreadable reason=%s", exc.reason)
                return None
            except Exception as exc:
                _log_unexpected("read_photo", exc)
                return None
            if photo is None:
                log.info("card.photo result=absent")
                return None
            if not photo.startswith(b"\xff\xd8"):
                log.info("card.photo result=unreadable reason=not_jpeg")
                return None
            log.info("card.photo result=read size=%d", len(photo))
            return photo

    def disconnect(self) -> None:
        with self._operation:
            if self._channel is not None:
                self._drop_channel()
                log.info("card.disconnected")

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        self._authenticated = False
        if channel is not None:
            channel.close()

    def _require_channel(self) -> _Channel:
        if self._channel is None:
            raise _Unreadable("not_connected")
        if self._channel.broken:
            raise _Unreadable("channel_broken")
        return self._channel

    # -- APDU exchange with T=0 handling --------------------------------------------------

    def _transmit(self, command: bytes | bytearray) -> tuple[bytes, int]:
        channel = self._require_channel()
        self._apdus += 1
        return channel.transmit(command)

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

    def _read_file(self, fid: int, max_size: int, *, optional: bool = False) -> bytes | None:
        """SELECT with FCP, then READ BINARY in 256-byte chunks up to the FCP size.

        The end of the file may come as `6282` or as a short `9000`. Under T=0
        a longer Le than what is left only earns a `6Cxx` and a second
        exchange, so there the last chunk asks for exactly what is left."""
        data, sw = self._exchange(apdu.select_ef(fid, fcp=True))
        if optional and sw == apdu.SW_NOT_FOUND and not data:
            return None
        _expect(sw == apdu.SW_OK, "select_ef_sw_%04X" % sw)
        try:
            fcp = apdu.parse_fcp(data)
        except MalformedCardData:
            raise _Unreadable("fcp_malformed") from None
        _expect(fcp.fid == fid, "fcp_fid")
        _expect(1 <= fcp.size <= max_size, "file_size")
        content = bytearray()
        while len(content) < fcp.size:
            wanted = min(apdu.MAX_LE, fcp.size - len(content)) if self._require_channel().t0 else apdu.MAX_LE
            data, sw = self._exchange(apdu.read_binary(len(content), wanted))
            _expect(sw in (apdu.SW_OK, apdu.SW_END_OF_FILE), "read_binary_sw_%04X" % sw)
            _expect(len(data) > 0, "read_binary_empty")
            content += data
            _expect(len(content) <= fcp.size, "file_longer_than_fcp")
            if len(data) < wanted or sw == apdu.SW_END_OF_FILE:
                break
        _expect(len(content) == fcp.size, "file_shorter_than_fcp")
        return bytes(content)


# --- helpers ------------------------------------------------------------------------------

def _expect(condition: bool, reason: str) -> None:
    if not condition:
        raise _Unreadable(reason)


def _log_unexpected(operation: str, exc: BaseException) -> None:
    # Type and stack only: a message might quote bytes read from the card.
    log.error("card.unexpected_error operation=%s type=%s\n%s", operation, type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except (ValueError, *_PCSC_ERRORS):
        pass


def _card_present(reader_name: str) -> bool | None:
    """Ask pcscd now whether a card is in `reader_name`; None if it cannot say."""
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        return None
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(reader_name, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS or not states:
            return None
        state = states[0][1]
        if state & SCARD_STATE_UNKNOWN:
            return None
        return bool(state & SCARD_STATE_PRESENT)
    finally:
        SCardReleaseContext(context)


def _feature_code(features: bytes, feature: int) -> int | None:
    """The control code of `feature` in a GET_FEATURE_REQUEST answer
    (tag, length 4, big-endian code; repeated)."""
    pos = 0
    while pos + 2 <= len(features):
        tag, length = features[pos], features[pos + 1]
        value = features[pos + 2:pos + 2 + length]
        if len(value) != length:
            return None
        if tag == feature and length == 4:
            return int.from_bytes(value, "big")
        pos += 2 + length
    return None


def _pin_verify_structure() -> bytes:
    """PIN_VERIFY_STRUCTURE (PC/SC part 10) for a format-2 block in VERIFY."""
    template = apdu.verify(b"\x20" + b"\xff" * 7)       # the reader fills in length and digits
    header = struct.pack(
        "<BBBBBHBBHB3sI",
        PIN_PAD_ENTRY_S,    # bTimerOut
        PIN_PAD_ENTRY_S,    # bTimerOut2
        0x89,               # bmFormatString: bytes, PIN after 1 byte, left, BCD
        0x48,               # bmPINBlockString: 4-bit length field, 8-byte block
        0x04,               # bmPINLengthFormat: length at bit 4
        0x0408,             # wPINMaxExtraDigit: 4 to 8 digits
        0x02,               # bEntryValidationCondition: OK key
        0x01,               # bNumberMessage
        0x0401,             # wLangId: Arabic
        0x00,               # bMsgIndex
        b"\x00\x00\x00",    # bTeoPrologue
        len(template),      # ulDataLength
    )
    return header + bytes(template)


# --- watching the reader through pcscd ---------------------------------------------------

_PNP_NOTIFICATION = "\\\\?PnP?\\Notification"       # pcscd's pseudo-reader: the reader list changed
_STATE_UNSURE = SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE | SCARD_STATE_IGNORE


class _Watcher:
    """Follows one reader through pcscd on a thread of its own and reports
    to the driver when the reader or its card comes or goes.

    Not pyscard's CardMonitor and ReaderMonitor: when pcscd goes away both
    threads end for good without a word to their observers (pyscard issue
    #82). CardMonitor's is a process-wide singleton, never started again and
    never stopped (it waits 60 s at a time with nothing to cancel it);
    ReaderMonitor's shares its state between instances and cannot be safely
    stopped and started again. This uses pyscard's PC/SC calls instead: one
    context, established again whenever pcscd is back (tried every
    WATCH_POLL_S while it is away); every wait for a change bounded by
    WATCH_POLL_S and ended at once by SCardCancel when the watch stops.
    """

    def __init__(self, driver: PyscardCardReader, prefix: str, reader: str | None) -> None:
        self._driver = driver
        self._prefix = prefix
        self._reader = reader                  # our reader, as last reported to the driver
        self._card = False                     # a card in it, as last reported
        self._pcscd_up: bool | None = None
        self.stopping = threading.Event()
        self._context_lock = threading.Lock()
        self._context: Any = None
        self._thread = threading.Thread(target=self._run, name="card-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking at pcscd; waits (bounded) for the thread to end."""
        self.stopping.set()
        with self._context_lock:
            if self._context is not None:
                _quietly_scard(lambda: SCardCancel(self._context))
        if self._thread is not threading.current_thread():
            self._thread.join(WATCH_POLL_S + 1.0)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                context = self._open()
                if context is not None:
                    try:
                        self._follow(context)
                    finally:
                        self._close()
                if not self.stopping.is_set():
                    self._report_reader(None)          # pcscd went away, or was never there
            except Exception as exc:
                _log_unexpected("watch", exc)
            self.stopping.wait(WATCH_POLL_S)

    def _open(self) -> Any:
        hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
        if hresult != SCARD_S_SUCCESS:
            self._pcscd(False, hresult)
            return None
        with self._context_lock:
            self._context = context
        self._pcscd(True, hresult)
        return context

    def _close(self) -> None:
        with self._context_lock:
            context, self._context = self._context, None
        if context is not None:
            _quietly_scard(lambda: SCardReleaseContext(context))

    def _follow(self, context: Any) -> None:
        """Watch through one context until pcscd goes away or the watch stops."""
        known = SCARD_STATE_UNAWARE            # our reader's state as pcscd last told it
        pnp = SCARD_STATE_UNAWARE
        while not self.stopping.is_set():
            hresult, names = SCardListReaders(context, [])
            if hresult == SCARD_E_NO_READERS_AVAILABLE:
                names = []
            elif hresult != SCARD_S_SUCCESS:
                self._pcscd(False, hresult)
                return
            ours = next((name for name in names if name.startswith(self._prefix)), None)
            if ours != self._reader:
                known = SCARD_STATE_UNAWARE
            self._report_reader(ours)
            asked = [(_PNP_NOTIFICATION, pnp)] + ([(ours, known)] if ours else [])
            hresult, states = SCardGetStatusChange(context, int(WATCH_POLL_S * 1000), asked)
            if hresult == SCARD_E_CANCELLED:
                return
            if hresult in (SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER):  # nothing new, or the list moved
                self.stopping.wait(WATCH_MIN_GAP_S)
                continue
            if hresult == SCARD_E_NO_READERS_AVAILABLE:
                self.stopping.wait(WATCH_POLL_S)
                continue
            if hresult != SCARD_S_SUCCESS:
                self._pcscd(False, hresult)
                return
            news = False
            for name, state, _atr in states:
                news = news or bool(state & SCARD_STATE_CHANGED)
                state &= ~SCARD_STATE_CHANGED
                if name == _PNP_NOTIFICATION:
                    pnp = state
                elif name == ours:
                    news = news or state != known
                    known = state
                    if not state & _STATE_UNSURE:          # a reader going away: the list says
                        self._report_card(bool(state & SCARD_STATE_PRESENT))
            # Never faster than WATCH_MIN_GAP_S; a wake with nothing new waits a full round.
            self.stopping.wait(WATCH_MIN_GAP_S if news else WATCH_POLL_S)

    # -- reports -----------------------------------------------------------------------------

    def _report_reader(self, name: str | None) -> None:
        with self._driver._state_lock:
            if self.stopping.is_set() or name == self._reader:
                return
            if self._reader is not None:
                self._driver._reader_lost()
            self._reader, self._card = name, False
            if name is not None:
                self._driver._reader_found(name)

    def _report_card(self, present: bool) -> None:
        with self._driver._state_lock:
            if self.stopping.is_set() or present == self._card:
                return
            self._card = present
            self._driver._card_seen(present)

    def _pcscd(self, up: bool, hresult: int) -> None:
        """Log pcscd going away and coming back (transitions only)."""
        if up == self._pcscd_up:
            return
        if not up:
            log.warning("card.pcscd_unavailable hresult=%08X", hresult & 0xFFFFFFFF)
        elif self._pcscd_up is not None:
            log.info("card.pcscd_available")
        self._pcscd_up = up


def _quietly_scard(call: Callable[[], Any]) -> None:
    """A PC/SC call whose failure changes nothing (cancel, release)."""
    try:
        call()
    except Exception:  # pyscard's bindings can raise odd types on a dead context
        pass


class _ReaderEvents(ReaderObserver):
    """A pyscard reader notification (added, removed) fanned out to our
    watching readers. The watcher reports directly; this is the way in for
    a notification from elsewhere (the tests feed one)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._subscribers: set[PyscardCardReader] = set()

    def subscribe(self, reader: PyscardCardReader) -> None:
        with self._lock:
            self._subscribers.add(reader)

    def unsubscribe(self, reader: PyscardCardReader) -> None:
        with self._lock:
            self._subscribers.discard(reader)

    def update(self, observable: Any, handlers: Any) -> None:
        added, removed = handlers
        with self._lock:
            subscribers = list(self._subscribers)
        for reader in subscribers:
            reader._readers_changed(list(added), list(removed))


_READERS = _ReaderEvents()
