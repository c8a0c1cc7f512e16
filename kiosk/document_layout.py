"""Certificates, receipts and claim slips laid out as print jobs for the 80 mm printer.

The page is drawn here with Pillow in Amiri, so Arabic prints right whatever
the printer's code pages: every string goes through `kiosk.bidi_text`
(shaping, then bidi reordering, wrapping on the logical text first) and is
drawn left to right with Pillow's basic layout, which must not shape again.

Arabic pages run right to left: labels in a column on the right, values to
their left, both right-aligned. Each value runs in the direction of its
first letter, so a date or a serial reads left to right on an Arabic page
and an Arabic name right to left on an English one. Inside Arabic text every
word holding a digit is isolated (LRI ... PDI) before reordering: the bidi
algorithm otherwise turns "2025-11-23" after an Arabic word into
"23-11-2025" (digits after an Arabic letter become Arabic numbers, which a
hyphen does not join). The isolate marks are removed before drawing. A
word too wide for its column (a sale reference, a long code) is cut onto
lines of its own, never run off the paper.

The receipt carries the payment terminal's lines when it has them (the
masked card number or the wallet paid with, the bank's authorisation code,
the terminal and the sale), each labelled from the catalogues.

Times are printed in the kiosk's time zone (``[site] time_zone``), converted
from the document's UTC time, with the zone named and its offset shown on
the line below: "23/11/2025 18:27" over "(Damascus time, UTC+3)", and
"23/11/2025 الساعة 18:27" over "(بتوقيت دمشق، UTC+3)". The offset is the one
in force at that moment, so a zone with summer time prints the right one.
The place of issue (``[site] place_ar`` or ``place_en``) is printed when the
kiosk has one.

An Arabic page prints its digits as ``digits`` says (``[display] digits``):
Western, or Arabic-Indic (٠١٢٣٤٥٦٧٨٩) in every label and value, the serial,
fee, dates and times included, laid out in the same order as Western digits
(see kiosk.bidi_text). An English page always prints Western digits. The QR
code and the signed content are not affected: they hold the logical values.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import qrcode
from PIL import Image, ImageDraw, ImageFont

from kiosk.ports.payment_terminal import CardReceipt
from kiosk.ports.receipt_printer import PrintJob, QrBlock, RasterBlock
from kiosk import i18n
from kiosk.bidi_text import DIGIT_STYLES, WESTERN, display_line, display_lines, is_rtl, localise_digits, shape
from kiosk.documents import IssuedDocument
from kiosk.fonts import PRINT_BOLD, PRINT_REGULAR
from kiosk.money import Money

MARGIN = 16                  # dots left and right of the text
COLUMN_GAP = 14              # between the label and the value column
LABEL_SHARE = 0.42           # the label column takes at most this much of the line
THRESHOLD = 150              # grey below this prints black (a touch bold for thermal paper)
QR_MODULE = 6                # preferred QR module size, dots
DEFAULT_TIME_ZONE = "Asia/Damascus"
_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextStyle:
    bold: bool
    size: int

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return _font(self.bold, self.size)

    @property
    def line_height(self) -> int:
        ascent, descent = self.font.getmetrics()
        return ascent + descent

    def measure(self, text: str) -> float:
        return self.font.getlength(text)


HEADER = TextStyle(bold=True, size=28)
TITLE = TextStyle(bold=True, size=38)
LABEL = TextStyle(bold=True, size=26)
VALUE = TextStyle(bold=False, size=26)
SMALL = TextStyle(bold=False, size=22)


@functools.lru_cache(maxsize=None)
def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: the text is already shaped and in visual order.
    return ImageFont.truetype(str(PRINT_BOLD if bold else PRINT_REGULAR), size,
                              layout_engine=ImageFont.Layout.BASIC)


# --- text ---------------------------------------------------------------------

def _value_language(value: str) -> str:
    """A value runs in the direction of its first strong letter (UBA rules P2-P3).

    So an Arabic name reads right to left on an English page too, and a
    date or serial left to right on an Arabic one.
    """
    for ch in value:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "ar"
        if kind == "L":
            return "en"
    return "en"


@functools.lru_cache(maxsize=None)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone `name`; UTC (shown as such) if this system does not know it.

    The configuration check refuses an unknown zone, so this only guards a
    device whose time zone data went missing: the time printed is still
    right, and says it is UTC.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("document_layout.unknown_time_zone zone=%s", name)
        return zoneinfo.ZoneInfo("UTC")


def _offset_text(offset: timedelta) -> str:
    """UTC+3, UTC-4, UTC+5:30."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return "UTC%s%d" % (sign, hours) + (":%02d" % minutes if minutes else "")


def _zone_name(zone: zoneinfo.ZoneInfo, language: str) -> str:
    """The catalogue's name for the zone (دمشق / Damascus), else its IANA id (not a fault: no warning)."""
    msgid = "time_zone." + zone.key
    name = i18n.translations(language).gettext(msgid)
    return zone.key if name == msgid else name


def _display_time(iso: str, language: str, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """A UTC ISO time as the kiosk's zone shows it, the zone on a line of its own below.

    '2025-11-23T15:27:00Z' in Asia/Damascus: '23/11/2025 18:27' over '(Damascus time, UTC+3)', or
    '23/11/2025 الساعة 18:27' over '(بتوقيت دمشق، UTC+3)'. A time without a zone is taken as UTC;
    anything that is not an ISO time is printed as given.
    """
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    zone = _zone(time_zone)
    local = moment.astimezone(zone)
    when = i18n.text("document.time", language, date=i18n.format_date(local.date(), language),
                     time=local.strftime("%H:%M"))
    if zone.key in _UTC_ZONES:
        return when + "\n" + i18n.text("document.time_zone_utc", language)
    return when + "\n" + i18n.text("document.time_zone", language, zone=_zone_name(zone, language),
                                    offset=_offset_text(local.utcoffset() or timedelta(0)))


def _currency_name(code: str, language: str) -> str:
    """The catalogue's name for the currency (ل.س / SYP), else the ISO code."""
    msgid = "currency." + code
    name = i18n.text(msgid, language)
    return code if name == msgid else name


# --- drawing --------------------------------------------------------------------

def _break_long_words(text: str, width: float, measure: Callable[[str], float]) -> str:
    """`text` with every word wider than `width` (a sale reference, a long code) cut onto
    lines of its own that fit, as even as they can be, so that it never runs off the paper:
    the wrapping keeps a word whole otherwise. Words that fit are left alone."""
    def fits(piece: str) -> bool:
        return measure(shape(piece)) <= width

    def pieces(word: str) -> str:
        if fits(word):
            return word
        lines, current = [], ""
        for ch in word:
            if current and not fits(current + ch):
                lines.append(current)
                current = ch
            else:
                current += ch
        lines.append(current)
        size = -(-len(word) // len(lines))           # as many lines, each about as long
        even = [word[at:at + size] for at in range(0, len(word), size)]
        return "\n".join(even if len(even) == len(lines) and all(map(fits, even)) else lines)

    return "\n".join(" ".join(pieces(word) for word in line.split(" ")) for line in text.split("\n"))


def _blank(width: int, height: int) -> Image.Image:
    return Image.new("L", (width, height), 255)


def _to_one_bit(band: Image.Image) -> Image.Image:
    return band.point(lambda value: 0 if value < THRESHOLD else 255, mode="1")


def _draw(band: Image.Image, visual: str, style: TextStyle, x0: int, x1: int, align: str) -> None:
    """Draw one visual-order line on `band` between x0 and x1."""
    ascent, _ = style.font.getmetrics()
    x, anchor = {"left": (x0, "ls"), "right": (x1, "rs"), "center": ((x0 + x1) // 2, "ms")}[align]
    ImageDraw.Draw(band).text((x, ascent), visual, font=style.font, fill=0, anchor=anchor)


def line_image(text: str, language: str, style: TextStyle, *, width: int, align: str,
               digits: str = WESTERN) -> Image.Image:
    """One line of `text` as a 1-bit band `width` dots wide, as the page holds it."""
    band = _blank(width, style.line_height)
    _draw(band, display_line(text, language, digits=digits), style, MARGIN, width - MARGIN, align)
    return _to_one_bit(band)


class _Page:
    """A column of 1-bit bands, each the full paper width."""

    def __init__(self, width: int, language: str, digits: str = WESTERN) -> None:
        self.width = width
        self.language = language
        self.rtl = is_rtl(language)
        if digits not in DIGIT_STYLES:
            raise ValueError("digits must be one of %s, not %r" % (", ".join(DIGIT_STYLES), digits))
        self.digits = digits if self.rtl else WESTERN      # an English page keeps Western digits
        self._bands: list[Image.Image] = []

    @property
    def text_width(self) -> int:
        return self.width - 2 * MARGIN

    def space(self, dots: int) -> None:
        self._bands.append(Image.new("1", (self.width, dots), 1))

    def rule(self, thickness: int = 2, padding: int = 8) -> None:
        band = Image.new("1", (self.width, thickness + 2 * padding), 1)
        ImageDraw.Draw(band).rectangle((MARGIN, padding, self.width - MARGIN - 1, padding + thickness - 1), fill=0)
        self._bands.append(band)

    def paragraph(self, text: str, style: TextStyle, *, centered: bool = False) -> None:
        align = "center" if centered else ("right" if self.rtl else "left")
        for line in display_lines(text, self.language, self.text_width, style.measure, digits=self.digits):
            band = _blank(self.width, style.line_height)
            _draw(band, line, style, MARGIN, self.width - MARGIN, align)
            self._bands.append(_to_one_bit(band))

    def rows(self, rows: Sequence[tuple[str, str]]) -> None:
        """Label: value rows; labels in a column on the reading side."""
        if not rows:
            return
        label_width = min(int(self.text_width * LABEL_SHARE),
                          int(max(LABEL.measure(display_line(label + ":", self.language, digits=self.digits))
                                  for label, _ in rows)) + 1)
        value_width = self.text_width - label_width - COLUMN_GAP
        height = max(LABEL.line_height, VALUE.line_height)
        if self.rtl:
            label_box = (self.width - MARGIN - label_width, self.width - MARGIN)
            value_box = (MARGIN, label_box[0] - COLUMN_GAP)
            align = "right"
        else:
            label_box = (MARGIN, MARGIN + label_width)
            value_box = (label_box[1] + COLUMN_GAP, self.width - MARGIN)
            align = "left"
        for label, value in rows:
            labels = display_lines(label + ":", self.language, label_width, LABEL.measure, digits=self.digits)
            # On an Arabic page a value takes its digits too, whichever way it runs.
            value = _break_long_words(localise_digits(value, self.digits), value_width, VALUE.measure)
            values = display_lines(value, _value_language(value), value_width, VALUE.measure, digits=self.digits)
            for index in range(max(len(labels), len(values))):
                band = _blank(self.width, height)
                if index < len(labels):
                    _draw(band, labels[index], LABEL, *label_box, align)
                if index < len(values):
                    _draw(band, values[index], VALUE, *value_box, align)
                self._bands.append(_to_one_bit(band))

    def image(self) -> Image.Image:
        page = Image.new("1", (self.width, sum(band.height for band in self._bands)), 1)
        y = 0
        for band in self._bands:
            page.paste(band, (0, y))
            y += band.height
        return page


def _qr_module_size(data: str, paper_width: int) -> int:
    """The largest module size up to QR_MODULE at which the code fits the paper.

    Sized for error correction H, so it fits whatever level the printer uses.
    """
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_H, border=0)
    symbol.add_data(data.encode("utf-8"))
    symbol.make(fit=True)
    return max(1, min(QR_MODULE, (paper_width - 2 * MARGIN) // symbol.modules_count))


# --- documents ---------------------------------------------------------------------

def _place_row(place: str | None, language: str) -> list[tuple[str, str]]:
    return [(i18n.text("document.place", language), place.strip())] if place and place.strip() else []


def render_certificate(document: IssuedDocument, language: str, *, paper_width: int = 576,
                       time_zone: str = DEFAULT_TIME_ZONE, place: str | None = None, copy: bool = False,
                       digits: str = WESTERN) -> PrintJob:
    """The certificate page, its verification QR code, the serial, place and time of issue and hint, a cut.

    `time_zone` is the kiosk's IANA zone, the issue time is printed in; `place`
    the place of issue in `language` (none printed when None or blank); `copy`
    marks a reprint after part of the first print came out; `digits` the
    digits of an Arabic page (``[display] digits``: western or arabic-indic).
    """
    page = _Page(paper_width, language, digits)
    page.space(12)
    if copy:
        page.paragraph(i18n.text("document.copy", language), TITLE, centered=True)
        page.rule()
    page.paragraph(i18n.text("document.authority", language), HEADER, centered=True)
    page.rule()
    page.paragraph(document.title.get(language) or document.title.get("en", ""), TITLE, centered=True)
    page.rule()
    page.space(6)
    page.rows([(field.label.get(language) or field.label.get("en", ""), field.value)
               for field in document.fields])
    page.space(8)

    footer = _Page(paper_width, language, digits)
    footer.rows([(i18n.text("document.serial", language), document.serial)]
                + _place_row(place, language)
                + [(i18n.text("document.issued_at", language),
                    _display_time(document.issued_at, language, time_zone))])
    footer.space(6)
    footer.paragraph(i18n.text("document.verify_hint", language), SMALL, centered=True)
    footer.space(8)

    return PrintJob(blocks=(
        RasterBlock(page.image()),
        QrBlock(document.verification, size=_qr_module_size(document.verification, paper_width)),
        RasterBlock(footer.image()),
    ), cut=True)


def _payment_rows(payment: CardReceipt | None, language: str) -> list[tuple[str, str]]:
    """The terminal's lines: the masked card number (or the wallet paid with), the bank's
    authorisation code, the terminal and the sale; a line with nothing to say is left out.
    The card number is printed as the terminal masked it, never more."""
    if payment is None:
        return []
    if payment.masked_pan:
        paid_with = ("receipt.card", " ".join(filter(None, (payment.brand, payment.masked_pan))))
    else:
        paid_with = ("receipt.wallet", payment.brand)
    rows = [paid_with, ("receipt.auth_code", payment.auth_code), ("receipt.terminal_id", payment.terminal_id),
            ("receipt.sale_id", payment.sale_id)]
    return [(i18n.text(msgid, language), value.strip()) for msgid, value in rows if value and value.strip()]


def render_receipt(service_name: str, fee: Money, payment_id: str, serial: str, issued_at: str,
                   language: str, *, paper_width: int = 576, time_zone: str = DEFAULT_TIME_ZONE,
                   place: str | None = None, digits: str = WESTERN, payment: CardReceipt | None = None) -> PrintJob:
    """The payment receipt: service, fee, payment id, the payment's lines from the terminal
    (`payment`: card or wallet, authorisation code, terminal, sale), document serial, place
    and date; a cut.

    `time_zone`, `place` and `digits` as for :func:`render_certificate`.
    """
    page = _paid_page("receipt.title", paper_width, language, digits)
    page.rows([
        *_paid_rows(service_name, fee, language),
        (i18n.text("receipt.payment_id", language), payment_id),
        *_payment_rows(payment, language),
        (i18n.text("document.serial", language), serial),
        *_place_row(place, language),
        (i18n.text("receipt.date", language), _display_time(issued_at, language, time_zone)),
    ])
    page.space(16)
    return PrintJob(blocks=(RasterBlock(page.image()),), cut=True)


def _paid_page(title_key: str, paper_width: int, language: str, digits: str) -> _Page:
    """A page about a payment (the receipt, the claim slip): the authority, its title, a rule."""
    page = _Page(paper_width, language, digits)
    page.space(12)
    page.paragraph(i18n.text("document.authority", language), HEADER, centered=True)
    page.paragraph(i18n.text(title_key, language), TITLE, centered=True)
    page.rule()
    page.space(6)
    return page


def _paid_rows(service_name: str, fee: Money, language: str) -> list[tuple[str, str]]:
    return [(i18n.text("receipt.service", language), service_name),
            (i18n.text("receipt.fee", language), "%s %s" % (fee.major_text(), _currency_name(fee.currency, language)))]


# --- claims ---------------------------------------------------------------------------

def render_claim_slip(service_name: str, fee: Money, reference: str, taken_at: str, language: str, *,
                      paper_width: int = 576, time_zone: str = DEFAULT_TIME_ZONE, place: str | None = None,
                      digits: str = WESTERN, payment_id: str = "", payment: CardReceipt | None = None) -> PrintJob:
    """The claim slip, for a certificate paid while the kiosk could not reach central: the service, the
    fee paid, the claim's reference, the payment's lines, place and time; what happens next (the
    document waits for the citizen at any kiosk once the link is back: their ID card is enough); the
    reference again as a QR code (the reference alone: no name, no number) and in large letters; a cut.

    `taken_at` is ISO 8601 UTC; `time_zone`, `place` and `digits` as for :func:`render_certificate`.
    """
    page = _paid_page("claim_slip.title", paper_width, language, digits)
    page.rows([
        *_paid_rows(service_name, fee, language),
        (i18n.text("claim_slip.reference", language), reference),
        *([(i18n.text("receipt.payment_id", language), payment_id)] if payment_id else []),
        *_payment_rows(payment, language),
        *_place_row(place, language),
        (i18n.text("receipt.date", language), _display_time(taken_at, language, time_zone)),
    ])
    page.space(10)
    page.paragraph(i18n.text("claim_slip.next", language), SMALL)
    page.space(10)

    footer = _Page(paper_width, language, digits)
    footer.space(6)
    footer.paragraph(reference, HEADER, centered=True)     # Latin letters and digits: the same on every page
    footer.space(16)
    return PrintJob(blocks=(
        RasterBlock(page.image()),
        QrBlock(reference, size=_qr_module_size(reference, paper_width)),
        RasterBlock(footer.image()),
    ), cut=True)
