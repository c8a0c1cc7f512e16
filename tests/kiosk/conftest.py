"""Fixtures for `kiosk card check`: pcscd with vpcd, issuers, the ID slot, and
a runner for the real command in a subprocess. Tests wait on pcscd's reader
state (SCardGetStatusChange), never on sleeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from drivers.card_sim.card import SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.pcscd import PcscdHandle
from drivers.card_sim.registry import load_citizens
from drivers.card_sim.slot import VirtualCardSlot
from drivers.card_sim.vpcd import VirtualCard
from tests.drivers.conftest import Attended, wait_for_reader_state

REPO = Path(__file__).resolve().parents[2]
SEED_CITIZENS = REPO / "central" / "seed" / "citizens.json"
READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
SLOT_FREE_TIMEOUT_S = 60.0       # another test run may be using the shared slot
COMMAND_TIMEOUT_S = 60.0
PIN = "1234"


class IdSlot:
    """The vpcd slot of READER: each insertion and removal waits until vpcd
    and pcscd report it, so the command in the subprocess sees our card."""

    def __init__(self, slot: VirtualCardSlot) -> None:
        self._slot = slot

    def insert(self, card: VirtualCard) -> VirtualCard:
        attended = Attended(card)
        self._slot.insert(attended)
        assert attended.reached.wait(SLOT_FREE_TIMEOUT_S), "vpcd never asked for the card's ATR"
        assert wait_for_reader_state(READER, present=True), "pcscd saw no card"
        return card

    def remove(self) -> None:
        self._slot.remove()
        assert wait_for_reader_state(READER, present=False), "the card did not leave the reader"


@pytest.fixture(scope="session")
def citizen() -> dict[str, Any]:
    """A seed citizen with Latin names and every optional field."""
    return load_citizens(SEED_CITIZENS)["01020345671"]


@pytest.fixture(scope="session")
def other_issuer() -> IssuerKey:
    """A second issuer key: a rotated-in key, or an issuer the kiosk does not trust."""
    return IssuerKey.generate()


@pytest.fixture
def pem(tmp_path: Path) -> Callable[[IssuerKey], Path]:
    """Writes an issuer's public key to a PEM file."""
    def write(key: IssuerKey) -> Path:
        path = tmp_path / ("issuer-%s.pub.pem" % key.key_id.hex())
        path.write_bytes(key.public_pem)
        return path
    return write


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Writes a kiosk.toml trusting `issuers` (PEM paths), on READER."""
    def write(issuers: list[Path], *, reader: str = READER, apdu_timeout_s: float = 5.0) -> Path:
        path = tmp_path / "kiosk.toml"
        keys = ", ".join('"%s"' % p for p in issuers)
        path.write_text(
            'config_version = 1\ndevice_id = "kiosk-test-0001"\n\n'
            '[central]\nurl = "https://central.invalid"\n\n'
            '[card]\ntrusted_issuers = [%s]\nreader = "%s"\napdu_timeout_s = %s\n\n'
            '[printer]\nhost = "192.0.2.10"\n' % (keys, reader, apdu_timeout_s),
            encoding="utf-8")
        return path
    return write


@pytest.fixture
def make_card(make_card: Callable[..., SimulatedCard], citizen: dict[str, Any]) -> Callable[..., SimulatedCard]:
    """The shared make_card, for the seed citizen."""
    return lambda **options: make_card(citizen, **options)


@pytest.fixture
def id_slot(pcscd: PcscdHandle) -> Iterator[IdSlot]:
    """READER's slot, empty at the start and at the end."""
    if not wait_for_reader_state(READER, present=False, timeout=SLOT_FREE_TIMEOUT_S):
        pytest.fail("another card stays in %s (is `kiosk-sim card serve` running?)" % READER)
    virtual = VirtualCardSlot(port=VPCD_PORT)
    yield IdSlot(virtual)
    virtual.remove()
    assert wait_for_reader_state(READER, present=False), "the card did not leave the reader"


@pytest.fixture
def card_check() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `kiosk card check ARGS` with `pin` piped on stdin."""
    def run(*args: str | Path, pin: str | None = PIN) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "kiosk.cli", "card", "check", *map(str, args)]
        return subprocess.run(command, input=None if pin is None else pin + "\n",
                              stdin=subprocess.DEVNULL if pin is None else None,
                              capture_output=True, text=True, cwd=REPO,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    return run
