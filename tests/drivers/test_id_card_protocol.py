"""The ID card protocol in-process: `IdCardSession` talks to a `SimulatedCard`
through a plain transmit callable. No pcscd, no threads: each test runs in
milliseconds. The same cards through the real stack are in
test_pyscard_reader.py."""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from kiosk.card_proof import CardProofRefused, check_card_proof, claim_challenge, new_challenge
from kiosk.issuer_keys import TrustStore
from kiosk.ports.card_reader import CardVerdict, ConnectResult
from drivers.card_sim.card import ATR_T0, CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.id_card import apdu
from drivers.id_card.errors import CardUnreadable
from drivers.id_card.pin import pin_block
from drivers.id_card.pin_pad import pin_verify_structure
from drivers.id_card.protocol import IdCardSession, PinPad

TODAY = dt.date(2026, 1, 15)
PIN = "1234"
VALID_APDUS = 7           # VERIFY, SELECT+2 READ (EF.ID), SELECT+READ (EF.ID_SIG), INTERNAL AUTHENTICATE
T0_VALID_APDUS = 10       # the same + a GET RESPONSE after each case-4 command (2 SELECT, INTERNAL AUTHENTICATE)
PROTOCOL_LOGGER = "drivers.id_card.protocol"
Hook = Callable[[bytes, bytes | None], bytes | None]


class CardWire:
    """A SimulatedCard as the protocol's `transmit`: (data, SW) per command.

    Keeps every command object it was handed (so a wiped PIN block shows),
    and lets `hook` change the card's answer. A card that says nothing, or
    less than a status word, is the transport's CardUnreadable, as on PC/SC."""

    def __init__(self, card: SimulatedCard, hook: Hook | None = None) -> None:
        self.card = card
        self.hook = hook
        self.commands: list[bytes | bytearray] = []
        card.power_on()

    def __call__(self, command: bytes | bytearray) -> tuple[bytes, int]:
        self.commands.append(command)
        answer = self.card.transmit(bytes(command))
        if self.hook is not None:
            answer = self.hook(bytes(command), answer)
        if answer is None:
            raise CardUnreadable("silent")
        if len(answer) < 2:
            raise CardUnreadable("short_answer")
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    def sent(self, ins: int) -> list[bytes]:
        return [bytes(c) for c in self.commands if c[1] == ins]


def open_session(card: SimulatedCard, trust_store: TrustStore, hook: Hook | None = None, *,
                 pin_pad: PinPad | None = None) -> tuple[IdCardSession, CardWire]:
    """A session on `card` after a successful SELECT of the application;
    `hook` changes the answers from then on."""
    wire = CardWire(card)
    session = IdCardSession(wire, trust_store, t0=card.atr == ATR_T0, pin_pad=pin_pad)
    assert session.select() is ConnectResult.CONNECTED
    wire.commands.clear()
    wire.hook = hook
    return session, wire


def authenticate(session: IdCardSession, pin: str = PIN, today: dt.date = TODAY):
    return session.authenticate(pin_block(pin), today=today)


def photo_apdus(card: SimulatedCard) -> int:
    """What reading EF.PHOTO costs a card of profile 1.1 within `authenticate`:
    SELECT (+ GET RESPONSE on T=0) and one READ BINARY per 256 bytes."""
    photo = card.file(apdu.FID_PHOTO)
    return 1 + (card.atr == ATR_T0) + (0 if photo is None else -(-len(photo) // apdu.MAX_LE))


@pytest.fixture
def card(make_card, citizen: dict[str, Any]) -> SimulatedCard:
    return make_card(citizen)


# --- verdicts -----------------------------------------------------------------------------

def test_valid_card_is_read_with_the_fewest_apdus(card: SimulatedCard, trust_store: TrustStore,
                                                   citizen: dict[str, Any]) -> None:
    session, wire = open_session(card, trust_store)
    result = authenticate(session)
    assert (result.verdict, result.apdu_count) == (CardVerdict.VALID, VALID_APDUS + photo_apdus(card))
    assert len(wire.commands) == result.apdu_count
    assert result.identity.national_number == citizen["national_number"]
    assert result.identity.full_name("en") == "Samer Al-Khoury"
    assert result.identity.date_of_expiry == dt.date(2032, 4, 30)
    assert session.authenticated


def test_t0_card_follows_get_response(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    card = make_card(citizen, profile=CardProfile.T0)
    session, wire = open_session(card, trust_store)
    result = authenticate(session)
    assert (result.verdict, result.apdu_count) == (CardVerdict.VALID, T0_VALID_APDUS + photo_apdus(card))
    assert len(wire.sent(apdu.INS_GET_RESPONSE)) == 4                         # and SELECT EF.PHOTO's
    # READ BINARY asks for exactly what is left, so no 6Cxx repeat is needed.
    assert len(wire.commands) == result.apdu_count
    assert result.identity.national_number == citizen["national_number"]
    assert session.read_photo() is not None


def test_t0_wrong_le_is_repeated_with_the_le_it_asks_for(make_card, citizen: dict[str, Any],
                                                        trust_store: TrustStore) -> None:
    def wrong_le_once(command: bytes, answer: bytes | None) -> bytes | None:
        if command[1] == apdu.INS_INTERNAL_AUTHENTICATE and command[-1] == 0x00:
            return bytes([0x6C, 0x48])                               # "repeat with Le = 72"
        return answer

    card = make_card(citizen, profile=CardProfile.T0)
    session, wire = open_session(card, trust_store, wrong_le_once)
    result = authenticate(session)
    assert (result.verdict, result.apdu_count) == (CardVerdict.VALID, T0_VALID_APDUS + photo_apdus(card) + 1)
    first, repeat = wire.sent(apdu.INS_INTERNAL_AUTHENTICATE)
    assert repeat[:-1] == first[:-1] and repeat[-1] == 0x48


@pytest.mark.parametrize("end_of_file_sw", [apdu.SW_END_OF_FILE, apdu.SW_OK], ids=["6282", "9000"])
def test_both_end_of_file_answers(make_card, citizen: dict[str, Any], trust_store: TrustStore,
                                  end_of_file_sw: int) -> None:
    session, _ = open_session(make_card(citizen, end_of_file_sw=end_of_file_sw), trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    assert session.read_photo() is not None


def test_wrong_pin_reports_tries_left_then_blocks(make_card, citizen: dict[str, Any],
                                                  trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen, pin="2468"), trust_store)
    first = authenticate(session, "1357")
    assert (first.verdict, first.tries_left, first.identity, first.apdu_count) == (
        CardVerdict.WRONG_PIN, 2, None, 1)
    assert authenticate(session, "0000").tries_left == 1
    assert session.read_photo() is None
    assert authenticate(session, "2468").verdict is CardVerdict.VALID         # counter reset
    assert authenticate(session, "1111").tries_left == 2
    assert not session.authenticated
    assert authenticate(session, "1111").tries_left == 1
    assert authenticate(session, "1111").verdict is CardVerdict.BLOCKED
    assert authenticate(session, "2468").verdict is CardVerdict.BLOCKED


def test_blocked_card(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen, profile=CardProfile.BLOCKED), trust_store)
    result = authenticate(session)
    assert (result.verdict, result.apdu_count, result.identity) == (CardVerdict.BLOCKED, 1, None)


def test_forged_card_with_altered_data(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, wire = open_session(make_card(citizen, profile=CardProfile.FORGED), trust_store)
    result = authenticate(session)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert wire.sent(apdu.INS_INTERNAL_AUTHENTICATE) == []                   # forged: no need to ask the chip
    assert session.read_photo() is None


def test_card_of_an_untrusted_issuer_is_forged(citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, _ = open_session(SimulatedCard.for_citizen(citizen, issuer=IssuerKey.generate()), trust_store)
    assert authenticate(session).verdict is CardVerdict.FORGED


def test_cloned_card(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen, profile=CardProfile.CLONED), trust_store)
    result = authenticate(session)
    assert (result.verdict, result.identity, result.apdu_count) == (CardVerdict.CLONED, None, VALID_APDUS)
    assert session.read_photo() is None


def test_expired_card_shows_the_expiry(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen, profile=CardProfile.EXPIRED), trust_store)
    result = authenticate(session, today=dt.date.today())
    assert result.verdict is CardVerdict.EXPIRED
    assert result.identity.date_of_expiry == dt.date.today() - dt.timedelta(days=30)
    assert session.read_photo() is None


def test_expiry_day_itself_is_still_valid(card: SimulatedCard, trust_store: TrustStore) -> None:
    session, _ = open_session(card, trust_store)
    assert authenticate(session, today=dt.date(2032, 4, 30)).verdict is CardVerdict.VALID
    assert authenticate(session, today=dt.date(2032, 5, 1)).verdict is CardVerdict.EXPIRED


# --- the photo ----------------------------------------------------------------------------

def test_photo_of_a_1_1_card_is_read_and_checked_within_authenticate(card: SimulatedCard,
                                                                       trust_store: TrustStore) -> None:
    session, wire = open_session(card, trust_store)
    assert session.read_photo() is None                                      # not yet authenticated
    assert wire.commands == []
    result = authenticate(session)
    assert result.verdict is CardVerdict.VALID and result.identity.photo_digest is not None
    assert wire.commands[-1 - (photo_apdus(card) - 1)] == apdu.select_ef(apdu.FID_PHOTO, fcp=True)
    assert wire.sent(apdu.INS_INTERNAL_AUTHENTICATE)                          # both checks came first
    wire.commands.clear()
    photo = session.read_photo()
    assert wire.commands == []                                               # the photo already read
    assert photo == card.file(apdu.FID_PHOTO) and 4_000 < len(photo) < 16_000
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG" and image.size == (240, 300)
    assert session.read_photo() == photo


def test_photo_of_a_1_0_card_is_read_when_asked_for(make_card, citizen: dict[str, Any],
                                                    trust_store: TrustStore) -> None:
    session, wire = open_session(make_card(citizen, photo_digest=False), trust_store)
    result = authenticate(session)
    assert (result.verdict, result.apdu_count, result.identity.photo_digest) == (CardVerdict.VALID, VALID_APDUS, None)
    wire.commands.clear()
    photo = session.read_photo()
    assert photo is not None and 4_000 < len(photo) < 16_000
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG" and image.size == (240, 300)
    reads = wire.sent(apdu.INS_READ_BINARY)
    assert len(wire.commands) == 1 + len(reads) and len(reads) == -(-len(photo) // apdu.MAX_LE)


@pytest.mark.parametrize("profile", [CardProfile.VALID, CardProfile.T0], ids=["t1", "t0"])
def test_swapped_photo_is_forged_and_never_shown(make_card, citizen: dict[str, Any], trust_store: TrustStore,
                                                 caplog, profile: CardProfile) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    swapped = make_card(citizen, profile=CardProfile.SWAPPED_PHOTO)
    if profile is CardProfile.T0:
        swapped = make_card(citizen, profile=CardProfile.T0)
        swapped.put_file(apdu.FID_PHOTO, make_card(citizen, profile=CardProfile.SWAPPED_PHOTO).file(apdu.FID_PHOTO))
    session, wire = open_session(swapped, trust_store)
    result = authenticate(session)
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)
    assert result.apdu_count == len(wire.commands) == (T0_VALID_APDUS if profile is CardProfile.T0
                                                       else VALID_APDUS) + photo_apdus(swapped)
    assert "card.photo result=does_not_match_d1" in caplog.text
    assert not session.authenticated and session.read_photo() is None
    assert session.prove(bytes(32)) is None


def test_card_with_d1_but_no_photo_is_forged(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    card = make_card(citizen)
    card.put_file(apdu.FID_PHOTO, None)               # the photo the issuer signed a digest of is gone
    session, wire = open_session(card, trust_store)
    result = authenticate(session)
    assert (result.verdict, result.identity, result.apdu_count) == (CardVerdict.FORGED, None, VALID_APDUS + 1)
    assert session.read_photo() is None


def test_photo_is_only_checked_after_both_authenticity_checks(make_card, citizen: dict[str, Any],
                                                             trust_store: TrustStore) -> None:
    for profile in (CardProfile.FORGED, CardProfile.CLONED):
        session, wire = open_session(make_card(citizen, profile=profile), trust_store)
        assert authenticate(session).verdict is CardVerdict(profile.value)
        assert apdu.select_ef(apdu.FID_PHOTO, fcp=True) not in wire.commands


def test_expired_card_with_a_swapped_photo_is_forged(make_card, citizen: dict[str, Any],
                                                     trust_store: TrustStore) -> None:
    card = make_card(citizen, profile=CardProfile.EXPIRED)
    card.put_file(apdu.FID_PHOTO, make_card(citizen, profile=CardProfile.SWAPPED_PHOTO).file(apdu.FID_PHOTO))
    session, _ = open_session(card, trust_store)
    result = authenticate(session, today=dt.date.today())
    assert (result.verdict, result.identity) == (CardVerdict.FORGED, None)


def test_card_without_photo(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, wire = open_session(make_card(citizen, profile=CardProfile.NO_PHOTO), trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    assert session.read_photo() is None
    assert bytes(wire.commands[-1]) == apdu.select_ef(apdu.FID_PHOTO, fcp=True)


def _not_jpeg(command: bytes, answer: bytes | None) -> bytes | None:
    if command[1] == apdu.INS_READ_BINARY and command[2:4] == b"\x00\x00" and answer[:2] == b"\xff\xd8":
        return b"GIF8" + answer[4:]
    return answer


def test_photo_that_is_not_a_jpeg(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen, photo_digest=False), trust_store, _not_jpeg)
    assert authenticate(session).verdict is CardVerdict.VALID
    assert session.read_photo() is None


def test_photo_altered_on_the_way_is_forged_on_a_1_1_card(card: SimulatedCard, trust_store: TrustStore) -> None:
    session, _ = open_session(card, trust_store, _not_jpeg)
    assert authenticate(session).verdict is CardVerdict.FORGED
    assert session.read_photo() is None


def test_photo_that_cannot_be_read_makes_a_1_1_card_unreadable(card: SimulatedCard,
                                                               trust_store: TrustStore) -> None:
    def photo_fails(command: bytes, answer: bytes | None) -> bytes | None:
        return None if command == apdu.select_ef(apdu.FID_PHOTO, fcp=True) else answer

    session, _ = open_session(card, trust_store, photo_fails)
    assert authenticate(session).verdict is CardVerdict.UNREADABLE
    assert session.read_photo() is None and session.prove(bytes(32)) is None


# --- the card proves it is in the reader ------------------------------------------------------

def test_proof_after_a_valid_read_checks_for_exactly_its_challenge(card: SimulatedCard, trust_store: TrustStore,
                                                                  citizen: dict[str, Any]) -> None:
    session, wire = open_session(card, trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    wire.commands.clear()
    challenge = claim_challenge("req-1", "birth-extract", "2026-01-15T10:00:00Z")
    proof = session.prove(challenge)
    assert wire.commands == [apdu.internal_authenticate(challenge)]
    assert (proof.ef_id, proof.ef_id_sig) == (card.file(apdu.FID_ID), card.file(apdu.FID_ID_SIG))
    assert check_card_proof(trust_store, proof, challenge).national_number == citizen["national_number"]
    with pytest.raises(CardProofRefused) as refused:
        check_card_proof(trust_store, proof, new_challenge())
    assert refused.value.reason == "cloned"
    again = session.prove(challenge)                                         # a fresh signature each time
    assert again.signature != proof.signature and check_card_proof(trust_store, again, challenge)


def test_t0_card_proves_through_get_response(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, wire = open_session(make_card(citizen, profile=CardProfile.T0), trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    wire.commands.clear()
    challenge = new_challenge()
    proof = session.prove(challenge)
    assert [c[1] for c in wire.commands] == [apdu.INS_INTERNAL_AUTHENTICATE, apdu.INS_GET_RESPONSE]
    assert check_card_proof(trust_store, proof, challenge).national_number == citizen["national_number"]


@pytest.mark.parametrize("profile", [CardProfile.FORGED, CardProfile.CLONED, CardProfile.EXPIRED,
                                     CardProfile.BLOCKED, CardProfile.SWAPPED_PHOTO])
def test_no_proof_from_a_card_that_is_not_valid(make_card, citizen: dict[str, Any], trust_store: TrustStore,
                                                profile: CardProfile) -> None:
    session, wire = open_session(make_card(citizen, profile=profile), trust_store)
    assert authenticate(session, today=dt.date.today()).verdict is not CardVerdict.VALID
    wire.commands.clear()
    assert session.prove(new_challenge()) is None
    assert wire.commands == []


def test_no_proof_before_a_valid_read_after_a_wrong_pin_or_once_forgotten(card: SimulatedCard,
                                                                         trust_store: TrustStore) -> None:
    session, wire = open_session(card, trust_store)
    assert session.prove(new_challenge()) is None
    assert authenticate(session, "9999").verdict is CardVerdict.WRONG_PIN
    assert session.prove(new_challenge()) is None
    assert authenticate(session).verdict is CardVerdict.VALID
    assert session.prove(new_challenge()) is not None
    assert authenticate(session, "9999").verdict is CardVerdict.WRONG_PIN    # a new read forgets the last
    assert session.prove(new_challenge()) is None
    assert authenticate(session).verdict is CardVerdict.VALID
    session.forget()
    wire.commands.clear()
    assert session.prove(new_challenge()) is None and session.read_photo() is None
    assert wire.commands == [] and not session.authenticated


@pytest.mark.parametrize("challenge", [b"", bytes(31), bytes(33), "x" * 32, None])
def test_no_proof_for_a_challenge_that_is_not_32_bytes(card: SimulatedCard, trust_store: TrustStore,
                                                       challenge) -> None:
    session, wire = open_session(card, trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    wire.commands.clear()
    assert session.prove(challenge) is None
    assert wire.commands == []


PROOF_ANSWERS = {
    "wrong_sw": (b"\x69\x82", "internal_authenticate_sw_6982"),
    "not_der": (bytes(70) + b"\x90\x00", "signature_does_not_verify"),
    "empty": (b"\x90\x00", "internal_authenticate_length"),
    "oversize": (bytes(100) + b"\x90\x00", "internal_authenticate_length"),
    "silent": (None, "silent"),
    "one_byte": (b"\x90", "short_answer"),
}


@pytest.mark.parametrize("name", list(PROOF_ANSWERS) + ["another_chip"])
def test_no_proof_when_the_card_answers_wrongly(card: SimulatedCard, trust_store: TrustStore, caplog,
                                                name: str) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    proving = [False]

    def hook(command: bytes, answer: bytes | None) -> bytes | None:
        if not proving[0] or command[1] != apdu.INS_INTERNAL_AUTHENTICATE:
            return answer
        if name == "another_chip":
            other = ec.generate_private_key(ec.SECP256R1())
            return other.sign(command[5:5 + 32], ec.ECDSA(hashes.SHA256())) + b"\x90\x00"
        return PROOF_ANSWERS[name][0]

    session, _ = open_session(card, trust_store, hook)
    assert authenticate(session).verdict is CardVerdict.VALID
    proving[0] = True
    assert session.prove(new_challenge()) is None                            # no exception either
    reason = "signature_does_not_verify" if name == "another_chip" else PROOF_ANSWERS[name][1]
    assert "card.prove result=unreadable reason=%s" % reason in caplog.text
    proving[0] = False
    assert session.prove(new_challenge()) is not None                        # the card answers again


def test_transmit_that_raises_something_unexpected_while_proving(card: SimulatedCard, trust_store: TrustStore,
                                                                 caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    failing = [False]
    wire = CardWire(card)

    def transmit(command: bytes | bytearray) -> tuple[bytes, int]:
        if failing[0]:
            raise OSError(bytes(command).hex())
        return wire(command)

    session = IdCardSession(transmit, trust_store)
    assert session.select() is ConnectResult.CONNECTED
    assert authenticate(session).verdict is CardVerdict.VALID
    failing[0] = True
    challenge = new_challenge()
    assert session.prove(challenge) is None
    assert "card.unexpected_error operation=prove type=OSError" in caplog.text
    assert challenge.hex() not in caplog.text


def test_proof_and_session_withhold_the_card_data(card: SimulatedCard, trust_store: TrustStore,
                                                  citizen: dict[str, Any]) -> None:
    session, _ = open_session(card, trust_store)
    assert authenticate(session).verdict is CardVerdict.VALID
    proof = session.prove(new_challenge())
    text = repr(proof) + str(proof) + repr(session) + repr(vars(session))
    assert citizen["national_number"] not in text and citizen["card_number"] not in text


# --- the PIN ------------------------------------------------------------------------------

def test_pin_block_is_wiped_after_verify(card: SimulatedCard, trust_store: TrustStore) -> None:
    session, wire = open_session(card, trust_store)
    block = pin_block(PIN)
    assert session.authenticate(block, today=TODAY).verdict is CardVerdict.VALID
    assert block == bytes(len(block))
    verify = wire.commands[0]                                                # VERIFY, as sent
    assert isinstance(verify, bytearray) and verify == bytes(len(verify))    # wiped too


def test_pin_block_is_wiped_when_the_card_is_silent(make_card, citizen: dict[str, Any],
                                                   trust_store: TrustStore) -> None:
    session, _ = open_session(make_card(citizen), trust_store, lambda command, answer: None)
    block = pin_block(PIN)
    assert session.authenticate(block, today=TODAY).verdict is CardVerdict.UNREADABLE
    assert block == bytes(len(block))


def test_pin_typed_on_the_readers_pin_pad(card: SimulatedCard, trust_store: TrustStore) -> None:
    handed: list[bytes] = []

    def pin_pad(structure: bytes) -> bytes:
        # The reader fills the blank block in with what the citizen typed.
        handed.append(structure)
        answer = card.transmit(bytes(apdu.verify(pin_block(PIN))))
        return answer

    session, wire = open_session(card, trust_store, pin_pad=pin_pad)
    result = session.authenticate(None, today=TODAY)
    assert (result.verdict, result.apdu_count) == (CardVerdict.VALID, VALID_APDUS + photo_apdus(card))
    assert handed == [pin_verify_structure()]
    assert wire.sent(apdu.INS_VERIFY) == []


def test_pin_pad_path_on_a_reader_without_pin_pad(card: SimulatedCard, trust_store: TrustStore) -> None:
    session, wire = open_session(card, trust_store)
    result = session.authenticate(None, today=TODAY)
    assert (result.verdict, result.apdu_count) == (CardVerdict.UNREADABLE, 0)
    assert wire.commands == []


def test_pin_pad_that_fails(card: SimulatedCard, trust_store: TrustStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)

    def broken_pad(structure: bytes) -> bytes:
        raise CardUnreadable("control_failed_80100016")

    session, _ = open_session(card, trust_store, pin_pad=broken_pad)
    assert session.authenticate(None, today=TODAY).verdict is CardVerdict.UNREADABLE
    assert "card.unreadable reason=control_failed_80100016" in caplog.text


# --- answers outside the profile ------------------------------------------------------------

def _answer_to(ins: int, answer: bytes, *, only_first_read: bool = False) -> Hook:
    """A hook giving `answer` to every command `ins` (or only READ BINARY at offset 0)."""
    def hook(command: bytes, real: bytes | None) -> bytes | None:
        if command[1] == ins and not (only_first_read and command[2:4] != b"\x00\x00"):
            return answer
        return real
    return hook


def _select_ef_id_answers(answer: bytes) -> Hook:
    def hook(command: bytes, real: bytes | None) -> bytes | None:
        return answer if command == apdu.select_ef(apdu.FID_ID, fcp=True) else real
    return hook


def _ef_id_zeroed(command: bytes, real: bytes | None) -> bytes | None:
    """EF.ID's bytes all zero: the right length, nothing of the profile in it."""
    if command[1] == apdu.INS_READ_BINARY and real is not None and len(real) > 100:
        return bytes(len(real) - 2) + real[-2:]
    return real


def _more_data_forever(command: bytes, real: bytes | None) -> bytes | None:
    if command[1] in (apdu.INS_SELECT, apdu.INS_GET_RESPONSE):
        return b"\x01\x61\x01"
    return real


UNREADABLE_ANSWERS = {
    # VERIFY answered with what VERIFY never answers
    "verify_6A86": (_answer_to(apdu.INS_VERIFY, b"\x6a\x86"), "verify_sw_6A86"),
    "verify_6F00": (_answer_to(apdu.INS_VERIFY, b"\x6f\x00"), "verify_sw_6F00"),
    "verify_one_byte": (_answer_to(apdu.INS_VERIFY, b"\x90"), "short_answer"),
    "verify_with_data": (_answer_to(apdu.INS_VERIFY, b"\x01\x90\x00"), "verify_data"),
    "verify_6282": (_answer_to(apdu.INS_VERIFY, b"\x62\x82"), "verify_sw_6282"),
    "verify_61xx": (_answer_to(apdu.INS_VERIFY, b"\x61\x10"), "verify_sw_6D00"),
    "verify_6Cxx": (_answer_to(apdu.INS_VERIFY, b"\x6c\x05"), "wrong_le_unexpected"),
    # files
    "select_wrong_sw": (_select_ef_id_answers(b"\x6a\x86"), "select_ef_sw_6A86"),
    "select_not_found": (_select_ef_id_answers(b"\x6a\x82"), "select_ef_sw_6A82"),
    "fcp_garbage": (_select_ef_id_answers(b"\x13\x37\xde\xad\x90\x00"), "fcp_malformed"),
    "fcp_of_another_file": (_select_ef_id_answers(apdu.fcp(300, apdu.FID_PHOTO) + b"\x90\x00"), "fcp_fid"),
    "fcp_oversize": (_select_ef_id_answers(apdu.fcp(0x7000, apdu.FID_ID) + b"\x90\x00"), "file_size"),
    "read_wrong_sw": (_answer_to(apdu.INS_READ_BINARY, b"\x6b\x00"), "read_binary_sw_6B00"),
    "read_empty": (_answer_to(apdu.INS_READ_BINARY, b"\x90\x00"), "read_binary_empty"),
    "read_oversize": (_answer_to(apdu.INS_READ_BINARY, bytes(300) + b"\x90\x00"), "response_overlong"),
    "read_short": (_answer_to(apdu.INS_READ_BINARY, bytes(10) + b"\x62\x82", only_first_read=True),
                   "file_shorter_than_fcp"),
    "ef_id_garbage": (_ef_id_zeroed, "ef_id_malformed"),
    "endless_get_response": (_more_data_forever, "get_response_loop"),
    # INTERNAL AUTHENTICATE
    "internal_authenticate_wrong_sw": (_answer_to(apdu.INS_INTERNAL_AUTHENTICATE, b"\x69\x82"),
                                       "internal_authenticate_sw_6982"),
    "internal_authenticate_oversize": (_answer_to(apdu.INS_INTERNAL_AUTHENTICATE, bytes(100) + b"\x90\x00"),
                                       "internal_authenticate_length"),
    "internal_authenticate_empty": (_answer_to(apdu.INS_INTERNAL_AUTHENTICATE, b"\x90\x00"),
                                    "internal_authenticate_length"),
}


@pytest.mark.parametrize("name", list(UNREADABLE_ANSWERS))
def test_answer_outside_the_profile_is_unreadable(card: SimulatedCard, trust_store: TrustStore,
                                                  citizen: dict[str, Any], caplog, name: str) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    hook, reason = UNREADABLE_ANSWERS[name]
    session, wire = open_session(card, trust_store, hook)
    result = authenticate(session)
    assert (result.verdict, result.identity) == (CardVerdict.UNREADABLE, None)
    assert result.apdu_count == len(wire.commands)
    assert "card.unreadable reason=%s" % reason in caplog.text
    assert not session.authenticated and session.read_photo() is None
    assert citizen["national_number"] not in caplog.text


def test_t0_card_whose_get_response_runs_over(make_card, citizen: dict[str, Any], trust_store: TrustStore,
                                              caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)

    def overlong(command: bytes, real: bytes | None) -> bytes | None:
        if command[1] == apdu.INS_GET_RESPONSE:
            return bytes(command[4] + 1) + b"\x90\x00"
        return real

    session, _ = open_session(make_card(citizen, profile=CardProfile.T0), trust_store, overlong)
    assert authenticate(session).verdict is CardVerdict.UNREADABLE
    assert "reason=get_response_overlong" in caplog.text


# --- a silent card --------------------------------------------------------------------------

def test_card_that_goes_silent_mid_read(make_card, citizen: dict[str, Any], trust_store: TrustStore) -> None:
    session, wire = open_session(make_card(citizen, profile=CardProfile.SILENT), trust_store)
    result = authenticate(session)
    assert (result.verdict, result.identity) == (CardVerdict.UNREADABLE, None)
    assert result.apdu_count == len(wire.commands) == 4                       # VERIFY, SELECT, READ, READ


def test_transmit_that_returns_nothing(card: SimulatedCard, trust_store: TrustStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    wire = CardWire(card)
    session = IdCardSession(lambda command: wire(command) if command[1] == apdu.INS_SELECT else None,
                            trust_store)
    assert session.select() is ConnectResult.CONNECTED
    assert authenticate(session).verdict is CardVerdict.UNREADABLE
    assert "card.unreadable reason=no_answer" in caplog.text


def test_transmit_that_raises_something_unexpected(card: SimulatedCard, trust_store: TrustStore,
                                                   caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)

    def failing(command: bytes | bytearray) -> tuple[bytes, int]:
        raise OSError(bytes(command).hex())

    session = IdCardSession(failing, trust_store)
    assert session.select() is ConnectResult.UNREADABLE
    assert authenticate(session).verdict is CardVerdict.UNREADABLE
    assert "card.unexpected_error operation=authenticate type=OSError" in caplog.text
    for quoted in (apdu.select_aid().hex(), pin_block(PIN).hex()):          # the message may hold card bytes
        assert quoted not in caplog.text


# --- SELECT -----------------------------------------------------------------------------------

def test_card_of_another_application(card: SimulatedCard, trust_store: TrustStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger=PROTOCOL_LOGGER)
    wire = CardWire(card, _answer_to(apdu.INS_SELECT, b"\x6a\x82"))
    assert IdCardSession(wire, trust_store).select() is ConnectResult.UNREADABLE
    assert "reason=not_an_id_card" in caplog.text


@pytest.mark.parametrize("answer", [b"\x90", b"\x01\x90\x00", b"\x6e\x00"], ids=["one-byte", "data", "6E00"])
def test_select_answer_outside_the_profile(card: SimulatedCard, trust_store: TrustStore, answer: bytes) -> None:
    wire = CardWire(card, _answer_to(apdu.INS_SELECT, answer))
    assert IdCardSession(wire, trust_store).select() is ConnectResult.UNREADABLE


# --- no personal data -----------------------------------------------------------------------

def test_no_personal_data_or_pin_in_logs_or_state(make_card, citizen: dict[str, Any],
                                                  trust_store: TrustStore, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "735190"
    session, _ = open_session(make_card(citizen, pin=secret), trust_store)
    assert authenticate(session, "735191").verdict is CardVerdict.WRONG_PIN
    result = authenticate(session, secret)
    assert result.verdict is CardVerdict.VALID
    assert session.read_photo() is not None
    text = caplog.text + repr(result) + repr(session) + repr(vars(session))
    for private in (secret, "735191", citizen["national_number"], citizen["card_number"],
                    citizen["given_name_ar"], citizen["family_name_ar"], "Samer"):
        assert private not in text
