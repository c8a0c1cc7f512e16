"""`kiosk card check` as a technician runs it: the real command in a
subprocess, pyscard -> pcscd -> vpcd -> a simulated card, the PIN on stdin."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.card_sim.card import ATR_T1, CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.registry import load_citizens
from drivers.id_card import apdu
from kiosk import config as kiosk_config
from tests.kiosk.conftest import READER, REPO, SEED_CITIZENS, IdSlot

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README


def _photo_reads(profile: CardProfile = CardProfile.VALID) -> int:
    """READ BINARY commands for the photo of the seed citizen's card (the same on every card made)."""
    card = SimulatedCard.for_citizen(load_citizens(SEED_CITIZENS)["01020345671"], issuer=IssuerKey.generate(),
                                     profile=profile)
    return -(-len(card.file(apdu.FID_PHOTO)) // apdu.MAX_LE)


# VERIFY, SELECT + 2 READ (EF.ID), SELECT + READ (EF.ID_SIG), INTERNAL AUTHENTICATE: 7; then, on a card of
# profile 1.1, SELECT + READs of EF.PHOTO, checked against D1 (a GET RESPONSE more for each SELECT on T=0).
AUTHENTIC_APDUS = 7 + 1 + _photo_reads()
VALID = "valid apdus=%d" % AUTHENTIC_APDUS


def verdict(result: subprocess.CompletedProcess[str]) -> tuple[str, int]:
    """The one stdout line and the exit status."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, "expected one line on stdout, got %r (stderr %r)" % (result.stdout, result.stderr)
    return lines[0], result.returncode


@pytest.fixture
def trusted(write_config, pem, issuer: IssuerKey) -> Path:
    """A configuration that trusts the session's issuer, on READER."""
    return write_config([pem(issuer)])


# --- one test per verdict -----------------------------------------------------------------

def test_valid_card(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card())
    result = card_check("--config", trusted)
    assert verdict(result) == (VALID, 0)
    assert result.stderr == ""


def test_valid_t0_card_counts_get_responses(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.T0))
    assert verdict(card_check("--config", trusted)) == ("valid apdus=%d" % (AUTHENTIC_APDUS + 4), 0)


def test_card_from_an_untrusted_issuer_is_forged(id_slot: IdSlot, make_card, card_check, trusted: Path,
                                                 other_issuer: IssuerKey) -> None:
    id_slot.insert(make_card(issuer=other_issuer))
    assert verdict(card_check("--config", trusted)) == ("forged apdus=6", 1)


def test_card_with_altered_data_is_forged(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.FORGED))
    assert verdict(card_check("--config", trusted)) == ("forged apdus=6", 1)


def test_cloned_card(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.CLONED))
    assert verdict(card_check("--config", trusted)) == ("cloned apdus=7", 1)


def test_expired_card(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.EXPIRED))
    assert verdict(card_check("--config", trusted)) == ("expired apdus=%d" % AUTHENTIC_APDUS, 1)


def test_card_with_a_swapped_photo_is_forged(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.SWAPPED_PHOTO))
    # Both checks pass, then the photo read does not hash to D1.
    forged = 7 + 1 + _photo_reads(CardProfile.SWAPPED_PHOTO)
    assert verdict(card_check("--config", trusted)) == ("forged apdus=%d" % forged, 1)


def test_blocked_card(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(profile=CardProfile.BLOCKED))
    assert verdict(card_check("--config", trusted)) == ("blocked apdus=1", 1)


def test_wrong_pin_counts_down_then_blocks(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(pin="2468"))
    assert verdict(card_check("--config", trusted, pin="1357")) == ("wrong PIN (2 tries left) apdus=1", 1)
    assert verdict(card_check("--config", trusted, pin="1357")) == ("wrong PIN (1 try left) apdus=1", 1)
    assert verdict(card_check("--config", trusted, pin="1357")) == ("blocked apdus=1", 1)
    assert verdict(card_check("--config", trusted, pin="2468")) == ("blocked apdus=1", 1)


def test_right_pin_after_a_wrong_one(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card(pin="2468"))
    assert verdict(card_check("--config", trusted, pin="1357")) == ("wrong PIN (2 tries left) apdus=1", 1)
    assert verdict(card_check("--config", trusted, pin="2468")) == (VALID, 0)


def test_silent_card_is_unreadable(id_slot: IdSlot, make_card, card_check, write_config, pem,
                                   issuer: IssuerKey) -> None:
    config = write_config([pem(issuer)], apdu_timeout_s=0.5)
    id_slot.insert(make_card(profile=CardProfile.SILENT))
    # The command ends (within the runner's timeout) after the APDU timeout: no hang.
    line, status = verdict(card_check("--config", config))
    assert (line, status) == ("unreadable apdus=4", 1)    # VERIFY, SELECT EF.ID, READ, the READ never answered


def test_card_without_the_id_application_is_unreadable(id_slot: IdSlot, card_check, trusted: Path) -> None:
    id_slot.insert(NotAnIdCard())
    assert verdict(card_check("--config", trusted)) == ("unreadable at connect", 1)


def test_no_card_in_the_reader(id_slot: IdSlot, card_check, trusted: Path) -> None:
    assert verdict(card_check("--config", trusted)) == ('no card in reader "%s"' % READER, 1)


def test_no_reader_by_that_name(pcscd, card_check, trusted: Path) -> None:
    result = card_check("--config", trusted, "--reader", "Acme PIN pad reader")
    assert verdict(result) == ('no reader "Acme PIN pad reader"', 1)


# --- trusted keys and the reader from configuration and options --------------------------

def test_trust_option_adds_a_key_to_the_configuration(id_slot: IdSlot, make_card, card_check, trusted: Path,
                                                      pem, other_issuer: IssuerKey) -> None:
    id_slot.insert(make_card(issuer=other_issuer))
    assert verdict(card_check("--config", trusted)) == ("forged apdus=6", 1)
    assert verdict(card_check("--config", trusted, "--trust", pem(other_issuer))) == (VALID, 0)


def test_trust_option_without_configuration(id_slot: IdSlot, make_card, card_check, pem,
                                            issuer: IssuerKey) -> None:
    id_slot.insert(make_card())
    assert verdict(card_check("--trust", pem(issuer), "--reader", READER)) == (VALID, 0)


def test_key_rotation_old_and_new_cards_are_valid(id_slot: IdSlot, make_card, card_check, write_config,
                                                  pem, issuer: IssuerKey, other_issuer: IssuerKey) -> None:
    config = write_config([pem(issuer), pem(other_issuer)])
    for signer in (issuer, other_issuer):
        id_slot.insert(make_card(issuer=signer))
        assert verdict(card_check("--config", config)) == (VALID, 0)
        id_slot.remove()


def test_reader_option_overrides_the_configuration(id_slot: IdSlot, make_card, card_check, write_config,
                                                   pem, issuer: IssuerKey) -> None:
    config = write_config([pem(issuer)], reader="Acme PIN pad reader")
    id_slot.insert(make_card())
    assert verdict(card_check("--config", config)) == ('no reader "Acme PIN pad reader"', 1)
    assert verdict(card_check("--config", config, "--reader", "Virtual PCD 00 0")) == (VALID, 0)


# --- usage and configuration problems: one line on stderr, exit 2 ----------------------------

def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2 and result.stdout == "", (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kiosk: "), result.stderr
    return lines[0]


@pytest.mark.skipif(kiosk_config.DEFAULT_PATH.exists(), reason="this machine has a kiosk configuration")
def test_no_trusted_keys_at_all(card_check) -> None:
    line = usage_error(card_check("--reader", READER))
    assert "no trusted issuer keys" in line


def test_unreadable_key_file(card_check, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert "missing.pem" in usage_error(card_check("--trust", missing))
    not_a_key = tmp_path / "garbage.pem"
    not_a_key.write_text("not a key\n")
    assert "not a PEM public key" in usage_error(card_check("--trust", not_a_key))


def test_bad_configuration(card_check, tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("config_version = 1\n[card]\ntrusted_isuers = []\n")
    assert "kiosk.toml" in usage_error(card_check("--config", config))


def test_no_pin_on_stdin(id_slot: IdSlot, make_card, card_check, trusted: Path) -> None:
    id_slot.insert(make_card())
    assert "no PIN" in usage_error(card_check("--config", trusted, pin=None))
    assert "no PIN" in usage_error(card_check("--config", trusted, pin=""))


def test_malformed_pin_is_not_echoed_and_not_sent(id_slot: IdSlot, make_card, card_check,
                                                  trusted: Path) -> None:
    id_slot.insert(make_card(pin="2468"))
    for bad in ("12a4", "123", "123456789", "٢٤٦٨"):
        result = card_check("--config", trusted, pin=bad)
        assert usage_error(result) == "kiosk: the PIN must be 4 to 8 digits"
    # Nothing reached the card: all three tries are left.
    assert verdict(card_check("--config", trusted, pin="1357")) == ("wrong PIN (2 tries left) apdus=1", 1)


# --- no personal data anywhere --------------------------------------------------------------

def test_no_personal_data_in_output(id_slot: IdSlot, make_card, card_check, write_config, pem,
                                    issuer: IssuerKey, citizen: dict[str, Any]) -> None:
    pin = "86429753"
    config = write_config([pem(issuer)])
    outputs = []
    for profile in (CardProfile.VALID, CardProfile.EXPIRED, CardProfile.FORGED):
        id_slot.insert(make_card(profile=profile, pin=pin))
        for args in ((), ("--verbose",)):
            outputs.append(card_check("--config", config, *args, pin=pin))
        outputs.append(card_check("--config", config, "--verbose", pin="13579"))    # a wrong PIN
        id_slot.remove()
    outputs.append(card_check("--config", config, "--verbose", pin="86a2"))         # malformed

    assert [verdict(r)[0] for r in outputs[:3]] == [VALID, VALID, "wrong PIN (2 tries left) apdus=1"]
    assert any("card.verdict" in r.stderr for r in outputs)         # the verbose log was there
    secrets = [pin, "13579", "86a2", citizen["national_number"], citizen["card_number"],
               citizen["date_of_birth"], citizen["date_of_birth"].replace("-", "")]
    secrets += [value for key, value in citizen.items() if key.endswith(("_ar", "_latin")) and value]
    for result in outputs:
        for secret in secrets:
            assert secret not in result.stdout and secret not in result.stderr, secret


def test_pin_from_a_terminal_is_prompted_for_and_not_echoed(id_slot: IdSlot, make_card,
                                                            trusted: Path) -> None:
    id_slot.insert(make_card(pin="2468"))
    master, slave = os.openpty()
    slave_name = os.ttyname(slave)
    # The child opens the terminal after setsid, so it becomes its controlling
    # terminal and getpass can turn echo off on it.
    launcher = ("import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.dup2(fd, 0); "
                "os.execv(sys.executable, [sys.executable, '-m', 'kiosk.cli'] + sys.argv[2:])")
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, slave_name, "card", "check", "--config", str(trusted)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, start_new_session=True)
    os.close(slave)
    try:
        prompt = _read_until(process.stderr.fileno(), b"PIN: ")
        assert prompt.endswith(b"PIN: ")
        os.write(master, b"2468\n")
        stdout, stderr = process.communicate(timeout=60)
        echoed = _drain(master)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert stdout.decode() == VALID + "\n"
    assert b"2468" not in echoed and b"2468" not in stderr and b"2468" not in prompt


# --- helpers ----------------------------------------------------------------------------------

class NotAnIdCard:
    """A card without the ID application: every command gets `6A82`."""

    atr = ATR_T1
    answer_delay_s = 0.0

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def transmit(self, command: bytes) -> bytes | None:
        return b"\x6a\x82"


def _read_until(fd: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    """Bytes from `fd` until they end with `wanted` (select with a deadline)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(wanted):
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no %r within %.0f s, got %r" % (wanted, timeout, data)
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1024)
            assert chunk, "the command closed stderr early: %r" % data
            data += chunk
    return data


def _drain(master: int) -> bytes:
    """What the terminal showed (its echo), once every slave side is closed."""
    data = b""
    while True:
        ready, _, _ = select.select([master], [], [], 5.0)
        if not ready:
            return data
        try:
            chunk = os.read(master, 1024)
        except OSError:          # EIO: no slave side open any more
            return data
        if not chunk:
            return data
        data += chunk
