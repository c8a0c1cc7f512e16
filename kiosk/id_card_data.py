"""EF.ID of the national ID card (profile 1.1): BER-TLV bytes to an `Identity` and back.

Pure code, shared by the kiosk's card driver, which reads a card with it, and
central, which checks a card proof (`kiosk.card_proof`) with it. The decoder
is the first thing that touches bytes from an untrusted card, so it raises
`MalformedCardData` for every input it refuses and nothing else; its
messages name tags and offsets, never a value.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from typing import Iterable, Iterator

from kiosk.errors import CardError
from kiosk.ports.card_reader import Identity

PROFILE_VERSION = 1              # C0 stays 01 under profile 1.1
MAX_VALUE_LENGTH = 0xFFFF
MAX_EF_ID_SIZE = 4096            # far above any real EF.ID; bounds what a reader or verifier takes


class MalformedCardData(CardError):
    """Bytes read from a card do not follow the profile."""


class Tag(enum.IntEnum):
    """The EF.ID data objects of profile version 1.1."""

    VERSION = 0xC0
    CARD_NUMBER = 0xC1
    NATIONAL_NUMBER = 0xC2
    GIVEN_NAME_AR = 0xC3
    GIVEN_NAME_LATIN = 0xC4
    FAMILY_NAME_AR = 0xC5
    FAMILY_NAME_LATIN = 0xC6
    FATHER_NAME_AR = 0xC7
    MOTHER_NAME_AR = 0xC8
    DATE_OF_BIRTH = 0xC9
    PLACE_OF_BIRTH_AR = 0xCA
    SEX = 0xCB
    CIVIL_REGISTRY_AR = 0xCC
    DATE_OF_ISSUE = 0xCD
    DATE_OF_EXPIRY = 0xCE
    ISSUER_KEY_ID = 0xCF
    CARD_PUBLIC_KEY = 0xD0
    PHOTO_DIGEST = 0xD1          # 1.1: SHA-256 of EF.PHOTO, so the issuer's signature covers the portrait


_KNOWN_TAGS = frozenset(int(tag) for tag in Tag)
REQUIRED_TAGS = frozenset({
    Tag.VERSION, Tag.CARD_NUMBER, Tag.NATIONAL_NUMBER, Tag.GIVEN_NAME_AR,
    Tag.FAMILY_NAME_AR, Tag.DATE_OF_BIRTH, Tag.DATE_OF_EXPIRY,
    Tag.ISSUER_KEY_ID, Tag.CARD_PUBLIC_KEY,
})

# Identity field <- tag, for the text fields (UTF-8).
_TEXT_FIELDS = {
    "given_name_ar": Tag.GIVEN_NAME_AR,
    "family_name_ar": Tag.FAMILY_NAME_AR,
    "given_name_latin": Tag.GIVEN_NAME_LATIN,
    "family_name_latin": Tag.FAMILY_NAME_LATIN,
    "father_name_ar": Tag.FATHER_NAME_AR,
    "mother_name_ar": Tag.MOTHER_NAME_AR,
    "place_of_birth_ar": Tag.PLACE_OF_BIRTH_AR,
    "civil_registry_ar": Tag.CIVIL_REGISTRY_AR,
}
_DATE_FIELDS = {
    "date_of_birth": Tag.DATE_OF_BIRTH,
    "date_of_expiry": Tag.DATE_OF_EXPIRY,
    "date_of_issue": Tag.DATE_OF_ISSUE,
}

ISSUER_KEY_ID_LENGTH = 8
PHOTO_DIGEST_LENGTH = 32
MAX_CARD_NUMBER_LENGTH = 32
MAX_PUBLIC_KEY_LENGTH = 160   # a P-256 SubjectPublicKeyInfo is 91 bytes


def photo_digest(photo: bytes) -> bytes:
    """What D1 holds for `photo`: SHA-256 of the exact bytes of EF.PHOTO."""
    return hashlib.sha256(bytes(photo)).digest()


# --- generic BER-TLV with one-byte tags -------------------------------------

def iter_tlv(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (tag, value) for each data object of `data`, in order.

    Only one-byte tags and the length forms `L < 0x80`, `81 L`, `82 L L`.
    """
    data = bytes(data)
    pos, end = 0, len(data)
    while pos < end:
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise MalformedCardData("multi-byte tag at offset %d" % pos)
        pos += 1
        if pos >= end:
            raise MalformedCardData("data object without length at offset %d" % pos)
        first = data[pos]
        pos += 1
        if first < 0x80:
            length = first
        elif first in (0x81, 0x82):
            count = first - 0x80
            if pos + count > end:
                raise MalformedCardData("truncated length at offset %d" % pos)
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        else:
            raise MalformedCardData("unsupported length form 0x%02X" % first)
        if pos + length > end:
            raise MalformedCardData("value overruns the data at offset %d" % pos)
        yield tag, data[pos:pos + length]
        pos += length


def encode_length(length: int) -> bytes:
    """BER length in its shortest form."""
    if length < 0 or length > MAX_VALUE_LENGTH:
        raise ValueError("length out of range for a short BER length")
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    return bytes([0x82]) + length.to_bytes(2, "big")


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One data object with a one-byte tag."""
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise ValueError("not a one-byte tag")
    return bytes([tag]) + encode_length(len(value)) + bytes(value)


# --- EF.ID --------------------------------------------------------------------

def decode_identity(data: bytes) -> Identity:
    """Decode EF.ID. Unknown tags are skipped; a missing or repeated
    required tag, or any value outside the profile, is refused."""
    try:
        values = _collect(data)
        return _identity(values)
    except MalformedCardData:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # defence in depth
        raise MalformedCardData("EF.ID does not decode (%s)" % type(exc).__name__) from None


def _collect(data: bytes) -> dict[int, bytes]:
    values: dict[int, bytes] = {}
    for tag, value in iter_tlv(data):
        if tag not in _KNOWN_TAGS:
            continue
        if tag in values:
            raise MalformedCardData("tag %02X repeated" % tag)
        values[tag] = value
    missing = sorted(REQUIRED_TAGS - values.keys())
    if missing:
        raise MalformedCardData("required tags missing: %s" % " ".join("%02X" % t for t in missing))
    return values


def _identity(values: dict[int, bytes]) -> Identity:
    version = values[Tag.VERSION]
    if len(version) != 1 or version[0] < PROFILE_VERSION:
        raise MalformedCardData("profile version is not 1 byte >= 1")
    fields: dict[str, object] = {
        "card_number": _card_number(values[Tag.CARD_NUMBER]),
        "national_number": _national_number(values[Tag.NATIONAL_NUMBER]),
        "issuer_key_id": _fixed(Tag.ISSUER_KEY_ID, values[Tag.ISSUER_KEY_ID], ISSUER_KEY_ID_LENGTH),
        "card_public_key": _public_key(values[Tag.CARD_PUBLIC_KEY]),
    }
    for name, tag in _TEXT_FIELDS.items():
        if tag in values:
            fields[name] = _text(tag, values[tag])
    for name, tag in _DATE_FIELDS.items():
        if tag in values:
            fields[name] = _date(tag, values[tag])
    if Tag.SEX in values:
        if values[Tag.SEX] not in (b"M", b"F"):
            raise MalformedCardData("sex is not M or F")
        fields["sex"] = values[Tag.SEX].decode("ascii")
    if Tag.PHOTO_DIGEST in values:
        fields["photo_digest"] = _fixed(Tag.PHOTO_DIGEST, values[Tag.PHOTO_DIGEST], PHOTO_DIGEST_LENGTH)
    return Identity(**fields)  # type: ignore[arg-type]


def _card_number(value: bytes) -> str:
    if not 1 <= len(value) <= MAX_CARD_NUMBER_LENGTH or not value.isalnum() or not value.isascii():
        raise MalformedCardData("card number is not 1 to %d ASCII letters and digits"
                                % MAX_CARD_NUMBER_LENGTH)
    return value.decode("ascii")


def _national_number(value: bytes) -> str:
    if len(value) != 11 or not value.isdigit():
        raise MalformedCardData("national number is not 11 ASCII digits")
    return value.decode("ascii")


def _fixed(tag: int, value: bytes, length: int) -> bytes:
    if len(value) != length:
        raise MalformedCardData("tag %02X is not %d bytes" % (tag, length))
    return bytes(value)


def _public_key(value: bytes) -> bytes:
    # Only the size here: `kiosk.card_proof.load_card_key` loads it as a P-256 key.
    if not 1 <= len(value) <= MAX_PUBLIC_KEY_LENGTH:
        raise MalformedCardData("card public key has an implausible size")
    return bytes(value)


def _text(tag: int, value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCardData("tag %02X is not UTF-8" % tag) from None
    if not text.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise MalformedCardData("tag %02X is empty or holds control characters" % tag)
    return text


def _date(tag: int, value: bytes) -> dt.date:
    if len(value) != 8 or not value.isdigit():
        raise MalformedCardData("tag %02X is not an ASCII YYYYMMDD date" % tag)
    try:
        return dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise MalformedCardData("tag %02X is not a calendar date" % tag) from None


def encode_identity(identity: Identity, *, version: int = PROFILE_VERSION,
                    extra: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """EF.ID for `identity`, tags in table order (D1 only when it has a
    photo digest), then `extra` data objects (for tests and simulated cards
    of later profile versions)."""
    objects = [
        (Tag.VERSION, bytes([version])),
        (Tag.CARD_NUMBER, identity.card_number.encode("ascii")),
        (Tag.NATIONAL_NUMBER, identity.national_number.encode("ascii")),
        (Tag.GIVEN_NAME_AR, identity.given_name_ar.encode("utf-8")),
        (Tag.GIVEN_NAME_LATIN, _utf8(identity.given_name_latin)),
        (Tag.FAMILY_NAME_AR, identity.family_name_ar.encode("utf-8")),
        (Tag.FAMILY_NAME_LATIN, _utf8(identity.family_name_latin)),
        (Tag.FATHER_NAME_AR, _utf8(identity.father_name_ar)),
        (Tag.MOTHER_NAME_AR, _utf8(identity.mother_name_ar)),
        (Tag.DATE_OF_BIRTH, _ymd(identity.date_of_birth)),
        (Tag.PLACE_OF_BIRTH_AR, _utf8(identity.place_of_birth_ar)),
        (Tag.SEX, _utf8(identity.sex)),
        (Tag.CIVIL_REGISTRY_AR, _utf8(identity.civil_registry_ar)),
        (Tag.DATE_OF_ISSUE, _ymd(identity.date_of_issue)),
        (Tag.DATE_OF_EXPIRY, _ymd(identity.date_of_expiry)),
        (Tag.ISSUER_KEY_ID, identity.issuer_key_id),
        (Tag.CARD_PUBLIC_KEY, identity.card_public_key),
        (Tag.PHOTO_DIGEST, identity.photo_digest),
    ]
    out = b"".join(encode_tlv(tag, value) for tag, value in objects if value is not None)
    return out + b"".join(encode_tlv(tag, value) for tag, value in extra)


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _ymd(day: dt.date | None) -> bytes | None:
    return None if day is None else ("%04d%02d%02d" % (day.year, day.month, day.day)).encode("ascii")
