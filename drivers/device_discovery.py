"""The devices plugged into a fresh kiosk, for `kiosk provision --setup` (the `kiosk.tools` entry point `discover`).

This module holds the three probes and `discover`, which runs them and
answers with the core's plain data (`kiosk.device_setup.Discovery`):

* PC/SC readers: their names as pcscd lists them (pyscard's
  ``smartcard.System.readers()``), asked on a daemon thread with a time
  limit, so a pcscd that hangs costs `timeout_s`, never a hung setup;
* USB printers: the devices pyusb lists (``usb.core.find(find_all=True)``)
  whose vendor and product ids are a model of drivers/PRINTERS.md
  (`KNOWN_USB_PRINTERS`), and whether this user may open each one;
* serial ports: ``/dev/ttyUSB*``, ``/dev/ttyACM*`` and ``/dev/serial0``.

A kind that cannot be looked for (pcscd not running, no libusb, no
permission) is said in its ``*_problem``, never raised. Each probe is an
argument of `discover`, so tests run without hardware.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

from drivers.pcsc_channel import PCSC_ERRORS
from kiosk.device_setup import Discovery, UsbPrinter

READERS_TIMEOUT_S = 5.0

#: (vendor id, product id) -> model, as drivers/PRINTERS.md lists them
KNOWN_USB_PRINTERS: dict[tuple[int, int], str] = {
    (0x04B8, 0x0202): "Epson TM-T88 series",
    (0x04B8, 0x0E15): "Epson TM-T20II / TM-T82 family",
    (0x04B8, 0x0E27): "Epson TM-T20II / TM-T82 family",
    (0x04B8, 0x0E28): "Epson TM-T20II / TM-T82 family",
    (0x04B8, 0x0E2A): "Epson TM-T20II / TM-T82 family",
    (0x0DD4, 0x0205): "Custom VKP80III",
    (0x0DD4, 0x01A8): "Custom VKP80II (id unconfirmed)",
    (0x1504, 0x0006): "Bixolon SRP-350plus",
    (0x0519, 0x0001): "Star TSP100 / TSP143 / TSP800II (ESC/POS emulation on)",
    (0x0519, 0x0003): "Star TSP100 / TSP143 / TSP800II (ESC/POS emulation on)",
}
SERIAL_PATTERNS = ("ttyUSB*", "ttyACM*")
SERIAL_NAMES = ("serial0",)

# A USB device as the probe gives it: vendor id, product id, and whether this user may open it (None: not known).
UsbDevice = tuple[int, int, "bool | None"]


def pcsc_readers() -> list[str]:
    """The names of the readers pcscd has (pyscard); PC/SC's errors go through."""
    from smartcard.System import readers
    return [str(reader) for reader in readers()]


def usb_devices() -> list[UsbDevice]:
    """Every USB device pyusb sees, with whether its node under /dev/bus/usb may be opened read-write."""
    import usb.core
    found = []
    for device in usb.core.find(find_all=True):
        node = "/dev/bus/usb/%03d/%03d" % (device.bus, device.address)
        found.append((device.idVendor, device.idProduct,
                      os.access(node, os.R_OK | os.W_OK) if os.path.exists(node) else None))
    return found


def serial_ports(dev: Path = Path("/dev")) -> list[str]:
    """The serial ports a receipt printer may be on, sorted: USB adapters, USB CDC devices, the Pi's UART."""
    found = sorted(str(path) for pattern in SERIAL_PATTERNS for path in dev.glob(pattern))
    return found + [str(dev / name) for name in SERIAL_NAMES if (dev / name).exists()]


def _readers(probe: Callable[[], Sequence[str]], timeout_s: float) -> tuple[tuple[str, ...], str]:
    future: concurrent.futures.Future = concurrent.futures.Future()

    def work() -> None:
        try:
            future.set_result(tuple(probe()))
        except BaseException as exc:        # handed to the caller, who says what it was
            future.set_exception(exc)

    threading.Thread(target=work, name="discover-readers", daemon=True).start()
    try:
        return future.result(timeout=timeout_s), ""
    except concurrent.futures.TimeoutError:
        return (), "pcscd did not answer within %g s" % timeout_s
    except PCSC_ERRORS as exc:
        return (), "pcscd is not running or not answering (%s)" % type(exc).__name__
    except ImportError:
        return (), "pyscard is not installed"


def _printers(probe: Callable[[], Sequence[UsbDevice]]) -> tuple[tuple[UsbPrinter, ...], str]:
    try:
        import usb.core
    except ImportError:
        return (), "pyusb is not installed"
    try:
        devices = probe()
    except usb.core.NoBackendError:
        return (), "no USB backend: libusb 1.0 is not installed (apt-get install libusb-1.0-0)"
    except usb.core.USBError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (), "no permission to list the USB devices"
        return (), "the USB devices could not be listed (%s)" % (exc.strerror or type(exc).__name__)
    except OSError as exc:
        return (), "the USB devices could not be listed (%s)" % (exc.strerror or type(exc).__name__)
    printers = tuple(UsbPrinter(vendor, product, KNOWN_USB_PRINTERS[(vendor, product)], accessible)
                     for vendor, product, accessible in devices if (vendor, product) in KNOWN_USB_PRINTERS)
    return printers, ""


def discover(*, readers: Callable[[], Sequence[str]] = pcsc_readers,
             usb: Callable[[], Sequence[UsbDevice]] = usb_devices,
             serial: Callable[[], Sequence[str]] = serial_ports,
             readers_timeout_s: float = READERS_TIMEOUT_S) -> Discovery:
    """What is plugged in: readers, known USB printers, serial ports (each probe replaceable, for tests)."""
    found_readers, readers_problem = _readers(readers, readers_timeout_s)
    printers, printers_problem = _printers(usb)
    return Discovery(readers=found_readers, readers_problem=readers_problem, printers=printers,
                     printers_problem=printers_problem, serial_ports=tuple(serial()))
