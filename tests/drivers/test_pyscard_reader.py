"""PyscardCardReader through the real stack: pyscard -> pcscd -> vpcd -> simulated card."""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kiosk.config import CardConfig
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult, ReaderStatus
from drivers.card_sim.card import ATR_T0, CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.id_card import apdu
from drivers.id_card.errors import PinFormatError
from drivers.pcsc_watch import READER_NOTIFICATIONS
from drivers.pyscard_reader import PyscardCardReader, from_config
from tests.drivers.conftest import APDU_TIMEOUT_S, READER, CardSlot, EventLog

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

TODAY = dt.date(2026, 1, 15)
PIN = "1234"
VALID_APDUS = 7           # VERIFY, SELECT+2 READ (EF.ID), SELECT+READ (EF.ID_SIG), INTERNAL AUTHENTICATE
Hook = Callable[[int, bytes, bytes | None], bytes | None]


class ScriptedCard:
    """A SimulatedCard seen through a hook: records every exchange and may
    change answers. `index` counts commands from the last SELECT AID."""

    def __init__(self, card: SimulatedCard, hook: Hook | None = None) -> None:
        self.card = card
        self.hook = hook
        self.exchanges: list[tuple[bytes, bytes | None]] = []
        self.index = 0

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @property
    def answer_delay_s(self) -> float:
        return self.card.answer_delay_s

    def power_on(self) -> None:
        self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> None:
        self.card.reset()

    def transmit(self, command: bytes) -> bytes | None:
        if command[:4] == apdu.select_aid()[:4]:
            self.index = 0
        answer = self.card.transmit(command)
        if self.hook is not None:
            answer = self.hook(self.index, command, answer)
        self.index += 1
        self.exchanges.append((command, answer))
        return answer

    def commands(self, ins: int) -> list[bytes]:
        return [c for c, _ in self.exchanges if len(c) > 1 and c[1] == ins]


def read(reader: PyscardCardReader, pin: str | None = PIN, today: dt.date = TODAY):
    assert reader.connect() is ConnectResult.CONNECTED
    return reader.authenticate(pin, today=today)


def photo_apdus(card: SimulatedCard) -> int:
    """What reading EF.PHOTO costs a card of profile 1.1 within `authenticate`:
    SELECT (+ GET RESPONSE on T=0) and one READ BINARY per 256 bytes."""
    photo = card.file(apdu.FID_PHOTO)
    return 1 + (card.atr == ATR_T0) + (0 if photo is None else -(-len(photo) // apdu.MAX_LE))


# --- verdicts ---------------------------------------------------------------------------

def test_valid_card_is_read(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                            citizen: dict[str, Any]) -> None:
    card = card_slot.insert(make_card(citizen))
    started = time.perf_counter()
    result = read(reader)
    elapsed = time.perf_counter() - started

    assert result.verdict is CardVerdict.VALID
    assert result.apdu_count == VALID_APDUS + photo_apdus(card)             # the photo, checked with D1
    assert elapsed < 1.0
    identity = result.identity
    assert identity.national_number == citizen["national_number"]
    assert identity.card_number == citizen["card_number"]
    assert identity.full_name("ar") == "سامر الخوري"
    assert identity.full_name("en") == "Samer Al-Khoury"
    assert identity.mother_name_ar == citizen["mother_name_ar"]
    assert identity.civil_registry_ar == citizen["civil_registry_ar"]
    assert identity.sex == "M"
    assert identity.date_of_birth == dt.date(1988, 3, 14)
    assert identity.date_of_issue == dt.date(2022, 5, 1)
    assert identity.date_of_expiry == dt.date(2032, 4, 30)
    assert reader.status is ReaderStatus.READY

    photo = reader.read_photo()
    assert photo is not None and 4_000 < len(photo) < 16_000
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG" and image.size == (240, 300)


def test_card_without_latin_names(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                  citizens: dict[str, dict[str, Any]]) -> None:
    card_slot.insert(make_card(citizens["09080706050"]))
    result = read(reader)
    assert result.verdict is CardVerdict.VALID
    assert result.identity.given_name_latin is None
    assert result.identity.full_name("en") == "ريم العلي"


def test_wrong_pin_reports_tries_left_then_blocks(card_slot: CardSlot, reader: PyscardCardReader,
                                                  make_card, citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, pin="2468"))
    assert reader.connect() is ConnectResult.CONNECTED
    first = reader.authenticate("1357", today=TODAY)
    assert (first.verdict, first.tries_left, first.identity) == (CardVerdict.WRONG_PIN, 2, None)
    assert reader.authenticate("0000", today=TODAY).tries_left == 1
    assert reader.read_photo() is None
    assert reader.authenticate("2468", today=TODAY).verdict is CardVerdict.VALID   # counter reset
    assert reader.authenticate("1111", today=TODAY).tries_left == 2
    assert reader.authenticate("1111", today=TODAY).tries_left == 1
    assert reader.authenticate("1111", today=TODAY).verdict is CardVerdict.BLOCKED
    assert reader.authenticate("2468", today=TODAY).verdict is CardVerdict.BLOCKED


def test_blocked_card(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                      citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.BLOCKED))
    result = read(reader)
    assert (result.verdict, result.apdu_count, result.identity) == (CardVerdict.BLOCKED, 1, None)


def test_forged_card_with_altered_data(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                       citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.FORGED))
    result = read(reader)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert reader.read_photo() is None


def test_card_of_an_untrusted_issuer_is_forged(card_slot: CardSlot, reader: PyscardCardReader,
                                               citizen: dict[str, Any]) -> None:
    rogue = IssuerKey.generate()
    card_slot.insert(SimulatedCard.for_citizen(citizen, issuer=rogue))
    assert read(reader).verdict is CardVerdict.FORGED


def test_cloned_card(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                     citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.CLONED))
    result = read(reader)
    assert (result.verdict, result.identity, result.apdu_count) == (CardVerdict.CLONED, None, VALID_APDUS)


def test_swapped_photo_card_is_forged(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                      citizen: dict[str, Any], caplog) -> None:
    caplog.set_level(logging.INFO, logger="drivers")
    card = card_slot.insert(ScriptedCard(make_card(citizen, profile=CardProfile.SWAPPED_PHOTO)))
    result = read(reader)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert result.apdu_count == VALID_APDUS + photo_apdus(card.card)         # read after both checks
    assert card.commands(apdu.INS_INTERNAL_AUTHENTICATE)
    assert "card.photo result=does_not_match_d1" in caplog.text
    assert reader.read_photo() is None                                      # never shown
    assert reader.prove(bytes(32)) is None
    assert reader.status is ReaderStatus.READY


def test_expired_card_shows_the_expiry(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                       citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.EXPIRED))
    result = read(reader, today=dt.date.today())
    assert result.verdict is CardVerdict.EXPIRED
    assert result.identity.date_of_expiry == dt.date.today() - dt.timedelta(days=30)
    assert reader.read_photo() is None


def test_expiry_day_itself_is_still_valid(card_slot: CardSlot, reader: PyscardCardReader,
                                          make_card, citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen))
    assert reader.connect() is ConnectResult.CONNECTED
    assert reader.authenticate(PIN, today=dt.date(2032, 4, 30)).verdict is CardVerdict.VALID
    assert reader.authenticate(PIN, today=dt.date(2032, 5, 1)).verdict is CardVerdict.EXPIRED


def test_card_without_photo(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                            citizen: dict[str, Any]) -> None:
    card = card_slot.insert(ScriptedCard(make_card(citizen, profile=CardProfile.NO_PHOTO)))
    assert read(reader).verdict is CardVerdict.VALID
    assert reader.read_photo() is None
    command, answer = card.exchanges[-1]
    assert command == apdu.select_ef(apdu.FID_PHOTO, fcp=True) and answer == b"\x6a\x82"


def test_photo_needs_a_valid_read_in_the_same_connection(card_slot: CardSlot,
                                                         reader: PyscardCardReader, make_card,
                                                         citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen))
    assert reader.connect() is ConnectResult.CONNECTED
    assert reader.read_photo() is None
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    reader.disconnect()
    assert reader.read_photo() is None


# --- transport ---------------------------------------------------------------------------

def test_t0_card_get_response(card_slot: CardSlot, reader: PyscardCardReader,
                              make_card, citizen: dict[str, Any]) -> None:
    card = card_slot.insert(ScriptedCard(make_card(citizen, profile=CardProfile.T0)))
    result = read(reader)
    assert result.verdict is CardVerdict.VALID
    assert result.identity.national_number == citizen["national_number"]
    answers = [answer for _, answer in card.exchanges]
    assert any(a[-2] == 0x61 for a in answers)
    assert card.commands(apdu.INS_GET_RESPONSE)                       # 61xx followed
    # each 61xx (after two SELECTs with FCP and INTERNAL AUTHENTICATE) costs a GET RESPONSE;
    # READ BINARY asks for exactly what is left, so no 6Cxx repeat is needed
    assert result.apdu_count == VALID_APDUS + 3 + photo_apdus(card.card)
    assert reader.read_photo() is not None


def test_t0_card_wrong_le_is_repeated_with_the_le_it_asks_for(card_slot: CardSlot, reader: PyscardCardReader,
                                                              make_card, citizen: dict[str, Any]) -> None:
    def wrong_le_once(index: int, command: bytes, answer: bytes | None) -> bytes | None:
        if command[1] == apdu.INS_INTERNAL_AUTHENTICATE and command[-1] == 0x00:
            return bytes([0x6C, 0x48])                               # "repeat with Le = 72"
        return answer

    card = card_slot.insert(ScriptedCard(make_card(citizen, profile=CardProfile.T0), wrong_le_once))
    result = read(reader)
    assert result.verdict is CardVerdict.VALID
    first, repeat = card.commands(apdu.INS_INTERNAL_AUTHENTICATE)
    assert repeat[:-1] == first[:-1] and repeat[-1] == 0x48          # the same challenge, Le = 72
    assert result.apdu_count == VALID_APDUS + 3 + 1 + photo_apdus(card.card)


@pytest.mark.parametrize("end_of_file_sw", [apdu.SW_END_OF_FILE, apdu.SW_OK], ids=["6282", "9000"])
def test_both_end_of_file_answers(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                  citizen: dict[str, Any], end_of_file_sw: int) -> None:
    card = card_slot.insert(ScriptedCard(make_card(citizen, end_of_file_sw=end_of_file_sw)))
    assert read(reader).verdict is CardVerdict.VALID
    short_reads = [answer for command, answer in card.exchanges
                   if command[1] == apdu.INS_READ_BINARY and len(answer) - 2 < 256]
    assert short_reads and all(int.from_bytes(a[-2:], "big") == end_of_file_sw for a in short_reads)
    assert reader.read_photo() is not None


def test_slow_card_is_read(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                           citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.SLOW))
    assert read(reader).verdict is CardVerdict.VALID


def test_silent_card_is_unreadable_within_the_timeout(card_slot: CardSlot, reader: PyscardCardReader,
                                                      make_card, citizen: dict[str, Any]) -> None:
    card_slot.insert(make_card(citizen, profile=CardProfile.SILENT))
    assert reader.connect() is ConnectResult.CONNECTED
    started = time.monotonic()
    result = reader.authenticate(PIN, today=TODAY)
    elapsed = time.monotonic() - started
    assert result.verdict is CardVerdict.UNREADABLE
    assert APDU_TIMEOUT_S <= elapsed < APDU_TIMEOUT_S + 0.5
    assert reader.status is ReaderStatus.CARD_ERROR
    assert reader.read_photo() is None
    started = time.monotonic()
    assert reader.connect() is ConnectResult.UNREADABLE    # still stuck: bounded, no hang
    assert time.monotonic() - started < APDU_TIMEOUT_S + 0.5
    reader.disconnect()                                    # returns although the card is stuck

    card_slot.remove()                                     # frees pcscd's stuck exchange
    assert reader.status is ReaderStatus.NO_CARD
    card_slot.insert(make_card(citizen))
    assert read(reader).verdict is CardVerdict.VALID       # the reader recovered


def test_card_removed_mid_read(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                               citizen: dict[str, Any], events: EventLog) -> None:
    def pull_on_second_read(index: int, command: bytes, answer: bytes | None) -> bytes | None:
        if command[1] == apdu.INS_READ_BINARY and command[2:4] != b"\x00\x00":
            card_slot.slot.remove()
            return None
        return answer

    card_slot.insert(ScriptedCard(make_card(citizen), pull_on_second_read))
    started = time.monotonic()
    result = read(reader)
    assert result.verdict is CardVerdict.UNREADABLE
    assert time.monotonic() - started < APDU_TIMEOUT_S     # noticed at once, not by timeout
    assert events.wait_for(CardEvent.REMOVED)
    assert reader.status is ReaderStatus.NO_CARD
    assert reader.connect() is ConnectResult.NO_CARD


def test_card_of_another_application(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                     citizen: dict[str, Any]) -> None:
    def no_such_application(index: int, command: bytes, answer: bytes | None) -> bytes | None:
        return b"\x6a\x82" if command == apdu.select_aid() else answer

    card_slot.insert(ScriptedCard(make_card(citizen), no_such_application))
    assert reader.connect() is ConnectResult.UNREADABLE
    assert reader.status is ReaderStatus.CARD_ERROR
    assert reader.authenticate(PIN, today=TODAY).verdict is CardVerdict.UNREADABLE


@pytest.mark.parametrize("answer", [
    b"\x6a\x86", b"\x6f\x00", b"\x90", b"\x01\x90\x00", b"\x62\x82", b"\x61\x10", b"\x6c\x05",
], ids=["6A86", "6F00", "one-byte", "data", "6282", "61xx", "6Cxx"])
def test_verify_answer_outside_the_profile(card_slot: CardSlot, reader: PyscardCardReader,
                                           make_card, citizen: dict[str, Any], answer: bytes) -> None:
    def odd_verify(index: int, command: bytes, real: bytes | None) -> bytes | None:
        return answer if command[1] == apdu.INS_VERIFY else real

    card_slot.insert(ScriptedCard(make_card(citizen), odd_verify))
    assert read(reader).verdict is CardVerdict.UNREADABLE


def test_authenticate_without_connect(reader: PyscardCardReader) -> None:
    result = reader.authenticate(PIN, today=TODAY)
    assert (result.verdict, result.apdu_count) == (CardVerdict.UNREADABLE, 0)


def test_connect_without_card(slot, reader: PyscardCardReader) -> None:
    assert reader.connect() is ConnectResult.NO_CARD
    assert reader.status is ReaderStatus.NO_CARD


# --- PIN handling --------------------------------------------------------------------------

def test_malformed_pin_is_refused_before_the_card_sees_it(card_slot: CardSlot,
                                                          reader: PyscardCardReader, make_card,
                                                          citizen: dict[str, Any]) -> None:
    card = card_slot.insert(ScriptedCard(make_card(citizen)))
    assert reader.connect() is ConnectResult.CONNECTED
    with pytest.raises(PinFormatError):
        reader.authenticate("12", today=TODAY)
    assert card.commands(apdu.INS_VERIFY) == []


def test_pin_pad_path_on_a_reader_without_pin_pad(card_slot: CardSlot, reader: PyscardCardReader,
                                                  make_card, citizen: dict[str, Any], caplog) -> None:
    # vpcd has no PIN pad: GET_FEATURE_REQUEST is refused, so the read is UNREADABLE.
    caplog.set_level(logging.INFO, logger="drivers")
    card = card_slot.insert(ScriptedCard(make_card(citizen)))
    result = read(reader, pin=None)
    assert (result.verdict, result.apdu_count) == (CardVerdict.UNREADABLE, 0)
    assert card.commands(apdu.INS_VERIFY) == []
    assert any("reason=control_failed" in r.getMessage() for r in caplog.records)


def test_no_personal_data_or_pin_in_logs_or_state(card_slot: CardSlot, reader: PyscardCardReader,
                                                  make_card, citizen: dict[str, Any], caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "735190"
    card = card_slot.insert(make_card(citizen, pin=secret))
    assert reader.connect() is ConnectResult.CONNECTED
    assert reader.authenticate("735191", today=TODAY).verdict is CardVerdict.WRONG_PIN
    result = reader.authenticate(secret, today=TODAY)
    assert result.verdict is CardVerdict.VALID
    assert reader.read_photo() is not None
    assert reader.prove(bytes(32)) is not None
    text = "\n".join(record.getMessage() for record in caplog.records)
    text += repr(result) + repr(reader) + repr(vars(reader)) + repr(vars(reader._channel)) + repr(vars(reader._session))
    for private in (secret, "735191", "2673519", citizen["national_number"], citizen["card_number"],
                    citizen["given_name_ar"], citizen["family_name_ar"], "Samer"):
        assert private not in text
    assert "card.verdict verdict=valid apdus=%d" % (VALID_APDUS + photo_apdus(card)) in text


def test_from_config_takes_the_card_section(tmp_path: Path, issuer: IssuerKey) -> None:
    pem = tmp_path / "issuer.pub.pem"
    pem.write_bytes(issuer.public_pem)
    config = SimpleNamespace(card=CardConfig(trusted_issuers=(pem,), reader="Acme PIN pad", apdu_timeout_s=2.5))
    reader = from_config(config)
    assert isinstance(reader, PyscardCardReader)
    assert (reader._reader_prefix, reader._timeout_s) == ("Acme PIN pad", 2.5)
    assert reader._trust.key_ids == {issuer.key_id}


# --- events and readers --------------------------------------------------------------------

def test_insert_and_remove_events_through_watch(card_slot: CardSlot, reader: PyscardCardReader,
                                                make_card, citizen: dict[str, Any],
                                                events: EventLog, trust_store) -> None:
    assert reader.status is ReaderStatus.NO_CARD
    card_slot.insert(make_card(citizen))
    assert reader.status is ReaderStatus.READY
    card_slot.remove()
    assert events.events == [CardEvent.INSERTED, CardEvent.REMOVED]
    assert reader.status is ReaderStatus.NO_CARD

    # After unwatch, no more events; a second reader is the witness that
    # the insertion happened.
    reader.unwatch()
    witness, witness_events = PyscardCardReader(trust_store, reader_name=READER), EventLog()
    witness.watch(witness_events)
    try:
        card_slot.slot.insert(make_card(citizen))
        assert witness_events.wait_for(CardEvent.INSERTED)
        assert events.events == [CardEvent.INSERTED, CardEvent.REMOVED]
        card_slot.slot.remove()
        assert witness_events.wait_for(CardEvent.REMOVED)
    finally:
        witness.unwatch()


def test_watch_reports_a_card_already_in_the_reader(card_slot: CardSlot, make_card,
                                                    citizen: dict[str, Any], trust_store) -> None:
    card_slot.insert(make_card(citizen))
    late = PyscardCardReader(trust_store, reader_name=READER)
    late_events = EventLog()
    late.watch(late_events)
    try:
        assert late_events.wait_for(CardEvent.INSERTED)
        assert late.status is ReaderStatus.READY
    finally:
        late.unwatch()


def test_reader_is_chosen_by_name_prefix(card_slot: CardSlot, make_card, citizen: dict[str, Any],
                                         trust_store) -> None:
    card_slot.insert(make_card(citizen))
    payment_slot = PyscardCardReader(trust_store, reader_name="Virtual PCD 00 01")
    assert payment_slot.status is ReaderStatus.NO_CARD
    assert payment_slot.connect() is ConnectResult.NO_CARD
    missing = PyscardCardReader(trust_store, reader_name="Acme PIN pad reader")
    assert missing.status is ReaderStatus.NO_READER
    assert missing.connect() is ConnectResult.NO_CARD
    first = PyscardCardReader(trust_store)                 # "" = first reader: 00 00 here
    try:
        assert first.status is ReaderStatus.READY
        assert first.connect() is ConnectResult.CONNECTED
        assert first.authenticate(PIN, today=TODAY).verdict is CardVerdict.VALID
    finally:
        first.disconnect()


def test_reader_lost_and_found(reader: PyscardCardReader, events: EventLog) -> None:
    # The vpcd readers cannot be unplugged without stopping the shared
    # pcscd, so feed pyscard's reader-monitor notification directly.
    READER_NOTIFICATIONS.update(None, ([], [READER]))
    assert events.wait_for(CardEvent.READER_LOST)
    assert reader.status is ReaderStatus.NO_READER
    READER_NOTIFICATIONS.update(None, ([READER], []))
    assert events.wait_for(CardEvent.READER_FOUND)
    assert reader.status is ReaderStatus.NO_CARD
    READER_NOTIFICATIONS.update(None, (["Virtual PCD 00 01"], []))      # another reader: nothing for us
    assert events.events == [CardEvent.READER_LOST, CardEvent.READER_FOUND]


# --- fuzzing the driver with mutated card answers -------------------------------------------

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 400), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(1, 300)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("sw"), st.sampled_from([0x9000, 0x6282, 0x6100, 0x6110, 0x6C00, 0x6C08,
                                              0x63C2, 0x63C0, 0x6983, 0x6982, 0x6A82, 0x6B00,
                                              0x6700, 0x6D00, 0x6F00, 0x0000, 0xFFFF])),
    st.tuples(st.just("replace"), st.binary(min_size=1, max_size=300)),
)


def _mutate(mutation: tuple, answer: bytes) -> bytes:
    kind = mutation[0]
    if kind == "flip":
        data = bytearray(answer)
        data[mutation[1] % len(data)] ^= mutation[2]
        return bytes(data)
    if kind == "truncate":
        return answer[:max(1, len(answer) - mutation[1])]
    if kind == "append":
        return answer + mutation[1]
    if kind == "sw":
        return answer[:-2] + mutation[1].to_bytes(2, "big")
    return mutation[1]                 # replace. (An empty answer is silence on vpcd: not here.)


def test_fuzz_driver_with_mutated_answers(card_slot: CardSlot, reader: PyscardCardReader, make_card,
                                          citizen: dict[str, Any]) -> None:
    """Whatever the card answers, the driver returns a value in bounded time,
    and a VALID verdict always carries the genuine identity."""
    plan: dict[int, tuple] = {}

    def mutate(index: int, command: bytes, answer: bytes | None) -> bytes | None:
        return _mutate(plan[index], answer) if index in plan and answer else answer

    card_slot.insert(ScriptedCard(make_card(citizen), mutate))

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(st.integers(0, 11), _mutation, min_size=1, max_size=3))
    def check(mutations: dict[int, tuple]) -> None:
        plan.clear()
        plan.update(mutations)
        started = time.monotonic()
        try:
            connected = reader.connect()
            assert connected in (ConnectResult.CONNECTED, ConnectResult.UNREADABLE)
            result = reader.authenticate(PIN, today=TODAY)
            assert isinstance(result.verdict, CardVerdict)
            if result.verdict in (CardVerdict.VALID, CardVerdict.EXPIRED):
                assert result.identity.national_number == citizen["national_number"]
                assert result.identity.given_name_ar == citizen["given_name_ar"]
                assert result.identity.date_of_expiry == dt.date(2032, 4, 30)
            photo = reader.read_photo()
            assert photo is None or photo[:2] == b"\xff\xd8"
        finally:
            reader.disconnect()
        assert time.monotonic() - started < APDU_TIMEOUT_S

    check()
