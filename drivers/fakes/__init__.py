"""In-process fakes of the kiosk's device ports, for tests and for a kiosk without hardware.

Each fake runs in the calling process, answers at once and is safe to call
from several threads. A test changes the fake's world the way a technician
changes the real one: it inserts and pulls a card, opens the printer's
cover, or makes the next bank card decline. The fakes pass the same contract
tests as the real drivers (tests/contracts), so they cannot drift into
behaviour the hardware never shows.

The fakes import only the kiosk core, the standard library and Pillow, never
the simulators, because they ship in the device install. Each module has a
`from_config(config)` factory for the `fake` backend of its port.
"""

from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import CardOutcome, FakePaymentTerminal, FakeReversal, FakeSale
from drivers.fakes.receipt_printer import FakeReceiptPrinter

__all__ = [
    "CardOutcome", "FakeCard", "FakeCardReader", "FakePaymentTerminal", "FakeReceiptPrinter", "FakeReversal",
    "FakeSale",
]
