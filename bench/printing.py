"""Benchmark: printed documents, laid out and sent to the printer simulator.

    python -m bench.printing [--runs N]

For a certificate in each language (a fictional citizen, a signed payload
of real length) and for the payment receipt:

    layout     `kiosk.document_layout.render_certificate` (and
               `render_receipt`): wall time per document, median over N runs
    bytes      what the kiosk's driver hands to the link for the job
               (`PrintOutcome.bytes_sent`), printed over TCP to the printer
               simulator, white rows of the rasters going as paper feeds
    plain      the same job with every raster as python-escpos's plain
               ``image()`` (one GS v 0 image, white rows and all), composed
               in the same run by the same driver
    ratio      bytes / plain (1.00x before blank bands were fed; the goal
               is at most 0.80x)
    115200 Bd  what those bytes take on a serial printer at 115,200 baud,
               8N1 (10 bits a byte), with the 2 x 3 status queries and
               their answers: the floor a serial kiosk cannot print under

Times depend on the machine; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from drivers.escpos_printer import EscposReceiptPrinter
from drivers.printer_sim.server import PrinterSimulator
from kiosk.document_layout import render_certificate, render_receipt
from kiosk.documents import DocumentField, IssuedDocument
from kiosk.money import Money
from kiosk.ports.receipt_printer import PrintJob, PrintResult

SERIAL_BAUD = 115200
BITS_PER_BYTE = 10                  # start, 8 data bits, stop
STATUS_BYTES = 2 * 3 * (3 + 1)      # DLE EOT n before and after the job, and each one-byte answer
# A fictional person; the payload has the length of a real signed one.
VERIFICATION = ("KV1." + "eyJzZXJpYWwiOiJDRVJULTIwMjUtMDAwMTIzIiwic2VydmljZSI6ImNpdmlsLmV4dHJhY3QifQ" + "."
                + "Zk3Q9wT2hYb8LmN4pR7sV1xC6eJ0aD5gF3iK8oU2yW9qE4tB7nM1vS6zX0cH5jL" * 3)


def sample_document() -> IssuedDocument:
    """A civil-status extract with seven fields, one of them a long address."""
    return IssuedDocument(
        request_id="req-bench",
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


def _receipt(language: str) -> PrintJob:
    return render_receipt("Individual civil registry extract", Money.of(150000, "SYP"), "PAY-20251123-7F3A91",
                          "CERT-2025-000123", "2025-11-23T15:27:00Z", language)


def serial_seconds(job_bytes: int, baud: int = SERIAL_BAUD) -> float:
    """The time `job_bytes` and the status queries take on the wire at `baud`, 8N1."""
    return (job_bytes + STATUS_BYTES) * BITS_PER_BYTE / baud


def run(runs: int = 5) -> list[dict]:
    """One row per document and language: layout time, bytes sent and the plain image() bytes."""
    document = sample_document()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-printing-") as out, PrinterSimulator(Path(out)) as simulator:
        printer = EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=10.0)
        plain = EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=10.0, feed_blank_rows=False)
        for name, layout in (("certificate", lambda language: render_certificate(document, language)),
                             ("receipt", _receipt)):
            for language in ("ar", "en"):
                layout(language)                                   # warm-up: fonts, shaping
                times, job = [], None
                for _ in range(runs):
                    started = time.perf_counter()
                    job = layout(language)
                    times.append(time.perf_counter() - started)
                outcome = printer.print_job(job)
                if outcome.result is not PrintResult.PRINTED:
                    raise RuntimeError("the printer simulator did not print the %s: %s" % (name, outcome.status))
                rows.append({"document": name, "language": language, "layout_s": statistics.median(times),
                             "bytes": outcome.bytes_sent, "plain_bytes": len(plain.compose(job))})
    return rows


def report(rows: list[dict]) -> str:
    lines = ["Printing (%d rows; layout: median wall time; serial: %d baud, 8N1, with the status queries)"
             % (len(rows), SERIAL_BAUD),
             "  %-12s %-4s %9s %9s %12s %7s %10s %10s" % ("document", "lang", "layout", "bytes", "plain image()",
                                                          "ratio", "serial", "plain"),]
    for row in rows:
        lines.append("  %-12s %-4s %7.1fms %9d %12d %6.2fx %9.2fs %9.2fs" % (
            row["document"], row["language"], row["layout_s"] * 1000, row["bytes"], row["plain_bytes"],
            row["bytes"] / row["plain_bytes"], serial_seconds(row["bytes"]), serial_seconds(row["plain_bytes"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.printing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    print(report(run(parser.parse_args(argv).runs)))


if __name__ == "__main__":
    main()
