"""The receipt printer over the network, through python-escpos.

`EscposReceiptPrinter` wraps an `escpos.printer.Network` (it does not
subclass it). Every call opens one short TCP connection (port 9100), so a
pulled cable or a restarted printer costs one failed job, never a stale
socket:

* status(): DLE EOT 1, 2 and 4 (printer, offline cause, paper sensor),
  read back through python-escpos's ``query_status``. Its ``paper_status()``
  and ``is_online()`` helpers are not used: they take "no answer" for
  "plenty of paper" and do not report the cover.
* print_job(): the status first (no paper or cover open: FAILED, nothing
  sent); then the job, composed beforehand with python-escpos's own command
  layer (`escpos.printer.Dummy`: ``image()`` as GS v 0, ``qr(native=True)``
  as GS ( k, ``textln()``, ``cut()``), sent in chunks so that the socket
  timeout bounds every stall, not the whole job; then the status again. The
  printer answers a real-time query only after reading everything before
  it, so that answer is the acknowledgement that the whole job arrived (a
  job small enough to sit in the socket buffers would otherwise "succeed"
  into a dead link), and it tells whether the paper ran out meanwhile.

Link failures (refused, reset, timeout, no answer) are values: DISCONNECTED.

python-escpos is imported on first use, on the printer's worker thread: its
capability database takes longer to load than the rest of the kiosk's start.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from typing import TYPE_CHECKING, Optional

from PIL import Image

from kiosk.ports.receipt_printer import (
    PrinterStatus, PrintJob, PrintOutcome, PrintResult, QrBlock, RasterBlock, ReceiptPrinter, TextBlock,
)

if TYPE_CHECKING:
    from escpos.capabilities import Profile
    from escpos.printer import Network

log = logging.getLogger(__name__)

#: bytes per write: each write gets the whole socket timeout
CHUNK_BYTES = 4096
#: the statuses a job may be sent in (UNKNOWN: the printer does not say, so try)
_PRINTABLE = frozenset({PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END, PrinterStatus.UNKNOWN})

# DLE EOT answers: bits 0 and 7 clear, bits 1 and 4 set, in every valid byte.
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12
_OFFLINE = 0x08                      # n=1: printer offline
_COVER_OPEN = 0x04                   # n=2: cover open
_PAPER_STOP = 0x20                   # n=2: printing stopped, paper end
_PAPER_NEAR_END = 0x0C               # n=4: near-end sensor
_PAPER_OUT = 0x60                    # n=4: paper-end sensor


class _NoAnswer(Exception):
    """The printer closed the link instead of answering."""


def _link_failures() -> tuple[type[BaseException], ...]:
    """What a pulled cable, a refused connection or a silent printer raises."""
    from escpos.exceptions import DeviceNotFoundError

    return (DeviceNotFoundError, OSError, _NoAnswer)


def status_from_answers(printer: int, offline_cause: int, paper: int) -> PrinterStatus:
    """Map the answers to DLE EOT 1, 2 and 4 to one status."""
    if any(answer & _FIXED_MASK != _FIXED_BITS for answer in (printer, offline_cause, paper)):
        return PrinterStatus.UNKNOWN
    if offline_cause & _COVER_OPEN:
        return PrinterStatus.COVER_OPEN
    if paper & _PAPER_OUT or offline_cause & _PAPER_STOP:
        return PrinterStatus.NO_PAPER
    if printer & _OFFLINE:
        return PrinterStatus.UNKNOWN         # offline for a reason the statuses cannot name
    if paper & _PAPER_NEAR_END:
        return PrinterStatus.PAPER_NEAR_END
    return PrinterStatus.READY


def _profile(paper_width: int) -> Profile:
    """python-escpos's default profile with our paper width.

    With the width known, escpos refuses an image wider than the paper
    instead of printing a warning on stdout at every image.
    """
    from escpos.capabilities import Profile

    profile = Profile()
    data = copy.deepcopy(profile.profile_data)
    data["media"]["width"]["pixels"] = paper_width
    profile.profile_data = data
    profile.features = data["features"]
    return profile


class EscposReceiptPrinter(ReceiptPrinter):
    """An 80 mm ESC/POS printer on the network (raw TCP, port 9100)."""

    def __init__(self, host: str, port: int = 9100, *, timeout_s: float = 10.0, paper_width: int = 576) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.paper_width = paper_width
        self._lock = threading.Lock()
        self._last_status: Optional[PrinterStatus] = None

    def __repr__(self) -> str:
        return "EscposReceiptPrinter(%s:%d)" % (self.host, self.port)

    @functools.cached_property
    def _profile(self) -> Profile:
        return _profile(self.paper_width)

    @functools.cached_property
    def _network(self) -> Network:
        from escpos.printer import Network

        return Network(self.host, self.port, timeout=self.timeout_s, profile=self._profile)

    # -- ReceiptPrinter --------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Ask the printer now (one short connection); never raises for a link failure."""
        with self._lock:
            try:
                self._network.open()
                status = self._query()
            except _link_failures():
                status = PrinterStatus.DISCONNECTED
            finally:
                self._close()
            return self._note(status)

    def print_job(self, job: PrintJob) -> PrintOutcome:
        """Print and cut; PRINTED only once the printer has answered after the job.

        bytes_sent counts the job's bytes handed to the link (not the status
        queries). Calls are serialised: a status() waits for a job to end.
        """
        payload = self.compose(job)
        sent = 0
        with self._lock:
            try:
                self._network.open()
                before = self._query()
                if before not in _PRINTABLE:
                    return self._failed(self._note(before), sent)
                for start in range(0, len(payload), CHUNK_BYTES):
                    chunk = payload[start:start + CHUNK_BYTES]
                    self._network._raw(chunk)          # the transport's write (sendall)
                    sent += len(chunk)
                after = self._note(self._query())
            except _link_failures():
                return self._failed(self._note(PrinterStatus.DISCONNECTED), sent)
            finally:
                self._close()
        if after not in _PRINTABLE:
            return self._failed(after, sent)
        log.info("printer.job_printed bytes=%d status=%s", sent, after.name)
        return PrintOutcome(PrintResult.PRINTED, after, bytes_sent=sent)

    # -- the command layer ------------------------------------------------------------------

    def compose(self, job: PrintJob) -> bytes:
        """The job's ESC/POS bytes, built by python-escpos without any transport.

        Raises ValueError for a block no printer can take (an image wider
        than the paper, text other than printable ASCII, a QR module size
        outside 1..16).
        """
        from escpos.constants import QR_ECLEVEL_M
        from escpos.printer import Dummy

        commands = Dummy(profile=self._profile)
        commands.hw("INIT")
        for block in job.blocks:
            if isinstance(block, RasterBlock):
                commands.set(align="left")
                commands.image(self._one_bit(block.image), impl="bitImageRaster")
            elif isinstance(block, QrBlock):
                # The printer draws no quiet zone: a blank line above and below.
                commands.set(align="center")
                commands.ln()
                commands.qr(block.data, ec=QR_ECLEVEL_M, size=block.size, native=True)
                commands.ln()
                commands.set(align="left")
            elif isinstance(block, TextBlock):
                if not all(" " <= ch <= "~" for ch in block.text):
                    # Control bytes would be commands to the printer.
                    raise ValueError("a TextBlock holds one line of printable ASCII; use a RasterBlock")
                commands.set(align="center" if block.centered else "left")
                commands.textln(block.text)
            else:
                raise TypeError("not a print block: %r" % (block,))
        if job.cut:
            commands.cut()
        return commands.output

    def _one_bit(self, image: Image.Image) -> Image.Image:
        if image.width > self.paper_width:
            raise ValueError("image is %d dots wide, the paper %d" % (image.width, self.paper_width))
        if image.mode == "1":
            return image
        # Documents are text and lines: a plain threshold keeps strokes crisp
        # where dithering would fray them.
        return image.convert("L").point(lambda value: 255 if value >= 128 else 0, mode="1")

    # -- the link ---------------------------------------------------------------------------------

    def _ask(self, n: int) -> int:
        from escpos.constants import RT_STATUS

        answer = self._network.query_status(RT_STATUS + bytes([n]))
        if not answer:
            raise _NoAnswer()
        return answer[-1]

    def _query(self) -> PrinterStatus:
        return status_from_answers(self._ask(1), self._ask(2), self._ask(4))

    def _close(self) -> None:
        try:
            self._network.close()
        except OSError:
            pass

    def _failed(self, status: PrinterStatus, sent: int) -> PrintOutcome:
        log.warning("printer.job_failed status=%s bytes_sent=%d", status.name, sent)
        return PrintOutcome(PrintResult.FAILED, status, bytes_sent=sent)

    def _note(self, status: PrinterStatus) -> PrinterStatus:
        if status is not self._last_status:
            log.info("printer.status_changed from=%s to=%s",
                     self._last_status.name if self._last_status else "-", status.name)
            self._last_status = status
        return status


def from_config(config) -> EscposReceiptPrinter:
    """The `escpos` printer backend: a network ESC/POS printer at `printer.host`:`printer.port`."""
    return EscposReceiptPrinter(config.printer.host, config.printer.port, timeout_s=config.printer.timeout_s)
