"""Two readers at once, told apart by configuration: the ID slot
("Virtual PCD 00 00") and the payment slot ("Virtual PCD 00 01"), each with
its own PyscardCardReader watching it. Every wait is on the readers' events."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any, Iterator

import pytest

from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult, ReaderStatus
from drivers.card_sim.pcscd import PcscdHandle
from drivers.card_sim.slot import VirtualCardSlot
from drivers.pyscard_reader import PyscardCardReader
from tests.drivers.conftest import (
    EVENT_TIMEOUT_S, CardSlot, EventLog, wait_for_reader_state, watched,
)

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

PAYMENT_READER = "Virtual PCD 00 01"
PAYMENT_VPCD_PORT = 35964
TODAY = dt.date(2026, 1, 15)
PIN = "1234"
ID_CITIZEN = "01020304050"
PAYMENT_CITIZEN = "09080706050"


@pytest.fixture
def payment_reader(make_reader) -> PyscardCardReader:
    return make_reader(PAYMENT_READER)


@pytest.fixture
def payment_events(payment_reader: PyscardCardReader) -> EventLog:
    return watched(payment_reader)


@pytest.fixture
def payment_slot(pcscd: PcscdHandle, payment_events: EventLog) -> Iterator[CardSlot]:
    """The payment slot, empty at the start and at the end, inserting through
    the payment reader's own events."""
    if not wait_for_reader_state(PAYMENT_READER, present=False, timeout=EVENT_TIMEOUT_S):
        pytest.fail("another card is in %s" % PAYMENT_READER)
    helper = CardSlot(VirtualCardSlot(port=PAYMENT_VPCD_PORT), payment_events)
    yield helper
    helper.remove()
    assert wait_for_reader_state(PAYMENT_READER, present=False), "the card did not leave the reader"


def read(reader: PyscardCardReader) -> tuple[CardVerdict, str | None]:
    """Connect and authenticate; the verdict and the national number read."""
    assert reader.connect() is ConnectResult.CONNECTED
    try:
        result = reader.authenticate(PIN, today=TODAY)
        return result.verdict, None if result.identity is None else result.identity.national_number
    finally:
        reader.disconnect()


def test_id_reader_ignores_a_card_in_the_payment_slot(
        card_slot: CardSlot, reader: PyscardCardReader, events: EventLog,
        payment_slot: CardSlot, payment_reader: PyscardCardReader, payment_events: EventLog,
        make_card, citizens: dict[str, dict[str, Any]]) -> None:
    payment_slot.insert(make_card(citizens[PAYMENT_CITIZEN]))       # waits for the payment reader's INSERTED

    assert events.events == []
    assert reader.status is ReaderStatus.NO_CARD
    assert reader.connect() is ConnectResult.NO_CARD                # not the payment slot's card
    assert payment_reader.status is ReaderStatus.READY
    assert read(payment_reader) == (CardVerdict.VALID, PAYMENT_CITIZEN)

    card_slot.insert(make_card(citizens[ID_CITIZEN]))               # waits for the ID reader's INSERTED
    assert read(reader) == (CardVerdict.VALID, ID_CITIZEN)

    payment_slot.remove()                                           # waits for the payment reader's REMOVED
    assert reader.status is ReaderStatus.READY
    card_slot.remove()                                              # waits for the ID reader's REMOVED

    # Each reader saw its own card come and go, and nothing of the other's.
    assert events.events == [CardEvent.INSERTED, CardEvent.REMOVED]
    assert payment_events.events == [CardEvent.INSERTED, CardEvent.REMOVED]


def test_both_readers_read_their_own_cards_at_once(
        card_slot: CardSlot, reader: PyscardCardReader, events: EventLog,
        payment_slot: CardSlot, payment_reader: PyscardCardReader, payment_events: EventLog,
        make_card, citizens: dict[str, dict[str, Any]]) -> None:
    card_slot.insert(make_card(citizens[ID_CITIZEN]))
    payment_slot.insert(make_card(citizens[PAYMENT_CITIZEN]))
    assert reader.status is ReaderStatus.READY and payment_reader.status is ReaderStatus.READY

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        id_read = pool.submit(read, reader)
        payment_read = pool.submit(read, payment_reader)
        assert id_read.result(timeout=10) == (CardVerdict.VALID, ID_CITIZEN)
        assert payment_read.result(timeout=10) == (CardVerdict.VALID, PAYMENT_CITIZEN)

    assert events.events == [CardEvent.INSERTED]
    assert payment_events.events == [CardEvent.INSERTED]
