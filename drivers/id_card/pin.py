"""The ISO 9564 format-2 PIN block that VERIFY carries.

The PIN itself never appears in a message, a log or a repr.
"""

from __future__ import annotations

from drivers.id_card.errors import PinFormatError

MIN_DIGITS = 4
MAX_DIGITS = 8
BLOCK_LENGTH = 8
_DIGITS = frozenset("0123456789")


def pin_block(pin: str) -> bytearray:
    """`2N`, the digits packed two to a byte, `F` padding to 8 bytes.

    `1234` -> `24 12 34 FF FF FF FF FF`. Only ASCII digits are taken (the
    keypad maps Arabic-Indic digits before this). Returns a bytearray so the
    caller can wipe it after sending.
    """
    if not isinstance(pin, str) or not MIN_DIGITS <= len(pin) <= MAX_DIGITS \
            or not _DIGITS.issuperset(pin):
        raise PinFormatError("a PIN is %d to %d ASCII digits" % (MIN_DIGITS, MAX_DIGITS))
    nibbles = [0x2, len(pin)] + [ord(ch) - 0x30 for ch in pin]
    nibbles += [0xF] * (2 * BLOCK_LENGTH - len(nibbles))
    block = bytearray(BLOCK_LENGTH)
    for i in range(BLOCK_LENGTH):
        block[i] = nibbles[2 * i] << 4 | nibbles[2 * i + 1]
    nibbles.clear()
    return block


def pin_from_block(block: bytes | bytearray) -> str | None:
    """The PIN in a format-2 block, or None when the block is malformed.

    For the simulated card, which must compare what VERIFY carries."""
    if len(block) != BLOCK_LENGTH or block[0] >> 4 != 0x2:
        return None
    count = block[0] & 0x0F
    if not MIN_DIGITS <= count <= MAX_DIGITS:
        return None
    nibbles = [n for byte in block[1:] for n in (byte >> 4, byte & 0x0F)]
    digits, padding = nibbles[:count], nibbles[count:]
    if any(n > 9 for n in digits) or any(n != 0xF for n in padding):
        return None
    return "".join(chr(0x30 + n) for n in digits)
