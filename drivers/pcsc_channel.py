"""One PC/SC card connection (pyscard) whose every call has a deadline.

Each call runs on a private worker thread, so a card that stops answering,
or a reader that hangs, turns into a `ChannelError` instead of a hang.
pyscard's errors become a `NoCard` (the reader is empty) or a `ChannelError`
whose `reason` names the PC/SC error; nothing here knows what the card is.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable

from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import NoCardException, SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.pcsc.PCSCPart10 import CM_IOCTL_GET_FEATURE_REQUEST, FEATURE_VERIFY_PIN_DIRECT
from smartcard.System import readers as list_readers

from kiosk.errors import CardError

# pyscard raises both families when pcscd, a reader or a card goes away.
PCSC_ERRORS = (SmartcardException, BaseSCardException)


class NoCard(CardError):
    """The reader holds no card."""


class ChannelError(CardError):
    """An exchange failed: the deadline passed, or PC/SC refused it.

    `reason` is a stable word for the log (`timeout`, `transmit_failed_80100069`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_reader(prefix: str) -> Any:
    """The first pyscard reader whose name starts with `prefix` ("" takes the
    first), or None when there is none or pcscd does not answer."""
    try:
        available = list_readers()
    except PCSC_ERRORS:
        return None
    return next((reader for reader in available if str(reader).startswith(prefix)), None)


class PcscChannel:
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

    def __repr__(self) -> str:
        return "PcscChannel(t0=%r, broken=%r)" % (self.t0, self.broken)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def _call(self, function: Callable[[], Any], timeout_s: float | None = None) -> Any:
        if self.broken:
            raise ChannelError("channel_broken")
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
            raise ChannelError("timeout") from None

    def open(self) -> None:
        """Power the card and connect (T=0 or T=1). `NoCard` for an empty reader."""
        def connect() -> None:
            connection = self._reader.createConnection()
            self._connection = connection
            connection.connect()
            self.t0 = connection.getProtocol() == CardConnection.T0_protocol

        try:
            self._call(connect)
        except NoCardException:
            raise NoCard() from None
        except PCSC_ERRORS as exc:
            raise ChannelError("connect_failed_%s" % hresult_name(exc)) from None

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
        except PCSC_ERRORS as exc:
            raise ChannelError("transmit_failed_%s" % hresult_name(exc)) from None
        return bytes(data), sw1 << 8 | sw2

    def control(self, code: int, data: bytes, timeout_s: float) -> bytes:
        """SCardControl to the reader."""
        try:
            return bytes(self._call(lambda: self._connection.control(code, list(data)), timeout_s))
        except PCSC_ERRORS as exc:
            raise ChannelError("control_failed_%s" % hresult_name(exc)) from None

    def verify_pin_direct(self, structure: bytes, timeout_s: float) -> bytes:
        """Hand a PIN_VERIFY_STRUCTURE to the reader's PIN pad (PC/SC part 10,
        FEATURE_VERIFY_PIN_DIRECT); the card's answer. `ChannelError`
        `no_pin_pad` when the reader has none."""
        features = self.control(CM_IOCTL_GET_FEATURE_REQUEST, b"", self._timeout_s)
        code = feature_code(features, FEATURE_VERIFY_PIN_DIRECT)
        if code is None:
            raise ChannelError("no_pin_pad")
        return self.control(code, structure, timeout_s)

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


def feature_code(features: bytes, feature: int) -> int | None:
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


def hresult_name(exc: Exception) -> str:
    """The PC/SC error code of a pyscard exception as 8 hex digits, or `error`."""
    hresult = getattr(exc, "hresult", None)
    return "%08X" % (hresult & 0xFFFFFFFF) if isinstance(hresult, int) and hresult != -1 else "error"


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except (ValueError, *PCSC_ERRORS):
        pass
