"""ESC/POS bytes back into what the paper would show.

The decoder reads a byte stream the way a printer does: text into a line
buffer printed at LF, raster images (GS v 0, ESC *, GS ( L / GS 8 L), QR
codes (GS ( k), feeds and cuts, and the setting commands python-escpos
sends (ESC @, ESC a, ESC E, ESC !, ESC t, ...). Commands it does not draw
are skipped by their known lengths; bytes it does not know at all come
back as `Skipped`. Garbage never crashes it: in the default lenient mode it
raises nothing, in strict mode only `DecodeError`.

`Decoder` is incremental, so the simulator can answer a DLE EOT status
query as soon as it arrives; `decode()` is the one-shot form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Union

from PIL import Image

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
NUL, HT, LF, FF, CR, EOT, ENQ, DC4 = 0x00, 0x09, 0x0A, 0x0C, 0x0D, 0x04, 0x05, 0x14

#: a command declaring more data than this is garbage, not a command
MAX_COMMAND_BYTES = 8 * 1024 * 1024

_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
_EC_LEVEL = {48: "L", 49: "M", 50: "Q", 51: "H"}
_CODEPAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
              17: "cp866", 18: "cp852", 19: "cp858"}
_FULL_CUTS = frozenset({0, 48, 65, 97, 103})
_PARTIAL_CUTS = frozenset({1, 49, 66, 98, 104})
_TEXT_RUN = re.compile(rb"[\x20-\x7e\x80-\xff]+")


class DecodeError(Exception):
    """Strict decoding met bytes that are not a complete, known command."""


# --- elements ---------------------------------------------------------------

@dataclass(frozen=True)
class TextLine:
    """One printed line of text, with the style of its first character."""
    text: str
    align: str = "left"
    bold: bool = False
    underline: int = 0
    width: int = 1          # character magnification, 1..8
    height: int = 1
    font: int = 0           # 0 = font A (12x24), 1 = font B (9x17)
    invert: bool = False


@dataclass(frozen=True)
class RasterImage:
    """A bit image; `data` is packed rows, most significant bit left, 1 = black."""
    width: int              # dots
    height: int             # dots
    data: bytes
    scale_x: int = 1
    scale_y: int = 1
    align: str = "left"
    source: str = "GS v 0"

    @property
    def stride(self) -> int:
        return (self.width + 7) // 8

    def to_image(self) -> Image.Image:
        """The image in Pillow's mode "1" (0 = black), at its own dot size."""
        if self.width <= 0 or self.height <= 0:
            return Image.new("1", (max(self.width, 0), max(self.height, 0)), 1)
        packed = Image.frombytes("1", (self.stride * 8, self.height), self.data, "raw", "1;I")
        return packed.crop((0, 0, self.width, self.height))


@dataclass(frozen=True)
class QrCode:
    """A QR code printed with the printer's own symbol command."""
    data: bytes
    module_size: int = 3
    ec_level: str = "L"
    model: int = 2
    align: str = "left"

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Feed:
    lines: int = 0
    dots: int = 0


@dataclass(frozen=True)
class Cut:
    partial: bool = False


@dataclass(frozen=True)
class StatusQuery:
    """DLE EOT n: the printer answers one status byte at once."""
    n: int


@dataclass(frozen=True)
class Command:
    """A known command that changes state or is not drawn (init, align, ...)."""
    name: str
    args: bytes = b""


@dataclass(frozen=True)
class Skipped:
    """Bytes that are not a known command."""
    data: bytes


@dataclass(frozen=True)
class Truncated:
    """A command cut short by the end of the stream."""
    data: bytes


Element = Union[TextLine, RasterImage, QrCode, Feed, Cut, StatusQuery, Command, Skipped, Truncated]
PRINTABLE = (TextLine, RasterImage, QrCode)


class Decoded(NamedTuple):
    element: Element
    end: int                # stream offset just past the element's bytes


@dataclass(frozen=True)
class _Style:
    align: str = "left"
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    font: int = 0
    invert: bool = False
    codepage: int = 0


# A step is (bytes consumed, elements), or None when more bytes are needed.
_Step = Optional[tuple[int, list[Element]]]

# Fixed-length commands that change nothing we draw: (prefix, byte) -> (length, name)
_FIXED: dict[tuple[int, int], tuple[int, str]] = {
    (ESC, 0x20): (3, "char_spacing"), (ESC, ord("$")): (4, "abs_position"),
    (ESC, ord("%")): (3, "user_charset"), (ESC, ord("=")): (3, "peripheral"),
    (ESC, ord("?")): (3, "cancel_user_char"), (ESC, ord("K")): (3, "reverse_feed"),
    (ESC, ord("L")): (2, "page_mode"), (ESC, ord("R")): (3, "intl_charset"),
    (ESC, ord("S")): (2, "standard_mode"), (ESC, ord("T")): (3, "page_direction"),
    (ESC, ord("U")): (3, "unidirectional"), (ESC, ord("V")): (3, "rotate"),
    (ESC, ord("W")): (10, "page_area"), (ESC, ord("\\")): (4, "rel_position"),
    (ESC, ord("c")): (4, "panel"), (ESC, ord("e")): (3, "reverse_feed_lines"),
    (ESC, ord("p")): (5, "pulse"), (ESC, ord("r")): (3, "color"),
    (ESC, ord("u")): (3, "peripheral_status"), (ESC, ord("v")): (2, "paper_status"),
    (ESC, ord("{")): (3, "upside_down"), (ESC, ord("<")): (2, "return_home"),
    (ESC, ord("2")): (2, "line_spacing_default"), (ESC, ord("3")): (3, "line_spacing"),
    (GS, ord("$")): (4, "abs_vertical_position"), (GS, ord("/")): (3, "print_downloaded_image"),
    (GS, ord(":")): (2, "macro"), (GS, ord("H")): (3, "hri_position"),
    (GS, ord("I")): (3, "printer_id"), (GS, ord("L")): (4, "left_margin"),
    (GS, ord("P")): (4, "motion_units"), (GS, ord("T")): (3, "print_position"),
    (GS, ord("W")): (4, "print_width"), (GS, ord("\\")): (4, "rel_vertical_position"),
    (GS, ord("^")): (5, "macro_run"), (GS, ord("a")): (3, "auto_status_back"),
    (GS, ord("b")): (3, "smoothing"), (GS, ord("f")): (3, "hri_font"),
    (GS, ord("h")): (3, "barcode_height"), (GS, ord("r")): (3, "transmit_status"),
    (GS, ord("w")): (3, "barcode_width"), (GS, ord("|")): (3, "density"),
    (FS, ord("!")): (3, "kanji_mode"), (FS, ord("&")): (2, "kanji_on"),
    (FS, ord("-")): (3, "kanji_underline"), (FS, ord(".")): (2, "kanji_off"),
    (FS, ord("C")): (3, "kanji_code"), (FS, ord("S")): (4, "kanji_spacing"),
    (FS, ord("W")): (3, "kanji_quad"), (FS, ord("p")): (4, "nv_image_print"),
    (FS, ord("2")): (76, "kanji_define"),
}
_DC4_LENGTHS = {1: 5, 2: 5, 7: 5, 8: 10}


class Decoder:
    """Incremental ESC/POS decoder: feed bytes, get elements with end offsets."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._buf = bytearray()
        self._base = 0                      # stream offset of _buf[0]
        self._style = _Style()
        self._line: list[str] = []
        self._line_style: Optional[_Style] = None
        self._band_in_line = False          # an ESC * band waits for its LF
        self._qr = {"model": 2, "size": 3, "ec": "L", "data": b""}
        self._graphics: Optional[tuple[int, int, bytes, int, int]] = None

    # -- public ---------------------------------------------------------------

    def feed(self, data: bytes) -> list[Decoded]:
        """Decode what `data` completes; an incomplete command waits for more."""
        self._buf += data
        out: list[Decoded] = []
        i = 0
        while i < len(self._buf):
            step = self._step(self._buf, i)
            if step is None:
                break
            length, elements = step
            i += length
            out.extend(Decoded(e, self._base + i) for e in elements)
        del self._buf[:i]
        self._base += i
        return out

    def finish(self) -> list[Decoded]:
        """End of stream: a cut-short command, and the unprinted line buffer."""
        out: list[Decoded] = []
        end = self._base + len(self._buf)
        if self._buf:
            rest = bytes(self._buf)
            self._buf.clear()
            self._base = end
            partial = _partial_raster(rest, self._style.align)
            if partial is not None and not self.strict:
                out.extend(Decoded(e, end) for e in self._flush_line() + [partial])
            out.append(Decoded(self._bad(Truncated(rest)), end))
        out.extend(Decoded(e, end) for e in self._flush_line())
        return out

    # -- the parser -----------------------------------------------------------

    def _bad(self, element: Union[Skipped, Truncated]) -> Element:
        if self.strict:
            kind = "truncated command" if isinstance(element, Truncated) else "unknown bytes"
            raise DecodeError("%s %s" % (kind, element.data[:16].hex(" ")))
        return element

    def _skip(self, buf: bytearray, i: int, length: int) -> tuple[int, list[Element]]:
        return length, [self._bad(Skipped(bytes(buf[i:i + length])))]

    def _step(self, buf: bytearray, i: int) -> _Step:
        byte = buf[i]
        if byte >= 0x20 and byte != 0x7F:
            match = _TEXT_RUN.match(buf, i)
            run = match.group(0)
            if self._line_style is None:
                self._line_style = self._style
            codec = _CODEPAGES.get(self._style.codepage, "cp437")
            self._line.append(run.decode(codec, errors="replace"))
            return len(run), []
        if byte == LF or byte == FF:
            return 1, self._line_feed()
        if byte == CR:
            return 1, []
        if byte == HT:
            if self._line_style is None:
                self._line_style = self._style
            column = sum(len(part) for part in self._line)
            self._line.append(" " * (8 - column % 8))
            return 1, []
        if byte in (ESC, GS, DLE, FS):
            if len(buf) - i < 2:
                return None
            handler = {ESC: self._esc, GS: self._gs, DLE: self._dle, FS: self._fs}[byte]
            return handler(buf, i)
        return self._skip(buf, i, 1)

    def _fixed(self, buf: bytearray, i: int, length: int) -> Optional[bytes]:
        """The parameter bytes of a fixed-length command, or None if incomplete."""
        if len(buf) - i < length:
            return None
        return bytes(buf[i + 2:i + length])

    def _esc(self, buf: bytearray, i: int) -> _Step:
        cmd = buf[i + 1]
        c = chr(cmd)
        if c == "@":
            self._style = _Style()
            self._line, self._line_style, self._band_in_line = [], None, False
            return 2, [Command("init")]
        if c in "!-EGMadJt":
            args = self._fixed(buf, i, 3)
            if args is None:
                return None
            n = args[0]
            if c == "d":
                return 3, self._flush_line() + [Feed(lines=n)]
            if c == "J":
                return 3, self._flush_line() + [Feed(dots=n)]
            if c == "!":
                self._style = replace(self._style, font=n & 1, bold=bool(n & 0x08),
                                      height=2 if n & 0x10 else 1, width=2 if n & 0x20 else 1,
                                      underline=1 if n & 0x80 else 0)
            elif c == "-":
                self._style = replace(self._style, underline=n & 0x03 if n < 48 else (n - 48) & 0x03)
            elif c in "EG":
                self._style = replace(self._style, bold=bool(n & 1))
            elif c == "M":
                self._style = replace(self._style, font=n & 1)
            elif c == "a":
                self._style = replace(self._style, align=_ALIGN.get(n, self._style.align))
            elif c == "t":
                self._style = replace(self._style, codepage=n)
            names = {"!": "print_mode", "-": "underline", "E": "bold", "G": "double_strike",
                     "M": "font", "a": "align", "t": "codepage"}
            return 3, [Command(names[c], args)]
        if c in "im":
            return 2, self._flush_line() + [Cut(partial=True)]
        if c == "*":
            return self._esc_bit_image(buf, i)
        if c == "&":
            return self._esc_user_chars(buf, i)
        if c == "D":
            return self._esc_tabs(buf, i)
        if c == "(":
            return self._sized(buf, i, 2, "esc_paren_" + chr(buf[i + 2]) if len(buf) - i > 2 else "")
        return self._simple(buf, i)

    def _simple(self, buf: bytearray, i: int) -> _Step:
        known = _FIXED.get((buf[i], buf[i + 1]))
        if known is None:
            return self._skip(buf, i, 2)
        length, name = known
        args = self._fixed(buf, i, length)
        if args is None:
            return None
        return length, [Command(name, args)]

    def _sized(self, buf: bytearray, i: int, length_bytes: int, name: str) -> _Step:
        """<prefix> <cmd> <fn> pL pH [p4 p3] data: length in the header."""
        header = 3 + length_bytes
        if len(buf) - i < header:
            return None
        size = int.from_bytes(buf[i + 3:i + header], "little")
        if size > MAX_COMMAND_BYTES:
            return self._skip(buf, i, 2)
        if len(buf) - i < header + size:
            return None
        return header + size, [Command(name, bytes(buf[i + header:i + header + size]))]

    def _esc_bit_image(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 5:
            return None
        m, n = buf[i + 2], buf[i + 3] | buf[i + 4] << 8
        if m not in (0, 1, 32, 33):
            return self._skip(buf, i, 2)
        rows = 3 if m >= 32 else 1
        if len(buf) - i < 5 + rows * n:
            return None
        data = bytes(buf[i + 5:i + 5 + rows * n])
        height = rows * 8
        elements: list[Element] = []
        if n:
            columns = Image.frombytes("1", (height, n), data, "raw", "1;I")
            band = columns.transpose(Image.Transpose.TRANSPOSE)
            elements.append(RasterImage(
                width=n, height=height, data=band.tobytes("raw", "1;I"),
                scale_x=1 if m & 1 else 2, scale_y=1 if m >= 32 else 3,
                align=self._style.align, source="ESC *"))
        if not self._line:
            self._band_in_line = True
        return 5 + rows * n, elements

    def _esc_user_chars(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 5:
            return None
        y, c1, c2 = buf[i + 2], buf[i + 3], buf[i + 4]
        if not (1 <= y <= 3 and 32 <= c1 <= c2 <= 126):
            return self._skip(buf, i, 2)
        pos = i + 5
        for _ in range(c1, c2 + 1):
            if pos >= len(buf):
                return None
            pos += 1 + y * buf[pos]
        if pos > len(buf):
            return None
        return pos - i, [Command("define_user_chars")]

    def _esc_tabs(self, buf: bytearray, i: int) -> _Step:
        window = bytes(buf[i + 2:i + 2 + 33])
        end = window.find(b"\x00")
        if end >= 0:
            return 2 + end + 1, [Command("tab_positions", window[:end])]
        if len(window) < 33:
            return None
        return 2 + 32, [Command("tab_positions", window[:32])]

    def _gs(self, buf: bytearray, i: int) -> _Step:
        c = chr(buf[i + 1])
        if c in "!B":
            args = self._fixed(buf, i, 3)
            if args is None:
                return None
            n = args[0]
            if c == "!":
                self._style = replace(self._style, width=((n >> 4) & 7) + 1, height=(n & 7) + 1)
                return 3, [Command("char_size", args)]
            self._style = replace(self._style, invert=bool(n & 1))
            return 3, [Command("invert", args)]
        if c == "V":
            return self._gs_cut(buf, i)
        if c == "v":
            return self._gs_raster(buf, i)
        if c == "(":
            return self._gs_paren(buf, i)
        if c == "8":
            if len(buf) - i < 3:
                return None
            if buf[i + 2] != ord("L"):
                return self._skip(buf, i, 2)
            return self._graphics_command(buf, i, 4)
        if c == "*":
            if len(buf) - i < 4:
                return None
            size = 4 + buf[i + 2] * buf[i + 3] * 8
            if len(buf) - i < size:
                return None
            return size, [Command("define_downloaded_image")]
        if c == "k":
            return self._gs_barcode(buf, i)
        if c == "g":
            if len(buf) - i < 3:
                return None
            if buf[i + 2] not in (0x30, 0x32):
                return self._skip(buf, i, 2)
            args = self._fixed(buf, i, 6)
            return None if args is None else (6, [Command("counter", args)])
        if c == "z":
            if len(buf) - i < 3:
                return None
            if buf[i + 2] != 0x30:
                return self._skip(buf, i, 2)
            args = self._fixed(buf, i, 5)
            return None if args is None else (5, [Command("online_recovery", args)])
        return self._simple(buf, i)

    def _gs_cut(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 3:
            return None
        m = buf[i + 2]
        if m in (0, 1, 48, 49):
            length = 3
        elif m in (65, 66, 97, 98, 103, 104):
            length = 4
            if len(buf) - i < 4:
                return None
        else:
            return self._skip(buf, i, 2)
        return length, self._flush_line() + [Cut(partial=m in _PARTIAL_CUTS)]

    def _gs_raster(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 3:
            return None
        if buf[i + 2] != 0x30:
            return self._skip(buf, i, 2)
        if len(buf) - i < 8:
            return None
        m = buf[i + 3]
        x_bytes = buf[i + 4] | buf[i + 5] << 8
        height = buf[i + 6] | buf[i + 7] << 8
        size = x_bytes * height
        if m not in (0, 1, 2, 3, 48, 49, 50, 51) or size > MAX_COMMAND_BYTES:
            return self._skip(buf, i, 2)
        if len(buf) - i < 8 + size:
            return None
        image = RasterImage(width=x_bytes * 8, height=height, data=bytes(buf[i + 8:i + 8 + size]),
                            scale_x=2 if m & 1 else 1, scale_y=2 if m & 2 else 1,
                            align=self._style.align, source="GS v 0")
        return 8 + size, self._flush_line() + [image]

    def _gs_paren(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 3:
            return None
        fn = chr(buf[i + 2])
        if fn == "k":
            return self._gs_2d_code(buf, i)
        if fn == "L":
            return self._graphics_command(buf, i, 2)
        return self._sized(buf, i, 2, "gs_paren_" + fn)

    def _gs_2d_code(self, buf: bytearray, i: int) -> _Step:
        step = self._sized(buf, i, 2, "2d_code")
        if step is None:
            return None
        length, elements = step
        if not isinstance(elements[0], Command):        # oversized: already skipped
            return step
        body = elements[0].args
        if len(body) < 2 or body[0] != 0x31:             # cn 49 = QR; other symbols not drawn
            return step
        fn, params = body[1], body[2:]
        qr = self._qr
        if fn == 65 and params:                          # select model
            qr["model"] = {49: 1, 50: 2, 51: 3}.get(params[0], qr["model"])
            return length, [Command("qr_model", params)]
        if fn == 67 and params:                          # module size
            if 1 <= params[0] <= 16:
                qr["size"] = params[0]
            return length, [Command("qr_size", params)]
        if fn == 69 and params:                          # error correction
            qr["ec"] = _EC_LEVEL.get(params[0], qr["ec"])
            return length, [Command("qr_error_correction", params)]
        if fn == 80 and params:                          # store data (m = 48)
            qr["data"] = bytes(params[1:])
            return length, [Command("qr_store", b"")]
        if fn == 81:                                     # print the stored symbol
            if not qr["data"]:
                return length, [Command("qr_print", b"")]
            code = QrCode(data=qr["data"], module_size=qr["size"], ec_level=qr["ec"],
                          model=qr["model"], align=self._style.align)
            return length, self._flush_line() + [code]
        return step

    def _graphics_command(self, buf: bytearray, i: int, length_bytes: int) -> _Step:
        """GS ( L / GS 8 L: store a raster graphic (fn 112), print it (fn 50)."""
        step = self._sized(buf, i, length_bytes, "graphics")
        if step is None:
            return None
        length, elements = step
        if not isinstance(elements[0], Command):
            return step
        body = elements[0].args
        if len(body) < 2:
            return step
        fn = body[1]
        if fn == 112 and len(body) >= 10:
            tone, bx, by, color = body[2], body[3], body[4], body[5]
            width, height = body[6] | body[7] << 8, body[8] | body[9] << 8
            data = body[10:]
            if tone == 48 and color == 49 and len(data) >= ((width + 7) // 8) * height:
                self._graphics = (width, height, data[:((width + 7) // 8) * height], bx, by)
            return length, [Command("graphics_store", b"")]
        if fn in (2, 50):
            if self._graphics is None:
                return length, [Command("graphics_print", b"")]
            width, height, data, bx, by = self._graphics
            image = RasterImage(width=width, height=height, data=data, scale_x=2 if bx == 2 else 1,
                                scale_y=2 if by == 2 else 1, align=self._style.align, source="GS ( L")
            return length, self._flush_line() + [image]
        return step

    def _gs_barcode(self, buf: bytearray, i: int) -> _Step:
        if len(buf) - i < 3:
            return None
        m = buf[i + 2]
        if m <= 6:
            window = bytes(buf[i + 3:i + 3 + 256])
            end = window.find(b"\x00")
            if end >= 0:
                return 3 + end + 1, self._flush_line() + [Command("barcode", window[:end])]
            if len(window) < 256:
                return None
            return self._skip(buf, i, 3)
        if 65 <= m <= 79:
            if len(buf) - i < 4:
                return None
            n = buf[i + 3]
            if len(buf) - i < 4 + n:
                return None
            return 4 + n, self._flush_line() + [Command("barcode", bytes(buf[i + 4:i + 4 + n]))]
        return self._skip(buf, i, 2)

    def _dle(self, buf: bytearray, i: int) -> _Step:
        cmd = buf[i + 1]
        if cmd == EOT:
            if len(buf) - i < 3:
                return None
            n = buf[i + 2]
            if n in (7, 8):
                args = self._fixed(buf, i, 4)
                return None if args is None else (4, [Command("realtime_status", args)])
            if 1 <= n <= 4:
                return 3, [StatusQuery(n)]
            return 3, [Command("realtime_status", bytes([n]))]
        if cmd == ENQ:
            args = self._fixed(buf, i, 3)
            return None if args is None else (3, [Command("realtime_request", args)])
        if cmd == DC4:
            if len(buf) - i < 3:
                return None
            length = _DC4_LENGTHS.get(buf[i + 2], 3)
            args = self._fixed(buf, i, length)
            return None if args is None else (length, [Command("realtime_command", args)])
        return self._skip(buf, i, 2)

    def _fs(self, buf: bytearray, i: int) -> _Step:
        c = chr(buf[i + 1])
        if c == "(":
            if len(buf) - i < 3:
                return None
            return self._sized(buf, i, 2, "fs_paren_" + chr(buf[i + 2]))
        if c == "q":
            if len(buf) - i < 3:
                return None
            pos = i + 3
            for _ in range(buf[i + 2]):
                if len(buf) - pos < 4:
                    return None
                size = (buf[pos] | buf[pos + 1] << 8) * (buf[pos + 2] | buf[pos + 3] << 8) * 8
                if size > MAX_COMMAND_BYTES:
                    return self._skip(buf, i, 2)
                pos += 4 + size
            if pos > len(buf):
                return None
            return pos - i, [Command("nv_image_define")]
        return self._simple(buf, i)

    # -- the line buffer -------------------------------------------------------

    def _flush_line(self) -> list[Element]:
        """Print what the line buffer holds (before an image, QR, feed or cut)."""
        if not self._line:
            return []
        return self._line_feed()

    def _line_feed(self) -> list[Element]:
        if not self._line and self._band_in_line:
            self._band_in_line = False
            return []
        style = self._line_style or self._style
        line = TextLine(text="".join(self._line), align=style.align, bold=style.bold,
                        underline=style.underline, width=style.width, height=style.height,
                        font=style.font, invert=style.invert)
        self._line, self._line_style, self._band_in_line = [], None, False
        return [line]


def _partial_raster(rest: bytes, align: str) -> Optional[RasterImage]:
    """The whole rows of a GS v 0 image cut short: a printer prints what it got."""
    if len(rest) < 8 or rest[:3] != b"\x1dv0":
        return None
    x_bytes = rest[4] | rest[5] << 8
    rows = min((len(rest) - 8) // x_bytes, rest[6] | rest[7] << 8) if x_bytes else 0
    if rows <= 0:
        return None
    m = rest[3]
    return RasterImage(width=x_bytes * 8, height=rows, data=rest[8:8 + rows * x_bytes],
                       scale_x=2 if m & 1 else 1, scale_y=2 if m & 2 else 1, align=align, source="GS v 0")


def decode(data: bytes, *, strict: bool = False) -> list[Element]:
    """Every element of a complete ESC/POS stream, in order."""
    decoder = Decoder(strict=strict)
    return [d.element for d in decoder.feed(data) + decoder.finish()]
