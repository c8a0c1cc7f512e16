"""Certificates and receipts, laid out and printed through the real driver.

Each job goes over TCP to the printer simulator; the page is checked as a
picture (the QR code read back from the rendered PNG) and by its parts
(raster width, shaping, digit order).
"""

from __future__ import annotations


import pytest
import zxingcpp
from PIL import Image, ImageDraw

from kiosk.ports.receipt_printer import PrintResult, QrBlock, RasterBlock
from kiosk.bidi_text import display_line, display_lines
from kiosk.document_layout import (
    TITLE, VALUE, line_image, render_certificate, render_receipt,
)
from kiosk.documents import DocumentField, IssuedDocument
from kiosk.money import Money

# A fictional person; the payload has the length of a real signed one.
VERIFICATION = "KV1." + "eyJzZXJpYWwiOiJDRVJULTIwMjUtMDAwMTIzIiwic2VydmljZSI6ImNpdmlsLmV4dHJhY3QifQ" \
    + "." + "Zk3Q9wT2hYb8LmN4pR7sV1xC6eJ0aD5gF3iK8oU2yW9qE4tB7nM1vS6zX0cH5jL" * 3


def sample_document() -> IssuedDocument:
    return IssuedDocument(
        request_id="req-0001",
        serial="CERT-2025-000123",
        service_code="civil.extract",
        title={"ar": "إخراج قيد فردي", "en": "Individual civil registry extract"},
        fields=(
            DocumentField({"ar": "الاسم الكامل", "en": "Full name"}, "ليلى سمير الحداد"),
            DocumentField({"ar": "اسم الأم", "en": "Mother's name"}, "هدى النجار"),
            DocumentField({"ar": "تاريخ الولادة", "en": "Date of birth"}, "1990-05-14"),
            DocumentField({"ar": "مكان الولادة", "en": "Place of birth"}, "حلب"),
            DocumentField({"ar": "الرقم الوطني", "en": "National number"}, "01020304050"),
            DocumentField({"ar": "العنوان", "en": "Address"},
                          "دمشق، حي المزة، شارع الجلاء، بناء 12، الطابق 3، قرب مدرسة ابن خلدون"),
            DocumentField({"ar": "ملاحظة", "en": "Note"}, "قيد بتاريخ 2008-03-01 في سجل حلب الجديدة"),
        ),
        issued_at="2025-11-23T15:27:00Z",
        verification=VERIFICATION,
    )




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
