"""Certificates and receipts, laid out and printed through the real driver.

Each job goes over TCP to the printer simulator; the page is checked as a
picture (the QR code read back from the rendered PNG) and by its parts
(raster width, shaping, digit order).
"""

from __future__ import annotations


import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from kiosk import i18n
from kiosk.ports.payment_terminal import CardReceipt
from kiosk.ports.receipt_printer import PrintResult, QrBlock, RasterBlock
from kiosk.bidi_text import display_line, display_lines
from kiosk.document_layout import (
    LABEL, TITLE, VALUE, _display_time, line_image, render_certificate, render_receipt,
)
from bench.printing import VERIFICATION, sample_document   # a fictional person's certificate, as the benchmark prints it
from kiosk.money import Money


@pytest.mark.parametrize("language", ["ar", "en"])
def test_certificate_prints_and_its_qr_code_reads_back(language, simulator, printer):
    document = sample_document()
    job = render_certificate(document, language)

    outcome = printer.print_job(job)

    assert outcome.result is PrintResult.PRINTED
    printed = simulator.wait_for_jobs(1)[0]
    assert printed.complete and len(printed.cuts) == 1
    with Image.open(printed.png_path) as page:
        assert page.width == 576
        decoded = [result.text for result in zxingcpp.read_barcodes(page)]
    assert decoded == [document.verification]


@pytest.mark.parametrize("language", ["ar", "en"])
def test_certificate_blocks_fit_the_paper(language):
    job = render_certificate(sample_document(), language, paper_width=576)

    rasters = [block for block in job.blocks if isinstance(block, RasterBlock)]
    qr_codes = [block for block in job.blocks if isinstance(block, QrBlock)]
    assert job.cut
    assert len(rasters) == 2 and len(qr_codes) == 1
    assert all(block.image.width <= 576 for block in rasters)
    assert qr_codes[0].data == VERIFICATION


def test_arabic_title_is_shaped_not_drawn_letter_by_letter():
    title = sample_document().title["ar"]
    width = 576
    shaped = line_image(title, "ar", TITLE, width=width, align="center")
    naive = Image.new("L", shaped.size, 255)
    ascent, _ = TITLE.font.getmetrics()
    ImageDraw.Draw(naive).text((width // 2, ascent), title, font=TITLE.font, fill=0, anchor="ms")

    assert shaped.tobytes() != naive.point(lambda v: 0 if v < 150 else 255, mode="1").tobytes()
    # ... and that shaped line is what the certificate carries.
    page = render_certificate(sample_document(), "ar").blocks[0].image
    band = shaped.tobytes()
    assert any(page.crop((0, y, width, y + shaped.height)).tobytes() == band
               for y in range(page.height - shaped.height))


def test_arabic_text_uses_joined_letter_forms_in_visual_order():
    line = display_line("الاسم الكامل", "ar")
    assert line == display_line("الاسم الكامل", "ar")
    assert all(not ("\u0621" <= ch <= "\u064a") for ch in line)        # presentation forms only
    assert "\ufefb" in line                                               # lam-alef ligature
    assert line.endswith("\ufe8d")                                        # the first letter sits on the right


def test_dates_and_numbers_inside_arabic_keep_their_order():
    line = display_line("قيد بتاريخ 2008-03-01 في سجل رقم 12", "ar")
    assert "2008-03-01" in line
    assert "12" in line
    assert "\u2066" not in line and "\u2069" not in line


def test_long_arabic_value_wraps_top_line_first():
    value = sample_document().fields[5].value
    lines = display_lines(value, "ar", 300, VALUE.measure)
    assert len(lines) > 1
    # The first logical word (Damascus) ends the first visual line: right-hand side.
    assert lines[0].rstrip().endswith(display_line("دمشق،", "ar"))


def test_receipt_prints_fee_in_order(simulator, printer):
    job = render_receipt("إخراج قيد فردي", Money.of(150000, "SYP"), "PAY-20251123-7F3A91",
                         "CERT-2025-000123", "2025-11-23T15:27:00Z", "ar")

    outcome = printer.print_job(job)

    assert outcome.result is PrintResult.PRINTED
    printed = simulator.wait_for_jobs(1)[0]
    assert len(printed.images) >= 1 and printed.images[0].width <= 576
    assert "1,500" in display_line("1,500 ل.س", "ar")


@pytest.mark.parametrize("time_zone, language, expected", [
    ("Asia/Damascus", "en", "23/11/2025 18:27\n(Damascus time, UTC+3)"),
    ("Asia/Damascus", "ar", "23/11/2025 الساعة 18:27\n(بتوقيت دمشق، UTC+3)"),
    ("Europe/Berlin", "en", "23/11/2025 16:27\n(Europe/Berlin time, UTC+1)"),
    ("Asia/Kolkata", "en", "23/11/2025 20:57\n(Asia/Kolkata time, UTC+5:30)"),
    ("America/St_Johns", "en", "23/11/2025 11:57\n(America/St_Johns time, UTC-3:30)"),
    ("UTC", "en", "23/11/2025 15:27\n(UTC)"),
    ("Nowhere/Atlantis", "ar", "23/11/2025 الساعة 15:27\n(بالتوقيت العالمي UTC)"),
])
def test_issue_time_is_shown_in_the_kiosks_zone_with_the_zone_named(time_zone, language, expected):
    assert _display_time("2025-11-23T15:27:00Z", language, time_zone) == expected


def test_issue_time_takes_the_offset_in_force_on_that_day():
    assert _display_time("2025-07-01T22:30:00Z", "en", "Europe/Berlin") == \
        "02/07/2025 00:30\n(Europe/Berlin time, UTC+2)"
    assert _display_time("2025-11-23T15:27:00+00:00", "en") == _display_time("2025-11-23T15:27:00", "en") == \
        "23/11/2025 18:27\n(Damascus time, UTC+3)"
    assert _display_time("not a time", "en") == "not a time"


def test_arabic_issue_time_keeps_date_time_and_zone_in_order():
    date_line, zone_line = display_lines(_display_time("2025-11-23T15:27:00Z", "ar"), "ar", 400, VALUE.measure)
    # Read right to left: the date first, then the hour, each left to right inside.
    assert date_line.endswith("23/11/2025") and date_line.startswith("18:27 ")
    assert display_line("الساعة", "ar") in date_line
    assert zone_line.startswith("(UTC+3 ") and zone_line.endswith(display_line("بتوقيت", "ar") + ")")
    assert "\u2066" not in date_line + zone_line


def footer(job) -> Image.Image:
    return [block for block in job.blocks if isinstance(block, RasterBlock)][-1].image


@pytest.mark.parametrize("language, place", [("ar", "دمشق — المزة"), ("en", "Damascus — Mazzeh")])
def test_place_of_issue_is_printed_when_the_kiosk_has_one(language, place):
    without = footer(render_certificate(sample_document(), language))
    blank = footer(render_certificate(sample_document(), language, place="  "))
    with_place = footer(render_certificate(sample_document(), language, place=place))
    assert blank.tobytes() == without.tobytes()
    assert with_place.height > without.height

    def receipt_height(where: str | None) -> int:
        job = render_receipt("إخراج قيد فردي", Money.of(150000, "SYP"), "PAY-1", "CERT-2025-000123",
                             "2025-11-23T15:27:00Z", language, place=where)
        return job.blocks[0].image.height

    assert receipt_height(place) > receipt_height(None)


def test_certificate_is_laid_out_in_the_zone_it_is_given():
    damascus = footer(render_certificate(sample_document(), "en"))
    assert damascus.tobytes() == footer(render_certificate(sample_document(), "en",
                                                           time_zone="Asia/Damascus")).tobytes()
    assert damascus.tobytes() != footer(render_certificate(sample_document(), "en", time_zone="UTC")).tobytes()


# --- digits: an Arabic page may print Arabic-Indic digits, an English page never ---------------

WESTERN_DIGITS = set("0123456789")
ARABIC_INDIC_DIGITS = set("٠١٢٣٤٥٦٧٨٩")


@pytest.fixture
def drawn(monkeypatch):
    """Every visual line drawn on a page, as the printer gets it."""
    import kiosk.document_layout as layout
    lines: list[str] = []
    real = layout._draw

    def draw(band, visual, style, x0, x1, align):
        lines.append(visual)
        real(band, visual, style, x0, x1, align)
    monkeypatch.setattr(layout, "_draw", draw)
    return lines


def receipt(language: str, **options):
    return render_receipt("إخراج قيد فردي" if language == "ar" else "Civil-status extract",
                          Money.of(150000, "SYP"), "PAY-1", "2026-ABCD1234", "2025-11-23T15:27:00Z", language,
                          place="دمشق" if language == "ar" else "Damascus", **options)


def codes(lines: list[str]) -> set[str]:
    """The words that mix Latin letters and digits (serials, payment ids): typed as printed, Western."""
    return {word for line in lines for word in line.split() if re.search(r"[A-Za-z]", word)}


def test_arabic_receipt_prints_arabic_indic_digits_in_order(drawn):
    receipt("ar", digits="arabic-indic")
    words = {word for line in drawn for word in line.split()} - codes(drawn)
    assert not WESTERN_DIGITS & set("".join(words))
    assert "2026-ABCD1234" in codes(drawn) and "PAY-1" in codes(drawn)  # the serial as one types it
    assert display_line("١٬٥٠٠ ل.س", "ar") in drawn                   # the fee, amount then currency from the right
    date_line = next(line for line in drawn if "٢٠٢٥" in line)
    assert date_line.endswith("٢٣/١١/٢٠٢٥") and date_line.startswith("١٨:٢٧ ")


def test_arabic_indic_page_is_the_western_page_with_other_digit_shapes(drawn):
    receipt("ar")
    western = list(drawn)
    drawn.clear()
    receipt("ar", digits="arabic-indic")
    as_western = str.maketrans("٠١٢٣٤٥٦٧٨٩٬٫", "0123456789,.")
    assert [line.translate(as_western) for line in drawn] == western


def test_english_receipt_and_certificate_keep_western_digits(drawn):
    assert receipt("en", digits="arabic-indic").blocks[0].image.tobytes() == receipt("en").blocks[0].image.tobytes()
    render_certificate(sample_document(), "en", digits="arabic-indic")
    assert not ARABIC_INDIC_DIGITS & set("".join(drawn))


def test_arabic_certificate_digits_leave_the_qr_code_alone(drawn):
    job = render_certificate(sample_document(), "ar", digits="arabic-indic")
    words = {word for line in drawn for word in line.split()} - codes(drawn)
    assert not WESTERN_DIGITS & set("".join(words)) and ARABIC_INDIC_DIGITS & set("".join(drawn))
    assert [block.data for block in job.blocks if isinstance(block, QrBlock)] == [VERIFICATION]


def test_documents_default_to_western_digits_whatever_the_screen_shows(drawn):
    from kiosk import bidi_text
    before = bidi_text.screen_digits()
    bidi_text.use_screen_digits("arabic-indic")
    try:
        receipt("ar")
    finally:
        bidi_text.use_screen_digits(before)
    assert not ARABIC_INDIC_DIGITS & set("".join(drawn))


# --- the payment's lines: card (masked) or wallet, authorisation, terminal, sale ----------------

CARD_PAYMENT = CardReceipt(masked_pan="**** **** **** 0119", auth_code="482913", terminal_id="FAKE-POI-01",
                           sale_id="8f14e45fceea167a5a36dedd4bea2543", brand="VISA")
WALLET_PAYMENT = CardReceipt(masked_pan="", auth_code="A7Q2K9", terminal_id="FAKE-POI-01",
                             sale_id="8f14e45fceea167a5a36dedd4bea2543", brand="FAKEWALLET")


def rows_drawn(lines: list[str], language: str, msgid: str) -> list[str]:
    """The value lines drawn beside the label of `msgid` (and under it, when the value wraps)."""
    label = display_line(i18n.text(msgid, language) + ":", language)
    start = lines.index(label)
    following = []
    for line in lines[start + 1:]:
        if line.endswith(":") or line.startswith(":"):      # the next row's label (Arabic: its colon on the left)
            break
        following.append(line)
    return following


@pytest.mark.parametrize("language", ["ar", "en"])
def test_receipt_prints_the_masked_card_the_authorisation_the_terminal_and_the_sale(
        language, drawn, simulator, printer):
    job = receipt(language, payment=CARD_PAYMENT)
    assert rows_drawn(drawn, language, "receipt.card") == ["VISA **** **** **** 0119"]
    assert rows_drawn(drawn, language, "receipt.auth_code") == ["482913"]
    assert rows_drawn(drawn, language, "receipt.terminal_id") == ["FAKE-POI-01"]
    # The sale reference is longer than its column: cut into even lines, never off the paper.
    sale = rows_drawn(drawn, language, "receipt.sale_id")
    assert "".join(sale) == CARD_PAYMENT.sale_id and len(sale) == 2 and abs(len(sale[0]) - len(sale[1])) <= 1
    # ... and the card number only as the terminal masked it.
    assert not re.search(r"\d{5,}", " ".join(line for line in drawn if "****" in line))
    # Printed: the printer simulator decodes a complete job, five lines longer than without the payment.
    assert printer.print_job(job).result is PrintResult.PRINTED
    assert printer.print_job(receipt(language)).result is PrintResult.PRINTED
    with_payment, without = simulator.wait_for_jobs(2)
    assert with_payment.complete and with_payment.cuts
    with Image.open(with_payment.png_path) as longer, Image.open(without.png_path) as shorter:
        assert longer.height - shorter.height == 5 * max(LABEL.line_height, VALUE.line_height)


@pytest.mark.parametrize("language", ["ar", "en"])
def test_receipt_names_the_wallet_paid_with_instead_of_a_card(language, drawn):
    receipt(language, payment=WALLET_PAYMENT)
    assert rows_drawn(drawn, language, "receipt.wallet") == ["FAKEWALLET"]
    assert rows_drawn(drawn, language, "receipt.auth_code") == ["A7Q2K9"]
    assert display_line(i18n.text("receipt.card", language) + ":", language) not in drawn


def test_receipt_without_a_payment_is_the_receipt_it_always_was():
    assert receipt("ar", payment=None).blocks[0].image.tobytes() == receipt("ar").blocks[0].image.tobytes()
    bare = receipt("en").blocks[0].image
    assert receipt("en", payment=CARD_PAYMENT).blocks[0].image.height > bare.height


def test_an_arabic_indic_receipt_prints_the_authorisation_in_arabic_indic_digits_and_codes_as_typed(drawn):
    receipt("ar", payment=CARD_PAYMENT, digits="arabic-indic")
    assert rows_drawn(drawn, "ar", "receipt.auth_code") == ["٤٨٢٩١٣"]
    assert rows_drawn(drawn, "ar", "receipt.terminal_id") == ["FAKE-POI-01"]
    assert "".join(rows_drawn(drawn, "ar", "receipt.sale_id")) == CARD_PAYMENT.sale_id


@pytest.mark.parametrize("language", ["ar", "en"])
def test_claim_slip_carries_the_reference_as_text_and_as_its_only_qr_code(language, drawn, simulator, printer):
    from kiosk.document_layout import render_claim_slip
    reference = "CLM-7K2M-Q9XR-4TPB"
    job = render_claim_slip("إخراج قيد فردي" if language == "ar" else "Civil status extract",
                            Money.of(150000, "SYP"), reference, "2026-11-29T08:15:00Z", language,
                            place="Damascus - Mazzeh", payment_id="poi-1234", payment=CARD_PAYMENT)
    assert [block.data for block in job.blocks if isinstance(block, QrBlock)] == [reference]
    assert all(block.image.width <= 576 for block in job.blocks if isinstance(block, RasterBlock))
    assert rows_drawn(drawn, language, "claim_slip.reference") == [reference]
    assert drawn[-1] == display_line(reference, language)                  # and in large letters under the code
    assert any(display_line(i18n.text("claim_slip.title", language), language) == line for line in drawn)
    assert not re.search(r"\d{5,}", " ".join(line for line in drawn if "****" in line))
    # Printed, the printer's own QR code reads back the reference alone.
    assert printer.print_job(job).result is PrintResult.PRINTED
    (printed,) = simulator.wait_for_jobs(1)
    assert [qr.data for qr in printed.qr_codes] == [reference.encode()]
