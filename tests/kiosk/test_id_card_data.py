"""EF.ID (kiosk.id_card_data): the BER-TLV decoder and encoder of the card profile 1.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.errors import CardError
from kiosk.id_card_data import (
    REQUIRED_TAGS, Tag, MalformedCardData, decode_identity, encode_identity, encode_length, encode_tlv, iter_tlv,
    photo_digest,
)
from kiosk.ports.card_reader import Identity

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEY = bytes(range(91))            # the parser only sizes D0; kiosk.card_proof loads it
PHOTO = b"\xff\xd8 a portrait \xff\xd9"


def identity(**changes: object) -> Identity:
    base = Identity(
        card_number="SY0012345678", national_number="01020304050",
        given_name_ar="سامر", family_name_ar="الخوري",
        date_of_birth=dt.date(1988, 3, 14), date_of_expiry=dt.date(2032, 4, 30),
        issuer_key_id=bytes.fromhex("0011223344556677"), card_public_key=KEY,
        given_name_latin="Samer", family_name_latin="Al-Khoury",
        father_name_ar="يوسف", mother_name_ar="ليلى حداد", place_of_birth_ar="حلب",
        sex="M", civil_registry_ar="حلب، الجميلية، 1234", date_of_issue=dt.date(2022, 5, 1),
        photo_digest=photo_digest(PHOTO))
    return dataclasses.replace(base, **changes)


def objects(data: bytes) -> list[tuple[int, bytes]]:
    return list(iter_tlv(data))


def join(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_tlv(tag, value) for tag, value in items)


# --- the profile ---------------------------------------------------------------

def test_round_trip_keeps_every_field() -> None:
    original = identity()
    assert _fields(decode_identity(encode_identity(original))) == _fields(original)


def test_optional_fields_may_be_absent() -> None:
    bare = identity(given_name_latin=None, family_name_latin=None, father_name_ar=None,
                    mother_name_ar=None, place_of_birth_ar=None, sex=None,
                    civil_registry_ar=None, date_of_issue=None, photo_digest=None)
    decoded = decode_identity(encode_identity(bare))
    assert decoded.given_name_latin is None and decoded.date_of_issue is None
    assert decoded.photo_digest is None
    assert decoded.full_name("en") == "سامر الخوري"


def test_photo_digest_is_d1_at_the_end_and_only_when_there_is_one() -> None:
    assert objects(encode_identity(identity()))[-1] == (Tag.PHOTO_DIGEST, photo_digest(PHOTO))
    assert photo_digest(PHOTO) == hashlib.sha256(PHOTO).digest()
    assert Tag.PHOTO_DIGEST not in dict(objects(encode_identity(identity(photo_digest=None))))
    assert decode_identity(encode_identity(identity())).photo_digest == photo_digest(PHOTO)


def test_card_of_profile_1_0_has_no_photo_digest() -> None:
    items = [(t, v) for t, v in objects(encode_identity(identity())) if t != Tag.PHOTO_DIGEST]
    assert decode_identity(join(items)).photo_digest is None


def test_tags_in_any_order() -> None:
    items = objects(encode_identity(identity()))
    random.Random(7).shuffle(items)
    assert _fields(decode_identity(join(items))) == _fields(identity())


def test_unknown_tags_are_skipped() -> None:
    data = encode_identity(identity(), extra=[(0xD2, b"later profile"), (0x5E, b""), (0xE0, b"\x01" * 300)])
    assert _fields(decode_identity(data)) == _fields(identity())


@pytest.mark.parametrize("tag", sorted(REQUIRED_TAGS))
def test_missing_required_tag_is_refused(tag: int) -> None:
    items = [(t, v) for t, v in objects(encode_identity(identity())) if t != tag]
    with pytest.raises(MalformedCardData, match="missing"):
        decode_identity(join(items))


@pytest.mark.parametrize("tag", [Tag.NATIONAL_NUMBER, Tag.GIVEN_NAME_LATIN, Tag.ISSUER_KEY_ID, Tag.PHOTO_DIGEST])
def test_repeated_tag_is_refused(tag: int) -> None:
    items = objects(encode_identity(identity()))
    items.append(next(item for item in items if item[0] == tag))
    with pytest.raises(MalformedCardData, match="repeated"):
        decode_identity(join(items))


def test_all_three_length_forms() -> None:
    short = bytes([Tag.CARD_NUMBER, 12]) + b"SY0012345678"
    long1 = bytes([Tag.CARD_NUMBER, 0x81, 12]) + b"SY0012345678"
    long2 = bytes([Tag.CARD_NUMBER, 0x82, 0, 12]) + b"SY0012345678"
    rest = join([(t, v) for t, v in objects(encode_identity(identity())) if t != Tag.CARD_NUMBER])
    for form in (short, long1, long2):
        assert decode_identity(form + rest).card_number == "SY0012345678"
    assert encode_length(0x7F) == b"\x7f"
    assert encode_length(0x80) == b"\x81\x80"
    assert encode_length(0x100) == b"\x82\x01\x00"


@pytest.mark.parametrize("data, reason", [
    (b"\xc1", "without length"),
    (b"\xc1\x05abc", "overruns"),
    (b"\xc1\x81", "truncated length"),
    (b"\xc1\x83\x00\x00\x01a", "length form"),
    (b"\xc1\x80", "length form"),
    (b"\xdf\x01\x01\x00", "multi-byte tag"),
])
def test_broken_encodings_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedCardData, match=reason):
        decode_identity(data)


@pytest.mark.parametrize("tag, value", [
    (Tag.VERSION, b"\x00"),
    (Tag.VERSION, b"\x01\x00"),
    (Tag.NATIONAL_NUMBER, b"0102030405"),
    (Tag.NATIONAL_NUMBER, b"0102030405x"),
    (Tag.NATIONAL_NUMBER, "٠١٠٢٠٣٠٤٠٥٠".encode()),
    (Tag.CARD_NUMBER, b""),
    (Tag.CARD_NUMBER, b"SY 0012"),
    (Tag.GIVEN_NAME_AR, b"\xd8"),
    (Tag.GIVEN_NAME_AR, b""),
    (Tag.FAMILY_NAME_AR, "a\nb".encode()),
    (Tag.DATE_OF_BIRTH, b"19880230"),
    (Tag.DATE_OF_EXPIRY, b"2032-4-3"),
    (Tag.DATE_OF_ISSUE, b"00000101"),
    (Tag.SEX, b"X"),
    (Tag.ISSUER_KEY_ID, b"\x00" * 7),
    (Tag.CARD_PUBLIC_KEY, b""),
    (Tag.PHOTO_DIGEST, b"\x00" * 31),
    (Tag.PHOTO_DIGEST, b"\x00" * 33),
    (Tag.PHOTO_DIGEST, b""),
])
def test_values_outside_the_profile_are_refused(tag: int, value: bytes) -> None:
    items = [(t, value if t == tag else v) for t, v in objects(encode_identity(identity()))]
    with pytest.raises(MalformedCardData):
        decode_identity(join(items))


def test_later_profile_version_is_read() -> None:
    items = [(t, b"\x02" if t == Tag.VERSION else v) for t, v in objects(encode_identity(identity()))]
    assert decode_identity(join(items)).national_number == "01020304050"


def test_malformed_card_data_is_a_card_error_without_card_data() -> None:
    items = [(t, b"9999999999" if t == Tag.NATIONAL_NUMBER else v)
             for t, v in objects(encode_identity(identity()))]
    with pytest.raises(CardError) as caught:
        decode_identity(join(items))
    assert "9999999999" not in str(caught.value)


def test_identity_repr_withholds_personal_data() -> None:
    decoded = decode_identity(encode_identity(identity()))
    assert "01020304050" not in repr(decoded) and "سامر" not in str(decoded)


# --- fuzzing ----------------------------------------------------------------------

def _decodes_or_refuses(data: bytes) -> Identity | None:
    try:
        return decode_identity(data)
    except MalformedCardData:
        return None


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decodes_or_refuses(data)


@st.composite
def mutated_ef_id(draw: st.DrawFn) -> bytes:
    data = bytearray(encode_identity(identity()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "set"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x1F, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xFF, 0xC0, 0xD0]))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[at:at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(mutated_ef_id())
def test_fuzz_mutated_ef_id(data: bytes) -> None:
    _decodes_or_refuses(data)


_text = st.text(alphabet=st.characters(min_codepoint=0x20, exclude_categories=("Cs", "Cc")),
                min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_day = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))


@st.composite
def identities(draw: st.DrawFn) -> Identity:
    optional = lambda strategy: draw(st.none() | strategy)  # noqa: E731
    return Identity(
        card_number=draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=32)),
        national_number=draw(st.text(alphabet="0123456789", min_size=11, max_size=11)),
        given_name_ar=draw(_text), family_name_ar=draw(_text),
        date_of_birth=draw(_day), date_of_expiry=draw(_day),
        issuer_key_id=draw(st.binary(min_size=8, max_size=8)),
        card_public_key=draw(st.binary(min_size=1, max_size=160)),
        given_name_latin=optional(_text), family_name_latin=optional(_text),
        father_name_ar=optional(_text), mother_name_ar=optional(_text),
        place_of_birth_ar=optional(_text), sex=optional(st.sampled_from(["M", "F"])),
        civil_registry_ar=optional(_text), date_of_issue=optional(_day),
        photo_digest=optional(st.binary(min_size=32, max_size=32)))


@FUZZ
@given(identities(), st.randoms(use_true_random=False))
def test_fuzz_round_trip_in_any_order(original: Identity, rnd: random.Random) -> None:
    items = objects(encode_identity(original))
    rnd.shuffle(items)
    assert _fields(decode_identity(join(items))) == _fields(original)


def _fields(value: Identity) -> dict[str, object]:
    return dataclasses.asdict(value)
