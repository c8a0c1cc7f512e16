"""`kiosk selftest` on the fakes: what a technician reads when each device is missing or failing in turn.

Central and the clock are stood in for (a Central of the test's, an offset it chooses) except where a
test says so; the state database is a real one in the test's folder. Hung devices are released at the
end of their test; nothing here waits on a clock.
"""

from __future__ import annotations

import json
import textwrap
import threading
from datetime import date

import pytest

from drivers.fakes.cabinet import FakeCabinet
from drivers.fakes.card_reader import FakeCard, FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import config as kiosk_config
from kiosk import selftest
from kiosk.central_client import CentralUnreachable
from kiosk.cli import main
from kiosk.ports.cabinet import CabinetInput, Light
from kiosk.ports.card_reader import Identity
from kiosk.ports.central import Central
from kiosk.ports.receipt_printer import PrinterStatus, QrBlock, TextBlock
from kiosk.selftest import Outcome, Verdict

# A made-up holder: the report must never show any of it.
IDENTITY = Identity(
    card_number="SY0099887766", national_number="09090099887", given_name_ar="ريم", family_name_ar="النوري",
    given_name_latin="Reem", family_name_latin="Al-Nouri", date_of_birth=date(1988, 3, 2),
    date_of_expiry=date(2033, 1, 1), issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91,
)
PERSONAL = ("SY0099887766", "09090099887", "Reem", "Nouri", "ريم", "1988")


class StubCentral(Central):
    """Central as the check sees it: answering with a catalogue, unreachable, or refusing this kiosk."""

    def __init__(self, *, reachable: bool = True, refused: str | None = None) -> None:
        self._reachable, self._refused = reachable, refused

    def fetch_signed_catalogue(self) -> dict:
        if self._refused or not self._reachable:
            raise CentralUnreachable("central answered HTTP 401 to the catalogue" if self._refused
                                     else "central unreachable (ConnectionError)")
        return {"version": "v7", "services": []}

    def device_refused(self) -> str | None:
        return self._refused

    def fetch_catalogue(self):
        raise NotImplementedError

    def challenge(self):
        raise NotImplementedError

    def check_eligibility(self, **_kwargs):
        raise NotImplementedError

    def deliver(self, kind, payload):
        raise NotImplementedError


class Devices:
    """The four fakes, as a technician finds them: all fine until a test changes one."""

    def __init__(self) -> None:
        self.reader = FakeCardReader()
        self.terminal = FakePaymentTerminal()
        self.printer = FakeReceiptPrinter()
        self.cabinet = FakeCabinet()

    def builders(self, **replaced):
        built = {selftest.CARD_READER: lambda: self.reader, selftest.PAYMENT_TERMINAL: lambda: self.terminal,
                 selftest.PRINTER: lambda: self.printer, selftest.CABINET: lambda: self.cabinet}
        built.update({name.replace("_", "-"): build for name, build in replaced.items()})
        return built


@pytest.fixture
def config(tmp_path):
    (tmp_path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    path = tmp_path / "kiosk.toml"
    path.write_text(textwrap.dedent("""\
        device_id = "kiosk-test-07"
        [central]
        url = "http://127.0.0.1:9"
        device_key_path = "state/device-key.pem"
        [card]
        backend = "fake"
        trusted_issuers = ["issuer.pub.pem"]
        [payment]
        backend = "fake"
        [printer]
        backend = "fake"
        [cabinet]
        backend = "fake"
        [outbox]
        path = "state/outbox.sqlite3"
        disk_alert_mb = 0
        disk_reserve_mb = 0
        """))
    return kiosk_config.load(path)


@pytest.fixture
def state_database(config):
    """The state database as the kiosk leaves it after its first start."""
    from offline.outbox import Outbox
    Outbox(config.outbox.path).close()
    return config.outbox.path


@pytest.fixture
def devices():
    return Devices()


def run(config, devices, *, central=None, offset=1.0, test_page=False, timeouts=None, **replaced):
    runs = {selftest.CENTRAL: lambda: selftest.check_central(central or StubCentral(), transport="HTTPS"),
            selftest.CLOCK: lambda: selftest.check_clock(lambda: offset)}
    return selftest.run(config, test_page=test_page, builders=devices.builders(**replaced), runs=runs,
                        timeouts=timeouts)


def result(report, name):
    return next(r for r in report.results if r.name == name)


def assert_only_failed(report, name):
    assert report.failed == (name,)
    assert report.exit_status == 1
    assert report.summary() == "selftest: FAILED: %s" % name
    line = next(line for line in report.lines() if line.split()[1:2] == [name])
    assert line.startswith("failed ")


# -- all well ----------------------------------------------------------------------------------------------------

def test_a_healthy_kiosk_passes_every_check_in_order(config, devices, state_database):
    devices.reader.insert(FakeCard(IDENTITY))
    report = run(config, devices)
    assert [r.name for r in report.results] == list(selftest.NAMES)
    assert {r.name: r.outcome for r in report.results} == {name: Outcome.OK for name in selftest.NAMES}
    assert report.exit_status == 0
    assert report.summary() == "selftest: ok (8 checks)"
    assert "answered SELECT" in result(report, "card-reader").detail
    assert devices.reader.card.tries_left == 3           # never asked a PIN
    assert "integrity ok" in result(report, "outbox").detail


def test_beside_the_running_kiosk_its_devices_are_left_alone_and_the_rest_is_checked(config, devices,
                                                                                     state_database):
    devices.reader.insert(FakeCard(IDENTITY))
    runs = {selftest.CENTRAL: lambda: selftest.check_central(StubCentral(), transport="HTTPS"),
            selftest.CLOCK: lambda: selftest.check_clock(lambda: 1.0)}
    report = selftest.run(config, beside_kiosk=True, builders=devices.builders(), runs=runs)
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {**{name: Outcome.SKIPPED for name in selftest.DEVICE_KEYS},
                        **{name: Outcome.OK for name in (selftest.CENTRAL, selftest.CLOCK, selftest.DISK,
                                                         selftest.OUTBOX)}}
    assert devices.cabinet.lights == () and devices.reader.card.tries_left == 3    # nothing touched
    assert report.exit_status == 0


def test_the_light_walks_through_every_pattern_and_ends_off(config, devices, state_database):
    report = run(config, devices)
    assert set(devices.cabinet.lights) == set(Light)
    assert devices.cabinet.light is Light.OFF
    assert result(report, "cabinet").detail.endswith("; door closed, key off, paper ok")


@pytest.mark.parametrize("worked, outcome, said", [
    ((CabinetInput.DOOR_OPENED,), Outcome.WARNING, "door open, key off, paper ok"),
    ((CabinetInput.PAPER_LOW,), Outcome.WARNING, "door closed, key off, paper low"),
    ((CabinetInput.MAINTENANCE_ON,), Outcome.OK, "door closed, key on, paper ok"),        # the technician's own
    ((CabinetInput.DOOR_OPENED, CabinetInput.MAINTENANCE_ON, CabinetInput.PAPER_LOW), Outcome.WARNING,
     "door open, key on, paper low"),
])
def test_the_cabinet_reports_its_inputs_a_door_open_or_paper_low_is_a_warning(config, devices, state_database,
                                                                              worked, outcome, said):
    for what in worked:
        devices.cabinet.work(what)
    report = run(config, devices)
    assert result(report, "cabinet").outcome is outcome
    assert result(report, "cabinet").detail.endswith("; " + said)
    assert report.exit_status == 0


def test_a_cabinet_whose_inputs_cannot_be_read_fails_its_line(config, devices, state_database):
    def inputs():
        raise OSError("GPIO read failed")
    devices.cabinet.inputs = inputs
    report = run(config, devices)
    assert_only_failed(report, "cabinet")
    assert result(report, "cabinet").detail == "error: OSError: GPIO read failed"


def test_the_report_holds_nothing_personal(config, devices, state_database):
    devices.reader.insert(FakeCard(IDENTITY))
    text = "\n".join(run(config, devices).lines()) + json.dumps(run(config, devices).to_json(), ensure_ascii=False)
    assert not [word for word in PERSONAL if word in text]


# -- each device missing, then failing, in turn ---------------------------------------------------------------------

def _missing():
    raise OSError("no such device")


@pytest.mark.parametrize("device", ["card_reader", "payment_terminal", "printer", "cabinet"])
def test_a_device_that_cannot_be_set_up_fails_its_line(config, devices, state_database, device):
    report = run(config, devices, **{device: _missing})
    name = device.replace("_", "-")
    assert_only_failed(report, name)
    assert result(report, name).detail == "cannot be set up: OSError: no such device"


def _unplug_reader(devices):
    devices.reader.unplug()


def _terminal_offline(devices):
    devices.terminal.set_online(False)


def _no_paper(devices):
    devices.printer.set_status(PrinterStatus.NO_PAPER)


def _broken_light(devices):
    def show(_light):
        raise RuntimeError("GPIO busy")
    devices.cabinet.show = show


@pytest.mark.parametrize("name, fail, detail", [
    ("card-reader", _unplug_reader, "no reader (unplugged, or pcscd does not see it)"),
    ("payment-terminal", _terminal_offline, "unreachable (power, cable, address, or its login refused)"),
    ("printer", _no_paper, "no paper"),
    ("cabinet", _broken_light, "error: RuntimeError: GPIO busy"),
])
def test_a_failing_device_fails_its_line(config, devices, state_database, name, fail, detail):
    fail(devices)
    report = run(config, devices)
    assert_only_failed(report, name)
    assert result(report, name).detail == detail


def test_a_hung_printer_fails_at_its_time_limit_and_the_other_checks_still_report(config, devices, state_database):
    released = threading.Event()

    class HungPrinter(FakeReceiptPrinter):
        def status(self):
            released.wait()
            return PrinterStatus.READY
    try:
        report = run(config, devices, printer=HungPrinter, timeouts={selftest.PRINTER: 0.2})
    finally:
        released.set()
    assert_only_failed(report, "printer")
    assert result(report, "printer").detail == "no answer within 0.2 s"


def test_paper_near_its_end_is_a_warning_not_a_failure(config, devices, state_database):
    devices.printer.set_status(PrinterStatus.PAPER_NEAR_END)
    report = run(config, devices)
    assert result(report, "printer").outcome is Outcome.WARNING
    assert report.exit_status == 0 and report.summary() == "selftest: ok (8 checks, 1 warning)"


def test_an_unreadable_card_left_in_the_reader_is_a_warning(config, devices, state_database):
    devices.reader.insert(FakeCard(IDENTITY, unreadable=True))
    report = run(config, devices)
    assert result(report, "card-reader").outcome is Outcome.WARNING
    assert report.exit_status == 0


# -- the test page --------------------------------------------------------------------------------------------------

def test_the_test_page_is_printed_and_cut(config, devices, state_database):
    report = run(config, devices, test_page=True)
    assert result(report, "printer").outcome is Outcome.OK
    assert "test page printed" in result(report, "printer").detail
    (job,) = devices.printer.jobs
    assert job.cut
    assert TextBlock("device kiosk-test-07") in job.blocks
    assert QrBlock("selftest:kiosk-test-07", size=4) in job.blocks


def test_a_test_page_the_roll_ends_in_fails_the_printer(config, devices, state_database):
    devices.printer.run_out_of_paper_after(0)
    report = run(config, devices, test_page=True)
    assert_only_failed(report, "printer")
    assert result(report, "printer").detail == "ready, but the test page failed: no paper"


def test_without_the_flag_nothing_is_printed(config, devices, state_database):
    run(config, devices)
    assert devices.printer.jobs == []


# -- central and the clock --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("central, detail", [
    (StubCentral(reachable=False), "unreachable over HTTPS: central unreachable (ConnectionError)"),
    (StubCentral(refused="device_revoked"), "central revoked this kiosk: it needs a new enrolment code"),
    (StubCentral(refused="unknown_device"), "central does not know this kiosk: enrol it (kiosk provision "
                                            "--central URL --code CODE)"),
])
def test_central_unreachable_or_refusing_this_kiosk_fails(config, devices, state_database, central, detail):
    report = run(config, devices, central=central)
    assert_only_failed(report, "central")
    assert result(report, "central").detail == detail


def test_an_unprovisioned_kiosk_fails_central_without_calling_it(config):
    verdict = selftest.run_central_check(config)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.detail.startswith("not provisioned: no device key at ")


@pytest.mark.parametrize("offset, outcome, detail", [
    (2.4, Outcome.OK, "+2 s from central's"),
    (-59.0, Outcome.OK, "-59 s from central's"),
    (-61.0, Outcome.FAILED, "-61 s from central's: more than 60 s apart (NTP?)"),
    (420.0, Outcome.FAILED, "+420 s from central's: central refuses signatures beyond 300 s (set the time: NTP)"),
    (None, Outcome.SKIPPED, "central's answer carried no Date to compare with"),
])
def test_the_clock_against_centrals(offset, outcome, detail):
    assert selftest.check_clock(lambda: offset) == Verdict(outcome, detail)


# -- the disk ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("free_mb, outcome, said", [
    (1000, Outcome.OK, "(alert below 256 MB, reserve 32 MB)"),
    (100, Outcome.WARNING, "below the alert threshold of 256 MB"),
    (10, Outcome.FAILED, "below the reserve of 32 MB, paid services are unavailable"),
])
def test_the_disk_against_the_alert_and_the_reserve(tmp_path, free_mb, outcome, said):
    verdict = selftest.check_disk(tmp_path / "state", alert_mb=256, reserve_mb=32,
                                  free_bytes=lambda _path: free_mb * selftest.MB)
    assert verdict.outcome is outcome
    assert verdict.detail.startswith("%d MB free for %s" % (free_mb, tmp_path / "state"))
    assert said in verdict.detail


# -- the command -------------------------------------------------------------------------------------------------------

@pytest.fixture
def command(config, monkeypatch, tmp_path):
    """`kiosk selftest` on the fake backends its configuration names; central and the clock stood in for."""
    monkeypatch.setattr(selftest, "run_central_check",
                        lambda _config: selftest.check_central(StubCentral(), transport="HTTPS"))
    monkeypatch.setattr(selftest, "clock_offset", lambda _config: 0.4)
    return ["selftest", "--config", str(tmp_path / "kiosk.toml")]


def test_the_command_prints_one_line_per_check_and_exits_0(command, state_database, capsys):
    assert main(command) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in selftest.NAMES]
    assert lines[-1] == "selftest: ok (8 checks)"


def test_the_command_reports_json(command, state_database, capsys):
    assert main(command + ["--json", "--test-page"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"device_id", "checked_at", "ok", "failed", "checks"}
    assert report["device_id"] == "kiosk-test-07" and report["ok"] is True and report["failed"] == []
    assert [c["name"] for c in report["checks"]] == list(selftest.NAMES)
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "seconds"}
        assert check["status"] == "ok" and check["detail"]
    assert "test page printed" in report["checks"][2]["detail"]


def test_the_command_names_what_failed_and_exits_1(command, config, tmp_path, capsys):
    # The printer's backend is the real ESC/POS driver, pointed at a port where nothing listens.
    path = tmp_path / "kiosk.toml"
    path.write_text(path.read_text().replace('[printer]\nbackend = "fake"',
                                             '[printer]\nbackend = "escpos"\nhost = "127.0.0.1"\nport = 9\n'
                                             'timeout_s = 2'))
    assert main(command) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "failed   printer           disconnected (no answer from the printer)" in lines
    assert "skipped  outbox            no state database yet at %s (the kiosk makes it at its first start)" % (
        config.outbox.path) in lines
    assert lines[-1] == "selftest: FAILED: printer"
    assert main(command + ["--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["failed"] == ["printer"]


def test_an_unreadable_configuration_is_exit_2(tmp_path, capsys):
    assert main(["selftest", "--config", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.startswith("kiosk: ")
