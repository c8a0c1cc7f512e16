"""The receipt printer's ESC/POS command layer, through python-escpos, over any transport.

`EscposReceiptPrinter` composes jobs and reads statuses; how the bytes
reach the printer is a transport from `drivers.escpos_transports` (network,
USB, serial), each wrapping a python-escpos printer object (not subclassing
it). The command layer never knows which transport it has:

* status(): DLE EOT 1, 2 and 4 (printer, offline cause, paper sensor),
  asked through the transport (python-escpos's ``query_status``). Its
  ``paper_status()`` and ``is_online()`` helpers are not used: they take
  "no answer" for "plenty of paper" and do not report the cover.
* print_job(): the status first (no paper or cover open: FAILED, nothing
  sent); then the job, composed beforehand with python-escpos's own command
  layer (`escpos.printer.Dummy`: ``image()`` as GS v 0, ``qr(native=True)``
  as GS ( k, ``textln()``, ``cut()``), written in the transport's chunks so
  that its timeout bounds every stall, not the whole job; then the status
  again. The printer answers a real-time query only after reading
  everything before it, so that answer is the acknowledgement that the
  whole job arrived (a job small enough to sit in the link's buffers would
  otherwise "succeed" into a dead link), and it tells whether the paper ran
  out meanwhile.
* rasters: a run of at least MIN_BLANK_ROWS white rows is not sent as image
  rows but as a paper feed (ESC J n: n dots, exact, where ESC d would depend
  on the line spacing); the bands with ink between them go as GS v 0 images.
  A certificate is mostly white between its lines of text: this sends about
  half to two thirds of the bytes of one image of the page, which counts on
  a 115,200 baud serial line (`make bench`).

Link failures (refused, reset, unplugged, timeout, no answer) are values:
DISCONNECTED.

python-escpos is imported on first use, on the printer's worker thread: its
capability database takes longer to load than the rest of the kiosk's start.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from typing import TYPE_CHECKING, Any, Iterator, Optional

from PIL import Image

from drivers.escpos_transports import EscposTransport, NetworkTransport
from drivers.escpos_transports import from_config as transport_from_config
from kiosk.ports.receipt_printer import (
    PrinterStatus, PrintJob, PrintOutcome, PrintResult, QrBlock, RasterBlock, ReceiptPrinter, TextBlock,
)

if TYPE_CHECKING:
    from escpos.capabilities import Profile

log = logging.getLogger(__name__)

#: the statuses a job may be sent in (UNKNOWN: the printer does not say, so try)
_PRINTABLE = frozenset({PrinterStatus.READY, PrinterStatus.PAPER_NEAR_END, PrinterStatus.UNKNOWN})
#: white rows in a raster from which on they are fed past rather than sent (8 dots: 1 mm at 203 dpi)
MIN_BLANK_ROWS = 8
_FEED_MAX_DOTS = 255                 # ESC J n: n is one byte
_ESC_J = b"\x1bJ"

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
    """An 80 mm ESC/POS printer on any transport.

    `link` is an `EscposTransport`; a host name is short for a network
    printer (`NetworkTransport(link, port, timeout_s=timeout_s)`), as the
    printer was built before it had other transports. With
    `feed_blank_rows=False` a raster goes as python-escpos's plain
    ``image()``, white rows and all (the benchmark's yardstick).
    """

    def __init__(self, link: EscposTransport | str, port: int = 9100, *, timeout_s: float = 10.0,
                 paper_width: int = 576, feed_blank_rows: bool = True) -> None:
        if isinstance(link, str):
            link = NetworkTransport(link, port, timeout_s=timeout_s)
        self.transport = link
        self.paper_width = paper_width
        self.feed_blank_rows = feed_blank_rows
        self._lock = threading.Lock()
        self._last_status: Optional[PrinterStatus] = None

    def __repr__(self) -> str:
        return "EscposReceiptPrinter(%r)" % (self.transport,)

    @property
    def timeout_s(self) -> float:
        """The transport's timeout: the longest any one write or status answer may take."""
        return self.transport.timeout_s

    @functools.cached_property
    def _profile(self) -> Profile:
        return _profile(self.paper_width)

    def _failures(self) -> tuple[type[BaseException], ...]:
        return self.transport.link_failures() + (_NoAnswer,)

    # -- ReceiptPrinter --------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Ask the printer now (one short session); never raises for a link failure."""
        with self._lock:
            try:
                with self.transport.session():
                    status = self._query()
            except self._failures() as error:
                return self._note(PrinterStatus.DISCONNECTED, error)
            return self._note(status)

    def print_job(self, job: PrintJob) -> PrintOutcome:
        """Print and cut; PRINTED only once the printer has answered after the job.

        bytes_sent counts the job's bytes handed to the link (not the status
        queries). Calls are serialised: a status() waits for a job to end.
        """
        payload = self.compose(job)
        chunk_bytes = self.transport.chunk_bytes
        sent = 0
        with self._lock:
            try:
                with self.transport.session():
                    before = self._query()
                    if before not in _PRINTABLE:
                        return self._failed(self._note(before), sent)
                    for start in range(0, len(payload), chunk_bytes):
                        chunk = payload[start:start + chunk_bytes]
                        self.transport.write(chunk)
                        sent += len(chunk)
                    after = self._note(self._query())
            except self._failures() as error:
                return self._failed(self._note(PrinterStatus.DISCONNECTED, error), sent)
        if after not in _PRINTABLE:
            return self._failed(after, sent)
        log.info("printer.job_printed bytes=%d status=%s", sent, after.name)
        return PrintOutcome(PrintResult.PRINTED, after, bytes_sent=sent)

    def close(self) -> None:
        """Let go of the printer (a USB or serial link stays open between jobs otherwise)."""
        with self._lock:
            self.transport.close()

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
                self._raster(commands, self._one_bit(block.image))
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

    def _raster(self, commands: Any, image: Image.Image) -> None:
        """The image's bands with ink as GS v 0 images, the white runs between them as feeds."""
        if not self.feed_blank_rows:
            commands.image(image, impl="bitImageRaster")
            return
        fed = 0
        for top, bottom in ink_bands(image):
            _feed(commands, top - fed)
            commands.image(image.crop((0, top, image.width, bottom)), impl="bitImageRaster")
            fed = bottom
        _feed(commands, image.height - fed)

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

        answer = self.transport.query(RT_STATUS + bytes([n]))
        if not answer:
            raise _NoAnswer()
        return answer[-1]

    def _query(self) -> PrinterStatus:
        return status_from_answers(self._ask(1), self._ask(2), self._ask(4))

    def _failed(self, status: PrinterStatus, sent: int) -> PrintOutcome:
        log.warning("printer.job_failed status=%s bytes_sent=%d", status.name, sent)
        return PrintOutcome(PrintResult.FAILED, status, bytes_sent=sent)

    def _note(self, status: PrinterStatus, error: Optional[BaseException] = None) -> PrinterStatus:
        if status is not self._last_status:
            # The link's error (no device, no libusb, refused, timed out) says why it went: once, at the change.
            why = " error=%s: %s" % (type(error).__name__, error or "no answer") if error is not None else ""
            log.info("printer.status_changed from=%s to=%s%s",
                     self._last_status.name if self._last_status else "-", status.name, why.replace("\n", " "))
            self._last_status = status
        return status


def ink_bands(image: Image.Image, min_blank_rows: int = MIN_BLANK_ROWS) -> Iterator[tuple[int, int]]:
    """The row ranges [top, bottom) of a 1-bit image that hold ink.

    Ranges are split where at least `min_blank_rows` white rows run; shorter
    white runs stay inside their band, since each image costs a header and
    each feed a command. Rows before the first and after the last band are
    white.
    """
    stride = (image.width + 7) // 8
    white = Image.new("1", (image.width, 1), 1).tobytes()
    rows = image.tobytes()
    top: Optional[int] = None
    blank = 0
    for y in range(image.height):
        if rows[y * stride:(y + 1) * stride] == white:
            blank += 1
            if top is not None and blank == min_blank_rows:
                yield top, y + 1 - blank
                top = None
        else:
            if top is None:
                top = y
            blank = 0
    if top is not None:
        yield top, image.height - blank


def _feed(commands: Any, dots: int) -> None:
    """Feed the paper `dots` dots with ESC J (255 at most each)."""
    while dots > 0:
        step = min(dots, _FEED_MAX_DOTS)
        commands._raw(_ESC_J + bytes([step]))
        dots -= step


def from_config(config) -> EscposReceiptPrinter:
    """The `escpos` printer backend, on the transport `printer.transport` names (network, usb, serial)."""
    return EscposReceiptPrinter(transport_from_config(config.printer))
