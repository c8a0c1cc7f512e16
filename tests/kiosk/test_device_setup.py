"""`kiosk provision --setup` (kiosk/device_setup.py and the CLI): what the technician is shown and asked, and
the configuration file written from the answers: valid, holding the chosen reader and printer, 0644, the old
file kept as .bak, the state directory 0700; a refusal or an invalid file writes nothing."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from kiosk import backends, cli
from kiosk import config as kiosk_config
from kiosk.device_setup import (
    Choice, Discovery, SetupError, UsbPrinter, choose, configuration_for, make_state_dir, to_toml, write_config,
)

FOUND = Discovery(readers=("ACS ACR39U 00 00", "Virtual PCD 00 00"),
                  printers=(UsbPrinter(0x04B8, 0x0202, "Epson TM-T88 series", True),),
                  serial_ports=("/dev/ttyUSB0",))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pems(tmp_path: Path) -> tuple[Path, Path]:
    issuer, ca = tmp_path / "issuer.pub.pem", tmp_path / "central-ca.pem"
    issuer.write_bytes(b"-----BEGIN PUBLIC KEY-----\n")      # only their presence is checked
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    return issuer, ca


def ask(discovery: Discovery, answers: str, **options) -> tuple[Choice | None, str]:
    out = io.StringIO()
    return choose(discovery, answers=io.StringIO(answers), out=out, **options), out.getvalue()


def write(path: Path, choice: Choice, pems: tuple[Path, Path], *, device_id: str = "kiosk-setup-01",
          existing: Path | None = None):
    issuer, ca = pems
    raw = configuration_for(choice, existing=existing, device_id=device_id, central_url="https://central.example",
                            trust=[issuer], ca=ca, state_dir=path.parent / "state")
    return write_config(path, to_toml(raw))


def test_the_devices_are_shown_numbered_and_the_chosen_ones_are_written(tmp_path, pems) -> None:
    choice, shown = ask(FOUND, "2\n1\ny\n", config_path=tmp_path / "kiosk.toml")
    assert "  1. ACS ACR39U 00 00\n  2. Virtual PCD 00 00\n" in shown
    assert "  1. Epson TM-T88 series (USB 04b8:0202)\n  2. serial printer on /dev/ttyUSB0\n" in shown

    path = tmp_path / "etc" / "kiosk.toml"
    config = write(path, choice, pems)
    assert kiosk_config.load(path) == config                       # what `kiosk config check` accepts
    assert config.device_id == "kiosk-setup-01" and config.central.url == "https://central.example"
    assert config.card.reader == "Virtual PCD 00 00"
    assert (config.printer.transport, config.printer.usb_vendor_id, config.printer.usb_product_id) == \
        ("usb", 0x04B8, 0x0202)
    assert config.card.trusted_issuers == (pems[0],) and config.central.ca_file == pems[1]
    assert mode(path) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["kiosk.toml"]     # no temporary file left

    state = make_state_dir(config)
    assert state == tmp_path / "etc" / "state" and mode(state) == 0o700
    assert config.central.device_key_path.parent == state


def test_a_serial_printer_can_be_chosen(tmp_path, pems) -> None:
    choice, _shown = ask(FOUND, "\n2\nyes\n")
    config = write(tmp_path / "kiosk.toml", choice, pems)
    assert config.card.reader == "ACS ACR39U 00 00"
    assert (config.printer.transport, config.printer.serial_device) == ("serial", "/dev/ttyUSB0")


def test_yes_takes_the_first_of_each_without_asking(tmp_path, pems) -> None:
    choice, shown = ask(FOUND, "", yes=True)
    assert "[y/N]" not in shown and "[1-" not in shown
    config = write(tmp_path / "kiosk.toml", choice, pems)
    assert config.card.reader == "ACS ACR39U 00 00" and config.printer.transport == "usb"


def test_an_answer_out_of_range_is_asked_again() -> None:
    choice, shown = ask(FOUND, "7\n1\n2\ny\n")
    assert "answer a number from 1 to 2" in shown and choice.reader == "ACS ACR39U 00 00"
    assert choice.printer == {"transport": "serial", "serial_device": "/dev/ttyUSB0"}


@pytest.mark.parametrize("answers", ["n\n", "1\nn\n", "1\n1\nn\n", "1\n1\n\n", ""])
def test_a_refused_answer_chooses_nothing(answers) -> None:
    assert ask(FOUND, answers)[0] is None


def test_a_refused_answer_writes_nothing(tmp_path, pems, monkeypatch, capsys) -> None:
    monkeypatch.setattr(backends, "load_tool", lambda name: {"discover": lambda: FOUND}[name])
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    path = tmp_path / "kiosk.toml"
    status = cli.main(["provision", "--setup", "--central", "https://central.example", "--code", "ABCD-EFGH",
                       "--config", str(path), "--device-id", "kiosk-setup-01", "--trust", str(pems[0]),
                       "--state-dir", str(tmp_path / "state")])
    assert status == 1 and "stopped, nothing written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central-ca.pem", "issuer.pub.pem"]


def test_no_reader_and_no_pcscd_are_said_and_the_first_reader_is_configured(tmp_path, pems) -> None:
    found = Discovery(readers_problem="pcscd is not running or not answering (EstablishContextException)",
                      printers_problem="no USB backend: libusb 1.0 is not installed", serial_ports=("/dev/serial0",))
    choice, shown = ask(found, "1\ny\n")
    assert "none found: pcscd is not running" in shown and "USB printers not looked for: no USB backend" in shown
    config = write(tmp_path / "kiosk.toml", choice, pems)
    assert config.card.reader == "" and config.printer.serial_device == "/dev/serial0"


def test_no_printer_at_all_stops_the_setup() -> None:
    with pytest.raises(SetupError, match="no printer found"):
        ask(Discovery(readers=("Virtual PCD 00 00",)), "1\n1\ny\n")


def test_a_network_printer_given_is_offered(tmp_path, pems) -> None:
    choice, shown = ask(Discovery(), "1\ny\n", printer_host="192.0.2.7")
    assert "  1. network printer at 192.0.2.7" in shown
    assert write(tmp_path / "kiosk.toml", choice, pems).printer.host == "192.0.2.7"


def test_the_existing_file_is_kept_as_bak_and_its_other_values_stay(tmp_path, pems) -> None:
    path = tmp_path / "kiosk.toml"
    first = write(path, ask(FOUND, "1\n1\ny\n")[0], pems)
    path.write_text(path.read_text(encoding="utf-8") + '\n[site]\nplace_en = "Town hall"\n', encoding="utf-8")
    old = path.read_bytes()

    second = write(path, ask(FOUND, "2\n2\ny\n")[0], pems, existing=path)
    assert path.with_name("kiosk.toml.bak").read_bytes() == old
    assert second.site.place_en == "Town hall" and second.card.reader == "Virtual PCD 00 00"
    assert second.printer.transport == "serial" and second.printer.usb_vendor_id == 0   # the USB ids went with it
    assert first.card.reader == "ACS ACR39U 00 00"


def test_an_invalid_configuration_replaces_nothing(tmp_path, pems) -> None:
    path = tmp_path / "kiosk.toml"
    write(path, ask(FOUND, "1\n1\ny\n")[0], pems)
    old = path.read_bytes()
    with pytest.raises(SetupError, match=r"nothing written: kiosk.toml: `device_id`"):
        write(path, ask(FOUND, "2\n1\ny\n")[0], pems, device_id="not an id!")
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central-ca.pem", "issuer.pub.pem", "kiosk.toml"]


def test_setup_options_without_setup_are_refused(capsys) -> None:
    assert cli.main(["provision", "--central", "https://central.example", "--code", "X", "--yes"]) == 2
    assert "go with --setup" in capsys.readouterr().err


@pytest.mark.realstack
def test_setup_writes_enrols_and_runs_the_selftest(tmp_path, pems, central, devices, monkeypatch, capsys) -> None:
    found = Discovery(serial_ports=(str(tmp_path / "ttyUSB0"),))        # a serial printer that is not there
    real_load_tool = backends.load_tool                                  # the self-test's outbox-check
    monkeypatch.setattr(backends, "load_tool", lambda name: (lambda: found) if name == "discover"
                        else real_load_tool(name))
    code, _expires = devices.issue_code("kiosk-setup-02")
    path = tmp_path / "etc" / "kiosk.toml"
    status = cli.main(["provision", "--setup", "--yes", "--central", central.url, "--code", code,
                       "--config", str(path), "--device-id", "kiosk-setup-02", "--trust", str(pems[0]),
                       "--state-dir", str(tmp_path / "state")])
    out = capsys.readouterr().out
    config = kiosk_config.load(path)
    assert config.device_id == "kiosk-setup-02" and mode(tmp_path / "state") == 0o700
    assert mode(config.central.device_key_path) == 0o600
    assert "enrolled: device kiosk-setup-02" in out
    assert "ok       central" in out
    assert out.rstrip().splitlines()[-1].startswith("selftest: ")
    assert (status == 1) == ("selftest: FAILED" in out)
