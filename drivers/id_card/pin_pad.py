"""What a reader with its own PIN pad is asked to do for the profile's VERIFY.

PC/SC part 10, FEATURE_VERIFY_PIN_DIRECT: the reader takes the VERIFY
command with a blank format-2 block, has the citizen type the PIN on its pad,
fills the block in and sends it. The PIN never reaches the kiosk.
"""

from __future__ import annotations

import struct

from drivers.id_card import apdu

ENTRY_S = 30             # how long the citizen has on the reader's PIN pad


def pin_verify_structure() -> bytes:
    """PIN_VERIFY_STRUCTURE (PC/SC part 10) for a format-2 block in VERIFY."""
    template = apdu.verify(b"\x20" + b"\xff" * 7)       # the reader fills in length and digits
    header = struct.pack(
        "<BBBBBHBBHB3sI",
        ENTRY_S,            # bTimerOut
        ENTRY_S,            # bTimerOut2
        0x89,               # bmFormatString: bytes, PIN after 1 byte, left, BCD
        0x48,               # bmPINBlockString: 4-bit length field, 8-byte block
        0x04,               # bmPINLengthFormat: length at bit 4
        0x0408,             # wPINMaxExtraDigit: 4 to 8 digits
        0x02,               # bEntryValidationCondition: OK key
        0x01,               # bNumberMessage
        0x0401,             # wLangId: Arabic
        0x00,               # bMsgIndex
        b"\x00\x00\x00",    # bTeoPrologue
        len(template),      # ulDataLength
    )
    return header + bytes(template)
