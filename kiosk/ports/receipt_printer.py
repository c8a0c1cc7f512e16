"""The thermal printer as the kiosk sees it: status, and jobs of blocks.

A job is a short list of blocks: raster images (the certificate, laid out
and shaped by the kiosk, so Arabic comes out right whatever the printer's
code pages), QR codes (printed by the printer's own QR command), and plain
ASCII text lines. The command layer never knows the transport.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from PIL import Image


class PrinterStatus(enum.Enum):
    UNKNOWN = "unknown"
    READY = "ready"
    PAPER_NEAR_END = "paper near end"
    NO_PAPER = "no paper"
    COVER_OPEN = "cover open"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class RasterBlock:
    image: Image.Image   # 1-bit or greyscale, at most the paper width in dots


@dataclass(frozen=True)
class QrBlock:
    data: str
    size: int = 6        # module size in dots


@dataclass(frozen=True)
class TextBlock:
    text: str            # ASCII only; anything else goes in a RasterBlock
    centered: bool = False


Block = Union[RasterBlock, QrBlock, TextBlock]


@dataclass(frozen=True)
class PrintJob:
    blocks: tuple[Block, ...]
    cut: bool = True


class PrintResult(enum.Enum):
    PRINTED = "printed"
    FAILED = "failed"


@dataclass(frozen=True)
class PrintOutcome:
    result: PrintResult
    status: PrinterStatus
    bytes_sent: int = 0


class ReceiptPrinter(abc.ABC):
    #: printable width in dots (576 for 80 mm paper at 203 dpi)
    paper_width: int = 576

    @abc.abstractmethod
    def status(self) -> PrinterStatus:
        """Ask the printer now (paper, cover, link)."""

    @abc.abstractmethod
    def print_job(self, job: PrintJob) -> PrintOutcome:
        """Print and cut; blocks until the bytes are sent."""
