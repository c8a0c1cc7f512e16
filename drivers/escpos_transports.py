"""How the ESC/POS command layer reaches its printer: network, USB or serial.

Each transport wraps one python-escpos printer object (`Network`, `Usb`,
`Serial`) and uses it only to open and close the link, write bytes and ask
one real-time status (python-escpos's ``query_status``: the request written
with ``_raw()``, the answer read with ``_read()``). The ESC/POS commands are
composed elsewhere (`drivers.escpos_printer`), which never learns which
transport it has; it holds a `session()` around each status query or job
and treats the exceptions of `link_failures()` as a lost printer.

* network: one short TCP connection per session, so a restarted printer or
  a pulled cable costs one failed job, never a stale socket.
* usb: pyusb through python-escpos's `Usb` (the kernel's usblp driver is
  detached from interface 0). The device stays open between sessions:
  python-escpos resets the USB device each time it opens it, which is not
  something to do before every status query. Any failure closes it, and the
  next session finds the device again (after a replug, a power cycle).
  Writes and reads are bounded by the timeout (pyusb counts milliseconds).
* serial: pyserial through python-escpos's `Serial`, 8N1 at the configured
  baud rate. The port stays open too; each session drops stale input, and
  writes get a write timeout so that a printer holding the line cannot hang
  a job. Chunks are sized so that one takes at most half the timeout on the
  wire. A status answer is read one byte at a time: python-escpos's
  ``Serial._read()`` asks for 16 bytes and so waits out the whole timeout
  for the printer's one.

python-escpos, pyusb and pyserial are imported on first use, on the
printer's worker thread.
"""

from __future__ import annotations

import abc
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator

from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from kiosk.config import PrinterConfig

log = logging.getLogger(__name__)

#: bytes per write on a fast link: each write gets the whole timeout
CHUNK_BYTES = 4096

#: USB endpoints (IN, OUT) of printers that do not use python-escpos's default 0x82 / 0x01
USB_ENDPOINTS: dict[tuple[int, int], tuple[int, int]] = {
    (0x0DD4, 0x0205): (0x81, 0x02),      # Custom VKP80III
}
DEFAULT_USB_ENDPOINTS = (0x82, 0x01)     # Epson TM series, and python-escpos's default


class EscposTransport(abc.ABC):
    """One way to a printer: a session around each exchange, write, and a status query."""

    timeout_s: float
    #: bytes per write: each write must finish within the timeout
    chunk_bytes: int = CHUNK_BYTES

    @abc.abstractmethod
    def session(self) -> contextlib.AbstractContextManager[None]:
        """Open the link (or reuse it) for one exchange; an exception inside closes it."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Hand `data` to the link; raises one of `link_failures()` when it cannot."""

    @abc.abstractmethod
    def query(self, request: bytes) -> bytes:
        """Write a real-time status request and read its answer (b"" when the printer says nothing)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the link if it is open; never raises for a link failure."""

    def link_failures(self) -> tuple[type[BaseException], ...]:
        """What an unplugged, switched-off or silent printer raises here."""
        from escpos.exceptions import DeviceNotFoundError

        return (DeviceNotFoundError, OSError)


class _EscposLink(EscposTransport):
    """A transport over one python-escpos printer object, built on first use."""

    #: keep the link open between sessions (closed only after a failure)
    keeps_open = False

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._printer: Any = None
        self._open = False

    @abc.abstractmethod
    def _make(self) -> Any:
        """The python-escpos printer object (not yet open)."""

    def _opened(self) -> None:
        """Set up the link just opened (timeouts); subclasses add to it."""

    def _begin(self) -> None:
        """Prepare an open link for one exchange."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        done = False
        try:
            if not self._open:
                if self._printer is None:
                    self._printer = self._make()
                self._printer.open()
                self._open = True
                self._opened()
            self._begin()
            yield
            done = True
        finally:
            if not (done and self.keeps_open):
                self.close()

    def write(self, data: bytes) -> None:
        self._printer._raw(data)

    def query(self, request: bytes) -> bytes:
        return bytes(self._printer.query_status(request))

    def close(self) -> None:
        if self._printer is None:
            return
        self._open = False
        try:
            self._printer.close()
        except OSError:
            pass


class NetworkTransport(_EscposLink):
    """A printer on raw TCP (port 9100): python-escpos's `Network`, one connection per session."""

    def __init__(self, host: str, port: int = 9100, *, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return "NetworkTransport(%s:%d)" % (self.host, self.port)

    def _make(self) -> Any:
        from escpos.printer import Network

        return Network(self.host, self.port, timeout=self.timeout_s)


class UsbTransport(_EscposLink):
    """A printer on USB, found by vendor and product id: python-escpos's `Usb` over pyusb."""

    keeps_open = True

    def __init__(self, vendor_id: int, product_id: int, *, timeout_s: float = 10.0,
                 endpoints: tuple[int, int] | None = None) -> None:
        super().__init__(timeout_s=timeout_s)
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.in_ep, self.out_ep = endpoints or USB_ENDPOINTS.get((vendor_id, product_id), DEFAULT_USB_ENDPOINTS)

    def __repr__(self) -> str:
        return "UsbTransport(%04x:%04x)" % (self.vendor_id, self.product_id)

    @property
    def _timeout_ms(self) -> int:
        return max(1, int(self.timeout_s * 1000))

    def _make(self) -> Any:
        from escpos.printer import Usb

        return Usb(self.vendor_id, self.product_id, timeout=self._timeout_ms, in_ep=self.in_ep, out_ep=self.out_ep)

    def _opened(self) -> None:
        # python-escpos reads without a timeout of its own: pyusb's default applies.
        self._printer.device.default_timeout = self._timeout_ms

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        import usb.core
        from escpos.exceptions import DeviceNotFoundError

        try:
            with super().session():
                yield
        except usb.core.NoBackendError as error:       # no libusb on the system: the printer cannot be reached
            raise DeviceNotFoundError("no USB backend (libusb): %s" % error) from error

    def write(self, data: bytes) -> None:
        with _endpoint_errors(self):
            super().write(data)

    def query(self, request: bytes) -> bytes:
        with _endpoint_errors(self):
            return super().query(request)


@contextlib.contextmanager
def _endpoint_errors(transport: UsbTransport) -> Iterator[None]:
    """pyusb says ValueError for an endpoint the device does not have: a link failure here."""
    try:
        yield
    except ValueError as error:
        raise OSError("USB printer %r has no endpoint IN 0x%02x / OUT 0x%02x (%s)"
                      % (transport, transport.in_ep, transport.out_ep, error)) from error


class SerialTransport(_EscposLink):
    """A printer on a serial line (8N1): python-escpos's `Serial` over pyserial."""

    keeps_open = True

    def __init__(self, device: str, baud_rate: int = 115200, *, timeout_s: float = 10.0) -> None:
        super().__init__(timeout_s=timeout_s)
        self.device = device
        self.baud_rate = baud_rate
        # 10 bits on the wire per byte; one write takes at most half the timeout.
        self.chunk_bytes = max(64, min(CHUNK_BYTES, int(baud_rate / 10 * timeout_s / 2)))

    def __repr__(self) -> str:
        return "SerialTransport(%s@%d)" % (self.device, self.baud_rate)

    def _make(self) -> Any:
        from escpos.printer import Serial

        return Serial(self.device, baudrate=self.baud_rate, timeout=self.timeout_s)

    def _opened(self) -> None:
        self._printer.device.write_timeout = self.timeout_s

    def _begin(self) -> None:
        # An answer that came after its query timed out must not answer the next one.
        self._printer.device.reset_input_buffer()

    def query(self, request: bytes) -> bytes:
        # Not python-escpos's query_status: its Serial._read() asks pyserial for
        # 16 bytes, which waits out the whole timeout for a one-byte answer.
        # read(1) returns as soon as the printer answers.
        self._printer._raw(request)
        port = self._printer.device
        answer = port.read(1)
        if answer and port.in_waiting:
            answer += port.read(port.in_waiting)
        return bytes(answer)


def from_config(printer: PrinterConfig) -> EscposTransport:
    """The transport `printer.transport` names, with its settings."""
    match printer.transport:
        case "network":
            return NetworkTransport(printer.host, printer.port, timeout_s=printer.timeout_s)
        case "usb":
            return UsbTransport(printer.usb_vendor_id, printer.usb_product_id, timeout_s=printer.timeout_s)
        case "serial":
            return SerialTransport(printer.serial_device, printer.baud_rate, timeout_s=printer.timeout_s)
    raise ConfigError("`printer.transport` %r is not network, usb or serial" % (printer.transport,))
