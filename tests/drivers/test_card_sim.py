"""The card simulator: the applet against the profile, the CLI, and ensure_pcscd."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.card_proof import load_card_key, new_challenge, passive_check
from kiosk.id_card_data import decode_identity
from kiosk.issuer_keys import TrustStore, load_issuer_keys
from kiosk.ports.card_reader import CardEvent, CardVerdict, ConnectResult
from drivers.card_sim import cli
from drivers.card_sim import pcscd as daemon
from drivers.card_sim.card import ATR_T0, ATR_T1, CardProfile, SimulatedCard
from drivers.card_sim.issuer import IssuerKey
from drivers.card_sim.registry import load_citizens
from drivers.card_sim.slot import VirtualCardSlot
from drivers.id_card import apdu
from drivers.id_card.pin import pin_block
from drivers.pyscard_reader import PyscardCardReader
from tests.drivers.conftest import CITIZENS_FILE, READER, EventLog

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

REPO = Path(__file__).resolve().parents[2]


def sw(answer: bytes | None) -> int:
    assert answer is not None and len(answer) >= 2
    return int.from_bytes(answer[-2:], "big")


def data(answer: bytes | None) -> bytes:
    assert answer is not None
    return answer[:-2]


def verified(card: SimulatedCard, pin: str = "1234") -> SimulatedCard:
    card.power_on()
    assert sw(card.transmit(apdu.select_aid())) == apdu.SW_OK
    assert sw(card.transmit(bytes(apdu.verify(pin_block(pin))))) == apdu.SW_OK
    return card


def read_file(card: SimulatedCard, fid: int) -> bytes:
    answer = card.transmit(apdu.select_ef(fid, fcp=True))
    size = apdu.parse_fcp(data(answer)).size
    content = b""
    while len(content) < size:
        content += data(card.transmit(apdu.read_binary(len(content), min(256, size - len(content)))))
    return content


# --- the applet, status word by status word ------------------------------------------------

def test_select_application(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen)
    assert card.transmit(apdu.select_aid()) == b"\x90\x00"
    other_aid = bytes.fromhex("00A4040C07A0000000041010")
    assert sw(card.transmit(other_aid)) == apdu.SW_NOT_FOUND
    assert sw(card.transmit(bytes.fromhex("00A40400") + apdu.select_aid()[4:])) == apdu.SW_WRONG_P1P2
    assert sw(card.transmit(b"\x80" + apdu.select_aid()[1:])) == apdu.SW_CLA_NOT_SUPPORTED
    assert sw(card.transmit(bytes.fromhex("00CA000000"))) == apdu.SW_INS_NOT_SUPPORTED
    assert sw(card.transmit(b"\x00\xa4")) == apdu.SW_WRONG_LENGTH


def test_select_ef_both_forms(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen)
    assert sw(card.transmit(apdu.select_ef(apdu.FID_ID, fcp=False))) == apdu.SW_NOT_FOUND  # before the AID
    card.transmit(apdu.select_aid())
    assert card.transmit(apdu.select_ef(apdu.FID_ID, fcp=False)) == b"\x90\x00"
    answer = card.transmit(apdu.select_ef(apdu.FID_ID_SIG, fcp=True))
    assert sw(answer) == apdu.SW_OK
    fcp = data(answer)
    assert fcp[:4] == b"\x62\x0b\x80\x02" and fcp[6:] == b"\x82\x01\x01\x83\x02\x01\x02"
    assert apdu.parse_fcp(fcp).fid == apdu.FID_ID_SIG
    assert sw(card.transmit(apdu.select_ef(0x0104, fcp=True))) == apdu.SW_NOT_FOUND
    assert sw(card.transmit(bytes.fromhex("00A4020C0301"))) == apdu.SW_WRONG_LENGTH


@pytest.mark.parametrize("end_of_file_sw", [apdu.SW_END_OF_FILE, apdu.SW_OK])
def test_read_binary(make_card, citizen: dict[str, Any], end_of_file_sw: int) -> None:
    card = make_card(citizen, end_of_file_sw=end_of_file_sw)
    card.transmit(apdu.select_aid())
    card.transmit(apdu.select_ef(apdu.FID_ID, fcp=False))
    assert sw(card.transmit(apdu.read_binary(0))) == apdu.SW_SECURITY_NOT_SATISFIED
    assert sw(card.transmit(bytes(apdu.verify(pin_block("1234"))))) == apdu.SW_OK
    size = apdu.parse_fcp(data(card.transmit(apdu.select_ef(apdu.FID_ID, fcp=True)))).size
    assert size > 256
    first = card.transmit(apdu.read_binary(0))                       # Le 00 = 256
    assert (len(data(first)), sw(first)) == (256, apdu.SW_OK)
    last = card.transmit(apdu.read_binary(256))
    assert (len(data(last)), sw(last)) == (size - 256, end_of_file_sw)
    exact = card.transmit(apdu.read_binary(256, size - 256))
    assert (data(exact), sw(exact)) == (data(last), apdu.SW_OK)
    assert sw(card.transmit(apdu.read_binary(size))) == apdu.SW_WRONG_OFFSET
    assert sw(card.transmit(bytes.fromhex("00B0810000"))) == apdu.SW_WRONG_P1P2


def test_ef_id_carries_the_registry_record_signed_by_the_issuer(make_card, issuer: IssuerKey,
                                                              citizen: dict[str, Any]) -> None:
    card = verified(make_card(citizen))
    ef_id, signature = read_file(card, apdu.FID_ID), read_file(card, apdu.FID_ID_SIG)
    identity = decode_identity(ef_id)
    assert identity.national_number == citizen["national_number"]
    assert identity.family_name_latin == "Al-Khoury"
    assert identity.issuer_key_id == issuer.key_id
    assert passive_check(TrustStore([issuer.public_key]), identity.issuer_key_id, ef_id, signature)
    assert read_file(card, apdu.FID_PHOTO)[:2] == b"\xff\xd8"


def test_pin_tries_and_status_query(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen, pin="4321")
    card.transmit(apdu.select_aid())
    assert sw(card.transmit(apdu.verify_status())) == 0x63C3
    assert sw(card.transmit(bytes(apdu.verify(pin_block("1234"))))) == 0x63C2
    assert sw(card.transmit(apdu.verify_status())) == 0x63C2
    assert sw(card.transmit(bytes.fromhex("0020000108141234FFFFFFFFFF")))  == apdu.SW_WRONG_LENGTH
    assert sw(card.transmit(bytes.fromhex("00200001042414321F"))) == apdu.SW_WRONG_LENGTH
    assert sw(card.transmit(apdu.verify_status())) == 0x63C2            # malformed blocks cost nothing
    assert sw(card.transmit(bytes(apdu.verify(pin_block("4321"))))) == apdu.SW_OK
    assert sw(card.transmit(apdu.verify_status())) == apdu.SW_OK
    card.transmit(apdu.select_aid())                                   # selecting again clears it
    assert sw(card.transmit(apdu.verify_status())) == 0x63C3
    for left in (2, 1, 0):
        assert sw(card.transmit(bytes(apdu.verify(pin_block("0000"))))) == 0x63C0 | left
    assert sw(card.transmit(bytes(apdu.verify(pin_block("4321"))))) == apdu.SW_PIN_BLOCKED
    card.reset()
    card.transmit(apdu.select_aid())
    assert sw(card.transmit(apdu.verify_status())) == apdu.SW_PIN_BLOCKED   # the counter survives


@pytest.mark.parametrize("clear", ["reset", "power_off", "select_aid"])
def test_state_cleared_by_reset_power_off_and_select(make_card, citizen: dict[str, Any], clear: str) -> None:
    card = verified(make_card(citizen))
    card.transmit(apdu.select_ef(apdu.FID_ID, fcp=False))
    if clear == "select_aid":
        card.transmit(apdu.select_aid())
    else:
        getattr(card, clear)()
        card.power_on()
        card.transmit(apdu.select_aid())
    assert sw(card.transmit(apdu.select_ef(apdu.FID_ID, fcp=False))) == apdu.SW_OK
    assert sw(card.transmit(apdu.read_binary(0))) == apdu.SW_SECURITY_NOT_SATISFIED


def test_internal_authenticate(make_card, citizen: dict[str, Any]) -> None:
    card = verified(make_card(citizen))
    card_key = load_card_key(decode_identity(read_file(card, apdu.FID_ID)).card_public_key)
    challenge = new_challenge()
    answer = card.transmit(apdu.internal_authenticate(challenge))
    assert sw(answer) == apdu.SW_OK
    card_key.verify(data(answer), challenge, ec.ECDSA(hashes.SHA256()))
    assert sw(card.transmit(bytes.fromhex("008800000401020304"))) == apdu.SW_WRONG_LENGTH
    assert sw(card.transmit(bytes.fromhex("00880101") + apdu.internal_authenticate(challenge)[4:])) \
        == apdu.SW_WRONG_P1P2


def test_t0_card_answers_61xx_and_6cxx(make_card, citizen: dict[str, Any]) -> None:
    card = make_card(citizen, profile=CardProfile.T0)
    assert card.atr == ATR_T0 and make_card(citizen).atr == ATR_T1
    verified(card)
    assert card.transmit(apdu.select_ef(apdu.FID_ID_SIG, fcp=True)) == b"\x61\x0d"
    assert card.transmit(apdu.get_response(0x20)) == b"\x6c\x0d"
    first = card.transmit(apdu.get_response(5))
    assert (len(data(first)), sw(first)) == (5, 0x6108)
    assert sw(card.transmit(apdu.get_response(8))) == apdu.SW_OK
    card.transmit(apdu.select_ef(apdu.FID_ID_SIG, fcp=False))
    short = card.transmit(apdu.read_binary(0))
    assert short[0] == 0x6C and len(short) == 2
    assert sw(card.transmit(apdu.read_binary(0, short[1]))) == apdu.SW_OK
    assert sw(card.transmit(apdu.get_response(4))) == apdu.SW_INS_NOT_SUPPORTED   # nothing pending


def test_profiles(make_card, issuer: IssuerKey, citizen: dict[str, Any]) -> None:
    trust = TrustStore([issuer.public_key])

    forged = verified(make_card(citizen, profile=CardProfile.FORGED))
    ef_id = read_file(forged, apdu.FID_ID)
    assert decode_identity(ef_id).national_number != citizen["national_number"]
    assert not passive_check(trust, issuer.key_id, ef_id, read_file(forged, apdu.FID_ID_SIG))

    expired = verified(make_card(citizen, profile=CardProfile.EXPIRED))
    identity = decode_identity(read_file(expired, apdu.FID_ID))
    assert identity.date_of_expiry == dt.date.today() - dt.timedelta(days=30)
    assert identity.date_of_issue < identity.date_of_expiry

    no_photo = verified(make_card(citizen, profile=CardProfile.NO_PHOTO))
    assert sw(no_photo.transmit(apdu.select_ef(apdu.FID_PHOTO, fcp=True))) == apdu.SW_NOT_FOUND

    blocked = make_card(citizen, profile=CardProfile.BLOCKED)
    blocked.transmit(apdu.select_aid())
    assert sw(blocked.transmit(bytes(apdu.verify(pin_block("1234"))))) == apdu.SW_PIN_BLOCKED

    silent = verified(make_card(citizen, profile=CardProfile.SILENT))
    silent.transmit(apdu.select_ef(apdu.FID_ID, fcp=False))
    assert sw(silent.transmit(apdu.read_binary(0))) == apdu.SW_OK
    assert silent.transmit(apdu.read_binary(256)) is None

    assert make_card(citizen, profile=CardProfile.SLOW).answer_delay_s > 0
    assert "01020304050" not in repr(make_card(citizen))


def test_every_seed_record_fits_a_card(issuer: IssuerKey) -> None:
    seed = REPO / "central" / "seed" / "citizens.json"
    if not seed.exists():
        pytest.skip("central/seed/citizens.json not written yet")
    for record in load_citizens(seed).values():
        card = verified(SimulatedCard.for_citizen(record, issuer=issuer))
        assert decode_identity(read_file(card, apdu.FID_ID)).national_number == record["national_number"]


# --- kiosk-sim card -------------------------------------------------------------------------

def test_keygen_writes_a_key_pair_and_keeps_an_existing_one(tmp_path: Path, capsys) -> None:
    args = _parse(["card", "keygen", "--out", str(tmp_path)])
    assert args.run(args) == 0
    key = IssuerKey.load(tmp_path / cli.PRIVATE_KEY_FILE)
    assert key.key_id.hex() in capsys.readouterr().out
    assert load_issuer_keys([tmp_path / cli.PUBLIC_KEY_FILE]).key_ids == {key.key_id}
    assert stat.S_IMODE((tmp_path / cli.PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert args.run(args) == 1                                   # no silent overwrite
    assert IssuerKey.load(tmp_path / cli.PRIVATE_KEY_FILE).key_id == key.key_id


def test_control_commands(issuer: IssuerKey, citizens: dict[str, dict[str, Any]]) -> None:
    slot = VirtualCardSlot(port=1)            # never reached: no insert succeeds below
    state = cli.ControlState(citizens, issuer, slot)
    assert state.handle("status") == "ok empty"
    assert state.handle("remove") == "ok empty"
    assert state.handle("insert 99999999999").startswith("error no citizen")
    assert state.handle("insert 01020304050 sparkly").startswith("error unknown profile")
    assert state.handle("insert 01020304050 valid 12") == "error a PIN is 4 to 8 digits"
    assert state.handle("insert 01020304050 valid 1234").startswith("error vpcd is not reachable")
    assert state.handle("fly").startswith("error unknown command")
    assert state.handle("").startswith("error")


@pytest.fixture
def card_server(slot: VirtualCardSlot, tmp_path: Path) -> Iterator[str]:
    """`kiosk-sim card serve` as a child process; yields its control address.
    The `slot` fixture keeps reader 00 00 empty around it."""
    keygen = _parse(["card", "keygen", "--out", str(tmp_path)])
    assert keygen.run(keygen) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.demo.sim_cli", "card", "serve", "--registry", str(CITIZENS_FILE),
         "--issuer-key", str(tmp_path / cli.PRIVATE_KEY_FILE), "--control", "127.0.0.1:0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in process.stdout:                      # wait for the announcement
            if "card_sim.serving" in line:
                address = line.split("control=")[1].split()[0]
                break
        else:
            pytest.fail("kiosk-sim card serve did not start")
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_serve_insert_and_remove(card_server: str, tmp_path: Path, capsys) -> None:
    trust = load_issuer_keys([tmp_path / cli.PUBLIC_KEY_FILE])
    reader, events = PyscardCardReader(trust, reader_name=READER), EventLog()
    reader.watch(events)
    try:
        insert = _parse(["card", "insert", "01020304050", "--profile", "EXPIRED", "--control", card_server])
        assert insert.run(insert) == 0
        assert "ok inserted profile=expired" in capsys.readouterr().out
        assert events.wait_for(CardEvent.INSERTED)
        status = _parse(["card", "status", "--control", card_server])
        assert status.run(status) == 0
        assert "ok card profile=expired" in capsys.readouterr().out
        assert insert.run(insert) == 1                                  # one card at a time
        assert reader.connect() is ConnectResult.CONNECTED
        assert reader.authenticate("1234", today=dt.date.today()).verdict is CardVerdict.EXPIRED
        reader.disconnect()
        remove = _parse(["card", "remove", "--control", card_server])
        assert remove.run(remove) == 0
        assert events.wait_for(CardEvent.REMOVED)
    finally:
        reader.unwatch()


def test_client_without_server(capsys) -> None:
    args = _parse(["card", "remove", "--control", "127.0.0.1:1"])
    assert args.run(args) == 1
    assert "cannot reach" in capsys.readouterr().err


def _parse(argv: list[str]) -> Any:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# --- ensure_pcscd ------------------------------------------------------------------------------

def test_ensure_pcscd_uses_the_running_daemon(pcscd: daemon.PcscdHandle) -> None:
    handle = daemon.ensure_pcscd(timeout=5)
    assert not handle.started_by_us and "Virtual PCD 00 00" in handle.readers
    handle.stop()                                    # leaves the running daemon alone
    assert "Virtual PCD 00 00" in daemon.vpcd_readers()


@pytest.fixture
def fake_pcscd(tmp_path: Path, monkeypatch) -> Path:
    """A `pcscd` on PATH that announces itself through a marker file;
    the reader listing is faked to follow that marker."""
    marker = tmp_path / "listening"
    script = tmp_path / "bin" / "pcscd"
    script.parent.mkdir()
    script.write_text("#!%s\nimport os, signal, sys\nif os.environ.get('FAKE_PCSCD_FAIL'): sys.exit(3)\n"
                      "open(%r, 'w').close()\nsignal.pause()\n" % (sys.executable, str(marker)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (script.parent, os.environ["PATH"]))
    monkeypatch.setattr(daemon, "vpcd_readers",
                        lambda: ["Virtual PCD 00 00"] if marker.exists() else [])
    return marker


def test_ensure_pcscd_starts_and_stops_its_own(fake_pcscd: Path, tmp_path: Path) -> None:
    handle = daemon.ensure_pcscd(timeout=10, log_path=str(tmp_path / "pcscd.log"))
    process = handle.process
    assert handle.started_by_us and handle.readers == ["Virtual PCD 00 00"]
    handle.stop()
    assert process.poll() is not None


def test_ensure_pcscd_reports_a_daemon_that_dies(fake_pcscd: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_PCSCD_FAIL", "1")
    with pytest.raises(daemon.PcscdError, match="exited with 3"):
        daemon.ensure_pcscd(timeout=10)


def test_ensure_pcscd_gives_up_after_the_timeout(fake_pcscd: Path, monkeypatch) -> None:
    monkeypatch.setattr(daemon, "vpcd_readers", lambda: [])
    with pytest.raises(daemon.PcscdError, match="within 0.5 s"):
        daemon.ensure_pcscd(timeout=0.5)

