"""A virtual card slot: insert a simulated card into pcscd's vpcd reader.

    slot = VirtualCardSlot()            # reader "Virtual PCD 00 00"
    slot.insert(SimulatedCard.for_citizen(record, issuer=issuer))
    ...
    slot.remove()

The card is in the reader while its vpcd connection is open; it is served
from a background thread. One card per slot at a time.
"""

from __future__ import annotations

import logging
import threading

from drivers.card_sim.vpcd import DEFAULT_HOST, DEFAULT_PORT, VirtualCard, VpcdLink

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


class SlotBusy(RuntimeError):
    """A card is already in the slot."""


class VirtualCardSlot:
    """One vpcd reader slot, driven in-process."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._link: VpcdLink | None = None
        self._thread: threading.Thread | None = None
        self._card: VirtualCard | None = None

    @property
    def card(self) -> VirtualCard | None:
        """The card in the slot, if any (None once vpcd dropped it)."""
        with self._lock:
            if self._link is None or self._link.closed:
                return None
            return self._card

    def insert(self, card: VirtualCard) -> None:
        """Connect `card` to vpcd and serve it in the background."""
        with self._lock:
            if self.card is not None:
                raise SlotBusy("a card is already in the slot")
            self._reap()
            link = VpcdLink(self._host, self._port)
            thread = threading.Thread(target=link.serve, args=(card,), daemon=True,
                                      name="card-sim-vpcd-%d" % self._port)
            self._link, self._thread, self._card = link, thread, card
            thread.start()
        log.info("card_sim.inserted port=%d", self._port)

    def remove(self) -> None:
        """Pull the card (idempotent; safe from the card's own serving thread)."""
        with self._lock:
            link, had_card = self._link, self.card is not None
            if link is not None:
                link.close()
            self._reap()
        if had_card:
            log.info("card_sim.removed port=%d", self._port)

    def _reap(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
        self._link = self._thread = self._card = None

    def __enter__(self) -> "VirtualCardSlot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
