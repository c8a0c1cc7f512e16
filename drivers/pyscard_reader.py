"""`CardReader` over PC/SC (pyscard): the national ID card profile on a real reader.

Three parts, composed here: the PC/SC connection with a deadline on every
call (`drivers.pcsc_channel`), the profile itself as pure code
(`drivers.id_card.protocol`), and the watch that follows the reader and its
card through pcscd (`drivers.pcsc_watch`). A card that stops answering, or a
reader that hangs, turns into an UNREADABLE verdict instead of a hang.

The PIN is turned into its block at once, sent, and the block wiped; it is
never logged, stored or put in a message. Logs carry event names and verdicts,
never card data. What the card gave (EF.ID and EF.ID_SIG, kept for `prove`,
and a photo checked against D1) lives in the session of one connection and
goes with it.

The watch outlives the reader and pcscd: a reader unplugged or pcscd gone is
READER_LOST, their return READER_FOUND (and INSERTED for a card already in),
with no restart of the kiosk.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Callable

from kiosk.card_proof import CardProof
from kiosk.config import KioskConfig
from kiosk.issuer_keys import TrustStore, load_issuer_keys
from kiosk.ports.card_reader import (
    CardEvent, CardReader, CardReadResult, CardVerdict, ConnectResult, ReaderStatus,
)
from drivers.event_relay import EventRelay
from drivers.id_card import pin_pad
from drivers.id_card.errors import CardUnreadable
from drivers.id_card.pin import pin_block
from drivers.id_card.protocol import IdCardSession, log_unexpected
from drivers.pcsc_channel import ChannelError, NoCard, PcscChannel, find_reader
from drivers.pcsc_watch import READER_NOTIFICATIONS, ReaderWatch, card_present

log = logging.getLogger(__name__)


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
        self._channel: PcscChannel | None = None
        self._session: IdCardSession | None = None
        # Status and watching.
        self._state_lock = threading.RLock()
        self._status = ReaderStatus.UNKNOWN
        self._reader_name: str | None = None
        self._reader_present = False
        self._card_present = False
        self._events: EventRelay[CardEvent] = EventRelay("card")
        self._watcher: ReaderWatch | None = None

    def __repr__(self) -> str:
        return "PyscardCardReader(reader_name=%r, status=%s)" % (self._reader_prefix, self._status.name)

    # -- status ------------------------------------------------------------------------

    @property
    def status(self) -> ReaderStatus:
        """Event-driven while watching; otherwise asked of pcscd now."""
        if not self._events.active:
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
            if not self._events.active or self._card_present:
                self._set_status(ReaderStatus.CARD_ERROR)

    def _poll_status(self) -> None:
        name = self._find_reader_name()
        if name is None:
            self._set_status(ReaderStatus.NO_READER)
            return
        present = card_present(name)
        if present is None:
            self._set_status(ReaderStatus.UNKNOWN)
        elif not present:
            self._set_status(ReaderStatus.NO_CARD)
        elif self._status is not ReaderStatus.CARD_ERROR:
            self._set_status(ReaderStatus.READY)

    def _find_reader_name(self) -> str | None:
        reader = find_reader(self._reader_prefix)
        if reader is None:
            return None
        with self._state_lock:
            self._reader_name = str(reader)
        return str(reader)

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
        self._events.start(on_event)
        READER_NOTIFICATIONS.subscribe(self._readers_changed)

        def on_reader(found: str | None) -> None:
            with self._state_lock:
                if self._watcher is not watcher:
                    return                     # a report from a watch already stopped
                if found is None:
                    self._reader_lost()
                else:
                    self._reader_found(found)

        def on_card(present: bool) -> None:
            with self._state_lock:
                if self._watcher is watcher:
                    self._card_seen(present)

        watcher = ReaderWatch(self._reader_prefix, name, on_reader=on_reader, on_card=on_card)
        with self._state_lock:
            self._watcher = watcher
            watcher.start()

    def unwatch(self) -> None:
        with self._state_lock:                 # no report from the watcher after this
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        READER_NOTIFICATIONS.unsubscribe(self._readers_changed)
        self._events.stop()

    def _emit(self, event: CardEvent) -> None:
        log.info("card.%s", event.name.lower())
        self._events.put(event)

    # Transitions, from the watch or a pyscard-style reader notification.
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

    def _readers_changed(self, added: list[str], removed: list[str]) -> None:
        with self._state_lock:
            ours = self._reader_name
            if ours is not None and ours in removed:
                self._reader_lost()
            found = next((name for name in added if name.startswith(self._reader_prefix)), None)
            if found is not None:
                self._reader_found(found)

    # -- card operations ----------------------------------------------------------------

    def connect(self) -> ConnectResult:
        with self._operation:
            self._drop_channel()
            reader = find_reader(self._reader_prefix)
            if reader is None:
                self._set_status(ReaderStatus.NO_READER)
                log.info("card.connect result=no_reader")
                return ConnectResult.NO_CARD
            with self._state_lock:
                self._reader_name = str(reader)
            channel = PcscChannel(reader, self._timeout_s)
            self._channel = channel
            try:
                channel.open()
            except NoCard:
                self._drop_channel()
                self._set_status(ReaderStatus.NO_CARD)
                log.info("card.connect result=no_card")
                return ConnectResult.NO_CARD
            except ChannelError as exc:
                return self._connect_failed(exc.reason)
            except Exception as exc:
                log_unexpected("connect", exc)
                return self._connect_failed("unexpected")
            session = IdCardSession(self._card_transmit(channel), self._trust, t0=channel.t0,
                                    pin_pad=self._card_pin_pad(channel))
            if session.select() is not ConnectResult.CONNECTED:
                return self._connect_failed("select")
            self._session = session
            self._set_status(ReaderStatus.READY)
            log.info("card.connect result=connected")
            return ConnectResult.CONNECTED

    def _connect_failed(self, reason: str) -> ConnectResult:
        self._drop_channel()
        self._card_error()
        log.info("card.connect result=unreadable reason=%s", reason)
        return ConnectResult.UNREADABLE

    def authenticate(self, pin: str | None, *, today: dt.date) -> CardReadResult:
        # The block is built first, so the PIN string is dropped before any I/O;
        # a malformed PIN is the caller's mistake (PinFormatError, a ValueError).
        block = None if pin is None else pin_block(pin)
        pin = None
        with self._operation:
            session = self._session
            if session is not None:
                result = session.authenticate(block, today=today)      # wipes the block
            else:
                if block is not None:
                    block[:] = bytes(len(block))
                log.info("card.unreadable reason=not_connected")
                result = CardReadResult(CardVerdict.UNREADABLE, 0)
            if result.verdict is CardVerdict.UNREADABLE:
                self._card_error()
            log.info("card.verdict verdict=%s apdus=%d", result.verdict.name.lower(), result.apdu_count)
            return result

    def read_photo(self) -> bytes | None:
        with self._operation:
            if self._session is None:
                log.info("card.photo result=not_authenticated")
                return None
            return self._session.read_photo()

    def prove(self, challenge: bytes) -> CardProof | None:
        # Under the operation lock, each exchange within the channel's deadline.
        with self._operation:
            if self._session is None:
                log.info("card.prove result=not_authenticated")
                return None
            return self._session.prove(challenge)

    def disconnect(self) -> None:
        with self._operation:
            if self._channel is not None:
                self._drop_channel()
                log.info("card.disconnected")

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        session, self._session = self._session, None
        if session is not None:
            session.forget()                      # EF.ID, EF.ID_SIG and the photo go with the connection
        if channel is not None:
            channel.close()

    # -- the channel as the protocol sees it ------------------------------------------

    @staticmethod
    def _card_transmit(channel: PcscChannel) -> Callable[[bytes | bytearray], tuple[bytes, int]]:
        """`channel.transmit`, its failures as the protocol's CardUnreadable."""
        def transmit(command: bytes | bytearray) -> tuple[bytes, int]:
            try:
                return channel.transmit(command)
            except ChannelError as exc:
                raise CardUnreadable(exc.reason) from None
        return transmit

    def _card_pin_pad(self, channel: PcscChannel) -> Callable[[bytes], bytes]:
        """The reader's PIN pad, given the citizen's time to type on top of the deadline."""
        def verify(structure: bytes) -> bytes:
            try:
                return channel.verify_pin_direct(structure, pin_pad.ENTRY_S + self._timeout_s)
            except ChannelError as exc:
                raise CardUnreadable(exc.reason) from None
        return verify


def from_config(config: KioskConfig) -> PyscardCardReader:
    """The `pyscard` card backend: the reader, issuer keys and deadline of `config.card`."""
    card = config.card
    return PyscardCardReader(load_issuer_keys(card.trusted_issuers), reader_name=card.reader,
                             apdu_timeout_s=card.apdu_timeout_s)
