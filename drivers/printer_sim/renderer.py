"""A decoded job drawn as the paper would look: a PNG 576 dots wide.

Text is drawn in a monospace font at font A's 12x24-dot cell, raster images
dot for dot, QR codes with the `qrcode` package at the module size the job
asked for, and a dashed line where the cutter cuts. Anything the printer
could not print (a QR code too large for its data, an image wider than the
paper) is clipped or marked, never an exception.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable, Optional

import qrcode
from PIL import Image, ImageDraw, ImageFont, ImageOps

from drivers.printer_sim.decoder import Cut, Element, Feed, QrCode, RasterImage, TextLine

log = logging.getLogger(__name__)

PAPER_WIDTH = 576
LINE_HEIGHT = 30            # default line spacing, dots
MAX_HEIGHT = 30000          # a page taller than this is clipped
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_CELL = {0: (12, 24), 1: (9, 17)}     # font A, font B: width, height in dots
_EC = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
       "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}


@functools.lru_cache(maxsize=None)
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    try:
        return ImageFont.truetype(str(_FONT_DIR / name), size)
    except OSError:
        return ImageFont.load_default(size)


def _aligned_x(align: str, width: int, paper_width: int) -> int:
    if align == "center":
        return max(0, (paper_width - width) // 2)
    if align == "right":
        return max(0, paper_width - width)
    return 0


def _text_band(line: TextLine, paper_width: int) -> Image.Image:
    cell_w, cell_h = _CELL.get(line.font, _CELL[0])
    natural = Image.new("L", (max(1, len(line.text) * cell_w), cell_h), 255)
    draw = ImageDraw.Draw(natural)
    font = _font(line.bold, int(cell_h * 0.8))
    for column, char in enumerate(line.text):
        draw.text((column * cell_w, 1), char, font=font, fill=0)
    if line.underline:
        draw.rectangle((0, cell_h - line.underline, natural.width, cell_h - 1), fill=0)
    if line.invert:
        natural = ImageOps.invert(natural)
    text = natural.resize((natural.width * line.width, cell_h * line.height))
    band = Image.new("L", (paper_width, max(LINE_HEIGHT, text.height + 6)), 255)
    if line.text:
        band.paste(text, (_aligned_x(line.align, text.width, paper_width), 3))
    return band


def _raster_band(image: RasterImage, paper_width: int) -> Image.Image:
    picture = image.to_image().convert("L")
    if image.scale_x != 1 or image.scale_y != 1:
        picture = picture.resize((picture.width * image.scale_x, picture.height * image.scale_y))
    band = Image.new("L", (paper_width, picture.height), 255)
    band.paste(picture, (_aligned_x(image.align, picture.width, paper_width), 0))
    return band


def _qr_band(code: QrCode, paper_width: int) -> Image.Image:
    try:
        symbol = qrcode.QRCode(error_correction=_EC.get(code.ec_level, _EC["L"]),
                               box_size=code.module_size, border=0)
        symbol.add_data(code.data)
        symbol.make(fit=True)
        picture = symbol.make_image().get_image().convert("L")
    except (ValueError, qrcode.exceptions.DataOverflowError):
        picture = Image.new("L", (96, 96), 255)
        draw = ImageDraw.Draw(picture)
        draw.rectangle((0, 0, 95, 95), outline=0, width=3)
        draw.line((0, 0, 95, 95), fill=0, width=3)
    band = Image.new("L", (paper_width, picture.height), 255)
    band.paste(picture, (_aligned_x(code.align, picture.width, paper_width), 0))
    return band


def _cut_band(paper_width: int) -> Image.Image:
    band = Image.new("L", (paper_width, 24), 255)
    draw = ImageDraw.Draw(band)
    for x in range(0, paper_width, 16):
        draw.line((x, 12, x + 8, 12), fill=0, width=2)
    return band


def render(elements: Iterable[Element], *, paper_width: int = PAPER_WIDTH) -> Image.Image:
    """The job as a greyscale page `paper_width` dots wide."""
    bands: list[Image.Image] = []
    height = 0
    for element in elements:
        band: Optional[Image.Image] = None
        if isinstance(element, TextLine):
            band = _text_band(element, paper_width)
        elif isinstance(element, RasterImage):
            band = _raster_band(element, paper_width)
        elif isinstance(element, QrCode):
            band = _qr_band(element, paper_width)
        elif isinstance(element, Feed):
            dots = element.lines * LINE_HEIGHT + element.dots
            band = Image.new("L", (paper_width, dots), 255) if dots else None
        elif isinstance(element, Cut):
            band = _cut_band(paper_width)
        if band is None:
            continue
        if height + band.height > MAX_HEIGHT:
            log.warning("printer_sim.page_clipped height=%d", height + band.height)
            break
        bands.append(band)
        height += band.height
    page = Image.new("L", (paper_width, max(height, 1)), 255)
    y = 0
    for band in bands:
        page.paste(band, (0, y))
        y += band.height
    return page


def render_png(elements: Iterable[Element], path: Path, *, paper_width: int = PAPER_WIDTH) -> Image.Image:
    """Render and save as PNG; returns the page."""
    page = render(elements, paper_width=paper_width)
    page.save(path, format="PNG")
    return page
