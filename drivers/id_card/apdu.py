"""The profile's commands, status words and FCP, as bytes.

Builders return complete short C-APDUs. Nothing here knows the transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.card_proof import CHALLENGE_LENGTH
from kiosk.id_card_data import MalformedCardData, iter_tlv

AID = bytes.fromhex("D76000000145494401")

FID_ID = 0x0101
FID_ID_SIG = 0x0102
FID_PHOTO = 0x0103

CLA = 0x00
INS_VERIFY = 0x20
INS_INTERNAL_AUTHENTICATE = 0x88
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_GET_RESPONSE = 0xC0

P1_SELECT_EF = 0x02
P1_SELECT_AID = 0x04
P2_FCP = 0x00
P2_NO_DATA = 0x0C
P2_PIN = 0x01

PIN_BLOCK_LENGTH = 8
MAX_LE = 256

# Status words (SW1 << 8 | SW2).
SW_OK = 0x9000
SW_END_OF_FILE = 0x6282
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_PIN_BLOCKED = 0x6983
SW_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW1_MORE_DATA = 0x61        # 61xx: GET RESPONSE with Le = xx
SW1_WRONG_LE = 0x6C         # 6Cxx: repeat with Le = xx

_MEANINGS = {
    SW_OK: "success",
    SW_END_OF_FILE: "end of file reached before Le bytes",
    SW_WRONG_LENGTH: "wrong length",
    SW_SECURITY_NOT_SATISFIED: "security status not satisfied",
    SW_PIN_BLOCKED: "PIN blocked",
    SW_NOT_FOUND: "file or application not found",
    SW_WRONG_P1P2: "wrong P1/P2",
    SW_WRONG_OFFSET: "offset beyond end of file",
    SW_INS_NOT_SUPPORTED: "instruction not supported",
    SW_CLA_NOT_SUPPORTED: "class not supported",
}


def describe(sw: int) -> str:
    """A short English meaning of a status word, for logs."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    tries = wrong_pin_tries(sw)
    if tries is not None:
        return "wrong PIN, %d tries left" % tries
    if sw >> 8 == SW1_MORE_DATA:
        return "more data available"
    if sw >> 8 == SW1_WRONG_LE:
        return "wrong Le"
    return "not in the profile"


def wrong_pin_tries(sw: int) -> int | None:
    """x for a `63Cx` status word, else None."""
    if sw & 0xFFF0 == 0x63C0:
        return sw & 0x0F
    return None


def wrong_pin_sw(tries_left: int) -> int:
    """`63Cx` for x tries left."""
    if not 0 <= tries_left <= 0x0F:
        raise ValueError("tries left out of range")
    return 0x63C0 | tries_left


# --- command builders ---------------------------------------------------------

def _le_byte(le: int) -> int:
    if not 1 <= le <= MAX_LE:
        raise ValueError("Le out of range 1..256")
    return le & 0xFF            # 256 is written 00


def select_aid() -> bytes:
    """SELECT the ID application, no response data."""
    return bytes([CLA, INS_SELECT, P1_SELECT_AID, P2_NO_DATA, len(AID)]) + AID


def select_ef(fid: int, *, fcp: bool) -> bytes:
    """SELECT an EF by FID; with `fcp` the card answers its FCP."""
    fid_bytes = fid.to_bytes(2, "big")
    if fcp:
        return bytes([CLA, INS_SELECT, P1_SELECT_EF, P2_FCP, 2]) + fid_bytes + b"\x00"
    return bytes([CLA, INS_SELECT, P1_SELECT_EF, P2_NO_DATA, 2]) + fid_bytes


def read_binary(offset: int, le: int = MAX_LE) -> bytes:
    """READ BINARY of the current EF from `offset` (15 bits)."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("READ BINARY offset out of range")
    return bytes([CLA, INS_READ_BINARY, offset >> 8, offset & 0xFF, _le_byte(le)])


def verify(pin_block: bytes | bytearray) -> bytearray:
    """VERIFY with a format-2 PIN block. A bytearray, so the caller can wipe it."""
    if len(pin_block) != PIN_BLOCK_LENGTH:
        raise ValueError("a PIN block is 8 bytes")
    command = bytearray([CLA, INS_VERIFY, 0x00, P2_PIN, PIN_BLOCK_LENGTH])
    command += pin_block
    return command


def verify_status() -> bytes:
    """VERIFY without data: `9000` if verified in this selection, else `63Cx`."""
    return bytes([CLA, INS_VERIFY, 0x00, P2_PIN])


def internal_authenticate(challenge: bytes) -> bytes:
    """INTERNAL AUTHENTICATE over a 32-byte challenge, Le 00."""
    if len(challenge) != CHALLENGE_LENGTH:
        raise ValueError("the challenge is 32 bytes")
    return bytes([CLA, INS_INTERNAL_AUTHENTICATE, 0x00, 0x00, CHALLENGE_LENGTH]) + challenge + b"\x00"


def get_response(le: int) -> bytes:
    """GET RESPONSE after `61xx`."""
    return bytes([CLA, INS_GET_RESPONSE, 0x00, 0x00, _le_byte(le)])


def with_le(command: bytes, le: int) -> bytes:
    """`command` with its Le replaced by `le` (after `6Cxx`).

    Only for commands that carry an Le (case 2 or case 4)."""
    if expected_length(command) is None:
        raise ValueError("command has no Le")
    return bytes(command[:-1]) + bytes([_le_byte(le)])


def expected_length(command: bytes) -> int | None:
    """The Le of a short C-APDU (256 for 00), or None when it has none."""
    if len(command) < 4:
        raise ValueError("a C-APDU has at least 4 bytes")
    if len(command) == 4:
        return None
    if len(command) == 5:
        return command[4] or MAX_LE
    lc = command[4]
    if len(command) == 5 + lc:
        return None
    if len(command) == 6 + lc:
        return command[-1] or MAX_LE
    raise ValueError("C-APDU length does not match Lc")


# --- FCP ----------------------------------------------------------------------

@dataclass(frozen=True)
class Fcp:
    """What the driver needs from a file's FCP."""

    size: int
    fid: int


def fcp(size: int, fid: int) -> bytes:
    """`62 L 80 02 <size> 82 01 01 83 02 <FID>`: the FCP a card answers."""
    body = (b"\x80\x02" + size.to_bytes(2, "big") + b"\x82\x01\x01"
            + b"\x83\x02" + fid.to_bytes(2, "big"))
    return b"\x62" + bytes([len(body)]) + body


def parse_fcp(data: bytes) -> Fcp:
    """Size (tag 80, 2 bytes) and FID (tag 83) from an FCP template."""
    objects = list(iter_tlv(data))
    if len(objects) != 1 or objects[0][0] != 0x62:
        raise MalformedCardData("FCP is not one 62 template")
    inner: dict[int, bytes] = {}
    for tag, value in iter_tlv(objects[0][1]):
        if tag in inner:
            raise MalformedCardData("FCP repeats tag %02X" % tag)
        inner[tag] = value
    size, fid = inner.get(0x80), inner.get(0x83)
    if size is None or len(size) != 2:
        raise MalformedCardData("FCP lacks a 2-byte file size")
    if fid is None or len(fid) != 2:
        raise MalformedCardData("FCP lacks a 2-byte FID")
    return Fcp(size=int.from_bytes(size, "big"), fid=int.from_bytes(fid, "big"))
