"""A national ID card applet that follows the profile, with faulty variants.

`SimulatedCard` answers C-APDUs exactly as specs/national-id-card.md says;
`CardProfile` picks a variant (forged, cloned, expired, a swapped photo, a
T=0 card, a slow or silent one) for the kiosk's failure paths. Cards are
issued under profile 1.1: EF.ID carries D1, the digest of EF.PHOTO, whenever
the card has a photo (`for_citizen(photo_digest=False)` makes a card of
profile 1.0). Serve it on the vpcd socket with
`drivers.card_sim.slot.VirtualCardSlot`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
from typing import Any, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.card_proof import CHALLENGE_LENGTH
from kiosk.id_card_data import encode_identity, photo_digest as digest_of
from kiosk.issuer_keys import public_key_der
from kiosk.ports.card_reader import Identity
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.portrait import portrait_jpeg
from drivers.id_card import apdu
from drivers.id_card.apdu import (
    SW_CLA_NOT_SUPPORTED, SW_END_OF_FILE, SW_INS_NOT_SUPPORTED, SW_NOT_FOUND, SW_OK,
    SW_PIN_BLOCKED, SW_SECURITY_NOT_SATISFIED, SW_WRONG_LENGTH, SW_WRONG_OFFSET,
    SW_WRONG_P1P2,
)
from drivers.id_card.pin import pin_from_block

PIN_TRIES = 3
SLOW_ANSWER_DELAY_S = 0.05
ATR_T1 = bytes.fromhex("3B8301454944CA")     # T=1 only, historical bytes "EID"
ATR_T0 = bytes.fromhex("3B03454944")         # T=0 only, historical bytes "EID"


class CardProfile(enum.Enum):
    """How the simulated card behaves."""

    VALID = "valid"
    FORGED = "forged"        # EF.ID altered after the issuer signed it
    CLONED = "cloned"        # EF.ID and EF.ID_SIG copied; the chip's key is not D0's
    EXPIRED = "expired"      # authentic, expired 30 days ago
    BLOCKED = "blocked"      # PIN already blocked
    NO_PHOTO = "no_photo"    # no EF.PHOTO
    SWAPPED_PHOTO = "swapped_photo"   # EF.PHOTO replaced after the issuer signed D1
    T0 = "t0"                # answers 61xx and 6Cxx like a T=0 card
    SLOW = "slow"            # each answer a little late
    SILENT = "silent"        # stops answering mid-read (the link stays open)

    @classmethod
    def _missing_(cls, value: object) -> "CardProfile | None":
        """A hyphen for an underscore ("swapped-photo"), as typed on a command line."""
        if isinstance(value, str) and "-" in value:
            return cls.__members__.get(value.replace("-", "_").upper())
        return None


class _Apdu:
    """A parsed short C-APDU."""

    __slots__ = ("cla", "ins", "p1", "p2", "data", "le")

    def __init__(self, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
        self.cla, self.ins, self.p1, self.p2, self.data, self.le = cla, ins, p1, p2, data, le

    @classmethod
    def parse(cls, raw: bytes) -> "_Apdu | None":
        if len(raw) < 4:
            return None
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2, b"", None)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        lc = body[0]
        if lc == 0:
            return None                         # extended length: not in the profile
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1:]), None)
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1:-1]), body[-1] or 256)
        return None


def _sw(sw: int, data: bytes = b"") -> bytes:
    return bytes(data) + sw.to_bytes(2, "big")


class SimulatedCard:
    """The ID application of one card. Not thread-safe: one vpcd link serves it."""

    def __init__(self, files: Mapping[int, bytes], *, card_key: ec.EllipticCurvePrivateKey,
                 pin: str = "1234", profile: CardProfile = CardProfile.VALID,
                 end_of_file_sw: int = SW_END_OF_FILE) -> None:
        if end_of_file_sw not in (SW_END_OF_FILE, SW_OK):
            raise ValueError("a short read ends with 6282 or 9000")
        self._files = dict(files)
        self._card_key = card_key
        self._pin = pin
        self.profile = profile
        self._end_of_file_sw = end_of_file_sw
        self._tries_left = 0 if profile is CardProfile.BLOCKED else PIN_TRIES
        self._t0 = profile is CardProfile.T0
        self.atr = ATR_T0 if self._t0 else ATR_T1
        self.answer_delay_s = SLOW_ANSWER_DELAY_S if profile is CardProfile.SLOW else 0.0
        self._reads = 0                       # READ BINARY commands since power on
        self._clear_state()

    # -- construction --------------------------------------------------------

    @classmethod
    def for_citizen(cls, citizen: Mapping[str, Any], *, issuer: IssuerKey,
                    profile: CardProfile = CardProfile.VALID, pin: str = "1234",
                    end_of_file_sw: int = SW_END_OF_FILE, photo_digest: bool = True) -> "SimulatedCard":
        """A card personalised for a registry record and signed by `issuer`;
        of profile 1.1 (D1 when it has a photo) unless `photo_digest` is False."""
        card_key = ec.generate_private_key(ec.SECP256R1())
        identity = identity_from_record(citizen, card_key.public_key(), issuer)
        photo = None
        if profile is not CardProfile.NO_PHOTO:
            photo = portrait_jpeg(identity.card_number, identity.sex)
            if photo_digest:
                identity = dataclasses.replace(identity, photo_digest=digest_of(photo))
        if profile is CardProfile.EXPIRED:
            expired = dt.date.today() - dt.timedelta(days=30)
            issued = identity.date_of_issue
            if issued is not None and issued >= expired:
                issued = expired - dt.timedelta(days=3652)
            identity = dataclasses.replace(identity, date_of_expiry=expired, date_of_issue=issued)
        ef_id = encode_identity(identity)
        ef_id_sig = issuer.sign(ef_id)
        if profile is CardProfile.FORGED:
            # Another national number after signing: well formed, but the signature fails.
            altered = "%011d" % ((int(identity.national_number) + 1) % 10 ** 11)
            ef_id = encode_identity(dataclasses.replace(identity, national_number=altered))
        if profile is CardProfile.CLONED:
            card_key = ec.generate_private_key(ec.SECP256R1())   # not the key in D0
        if profile is CardProfile.SWAPPED_PHOTO:
            photo = _another_portrait(identity, photo)        # after signing: D1 names the first one
        files = {apdu.FID_ID: ef_id, apdu.FID_ID_SIG: ef_id_sig}
        if photo is not None:
            files[apdu.FID_PHOTO] = photo
        return cls(files, card_key=card_key, pin=pin, profile=profile,
                   end_of_file_sw=end_of_file_sw)

    def __repr__(self) -> str:
        return "SimulatedCard(profile=%s)" % self.profile.name

    def file(self, fid: int) -> bytes | None:
        """The content of elementary file `fid`, None when the card has no such file (for tests)."""
        return self._files.get(fid)

    def put_file(self, fid: int, content: bytes | None) -> None:
        """Replace (None: delete) elementary file `fid` after issue, as a forger would (for tests)."""
        if content is None:
            self._files.pop(fid, None)
        else:
            self._files[fid] = bytes(content)

    # -- vpcd control ----------------------------------------------------------

    def power_on(self) -> None:
        self._clear_state()
        self._reads = 0

    def power_off(self) -> None:
        self._clear_state()

    def reset(self) -> None:
        self._clear_state()
        self._reads = 0

    def _clear_state(self) -> None:
        self._app_selected = False
        self._verified = False
        self._current_ef: int | None = None
        self._pending = b""                  # T=0: response waiting for GET RESPONSE

    # -- APDUs -------------------------------------------------------------------

    def transmit(self, command: bytes) -> bytes | None:
        """The R-APDU for `command`; None when the card stays silent."""
        parsed = _Apdu.parse(command)
        if parsed is None:
            return _sw(SW_WRONG_LENGTH)
        if parsed.ins == apdu.INS_READ_BINARY:
            self._reads += 1
            if self.profile is CardProfile.SILENT and self._reads > 1:
                return None                  # went quiet in the middle of reading
        if parsed.cla != apdu.CLA:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if parsed.ins != apdu.INS_GET_RESPONSE:
            self._pending = b""
        handler = {
            apdu.INS_SELECT: self._select,
            apdu.INS_READ_BINARY: self._read_binary,
            apdu.INS_VERIFY: self._verify,
            apdu.INS_INTERNAL_AUTHENTICATE: self._internal_authenticate,
            apdu.INS_GET_RESPONSE: self._get_response,
        }.get(parsed.ins)
        if handler is None:
            return _sw(SW_INS_NOT_SUPPORTED)
        return handler(parsed)

    def _answer(self, data: bytes, le: int | None) -> bytes:
        """A case-4 answer: data at once (T=1), or `61xx` and GET RESPONSE (T=0)."""
        if self._t0:
            self._pending = data
            return _sw(0x6100 | (len(data) & 0xFF))
        if le is None:
            return _sw(SW_WRONG_LENGTH)
        return _sw(SW_OK, data[:le])

    def _select(self, c: _Apdu) -> bytes:
        if c.p1 == apdu.P1_SELECT_AID:
            if c.p2 != apdu.P2_NO_DATA:
                return _sw(SW_WRONG_P1P2)
            if c.data != apdu.AID or c.le is not None:
                self._clear_state()
                return _sw(SW_NOT_FOUND if c.le is None else SW_WRONG_LENGTH)
            self._clear_state()
            self._app_selected = True
            return _sw(SW_OK)
        if c.p1 != apdu.P1_SELECT_EF or c.p2 not in (apdu.P2_NO_DATA, apdu.P2_FCP):
            return _sw(SW_WRONG_P1P2)
        if len(c.data) != 2:
            return _sw(SW_WRONG_LENGTH)
        fid = int.from_bytes(c.data, "big")
        if not self._app_selected or fid not in self._files:
            return _sw(SW_NOT_FOUND)
        self._current_ef = fid
        if c.p2 == apdu.P2_NO_DATA:
            return _sw(SW_OK if c.le is None else SW_WRONG_LENGTH)
        return self._answer(apdu.fcp(len(self._files[fid]), fid), c.le)

    def _read_binary(self, c: _Apdu) -> bytes:
        if c.p1 & 0x80:
            return _sw(SW_WRONG_P1P2)        # short EF identifiers: not in the profile
        if c.le is None or c.data:
            return _sw(SW_WRONG_LENGTH)
        if self._current_ef is None:
            return _sw(SW_NOT_FOUND)
        if not self._verified:
            return _sw(SW_SECURITY_NOT_SATISFIED)
        content = self._files[self._current_ef]
        offset = c.p1 << 8 | c.p2
        if offset >= len(content):
            return _sw(SW_WRONG_OFFSET)
        chunk = content[offset:offset + c.le]
        if len(chunk) < c.le:
            if self._t0:
                return _sw(0x6C00 | len(chunk))
            return _sw(self._end_of_file_sw, chunk)
        return _sw(SW_OK, chunk)

    def _verify(self, c: _Apdu) -> bytes:
        if c.p1 != 0x00 or c.p2 != apdu.P2_PIN:
            return _sw(SW_WRONG_P1P2)
        if not self._app_selected:
            return _sw(SW_NOT_FOUND)
        if c.le is not None:
            return _sw(SW_WRONG_LENGTH)
        if self._tries_left == 0:
            return _sw(SW_PIN_BLOCKED)
        if not c.data:                       # PIN status query
            return _sw(SW_OK if self._verified else apdu.wrong_pin_sw(self._tries_left))
        if len(c.data) != apdu.PIN_BLOCK_LENGTH:
            return _sw(SW_WRONG_LENGTH)
        offered = pin_from_block(c.data)
        if offered is None:
            return _sw(SW_WRONG_LENGTH)
        if offered == self._pin:
            self._tries_left = PIN_TRIES
            self._verified = True
            return _sw(SW_OK)
        self._verified = False
        self._tries_left -= 1
        return _sw(apdu.wrong_pin_sw(self._tries_left))

    def _internal_authenticate(self, c: _Apdu) -> bytes:
        if c.p1 != 0x00 or c.p2 != 0x00:
            return _sw(SW_WRONG_P1P2)
        if not self._app_selected:
            return _sw(SW_NOT_FOUND)
        if len(c.data) != CHALLENGE_LENGTH:
            return _sw(SW_WRONG_LENGTH)
        signature = self._card_key.sign(c.data, ec.ECDSA(hashes.SHA256()))
        return self._answer(signature, c.le)

    def _get_response(self, c: _Apdu) -> bytes:
        if not self._t0 or not self._pending:
            return _sw(SW_INS_NOT_SUPPORTED)
        if c.p1 != 0x00 or c.p2 != 0x00:
            return _sw(SW_WRONG_P1P2)
        if c.le is None or c.data:
            return _sw(SW_WRONG_LENGTH)
        if c.le > len(self._pending):
            return _sw(0x6C00 | len(self._pending))
        chunk, self._pending = self._pending[:c.le], self._pending[c.le:]
        if self._pending:
            return _sw(0x6100 | (len(self._pending) & 0xFF), chunk)
        return _sw(SW_OK, chunk)


def _another_portrait(identity: Identity, photo: bytes | None) -> bytes:
    """A portrait that is not `photo`: someone else's face on this card."""
    for n in itertools.count(1):
        other = portrait_jpeg("%s/swapped/%d" % (identity.card_number, n), identity.sex)
        if other != photo:
            return other
    raise AssertionError("unreachable")


def identity_from_record(record: Mapping[str, Any], card_public_key: ec.EllipticCurvePublicKey,
                         issuer: IssuerKey) -> Identity:
    """The Identity a card carries for a central-registry citizen record."""
    def text(key: str) -> str | None:
        value = record.get(key)
        return str(value) if value not in (None, "") else None

    def day(key: str) -> dt.date | None:
        value = record.get(key)
        return dt.date.fromisoformat(value) if value else None

    return Identity(
        card_number=str(record["card_number"]),
        national_number=str(record["national_number"]),
        given_name_ar=str(record["given_name_ar"]),
        family_name_ar=str(record["family_name_ar"]),
        date_of_birth=dt.date.fromisoformat(record["date_of_birth"]),
        date_of_expiry=dt.date.fromisoformat(record["card_expires"]),
        issuer_key_id=issuer.key_id,
        card_public_key=public_key_der(card_public_key),
        given_name_latin=text("given_name_latin"),
        family_name_latin=text("family_name_latin"),
        father_name_ar=text("father_name_ar"),
        mother_name_ar=text("mother_name_ar"),
        place_of_birth_ar=text("place_of_birth_ar"),
        sex=text("sex"),
        civil_registry_ar=text("civil_registry_ar"),
        date_of_issue=day("card_issued"),
    )


