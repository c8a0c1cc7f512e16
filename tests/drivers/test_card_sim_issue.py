"""The card simulator issues cards of profile 1.1, and a swapped-photo variant, in process (no pcscd).

The applet is read through its APDUs, as in test_card_sim.py (which needs the real stack for the rest)."""

from __future__ import annotations

import argparse
import hashlib
import io
from typing import Any

import pytest
from PIL import Image

from drivers.card_sim import cli
from drivers.card_sim.card import CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.slot import VirtualCardSlot
from drivers.id_card import apdu
from drivers.id_card.pin import pin_block
from kiosk.card_proof import passive_check
from kiosk.id_card_data import Tag, decode_identity, iter_tlv
from kiosk.issuer_keys import TrustStore


def _sw(answer: bytes | None) -> int:
    assert answer is not None and len(answer) >= 2
    return int.from_bytes(answer[-2:], "big")


def read_file(card: SimulatedCard, fid: int) -> bytes | None:
    """EF `fid` through the card's own APDUs (after SELECT and VERIFY), None when it has none."""
    card.power_on()
    assert _sw(card.transmit(apdu.select_aid())) == apdu.SW_OK
    assert _sw(card.transmit(bytes(apdu.verify(pin_block("1234"))))) == apdu.SW_OK
    answer = card.transmit(apdu.select_ef(fid, fcp=True))
    if _sw(answer) == apdu.SW_NOT_FOUND:
        return None
    size = apdu.parse_fcp(answer[:-2]).size
    content = b""
    while len(content) < size:
        content += card.transmit(apdu.read_binary(len(content)))[:-2]
    return content


def test_a_card_with_a_photo_carries_its_digest_signed_by_the_issuer(make_card, issuer: IssuerKey,
                                                                     citizen: dict[str, Any]) -> None:
    card = make_card(citizen)
    ef_id, photo = read_file(card, apdu.FID_ID), read_file(card, apdu.FID_PHOTO)
    identity = decode_identity(ef_id)
    assert identity.photo_digest == hashlib.sha256(photo).digest()
    assert dict(iter_tlv(ef_id))[Tag.VERSION] == b"\x01"                     # C0 stays 01 under 1.1
    assert passive_check(TrustStore([issuer.public_key]), identity.issuer_key_id, ef_id,
                         read_file(card, apdu.FID_ID_SIG))
    assert (card.file(apdu.FID_ID), card.file(apdu.FID_PHOTO)) == (ef_id, photo)


def test_a_card_without_a_photo_has_no_digest(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen, profile=CardProfile.NO_PHOTO)
    assert read_file(card, apdu.FID_PHOTO) is None and card.file(apdu.FID_PHOTO) is None
    assert decode_identity(read_file(card, apdu.FID_ID)).photo_digest is None


def test_a_card_of_profile_1_0(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen, photo_digest=False)
    assert decode_identity(read_file(card, apdu.FID_ID)).photo_digest is None
    assert read_file(card, apdu.FID_PHOTO)[:2] == b"\xff\xd8"


def test_swapped_photo_card(make_card, issuer: IssuerKey, citizen: dict[str, Any]) -> None:
    genuine, swapped = make_card(citizen), make_card(citizen, profile=CardProfile.SWAPPED_PHOTO)
    ef_id, photo = read_file(swapped, apdu.FID_ID), read_file(swapped, apdu.FID_PHOTO)
    identity = decode_identity(ef_id)
    # EF.ID and its signature are untouched: D1 names the genuine photo, not the one on the card.
    assert passive_check(TrustStore([issuer.public_key]), identity.issuer_key_id, ef_id,
                         read_file(swapped, apdu.FID_ID_SIG))
    assert identity.photo_digest == hashlib.sha256(genuine.file(apdu.FID_PHOTO)).digest()
    assert hashlib.sha256(photo).digest() != identity.photo_digest
    with Image.open(io.BytesIO(photo)) as image:                             # still a plausible portrait
        assert image.format == "JPEG" and image.size == (240, 300)
    assert repr(swapped) == "SimulatedCard(profile=SWAPPED_PHOTO)"


def test_put_file_changes_a_card_after_issue(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen)
    card.put_file(apdu.FID_PHOTO, b"\xff\xd8 another")
    assert read_file(card, apdu.FID_PHOTO) == b"\xff\xd8 another"
    card.put_file(apdu.FID_PHOTO, None)
    assert read_file(card, apdu.FID_PHOTO) is None


@pytest.mark.parametrize("spelling", ["swapped_photo", "swapped-photo", "SWAPPED-PHOTO"])
def test_the_swapped_photo_variant_is_chosen_as_the_others(spelling: str, issuer: IssuerKey,
                                                           citizens: dict[str, dict[str, Any]]) -> None:
    assert CardProfile(spelling.lower()) is CardProfile.SWAPPED_PHOTO
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["card", "insert", "01020304050", "--profile", spelling])
    assert args.profile == "swapped_photo"
    state = cli.ControlState(citizens, issuer, VirtualCardSlot(port=1))     # never reached
    assert state.handle("insert 01020304050 %s" % spelling).startswith("error vpcd is not reachable")
    assert state.handle("insert 01020304050 swapped~photo").startswith("error unknown profile")
