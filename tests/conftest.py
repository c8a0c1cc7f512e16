"""Shared by every test.

Kivy, when a test imports it, logs through Python logging and reads no
command line or user configuration, as the kiosk itself runs it.
"""

import logging
import os

import pytest

# Central on loopback, shared by the tests that talk to it; a throwaway PostgreSQL for central's own.
pytest_plugins = ("tests.running_central", "tests.postgres_server")

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")


@pytest.fixture(autouse=True)
def _root_logger_as_it_was():
    """A command run in-process (`main([...])`) sets up logging to the standard
    output of its test; the next tests must not log into that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="session")
def pcscd():
    """pcscd with the vpcd readers: the running one, or one started for the session."""
    from drivers.card_sim.pcscd import ensure_pcscd
    handle = ensure_pcscd(timeout=15.0)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def issuer():
    """The card issuer key pair the tests' kiosk trusts."""
    from drivers.card_sim.issuer import IssuerKey
    return IssuerKey.generate()


@pytest.fixture(scope="session")
def make_card(issuer):
    """SimulatedCard.for_citizen(citizen, ...) signed by the session's issuer unless told."""
    from drivers.card_sim.card import SimulatedCard

    def make(citizen, **options):
        options.setdefault("issuer", issuer)
        return SimulatedCard.for_citizen(citizen, **options)
    return make


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
