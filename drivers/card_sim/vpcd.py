"""The vpcd socket protocol, card side.

pcscd's vpcd driver listens on TCP; a virtual card connects to it and is
"inserted" while connected. Every message both ways is a 2-byte big-endian
length and a payload. From vpcd, a 1-byte payload is a control message
(power off, power on, reset, get ATR); anything longer is a C-APDU, answered
with the R-APDU.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Protocol

log = logging.getLogger(__name__)

POWER_OFF = 0x00
POWER_ON = 0x01
RESET = 0x02
GET_ATR = 0x04

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)   # Linux only

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963


class VirtualCard(Protocol):
    """What a card must offer to be served on the vpcd socket."""

    atr: bytes
    answer_delay_s: float

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def transmit(self, command: bytes) -> bytes | None:
        """The R-APDU, or None to stay silent."""


class VpcdLink:
    """One connection to vpcd, serving one card until closed."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 connect_timeout_s: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._closed = threading.Event()

    def serve(self, card: VirtualCard) -> None:
        """Answer vpcd until the link is closed (by `close` or by vpcd)."""
        try:
            while not self._closed.is_set():
                message = self._receive()
                if message is None:
                    break
                answer = self._dispatch(card, message)
                if answer is None:
                    continue
                if card.answer_delay_s > 0 and self._closed.wait(card.answer_delay_s):
                    break
                self._send(answer)
        except OSError:
            if not self._closed.is_set():
                log.info("card_sim.vpcd_link_lost")
        finally:
            self.close()

    def close(self) -> None:
        """Pull the card: close the connection (any thread, idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @staticmethod
    def _dispatch(card: VirtualCard, message: bytes) -> bytes | None:
        if len(message) != 1:
            return card.transmit(message)
        control = message[0]
        if control == POWER_OFF:
            card.power_off()
        elif control == POWER_ON:
            card.power_on()
        elif control == RESET:
            card.reset()
        elif control == GET_ATR:
            return card.atr
        else:
            log.warning("card_sim.vpcd_unknown_control code=0x%02X", control)
        return None

    def _receive(self) -> bytes | None:
        header = self._receive_exactly(2)
        if header is None:
            return None
        return self._receive_exactly(int.from_bytes(header, "big"))

    def _receive_exactly(self, count: int) -> bytes | None:
        buffer = bytearray()
        while len(buffer) < count:
            self._quick_ack()
            chunk = self._sock.recv(count - len(buffer))
            if not chunk:
                return None
            buffer += chunk
        return bytes(buffer)

    def _quick_ack(self) -> None:
        # vpcd writes the length and the payload separately: without quick
        # ACKs, Nagle on its side and delayed ACK on ours cost 40 ms an APDU.
        if _TCP_QUICKACK is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def _send(self, payload: bytes) -> None:
        self._sock.sendall(len(payload).to_bytes(2, "big") + payload)
