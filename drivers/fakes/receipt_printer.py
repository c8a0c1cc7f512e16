"""`ReceiptPrinter` in process: a printer whose status a test sets, keeping what it printed.

It takes and refuses the same jobs as the ESC/POS driver: an image wider
than the paper, text that is not printable ASCII or a QR module size outside
1..16 is a ValueError before anything is "sent". A job prints when the
status allows it (READY, PAPER_NEAR_END, or UNKNOWN, which the real driver
tries); otherwise it fails with the status and nothing sent. The roll can
be made to end in the middle of a later job, as a real roll ends mid-
certificate: that job fails with NO_PAPER after all its bytes went out.

`bytes_sent` is about what the ESC/POS driver would send for the job: the
raster rows packed eight dots to a byte, the QR data and the text, with each
command's few bytes around them.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from kiosk.ports.receipt_printer import (
    PrinterStatus, PrintJob, PrintOutcome, PrintResult, QrBlock, RasterBlock, ReceiptPrinter, TextBlock,
)

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

#: the statuses a job is sent in, as the ESC/POS driver does
PRINTABLE = frozenset({PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END, PrinterStatus.UNKNOWN})

# ESC/POS command sizes, for bytes_sent.
_INIT = 2                  # ESC @
_ALIGN = 3                 # ESC a n
_RASTER_HEADER = 8         # GS v 0 m xL xH yL yH
_QR_COMMANDS = 9 + 8 + 8 + 8 + 8   # GS ( k: model, module size, error level, store (plus data), print
_LINE_FEED = 1
_CUT = 4                   # GS V 66 n


def job_size(job: PrintJob, paper_width: int) -> int:
    """About how many bytes the ESC/POS driver sends for `job`; ValueError or
    TypeError for a block no printer can take, as the driver raises."""
    size = _INIT
    for block in job.blocks:
        if isinstance(block, RasterBlock):
            width, height = block.image.size
            if width > paper_width:
                raise ValueError("image is %d dots wide, the paper %d" % (width, paper_width))
            size += _ALIGN + _RASTER_HEADER + (width + 7) // 8 * height
        elif isinstance(block, QrBlock):
            if not 1 <= block.size <= 16:
                raise ValueError("a QR module size is 1 to 16 dots")
            size += 2 * _ALIGN + 2 * _LINE_FEED + _QR_COMMANDS + len(block.data.encode("utf-8"))
        elif isinstance(block, TextBlock):
            if not all(" " <= ch <= "~" for ch in block.text):
                raise ValueError("a TextBlock holds one line of printable ASCII; use a RasterBlock")
            size += _ALIGN + len(block.text) + _LINE_FEED
        else:
            raise TypeError("not a print block: %r" % (block,))
    if job.cut:
        size += _CUT
    return size


class FakeReceiptPrinter(ReceiptPrinter):
    """A receipt printer in process: instant, thread-safe, its status set by tests."""

    def __init__(self, *, paper_width: int = 576, status: PrinterStatus = PrinterStatus.READY) -> None:
        self.paper_width = paper_width
        self._lock = threading.Lock()
        self._status = status
        self._jobs_until_paper_out: int | None = None
        self._printed: list[PrintJob] = []
        self._torn: list[PrintJob] = []
        self._logged_status: PrinterStatus | None = None

    def __repr__(self) -> str:
        with self._lock:
            return "FakeReceiptPrinter(status=%s, printed=%d)" % (self._status.name, len(self._printed))

    # -- the world, as a technician changes it -----------------------------------------------------

    def set_status(self, status: PrinterStatus) -> None:
        """Paper loaded or low or out, cover open, cable pulled: what the printer says from now on."""
        if not isinstance(status, PrinterStatus):
            raise TypeError("a status is a PrinterStatus")
        with self._lock:
            self._status = status

    def run_out_of_paper_after(self, jobs: int) -> None:
        """The next `jobs` jobs print whole; the roll ends in the middle of the one after
        (0: the next job). From then on the status is NO_PAPER."""
        if jobs < 0:
            raise ValueError("jobs must be 0 or more")
        with self._lock:
            self._jobs_until_paper_out = jobs

    @property
    def jobs(self) -> list[PrintJob]:
        """The jobs printed whole, oldest first."""
        with self._lock:
            return list(self._printed)

    @property
    def torn_jobs(self) -> list[PrintJob]:
        """The jobs the roll ended in the middle of, oldest first."""
        with self._lock:
            return list(self._torn)

    # -- ReceiptPrinter -----------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        with self._lock:
            return self._note(self._status)

    def print_job(self, job: PrintJob) -> PrintOutcome:
        size = job_size(job, self.paper_width)
        with self._lock:
            status = self._note(self._status)
            if status not in PRINTABLE:
                outcome = PrintOutcome(PrintResult.FAILED, status, bytes_sent=0)
            elif self._jobs_until_paper_out == 0:
                self._jobs_until_paper_out = None
                self._status = PrinterStatus.NO_PAPER
                self._torn.append(job)
                outcome = PrintOutcome(PrintResult.FAILED, self._note(self._status), bytes_sent=size)
            else:
                if self._jobs_until_paper_out is not None:
                    self._jobs_until_paper_out -= 1
                self._printed.append(job)
                outcome = PrintOutcome(PrintResult.PRINTED, status, bytes_sent=size)
        if outcome.result is PrintResult.PRINTED:
            log.info("printer.job_printed bytes=%d status=%s", outcome.bytes_sent, outcome.status.name)
        else:
            log.warning("printer.job_failed status=%s bytes_sent=%d", outcome.status.name, outcome.bytes_sent)
        return outcome

    def _note(self, status: PrinterStatus) -> PrinterStatus:
        """Log a status the kiosk sees for the first time since it changed (lock held)."""
        if status is not self._logged_status:
            log.info("printer.status_changed from=%s to=%s",
                     self._logged_status.name if self._logged_status else "-", status.name)
            self._logged_status = status
        return status


def from_config(config: KioskConfig) -> FakeReceiptPrinter:
    """The `fake` printer backend: ready, with paper, 80 mm wide."""
    return FakeReceiptPrinter()
