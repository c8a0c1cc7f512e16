"""The ESC/POS driver over its USB and serial transports.

Serial: a pseudo-terminal; python-escpos's `Serial` opens the slave side by
its path, and a thread on the master side plays the printer (it answers the
DLE EOT status queries as it reads them, the way a printer reads its port,
and keeps every byte). USB: a fake device at pyusb's boundary
(`usb.core.find` returns it) with the calls python-escpos's `Usb` makes:
the kernel driver check, set_configuration, reset, write to OUT 0x01, read
from IN 0x82, and dispose_resources through the device's context. In both,
the job's bytes are decoded back by the printer simulator's decoder and
compared with what was sent.
"""

from __future__ import annotations

import array
import errno
import os
import select
import threading
import time
import tty
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

from drivers.escpos_printer import EscposReceiptPrinter, from_config
from drivers.escpos_transports import NetworkTransport, SerialTransport, UsbTransport
from drivers.printer_sim.decoder import Cut, Decoder, Feed, QrCode, RasterImage, StatusQuery, TextLine, decode
from kiosk.config import PrinterConfig
from kiosk.ports.receipt_printer import PrinterStatus, PrintJob, PrintResult, QrBlock, RasterBlock, TextBlock

STATUS_QUERIES = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"
PAYLOAD = "KV1.eyJzZXJpYWwiOiJDRVJULTIwMjUtMDAwMTIzIn0." + "q8Zr4Tn0Wd2Lk7Hs5Vb1" * 10
WAIT_S = 5.0
# What a printer answers to DLE EOT 1, 2, 4 (as the printer simulator does).
ANSWERS = {
    "ready": {1: 0x12, 2: 0x12, 4: 0x12},
    "no_paper": {1: 0x1A, 2: 0x32, 4: 0x7E},
    "cover_open": {1: 0x1A, 2: 0x16, 4: 0x12},
}


def page() -> Image.Image:
    """Two bands of ink with white between and below them."""
    image = Image.new("1", (576, 300), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 10, 560, 60), outline=0, width=3)
    draw.ellipse((200, 150, 380, 240), fill=0)
    return image


def sample_job() -> PrintJob:
    return PrintJob(blocks=(RasterBlock(page()), QrBlock(PAYLOAD, size=5),
                            TextBlock("SERIAL CERT-2025-000123", centered=True)))


def printed_page(elements) -> Image.Image:
    """The raster images and dot feeds of a decoded job, stacked as the paper shows them."""
    parts = [e for e in elements if isinstance(e, (RasterImage, Feed))]
    height = sum(p.height if isinstance(p, RasterImage) else p.dots for p in parts)
    paper = Image.new("1", (576, height), 1)
    y = 0
    for part in parts:
        if isinstance(part, RasterImage):
            paper.paste(part.to_image(), (0, y))
            y += part.height
        else:
            y += part.dots
    return paper


def check_job_bytes(received: bytes, printer: EscposReceiptPrinter) -> None:
    """The link carried status, job, status; the job decodes to what was sent."""
    payload = printer.compose(sample_job())
    assert received == STATUS_QUERIES + payload + STATUS_QUERIES
    elements = decode(payload, strict=True)
    assert printed_page(elements).tobytes() == page().tobytes()
    (code,) = [e for e in elements if isinstance(e, QrCode)]
    assert code.text == PAYLOAD and code.module_size == 5
    assert TextLine("SERIAL CERT-2025-000123", align="center") in elements
    assert isinstance(elements[-1], Cut)


class PrinterEnd:
    """The printer's side of a link: reads the stream, answers status queries, keeps every byte."""

    def __init__(self) -> None:
        self.answers = dict(ANSWERS["ready"])
        self.silent = False
        self.received = bytearray()
        self._decoder = Decoder()
        self._changed = threading.Condition()

    def set(self, state: str) -> None:
        self.answers = dict(ANSWERS[state])

    def take(self, data: bytes) -> bytes:
        """Read `data` as the printer does; returns the answers it sends back."""
        out = bytearray()
        for element, _ in self._decoder.feed(data):
            if isinstance(element, StatusQuery) and not self.silent:
                out.append(self.answers[element.n])
        with self._changed:
            self.received += data
            self._changed.notify_all()
        return bytes(out)

    def wait_for(self, n_bytes: int) -> bytes:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= n_bytes, WAIT_S)
            return bytes(self.received)


# --- serial, over a pseudo-terminal --------------------------------------------------

class PtyPrinter(PrinterEnd):
    """A serial printer on the master side of a pseudo-terminal."""

    def __init__(self) -> None:
        super().__init__()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="pty-printer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 65536)
            except OSError:                     # EIO: no one has the slave side open
                return
            answer = self.take(data)
            if answer:
                os.write(self._master, answer)

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(WAIT_S)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            os.close(fd)


@pytest.fixture
def pty_printer():
    printer = PtyPrinter()
    yield printer
    printer.stop()


@pytest.fixture
def serial_printer(pty_printer):
    printer = EscposReceiptPrinter(SerialTransport(pty_printer.path, 115200, timeout_s=2.0))
    yield printer
    printer.close()


def test_serial_job_decodes_back_to_what_was_sent(pty_printer, serial_printer):
    outcome = serial_printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.READY)
    payload = serial_printer.compose(sample_job())
    assert outcome.bytes_sent == len(payload)
    check_job_bytes(pty_printer.wait_for(2 * len(STATUS_QUERIES) + len(payload)), serial_printer)


@pytest.mark.parametrize("state, expected", [("ready", PrinterStatus.READY), ("no_paper", PrinterStatus.NO_PAPER),
                                             ("cover_open", PrinterStatus.COVER_OPEN)])
def test_serial_status_reads_the_printers_answers(pty_printer, serial_printer, state, expected):
    pty_printer.set(state)

    assert serial_printer.status() is expected


def test_serial_status_does_not_wait_out_the_timeout(pty_printer):
    # python-escpos's own Serial._read() waits for 16 bytes: three queries would take 3 x 5 s.
    printer = EscposReceiptPrinter(SerialTransport(pty_printer.path, 115200, timeout_s=5.0))

    started = time.monotonic()
    try:
        assert printer.status() is PrinterStatus.READY
    finally:
        printer.close()
    assert time.monotonic() - started < 2.5


def test_serial_printing_without_paper_sends_nothing(pty_printer, serial_printer):
    pty_printer.set("no_paper")

    outcome = serial_printer.print_job(sample_job())

    assert (outcome.result, outcome.status, outcome.bytes_sent) == (PrintResult.FAILED, PrinterStatus.NO_PAPER, 0)
    assert pty_printer.wait_for(len(STATUS_QUERIES)) == STATUS_QUERIES


def test_serial_printer_that_never_answers_is_disconnected_after_the_timeout(pty_printer):
    pty_printer.silent = True
    printer = EscposReceiptPrinter(SerialTransport(pty_printer.path, 115200, timeout_s=0.3))

    started = time.monotonic()
    try:
        assert printer.status() is PrinterStatus.DISCONNECTED
    finally:
        printer.close()
    assert time.monotonic() - started < 2.0


def test_serial_port_that_does_not_exist_is_disconnected(tmp_path):
    printer = EscposReceiptPrinter(SerialTransport(str(tmp_path / "ttyUSB9"), 115200, timeout_s=0.5))

    assert printer.status() is PrinterStatus.DISCONNECTED
    outcome = printer.print_job(sample_job())
    assert (outcome.result, outcome.status, outcome.bytes_sent) == \
        (PrintResult.FAILED, PrinterStatus.DISCONNECTED, 0)


def test_serial_chunks_take_at_most_half_the_timeout_on_the_wire():
    assert SerialTransport("/dev/ttyS0", 115200, timeout_s=10.0).chunk_bytes == 4096
    assert SerialTransport("/dev/ttyS0", 9600, timeout_s=1.0).chunk_bytes == 480


# --- USB, through a fake device at pyusb's boundary -----------------------------------

class _Libusb1:
    """Stands for pyusb's libusb1 backend: python-escpos checks the kernel driver only there."""


_Libusb1.__module__ = "usb.backend.libusb1"


class _Context:
    def __init__(self) -> None:
        self.disposed = 0

    def dispose(self, device: object) -> None:
        self.disposed += 1


class FakeUsbDevice(PrinterEnd):
    """A USB printer as pyusb shows it: interface 0 held by usblp, bulk OUT 0x01 and IN 0x82."""

    def __init__(self, *, out_ep: int = 0x01, in_ep: int = 0x82) -> None:
        super().__init__()
        self.backend = _Libusb1()
        self._ctx = _Context()
        self.out_ep, self.in_ep = out_ep, in_ep
        self.kernel_driver_active = True
        self.detached: list[int] = []
        self.configured = 0
        self.resets = 0
        self.default_timeout = 1000
        self.write_timeouts: set[int] = set()
        self.unplugged = False
        self._pending = bytearray()

    def is_kernel_driver_active(self, interface: int) -> bool:
        return self.kernel_driver_active

    def detach_kernel_driver(self, interface: int) -> None:
        self.detached.append(interface)
        self.kernel_driver_active = False

    def set_configuration(self) -> None:
        self.configured += 1

    def reset(self) -> None:
        self.resets += 1

    def _check(self, endpoint: int, expected: int) -> None:
        import usb.core

        if self.unplugged:
            raise usb.core.USBError("No such device", errno=errno.ENODEV)
        if endpoint != expected:
            raise ValueError("Invalid endpoint address 0x%02x" % endpoint)

    def write(self, endpoint: int, data: bytes, timeout: int | None = None) -> int:
        self._check(endpoint, self.out_ep)
        self.write_timeouts.add(timeout)
        self._pending += self.take(bytes(data))
        return len(data)

    def read(self, endpoint: int, size: int, timeout: int | None = None) -> array.array:
        import usb.core

        self._check(endpoint, self.in_ep)
        if not self._pending:
            raise usb.core.USBTimeoutError("Operation timed out", errno=errno.ETIMEDOUT)
        answer, self._pending = self._pending[:size], self._pending[size:]
        return array.array("B", answer)


@pytest.fixture
def usb_bus(monkeypatch):
    """`usb.core.find` answers with whatever the test plugs in (None: nothing plugged)."""
    import usb.core

    bus = SimpleNamespace(device=None, searches=[])

    def find(**match):
        bus.searches.append(match)
        if bus.device is not None and match == {"idVendor": 0x04B8, "idProduct": 0x0202}:
            return bus.device
        return None

    monkeypatch.setattr(usb.core, "find", find)
    return bus


@pytest.fixture
def usb_device(usb_bus):
    usb_bus.device = FakeUsbDevice()
    return usb_bus.device


@pytest.fixture
def usb_printer(usb_bus):
    printer = EscposReceiptPrinter(UsbTransport(0x04B8, 0x0202, timeout_s=2.0))
    yield printer
    printer.close()


def test_usb_job_decodes_back_to_what_was_sent(usb_device, usb_printer):
    outcome = usb_printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.PRINTED, PrinterStatus.READY)
    check_job_bytes(bytes(usb_device.received), usb_printer)
    # python-escpos took interface 0 from usblp and configured the device; writes and reads are bounded.
    assert usb_device.detached == [0] and usb_device.configured == 1
    assert usb_device.write_timeouts == {2000} and usb_device.default_timeout == 2000


@pytest.mark.parametrize("state, expected", [("ready", PrinterStatus.READY), ("no_paper", PrinterStatus.NO_PAPER),
                                             ("cover_open", PrinterStatus.COVER_OPEN)])
def test_usb_status_reads_the_answer_from_the_in_endpoint(usb_device, usb_printer, state, expected):
    usb_device.set(state)

    assert usb_printer.status() is expected
    assert bytes(usb_device.received) == STATUS_QUERIES


def test_usb_device_stays_open_between_calls_and_is_released_on_close(usb_bus, usb_device, usb_printer):
    usb_printer.status()
    usb_printer.print_job(sample_job())
    usb_printer.status()

    assert (len(usb_bus.searches), usb_device.resets) == (1, 1)
    usb_printer.close()
    assert usb_device._ctx.disposed == 1


def test_usb_printer_unplugged_is_disconnected_and_found_again(usb_bus, usb_printer):
    assert usb_printer.status() is PrinterStatus.DISCONNECTED

    usb_bus.device = FakeUsbDevice()

    assert usb_printer.status() is PrinterStatus.READY


def test_usb_printer_unplugged_mid_job_fails_disconnected_then_recovers(usb_bus, usb_device, usb_printer):
    assert usb_printer.status() is PrinterStatus.READY
    usb_device.unplugged = True

    outcome = usb_printer.print_job(sample_job())

    assert (outcome.result, outcome.status) == (PrintResult.FAILED, PrinterStatus.DISCONNECTED)
    usb_bus.device = FakeUsbDevice()             # plugged back: the next call finds it anew
    assert usb_printer.print_job(sample_job()).result is PrintResult.PRINTED
    assert len(usb_bus.searches) == 2


def test_usb_printer_that_never_answers_is_disconnected(usb_device, usb_printer):
    usb_device.silent = True

    assert usb_printer.status() is PrinterStatus.DISCONNECTED


def test_usb_endpoints_the_device_lacks_are_a_link_failure_not_a_crash(usb_bus, usb_printer):
    usb_bus.device = FakeUsbDevice(out_ep=0x02, in_ep=0x81)

    assert usb_printer.status() is PrinterStatus.DISCONNECTED


def test_usb_endpoints_of_known_printers():
    assert (UsbTransport(0x04B8, 0x0202).in_ep, UsbTransport(0x04B8, 0x0202).out_ep) == (0x82, 0x01)
    assert (UsbTransport(0x0DD4, 0x0205).in_ep, UsbTransport(0x0DD4, 0x0205).out_ep) == (0x81, 0x02)


# --- the transport from the configuration -----------------------------------------------

@pytest.mark.parametrize("settings, kind, where", [
    (dict(transport="network", host="10.0.0.7", port=9101), NetworkTransport, ("10.0.0.7", 9101)),
    (dict(transport="usb", usb_vendor_id=0x04B8, usb_product_id=0x0202), UsbTransport, (0x04B8, 0x0202)),
    (dict(transport="serial", serial_device="/dev/ttyUSB0", baud_rate=38400), SerialTransport,
     ("/dev/ttyUSB0", 38400)),
])
def test_from_config_picks_the_transport(settings, kind, where):
    printer = from_config(SimpleNamespace(printer=PrinterConfig(timeout_s=3.0, **settings)))

    transport = printer.transport
    assert type(transport) is kind and printer.timeout_s == 3.0
    fields = {NetworkTransport: ("host", "port"), UsbTransport: ("vendor_id", "product_id"),
              SerialTransport: ("device", "baud_rate")}[kind]
    assert tuple(getattr(transport, name) for name in fields) == where
