"""The real python-escpos driver over TCP loopback to the printer simulator.

Every job is decoded back from the bytes the simulator received and
compared with what was sent; failures are rehearsed at the wire.
"""

from __future__ import annotations

import logging
import time

import pytest
from PIL import Image, ImageDraw

from drivers.escpos_printer import MIN_BLANK_ROWS, EscposReceiptPrinter, ink_bands, status_from_answers
from drivers.printer_sim.decoder import Cut, Feed, RasterImage, StatusQuery, TextLine, decode
from drivers.printer_sim.renderer import render
from drivers.printer_sim.server import PaperLevel, PrinterSimulator
from kiosk.document_layout import render_certificate
from kiosk.ports.receipt_printer import (
    PrinterStatus, PrintJob, PrintResult, QrBlock, RasterBlock, TextBlock,
)
from bench.printing import sample_document

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

STATUS_QUERIES = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"
PAYLOAD = "KV1.eyJzZXJpYWwiOiJDRVJULTIwMjUtMDAwMTIzIn0." + "q8Zr4Tn0Wd2Lk7Hs5Vb1" * 10


def picture(width: int = 576, height: int = 200) -> Image.Image:
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=0, width=3)
    draw.line((0, 0, width - 1, height - 1), fill=0, width=5)
    draw.ellipse((width // 4, 10, width // 2, height - 10), fill=0)
    return image


def sample_job() -> PrintJob:
    return PrintJob(blocks=(RasterBlock(picture()), QrBlock(PAYLOAD, size=5),
                            TextBlock("SERIAL CERT-2025-000123", centered=True)))




# --- what goes over the wire ----------------------------------------------------

def test_job_bytes_decode_back_to_what_was_sent(simulator, printer):
    job = sample_job()

    outcome = printer.print_job(job)

    assert outcome.result is PrintResult.PRINTED and outcome.status is PrinterStatus.READY
    printed = simulator.wait_for_jobs(1)[0]
    payload = printer.compose(job)
    assert outcome.bytes_sent == len(payload)
    assert printed.raw == STATUS_QUERIES + payload
    assert printed.bin_path.read_bytes() == printed.raw and printed.png_path.is_file()
    assert printed.complete

    (image,) = printed.images
    assert (image.width, image.height) == (576, 200)
    assert image.to_image().tobytes() == picture().tobytes()
    (code,) = printed.qr_codes
    assert (code.text, code.module_size, code.ec_level, code.align) == (PAYLOAD, 5, "M", "center")
    assert TextLine("SERIAL CERT-2025-000123", align="center") in printed.text_lines
    assert printed.cuts == [Cut(partial=False)]


def test_job_uses_only_commands_the_decoder_knows(printer):
    elements = decode(printer.compose(sample_job()), strict=True)

    assert not any(isinstance(e, StatusQuery) for e in elements)
    assert isinstance(elements[-1], Cut)


def test_tall_raster_goes_in_fragments_that_stack_back(simulator, printer):
    tall = picture(576, 2100)

    assert printer.print_job(PrintJob(blocks=(RasterBlock(tall),))).result is PrintResult.PRINTED

    fragments = simulator.wait_for_jobs(1)[0].images
    assert len(fragments) > 1 and all(f.width == 576 for f in fragments)
    stacked = Image.new("1", (576, sum(f.height for f in fragments)), 1)
    y = 0
    for fragment in fragments:
        stacked.paste(fragment.to_image(), (0, y))
        y += fragment.height
    assert stacked.tobytes() == tall.tobytes()


def test_greyscale_raster_is_thresholded_to_one_bit(simulator, printer):
    grey = Image.new("L", (64, 8), 200)
    grey.paste(40, (0, 0, 32, 8))

    printer.print_job(PrintJob(blocks=(RasterBlock(grey),)))

    image = simulator.wait_for_jobs(1)[0].images[0].to_image()
    assert image.getpixel((0, 0)) == 0 and image.getpixel((40, 0)) == 255


# --- blank bands of a raster go as feeds -----------------------------------------------------

def one_image(image: Image.Image) -> bytes:
    """The page as python-escpos's plain image() sends it: one GS v 0 image, white rows and all."""
    from escpos.printer import Dummy

    commands = Dummy()
    commands.hw("INIT")
    commands.set(align="left")
    commands.image(image, impl="bitImageRaster")
    return commands.output


def test_white_rows_are_fed_not_sent():
    image = Image.new("1", (576, 100), 1)
    image.paste(0, (0, 10, 576, 20))
    image.paste(0, (0, 20 + MIN_BLANK_ROWS - 1, 576, 40))      # a white run too short to split
    image.paste(0, (0, 70, 576, 71))

    assert list(ink_bands(image)) == [(10, 40), (70, 71)]
    elements = decode(EscposReceiptPrinter("127.0.0.1").compose(PrintJob(blocks=(RasterBlock(image),), cut=False)),
                      strict=True)
    drawn = [(type(e).__name__, e.height if isinstance(e, RasterImage) else e.dots)
             for e in elements if isinstance(e, (RasterImage, Feed))]
    assert drawn == [("Feed", 10), ("RasterImage", 30), ("Feed", 30), ("RasterImage", 1), ("Feed", 29)]


def test_a_white_raster_is_only_fed():
    payload = EscposReceiptPrinter("127.0.0.1").compose(
        PrintJob(blocks=(RasterBlock(Image.new("1", (576, 600), 1)),), cut=False))

    assert [e for e in decode(payload, strict=True) if isinstance(e, (RasterImage, Feed))] == \
        [Feed(dots=255), Feed(dots=255), Feed(dots=90)]


@pytest.mark.parametrize("language", ["ar", "en"])
def test_certificate_with_blank_bands_prints_like_one_image_for_at_most_0_8_of_the_bytes(simulator, printer,
                                                                                        language):
    page = render_certificate(sample_document(), language).blocks[0].image
    job = PrintJob(blocks=(RasterBlock(page),), cut=False)

    outcome = printer.print_job(job)

    assert outcome.result is PrintResult.PRINTED
    with Image.open(simulator.wait_for_jobs(1)[0].png_path) as printed:
        assert printed.tobytes() == render(decode(one_image(page), strict=True)).tobytes()
    assert outcome.bytes_sent <= 0.8 * len(one_image(page))


def test_image_wider_than_paper_is_refused_before_connecting(simulator, printer):
    with pytest.raises(ValueError):
        printer.print_job(PrintJob(blocks=(RasterBlock(picture(640, 10)),)))
    assert simulator.connections == []


def test_non_ascii_text_block_is_refused(printer):
    with pytest.raises(ValueError):
        printer.compose(PrintJob(blocks=(TextBlock("رسم"),)))


# --- status ---------------------------------------------------------------------------

@pytest.mark.parametrize("paper, cover_open, expected", [
    (PaperLevel.OK, False, PrinterStatus.READY),
    (PaperLevel.NEAR_END, False, PrinterStatus.PAPER_NEAR_END),
    (PaperLevel.OUT, False, PrinterStatus.NO_PAPER),
    (PaperLevel.OK, True, PrinterStatus.COVER_OPEN),
    (PaperLevel.OUT, True, PrinterStatus.COVER_OPEN),
])
def test_status_maps_the_printers_answers(simulator, printer, paper, cover_open, expected):
    simulator.set_paper(paper)
    simulator.set_cover_open(cover_open)

    assert printer.status() is expected


def test_status_is_disconnected_when_nothing_listens(tmp_path):
    simulator = PrinterSimulator(tmp_path).start()
    port = simulator.port
    simulator.stop()

    assert EscposReceiptPrinter("127.0.0.1", port, timeout_s=1.0).status() is PrinterStatus.DISCONNECTED


def test_status_is_disconnected_when_printer_drops_the_link(simulator, printer):
    simulator.set_offline()

    assert printer.status() is PrinterStatus.DISCONNECTED


def test_status_is_disconnected_when_printer_never_answers(simulator):
    simulator.pull_cable_after(0, reset=False)
    printer = EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=0.3)

    started = time.monotonic()
    assert printer.status() is PrinterStatus.DISCONNECTED
    assert time.monotonic() - started < 2.0


def test_status_answers_that_break_the_fixed_bits_are_unknown():
    assert status_from_answers(0x12, 0x12, 0x12) is PrinterStatus.READY
    assert status_from_answers(0xFF, 0x12, 0x12) is PrinterStatus.UNKNOWN
    assert status_from_answers(0x1A, 0x12, 0x12) is PrinterStatus.UNKNOWN      # offline, cause unnamed


def test_status_change_is_logged_once(simulator, printer, caplog):
    caplog.set_level(logging.INFO, logger="drivers.escpos_printer")
    printer.status()
    printer.status()
    simulator.set_cover_open()
    printer.status()

    changes = [r.getMessage() for r in caplog.records if "printer.status_changed" in r.getMessage()]
    assert changes == ["printer.status_changed from=- to=READY",
                       "printer.status_changed from=READY to=COVER_OPEN"]


# --- failures while printing ------------------------------------------------------------

@pytest.mark.parametrize("paper, cover_open, expected", [
    (PaperLevel.OUT, False, PrinterStatus.NO_PAPER),
    (PaperLevel.OK, True, PrinterStatus.COVER_OPEN),
])
def test_printing_without_paper_or_with_cover_open_sends_nothing(simulator, printer, paper, cover_open, expected):
    simulator.set_paper(paper)
    simulator.set_cover_open(cover_open)

    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status, outcome.bytes_sent) == (PrintResult.FAILED, expected, 0)
    assert simulator.wait_for_connections(1) == [STATUS_QUERIES]
    assert simulator.jobs == []


def test_printing_with_paper_near_end_prints_and_says_so(simulator, printer):
    simulator.set_paper(PaperLevel.NEAR_END)

    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.PAPER_NEAR_END)
    simulator.wait_for_jobs(1)


def test_printing_when_printer_is_unreachable_fails_disconnected(tmp_path):
    simulator = PrinterSimulator(tmp_path).start()
    port = simulator.port
    simulator.stop()

    outcome = EscposReceiptPrinter("127.0.0.1", port, timeout_s=1.0).print_job(sample_job())

    assert (outcome.result, outcome.status, outcome.bytes_sent) == \
        (PrintResult.FAILED, PrinterStatus.DISCONNECTED, 0)


def test_cable_pulled_mid_job_fails_disconnected(simulator, printer):
    simulator.pull_cable_after(5000)

    started = time.monotonic()
    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.FAILED, PrinterStatus.DISCONNECTED)
    assert time.monotonic() - started < printer.timeout_s
    assert simulator.wait_for_connections(1)[0] == (STATUS_QUERIES + printer.compose(sample_job()))[:5000]


def test_cable_pulled_silently_mid_job_fails_after_the_timeout_not_a_hang(simulator):
    printer = EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=0.3)
    simulator.pull_cable_after(5000, reset=False)

    started = time.monotonic()
    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.FAILED, PrinterStatus.DISCONNECTED)
    assert time.monotonic() - started < 2.0
    # What got through before the cable went is on paper, without a cut.
    (partial,) = simulator.wait_for_jobs(1)
    assert not partial.complete and partial.cuts == [] and 0 < partial.images[0].height < 200


def test_printer_recovers_after_the_cable_is_back(simulator, printer):
    simulator.pull_cable_after(5000)
    assert printer.print_job(sample_job()).result is PrintResult.FAILED

    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.READY)
    jobs = simulator.wait_for_jobs(2)          # the torn one, then the whole one
    assert sorted(job.complete for job in jobs) == [False, True]


def test_paper_out_mid_certificate_fails_no_paper(simulator, printer):
    payload = printer.compose(sample_job())
    simulator.run_out_of_paper_after(len(STATUS_QUERIES) + payload.index(b"\x1d(k"))   # right after the image

    outcome = printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.FAILED, PrinterStatus.NO_PAPER)
    assert outcome.bytes_sent == len(payload)
    # The page stops where the roll ended: the image, no QR code, no cut.
    (torn,) = simulator.wait_for_jobs(1)
    assert not torn.complete and len(torn.images) == 1 and torn.qr_codes == [] and torn.cuts == []
    assert printer.status() is PrinterStatus.NO_PAPER


def test_control_bytes_in_a_text_block_are_refused(printer):
    with pytest.raises(ValueError):
        printer.compose(PrintJob(blocks=(TextBlock("A\x1bVB"),)))
