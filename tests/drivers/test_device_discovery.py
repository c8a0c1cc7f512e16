"""`kiosk provision --setup`'s discovery (drivers/device_discovery.py): readers, known USB printers, serial
ports, and what a technician is told when a kind cannot be looked for. Probes are injected; the last test
lists the vpcd reader through the real pcscd."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest
import usb.core
from smartcard.pcsc.PCSCExceptions import EstablishContextException

from drivers import device_discovery
from drivers.device_discovery import discover, serial_ports
from kiosk import backends
from kiosk.device_setup import Discovery, UsbPrinter

NO_USB = lambda: []        # noqa: E731
NO_SERIAL = lambda: []     # noqa: E731
SCARD_E_NO_SERVICE = 0x8010001D


def readers_only(probe, **options) -> Discovery:
    return discover(readers=probe, usb=NO_USB, serial=NO_SERIAL, **options)


def test_readers_pcscd_lists_are_found_in_its_order() -> None:
    found = readers_only(lambda: ["Virtual PCD 00 00", "Virtual PCD 00 01"])
    assert found.readers == ("Virtual PCD 00 00", "Virtual PCD 00 01") and found.readers_problem == ""


def test_no_reader_plugged_in_is_an_empty_list_not_a_problem() -> None:
    found = readers_only(lambda: [])
    assert found.readers == () and found.readers_problem == ""


def test_pcscd_not_running_is_said() -> None:
    def absent():
        raise EstablishContextException(SCARD_E_NO_SERVICE)

    found = readers_only(absent)
    assert found.readers == ()
    assert found.readers_problem == "pcscd is not running or not answering (EstablishContextException)"


def test_a_pcscd_that_hangs_costs_the_time_limit_not_the_setup() -> None:
    release = threading.Event()

    def hangs():
        release.wait()
        return ["late"]

    try:
        found = readers_only(hangs, readers_timeout_s=0.05)
    finally:
        release.set()
    assert found.readers == () and found.readers_problem == "pcscd did not answer within 0.05 s"


def test_a_known_usb_printer_is_found_by_its_ids_and_others_are_left_out() -> None:
    devices = [(0x1D6B, 0x0002, True),            # a root hub
               (0x04B8, 0x0202, True),            # Epson TM-T88
               (0x0DD4, 0x0205, False)]           # Custom VKP80III, no udev rule yet
    found = discover(readers=lambda: [], usb=lambda: devices, serial=NO_SERIAL)
    assert found.printers == (UsbPrinter(0x04B8, 0x0202, "Epson TM-T88 series", True),
                              UsbPrinter(0x0DD4, 0x0205, "Custom VKP80III", False))
    assert found.printers_problem == ""
    assert found.printers[0].label() == "Epson TM-T88 series (USB 04b8:0202)"
    assert "no permission" in found.printers[1].label() and "PRINTERS.md" in found.printers[1].label()


def test_every_printer_printers_md_lists_is_known() -> None:
    table = (Path(device_discovery.__file__).with_name("PRINTERS.md")).read_text(encoding="utf-8")
    for vendor, product in device_discovery.KNOWN_USB_PRINTERS:
        assert "%04x" % vendor in table and "%04x" % product in table


def test_no_libusb_is_said() -> None:
    def no_backend():
        raise usb.core.NoBackendError("No backend available")

    found = discover(readers=lambda: [], usb=no_backend, serial=NO_SERIAL)
    assert found.printers == () and found.printers_problem.startswith("no USB backend: libusb 1.0 is not installed")


def test_no_permission_to_list_usb_is_said() -> None:
    def refused():
        raise usb.core.USBError("Access denied (insufficient permissions)", errno=errno.EACCES)

    found = discover(readers=lambda: [], usb=refused, serial=NO_SERIAL)
    assert found.printers == () and found.printers_problem == "no permission to list the USB devices"


def test_serial_ports_are_usb_adapters_cdc_devices_and_the_pi_uart(tmp_path: Path) -> None:
    for name in ("ttyUSB1", "ttyUSB0", "ttyACM0", "ttyS0", "tty1"):
        (tmp_path / name).touch()
    (tmp_path / "serial0").symlink_to(tmp_path / "ttyS0")
    found = discover(readers=lambda: [], usb=NO_USB, serial=lambda: serial_ports(tmp_path))
    assert found.serial_ports == tuple(str(tmp_path / name) for name in ("ttyACM0", "ttyUSB0", "ttyUSB1", "serial0"))


def test_no_serial_port_is_an_empty_list(tmp_path: Path) -> None:
    assert serial_ports(tmp_path) == []


def test_the_discovery_is_the_drivers_tool_the_core_finds_by_name() -> None:
    assert backends.load_tool("discover") is discover


@pytest.mark.realstack
def test_the_vpcd_reader_is_found_through_the_real_pcscd(pcscd) -> None:
    found = discover(usb=NO_USB, serial=NO_SERIAL)
    assert found.readers_problem == ""
    assert "Virtual PCD 00 00" in found.readers
