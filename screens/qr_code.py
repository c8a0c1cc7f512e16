"""A mobile wallet's payment request as the pixels of a QR code, for a screen texture.

`qr_pixels` makes the symbol with the `qrcode` package (as the printed
documents do) and answers it as one pixel per module, quiet zone included,
dark modules black on white whatever the screen's theme (a QR code in high
contrast stays dark on light, or a phone cannot read it). The rows come
bottom first, as a Kivy texture takes them; the screen scales the texture
up by a whole number with nearest-neighbour filtering, so every module is a
sharp square.

Error correction M: a screen is not paper that gets creased, and M keeps the
symbol small, so each module is drawn larger. Making the symbol takes a few
milliseconds (measured on the development machine: 6 ms for an 80-character
request, 10 ms for 200 characters, 19 ms for 250); the screen makes it on a
worker thread all the same, as a small board is several times slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import qrcode

QUIET_ZONE = 4           # modules of white around the symbol, as ISO/IEC 18004 asks
_DARK = b"\x00\x00\x00\xff"
_LIGHT = b"\xff\xff\xff\xff"


@dataclass(frozen=True)
class QrPixels:
    """A square of `side` x `side` RGBA pixels, one per module, bottom row first."""

    data: str
    side: int
    rgba: bytes


def qr_matrix(data: str) -> list[list[bool]]:
    """The modules of `data`'s QR code, quiet zone included, top row first as it is read; True: dark."""
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE)
    symbol.add_data(data.encode("utf-8"))
    symbol.make(fit=True)
    return symbol.get_matrix()


def qr_pixels(data: str) -> QrPixels:
    """The QR code of `data` (quiet zone included), one RGBA pixel per module, bottom row first."""
    matrix = qr_matrix(data)
    rows = (b"".join(_DARK if dark else _LIGHT for dark in row) for row in reversed(matrix))
    return QrPixels(data=data, side=len(matrix), rgba=b"".join(rows))
