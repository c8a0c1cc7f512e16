"""Fixtures for the ID card tests: pcscd with vpcd, an issuer, a virtual slot,
and the real driver watching it. Tests wait on the driver's events or on
pcscd's reader state, never on sleeps."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from smartcard.scard import (
    SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCARD_STATE_EMPTY, SCARD_STATE_PRESENT,
    SCARD_STATE_UNAWARE, SCardEstablishContext, SCardGetStatusChange, SCardReleaseContext,
)

from kiosk.ports.card_reader import CardEvent
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.pcscd import PcscdHandle
from drivers.card_sim.registry import load_citizens
from drivers.card_sim.slot import VirtualCardSlot
from kiosk.issuer_keys import TrustStore
from drivers.pyscard_reader import PyscardCardReader

CITIZENS_FILE = Path(__file__).with_name("citizens.json")
READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
EVENT_TIMEOUT_S = 5.0
APDU_TIMEOUT_S = 1.0


class EventLog:
    """Collects the driver's events; tests wait on it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.events: list[CardEvent] = []

    def __call__(self, event: CardEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def count(self, event: CardEvent) -> int:
        with self._changed:
            return self.events.count(event)

    def wait_for(self, event: CardEvent, count: int = 1, timeout: float = EVENT_TIMEOUT_S) -> bool:
        """True once `event` has been seen `count` times."""
        with self._changed:
            return self._changed.wait_for(lambda: self.events.count(event) >= count, timeout)


class Attended:
    """A card that tells when vpcd first asks it for its ATR: the moment it
    is really in the reader. (vpcd serves one link at a time; a second one
    waits, unseen, until the first card leaves.)"""

    def __init__(self, card: Any) -> None:
        self._card = card
        self.reached = threading.Event()

    @property
    def atr(self) -> bytes:
        self.reached.set()
        return self._card.atr

    def __getattr__(self, name: str) -> Any:
        return getattr(self._card, name)


def wait_for_reader_state(reader: str, *, present: bool, timeout: float = EVENT_TIMEOUT_S) -> bool:
    """Block on pcscd (SCardGetStatusChange) until `reader` has or lacks a card."""
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    assert hresult == SCARD_S_SUCCESS
    try:
        deadline = time.monotonic() + timeout
        known = SCARD_STATE_UNAWARE
        wanted = SCARD_STATE_PRESENT if present else SCARD_STATE_EMPTY
        while True:
            remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            hresult, states = SCardGetStatusChange(context, remaining_ms, [(reader, known)])
            if hresult == SCARD_S_SUCCESS and states[0][1] & wanted:
                return True
            if remaining_ms == 0 or hresult != SCARD_S_SUCCESS:
                return False
            known = states[0][1]
    finally:
        SCardReleaseContext(context)


class CardSlot:
    """Puts simulated cards into the watched reader and takes them out again,
    waiting each time for the driver's own INSERTED / REMOVED event."""

    def __init__(self, slot: VirtualCardSlot, events: EventLog) -> None:
        self.slot = slot
        self.events = events

    def insert(self, card: Any) -> Any:
        inserted = self.events.count(CardEvent.INSERTED)
        self.slot.insert(card)
        assert self.events.wait_for(CardEvent.INSERTED, inserted + 1), "driver saw no insertion"
        return card

    def remove(self) -> None:
        present = self.events.count(CardEvent.INSERTED) - self.events.count(CardEvent.REMOVED)
        self.slot.remove()
        if present > 0:
            assert self.events.wait_for(CardEvent.REMOVED, self.events.count(CardEvent.INSERTED)), \
                "driver saw no removal"


@pytest.fixture(scope="session")
def citizens() -> dict[str, dict[str, Any]]:
    return load_citizens(CITIZENS_FILE)


@pytest.fixture
def citizen(citizens: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A citizen with Latin names and every optional field."""
    return citizens["01020304050"]


@pytest.fixture(scope="session")
def trust_store(issuer: IssuerKey) -> TrustStore:
    return TrustStore([issuer.public_key])


@pytest.fixture
def slot(pcscd: PcscdHandle) -> Iterator[VirtualCardSlot]:
    """The vpcd slot of READER, empty at the start and at the end."""
    if not wait_for_reader_state(READER, present=False, timeout=EVENT_TIMEOUT_S):
        pytest.fail("another card is in %s (is `kiosk-sim card serve` running?)" % READER)
    virtual = VirtualCardSlot(port=VPCD_PORT)
    yield virtual
    virtual.remove()
    assert wait_for_reader_state(READER, present=False), "the card did not leave the reader"


@pytest.fixture
def make_reader(pcscd: PcscdHandle, trust_store: TrustStore) -> Iterator[Callable[[str], PyscardCardReader]]:
    """PyscardCardReader for a reader name; each one is unwatched and disconnected at the end."""
    made: list[PyscardCardReader] = []

    def make(name: str) -> PyscardCardReader:
        made.append(PyscardCardReader(trust_store, reader_name=name, apdu_timeout_s=APDU_TIMEOUT_S))
        return made[-1]
    yield make
    for driver in made:
        driver.unwatch()
        driver.disconnect()


def watched(reader: PyscardCardReader) -> EventLog:
    """The reader's events from now on (the reader's fixture unwatches it)."""
    log = EventLog()
    reader.watch(log)
    return log


@pytest.fixture
def reader(make_reader: Callable[[str], PyscardCardReader]) -> PyscardCardReader:
    return make_reader(READER)


@pytest.fixture
def events(reader: PyscardCardReader) -> EventLog:
    return watched(reader)


@pytest.fixture
def card_slot(slot: VirtualCardSlot, events: EventLog) -> Iterator[CardSlot]:
    helper = CardSlot(slot, events)
    yield helper
    helper.remove()
