"""What the kiosk relies on from any CardReader: the fake and PyscardCardReader on the real stack."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from PIL import Image

from kiosk.card_proof import CardProofRefused, check_card_proof, claim_challenge, new_challenge
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult, ReaderStatus
from tests.contracts.conftest import PIN, CardWorld
from tests.drivers.conftest import EventLog

TODAY = dt.date.today()          # the simulator's expired card expired 30 days before today
WRONG = "9999"


def watched(world: CardWorld) -> EventLog:
    events = EventLog()
    world.reader.watch(events)
    return events


def connected(world: CardWorld, verdict: CardVerdict = CardVerdict.VALID) -> None:
    world.insert(verdict)
    assert world.reader.connect() is ConnectResult.CONNECTED


def test_no_card_connects_as_no_card(card_world: CardWorld) -> None:
    assert card_world.reader.connect() is ConnectResult.NO_CARD
    assert card_world.reader.status is ReaderStatus.NO_CARD


def test_authenticate_without_connect_is_unreadable(card_world: CardWorld) -> None:
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert (result.verdict, result.apdu_count, result.identity) == (CardVerdict.UNREADABLE, 0, None)


def test_insertion_is_reported_then_the_card_connects(card_world: CardWorld) -> None:
    events = watched(card_world)
    card_world.insert()
    assert events.wait_for(CardEvent.INSERTED), "no INSERTED event"
    assert card_world.reader.status is ReaderStatus.READY
    assert card_world.reader.connect() is ConnectResult.CONNECTED
    assert events.events == [CardEvent.INSERTED]


def test_watch_reports_a_card_already_in_the_reader(card_world: CardWorld) -> None:
    card_world.insert()
    events = watched(card_world)
    assert events.wait_for(CardEvent.INSERTED), "no INSERTED event for the card already in"


def test_right_pin_reads_the_identity(card_world: CardWorld) -> None:
    connected(card_world)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert result.verdict is CardVerdict.VALID
    assert result.identity.national_number == card_world.national_number
    assert result.identity.full_name("en") == "Samer Al-Khoury"
    assert result.tries_left is None and result.apdu_count > 0
    assert card_world.reader.status is ReaderStatus.READY


def test_wrong_pin_counts_down_and_the_right_one_restores_the_tries(card_world: CardWorld) -> None:
    connected(card_world)
    reader = card_world.reader
    first = reader.authenticate(WRONG, today=TODAY)
    assert (first.verdict, first.tries_left, first.identity) == (CardVerdict.WRONG_PIN, 2, None)
    assert reader.authenticate(WRONG, today=TODAY).tries_left == 1
    assert reader.read_photo() is None
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    assert reader.authenticate(WRONG, today=TODAY).tries_left == 2


def test_third_wrong_pin_blocks_the_card_for_good(card_world: CardWorld) -> None:
    connected(card_world)
    reader = card_world.reader
    assert [reader.authenticate(WRONG, today=TODAY).tries_left for _ in range(2)] == [2, 1]
    assert reader.authenticate(WRONG, today=TODAY).verdict is CardVerdict.BLOCKED
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.BLOCKED
    reader.disconnect()
    assert reader.connect() is ConnectResult.CONNECTED
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.BLOCKED


def test_photo_only_after_a_valid_read_in_the_same_connection(card_world: CardWorld) -> None:
    connected(card_world)
    reader = card_world.reader
    assert reader.read_photo() is None
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    photo = reader.read_photo()
    assert photo is not None
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG"
    reader.disconnect()
    assert reader.read_photo() is None


@pytest.mark.parametrize("verdict", [CardVerdict.FORGED, CardVerdict.CLONED], ids=["forged", "cloned"])
def test_forged_or_cloned_card_is_refused_without_an_identity(card_world: CardWorld, verdict: CardVerdict) -> None:
    connected(card_world, verdict)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert (result.verdict, result.identity) == (verdict, None)
    assert card_world.reader.read_photo() is None


def test_photo_is_the_one_the_issuer_signed(card_world: CardWorld) -> None:
    connected(card_world)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert result.verdict is CardVerdict.VALID and result.identity.photo_digest is not None
    assert hashlib.sha256(card_world.reader.read_photo()).digest() == result.identity.photo_digest


def test_checked_photo_is_kept_for_the_connection_only(card_world: CardWorld) -> None:
    events = watched(card_world)
    connected(card_world)
    assert events.wait_for(CardEvent.INSERTED)
    reader = card_world.reader
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    photo = reader.read_photo()
    card_world.remove()                                       # read and checked already: no exchange needed
    assert events.wait_for(CardEvent.REMOVED)
    assert reader.read_photo() == photo
    reader.disconnect()
    assert reader.read_photo() is None


def test_swapped_photo_is_forged_and_never_shown(card_world: CardWorld) -> None:
    card_world.insert(photo_swapped=True)
    reader = card_world.reader
    assert reader.connect() is ConnectResult.CONNECTED
    result = reader.authenticate(PIN, today=TODAY)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert reader.read_photo() is None
    assert reader.prove(new_challenge()) is None
    assert reader.status is ReaderStatus.READY                # a verdict, not a card error


def test_expired_card_shows_its_expiry(card_world: CardWorld) -> None:
    connected(card_world, CardVerdict.EXPIRED)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert result.verdict is CardVerdict.EXPIRED
    assert result.identity.date_of_expiry == TODAY - dt.timedelta(days=30)
    assert card_world.reader.read_photo() is None


# --- the card proves it is in the reader ---------------------------------------------------------

def test_proof_checks_with_the_issuer_keys_for_its_challenge_only(card_world: CardWorld) -> None:
    connected(card_world)
    reader = card_world.reader
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    challenge = claim_challenge("req-0001", "birth-extract", "2026-01-15T10:00:00Z")
    proof = reader.prove(challenge)
    assert proof is not None
    identity = check_card_proof(card_world.issuer_keys, proof, challenge)
    assert identity.national_number == card_world.national_number
    for other in (new_challenge(), claim_challenge("req-0002", "birth-extract", "2026-01-15T10:00:00Z")):
        with pytest.raises(CardProofRefused) as refused:
            check_card_proof(card_world.issuer_keys, proof, other)
        assert refused.value.reason == "cloned"
    fresh = new_challenge()                                   # the card signs again, in the same connection
    assert check_card_proof(card_world.issuer_keys, reader.prove(fresh), fresh).national_number \
        == card_world.national_number
    assert reader.read_photo() is not None                    # proving leaves the read as it was


def test_no_proof_before_a_valid_read_nor_after_disconnect(card_world: CardWorld) -> None:
    connected(card_world)
    reader = card_world.reader
    assert reader.prove(new_challenge()) is None
    assert reader.authenticate(WRONG, today=TODAY).verdict is CardVerdict.WRONG_PIN
    assert reader.prove(new_challenge()) is None
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    reader.disconnect()
    assert reader.prove(new_challenge()) is None
    assert reader.connect() is ConnectResult.CONNECTED       # a new connection: read again first
    assert reader.prove(new_challenge()) is None


@pytest.mark.parametrize("challenge", [b"", bytes(31), bytes(33), "x" * 32], ids=["empty", "31", "33", "str"])
def test_no_proof_for_a_challenge_that_is_not_32_bytes(card_world: CardWorld, challenge) -> None:
    connected(card_world)
    assert card_world.reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    assert card_world.reader.prove(challenge) is None
    assert card_world.reader.prove(new_challenge()) is not None


@pytest.mark.parametrize("verdict", [CardVerdict.FORGED, CardVerdict.CLONED, CardVerdict.EXPIRED],
                         ids=["forged", "cloned", "expired"])
def test_no_proof_from_a_card_that_is_not_valid(card_world: CardWorld, verdict: CardVerdict) -> None:
    connected(card_world, verdict)
    assert card_world.reader.authenticate(PIN, today=TODAY).verdict is verdict
    assert card_world.reader.prove(new_challenge()) is None


def test_no_proof_once_the_card_is_removed(card_world: CardWorld) -> None:
    events = watched(card_world)
    connected(card_world)
    assert events.wait_for(CardEvent.INSERTED)
    assert card_world.reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    card_world.remove()
    assert events.wait_for(CardEvent.REMOVED)
    assert card_world.reader.prove(new_challenge()) is None
    assert card_world.reader.status is ReaderStatus.NO_CARD


def test_malformed_pin_is_refused_before_the_card_sees_it(card_world: CardWorld) -> None:
    connected(card_world)
    for malformed in ("12", "123456789", "12a4", "١٢٣٤"):
        with pytest.raises(ValueError):
            card_world.reader.authenticate(malformed, today=TODAY)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert result.verdict is CardVerdict.VALID            # no try was spent


def test_pin_pad_on_a_reader_without_one_is_unreadable(card_world: CardWorld) -> None:
    connected(card_world)
    result = card_world.reader.authenticate(None, today=TODAY)
    assert (result.verdict, result.apdu_count) == (CardVerdict.UNREADABLE, 0)


def test_removal_is_reported(card_world: CardWorld) -> None:
    events = watched(card_world)
    card_world.insert()
    assert events.wait_for(CardEvent.INSERTED)
    card_world.remove()
    assert events.wait_for(CardEvent.REMOVED), "no REMOVED event"
    assert events.events == [CardEvent.INSERTED, CardEvent.REMOVED]
    assert card_world.reader.status is ReaderStatus.NO_CARD
    assert card_world.reader.connect() is ConnectResult.NO_CARD


def test_card_removed_after_connect_is_unreadable(card_world: CardWorld) -> None:
    events = watched(card_world)
    connected(card_world)
    assert events.wait_for(CardEvent.INSERTED)
    card_world.remove()
    assert events.wait_for(CardEvent.REMOVED)
    result = card_world.reader.authenticate(PIN, today=TODAY)
    assert (result.verdict, result.identity) == (CardVerdict.UNREADABLE, None)
    assert card_world.reader.read_photo() is None
    assert card_world.reader.status is ReaderStatus.NO_CARD
    assert card_world.reader.connect() is ConnectResult.NO_CARD


def test_unwatch_stops_the_events(card_world: CardWorld) -> None:
    events = watched(card_world)
    card_world.insert()
    assert events.wait_for(CardEvent.INSERTED)
    card_world.reader.unwatch()
    seen = list(events.events)

    card_world.remove()                  # returns once the host sees the slot empty
    assert card_world.reader.status is ReaderStatus.NO_CARD
    card_world.insert()
    assert card_world.reader.status is ReaderStatus.READY
    assert events.events == seen
