"""Shared by every test.

Kivy, when a test imports it, logs through Python logging and reads no
command line or user configuration, as the kiosk itself runs it.
"""

import os

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")


@pytest.fixture
def simulator(tmp_path):
    """The network printer simulator on a free loopback port."""
    from drivers.printer_sim.server import PrinterSimulator
    with PrinterSimulator(tmp_path) as sim:
        yield sim


@pytest.fixture
def printer(simulator):
    """The real ESC/POS driver pointed at `simulator`."""
    from drivers.escpos_printer import EscposReceiptPrinter
    return EscposReceiptPrinter("127.0.0.1", simulator.port, timeout_s=5.0)
