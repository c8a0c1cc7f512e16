"""What the kiosk relies on from any ReceiptPrinter: the fake and EscposReceiptPrinter over the simulator."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from kiosk.ports.receipt_printer import PrinterStatus, PrintJob, PrintResult, QrBlock, RasterBlock, TextBlock
from tests.contracts.conftest import PrinterWorld

RASTER_SIZE = (576, 200)
RASTER_BYTES = RASTER_SIZE[0] // 8 * RASTER_SIZE[1]       # the picture packed eight dots to a byte
PAYLOAD = "KV1.eyJzZXJpYWwiOiJDRVJULTIwMjUtMDAwMTIzIn0." + "q8Zr4Tn0Wd2Lk7Hs5Vb1" * 10


def certificate() -> PrintJob:
    image = Image.new("1", RASTER_SIZE, 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, RASTER_SIZE[0] - 1, RASTER_SIZE[1] - 1), outline=0, width=3)
    draw.ellipse((100, 10, 300, 190), fill=0)
    return PrintJob(blocks=(RasterBlock(image), QrBlock(PAYLOAD, size=5),
                            TextBlock("SERIAL CERT-2025-000123", centered=True)))


def test_a_printer_with_paper_is_ready(printer_world: PrinterWorld) -> None:
    assert printer_world.printer.status() is PrinterStatus.READY


@pytest.mark.parametrize("status", [PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END, PrinterStatus.NO_PAPER,
                                    PrinterStatus.COVER_OPEN, PrinterStatus.DISCONNECTED],
                         ids=lambda status: status.name.lower())
def test_status_says_what_the_printer_is(printer_world: PrinterWorld, status: PrinterStatus) -> None:
    printer_world.set_status(status)
    assert printer_world.printer.status() is status


def test_a_raster_and_a_qr_code_print(printer_world: PrinterWorld) -> None:
    outcome = printer_world.printer.print_job(certificate())
    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.READY)
    assert outcome.bytes_sent > RASTER_BYTES + len(PAYLOAD)
    assert printer_world.printed() == 1


def test_paper_near_end_still_prints_and_says_so(printer_world: PrinterWorld) -> None:
    printer_world.set_status(PrinterStatus.PAPER_NEAR_END)
    outcome = printer_world.printer.print_job(certificate())
    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.PAPER_NEAR_END)


@pytest.mark.parametrize("status", [PrinterStatus.NO_PAPER, PrinterStatus.COVER_OPEN, PrinterStatus.DISCONNECTED],
                         ids=lambda status: status.name.lower())
def test_a_printer_that_cannot_print_fails_the_job_and_sends_nothing(printer_world: PrinterWorld,
                                                                     status: PrinterStatus) -> None:
    printer_world.set_status(status)
    outcome = printer_world.printer.print_job(certificate())
    assert (outcome.result, outcome.status, outcome.bytes_sent) == (PrintResult.FAILED, status, 0)
    assert printer_world.printed() == 0


def test_paper_out_mid_certificate(printer_world: PrinterWorld) -> None:
    printer = printer_world.printer
    printer_world.paper_runs_out_in_next_job()

    outcome = printer.print_job(certificate())

    assert (outcome.result, outcome.status) == (PrintResult.FAILED, PrinterStatus.NO_PAPER)
    assert outcome.bytes_sent > 0                          # the job went out; the page did not
    assert printer.status() is PrinterStatus.NO_PAPER
    assert printer.print_job(certificate()).bytes_sent == 0
    assert printer_world.printed() == 0

    printer_world.set_status(PrinterStatus.READY)          # a new roll
    assert printer.print_job(certificate()).result is PrintResult.PRINTED
    assert printer_world.printed() == 1


@pytest.mark.parametrize("block", [
    RasterBlock(Image.new("1", (640, 10), 1)),
    TextBlock("رسم"),
    TextBlock("A\x1bVB"),
    QrBlock(PAYLOAD, size=17),
], ids=["image wider than the paper", "arabic text", "control bytes", "qr module too big"])
def test_a_block_no_printer_can_take_is_a_value_error(printer_world: PrinterWorld, block) -> None:
    with pytest.raises(ValueError):
        printer_world.printer.print_job(PrintJob(blocks=(block,)))
    assert printer_world.printed() == 0
