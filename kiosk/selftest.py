"""`kiosk selftest`: a technician's (and a timer's) check of the whole device, one line per check.

This module holds the checks and the report, and runs them; it talks to the
devices through their ports only, builds them as the composition root does
(the backend `kiosk.toml` names, through `kiosk.backends`), and reads the
state database through the outbox backend's own tool (`kiosk.tools`
entry point `outbox-check`, offline/outbox_check.py), so the core imports
no driver and no outbox.

The checks, each with a short name:

    card-reader        present and answering; a card in it is powered and SELECTed (never a PIN)
    payment-terminal   logged in and able to take a sale (`check()`)
    printer            its status; with a test page, a short page printed and cut
    cabinet            the status light walked through every pattern (ending off); the inputs read
                       (door, key, paper: the door open or the paper low is a warning)
    central            reached (HTTPS, the pinned CA) and this kiosk authenticated by its device key
    clock              this kiosk's clock against the Date of central's answer
    disk               free space on the state directory's file system
    outbox             the state database (outbox and journal): integrity, dead letters

Each comes out `ok`, `warning` (it works, but a technician should look:
paper near its end, the cabinet's door open or its paper low, dead letters,
the disk below its alert threshold),
`failed` (the kiosk cannot serve as it should) or `skipped` (nothing to
check: no cabinet configured, no state database yet, central gave no time).
A device that cannot be built, raises, or does not answer within its check's
time limit is `failed`, never a traceback and never a hang. The exit status
is 1 when any check failed (the summary line names them), 0 otherwise.

Details say what a technician needs and nothing personal: no card data, no
citizen, no key material.

With `--report` (the hourly timer's), the report goes to central too (`send_report`: a signed
`POST /api/v1/telemetry/selftest`, kiosk/telemetry.py), which keeps it beside the kiosk's heartbeats.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import requests

from kiosk import backends, wire
from kiosk.central_client import CONNECT_TIMEOUT_S, CentralClient
from kiosk.config import KioskConfig
from kiosk.errors import CentralError
from kiosk.ports.cabinet import Cabinet, CabinetInput, Light, NoCabinet
from kiosk.ports.card_reader import CardReader, ConnectResult, ReaderStatus
from kiosk.ports.central import Central
from kiosk.ports.payment_terminal import PaymentTerminal, TerminalState
from kiosk.ports.receipt_printer import (
    PrinterStatus, PrintJob, PrintResult, QrBlock, ReceiptPrinter, TextBlock,
)
from kiosk.provisioning import load_device_key

MB = 1024 * 1024
# Central refuses a signature older than this (wire.SIGNATURE_MAX_AGE_S); a clock this far off
# from central's already fails here, long before.
CLOCK_TOLERANCE_S = 60.0
OUTBOX_TOOL = "outbox-check"
DETAIL_MAX = 200

# The checks in the order they are reported.
CARD_READER, PAYMENT_TERMINAL, PRINTER, CABINET = "card-reader", "payment-terminal", "printer", "cabinet"
CENTRAL, CLOCK, DISK, OUTBOX = "central", "clock", "disk", "outbox"
NAMES = (CARD_READER, PAYMENT_TERMINAL, PRINTER, CABINET, CENTRAL, CLOCK, DISK, OUTBOX)
# The device checks and the configuration key that names each one's backend.
DEVICE_KEYS = {CARD_READER: "card.backend", PAYMENT_TERMINAL: "payment.backend", PRINTER: "printer.backend",
               CABINET: "cabinet.backend"}
# The light's walk: every pattern, ending off.
LIGHT_WALK = tuple(light for light in Light if light is not Light.OFF) + (Light.OFF,)


class Outcome(enum.Enum):
    OK = "ok"
    WARNING = "warning"      # works, but a technician should look; does not fail the run
    FAILED = "failed"
    SKIPPED = "skipped"      # nothing to check here


@dataclass(frozen=True)
class Verdict:
    """What one check found: an outcome and one line for a technician (no personal data)."""

    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], Verdict]
    timeout_s: float


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str
    seconds: float

    def line(self) -> str:
        return "%-8s %-17s %s" % (self.outcome.value, self.name, self.detail)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.outcome.value, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Report:
    device_id: str
    checked_at: str                  # ISO 8601, UTC
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if r.outcome is Outcome.FAILED)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        if self.failed:
            return "selftest: FAILED: %s" % ", ".join(self.failed)
        counted = ["%d checks" % len(self.results)]
        for outcome in (Outcome.WARNING, Outcome.SKIPPED):
            count = sum(r.outcome is outcome for r in self.results)
            if count:
                counted.append("%d %s" % (count, outcome.value))
        return "selftest: ok (%s)" % ", ".join(counted)

    def lines(self) -> list[str]:
        return [r.line() for r in self.results] + [self.summary()]

    def to_json(self) -> dict:
        """The report for a machine (central, later): stable keys, no personal data."""
        return {"device_id": self.device_id, "checked_at": self.checked_at, "ok": not self.failed,
                "failed": list(self.failed), "checks": [r.to_json() for r in self.results]}


# -- running -------------------------------------------------------------------------------------------------

def run_checks(checks: Sequence[Check], *,
               on_result: Callable[[CheckResult], None] | None = None) -> tuple[CheckResult, ...]:
    """Run every check at once, each on a thread of its own, and collect them in order: a check that
    raises is FAILED with the error's kind, one still running at its time limit is FAILED (its thread
    is left to end by itself; it is a daemon). `on_result` hears each result in order, as it comes."""
    started = time.monotonic()
    runs = [_Running(check) for check in checks]
    results = []
    for running in runs:
        result = running.result(started + running.check.timeout_s)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return tuple(results)


class _Running:
    def __init__(self, check: Check) -> None:
        self.check = check
        self._verdict: Verdict | None = None
        self._seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="selftest-%s" % check.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        begun = time.monotonic()
        try:
            verdict = self.check.run()
        except Exception as exc:        # a check never ends the run: its failure is its line
            verdict = Verdict(Outcome.FAILED, "error: %s" % describe(exc))
        self._seconds = time.monotonic() - begun
        self._verdict = verdict

    def result(self, deadline: float) -> CheckResult:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            return CheckResult(self.check.name, Outcome.FAILED,
                               "no answer within %g s" % self.check.timeout_s, self.check.timeout_s)
        verdict = self._verdict or Verdict(Outcome.FAILED, "the check ended without a verdict")
        return CheckResult(self.check.name, verdict.outcome, _one_line(verdict.detail), self._seconds)


def describe(exc: BaseException) -> str:
    """An error as one short line: its kind and its message."""
    text = str(exc)
    return type(exc).__name__ + (": " + text if text else "")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_MAX else text[:DETAIL_MAX - 3] + "..."


def device_check(name: str, build: Callable[[], Any], examine: Callable[[Any], Verdict],
                 timeout_s: float) -> Check:
    """A check of one device: built (a device that cannot be is FAILED), examined, let go."""
    def run() -> Verdict:
        try:
            device = build()
        except Exception as exc:
            return Verdict(Outcome.FAILED, "cannot be set up: %s" % describe(exc))
        try:
            return examine(device)
        finally:
            close = getattr(device, "close", None)
            if callable(close):
                close()
    return Check(name, run, timeout_s)


# -- the checks, on the ports ------------------------------------------------------------------------------------

def check_card_reader(reader: CardReader) -> Verdict:
    """Present and answering; a card in it is connected (power and SELECT) and let go, never asked a PIN."""
    status = reader.status
    if status is ReaderStatus.NO_READER:
        return Verdict(Outcome.FAILED, "no reader (unplugged, or pcscd does not see it)")
    if status is ReaderStatus.UNKNOWN:
        return Verdict(Outcome.FAILED, "the reader's status cannot be read (is pcscd running?)")
    if status is ReaderStatus.NO_CARD:
        return Verdict(Outcome.OK, "reader present, no card in it")
    try:
        connected = reader.connect()
    finally:
        reader.disconnect()
    if connected is ConnectResult.CONNECTED:
        return Verdict(Outcome.OK, "reader present; the card in it answered SELECT")
    if connected is ConnectResult.NO_CARD:
        return Verdict(Outcome.OK, "reader present, no card in it")
    return Verdict(Outcome.WARNING, "reader present; the card in it does not answer as an ID card (take it out)")


def check_payment_terminal(terminal: PaymentTerminal) -> Verdict:
    state = terminal.check()
    if state is TerminalState.READY:
        return Verdict(Outcome.OK, "logged in, ready for a sale")
    if state is TerminalState.BUSY:
        return Verdict(Outcome.WARNING, "reachable but busy (a sale under way, or the terminal's own menu)")
    return Verdict(Outcome.FAILED, "unreachable (power, cable, address, or its login refused)")


_PRINTER_TROUBLE = {
    PrinterStatus.NO_PAPER: "no paper",
    PrinterStatus.COVER_OPEN: "cover open",
    PrinterStatus.DISCONNECTED: "disconnected (no answer from the printer)",
}


def selftest_page(device_id: str, when: datetime) -> PrintJob:
    """A short page: a line of text, the device and the time, a small QR code, and the cut."""
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return PrintJob((TextBlock("KIOSK SELF TEST", centered=True), TextBlock("device %s" % device_id),
                     TextBlock(stamp), QrBlock("selftest:%s" % device_id, size=4),
                     TextBlock("text, QR code and cut: ok if you can read this", centered=True)), cut=True)


def check_printer(printer: ReceiptPrinter, *, page: PrintJob | None = None) -> Verdict:
    """The printer's status; with `page`, the page printed too."""
    status = printer.status()
    if status in _PRINTER_TROUBLE:
        return Verdict(Outcome.FAILED, _PRINTER_TROUBLE[status])
    said = {PrinterStatus.READY: "ready", PrinterStatus.PAPER_NEAR_END: "paper near its end",
            PrinterStatus.UNKNOWN: "answering, status unknown"}[status]
    outcome = Outcome.OK if status is PrinterStatus.READY else Outcome.WARNING
    if page is None:
        return Verdict(outcome, said)
    printed = printer.print_job(page)
    if printed.result is not PrintResult.PRINTED:
        return Verdict(Outcome.FAILED, "%s, but the test page failed: %s" % (said, printed.status.value))
    return Verdict(outcome, "%s; test page printed (%d bytes)" % (said, printed.bytes_sent))


# The inputs as the cabinet check says them, in this order (the help button, a moment, has no state).
_INPUT_WORDS = (
    (CabinetInput.DOOR_OPENED, "door open"), (CabinetInput.DOOR_CLOSED, "door closed"),
    (CabinetInput.MAINTENANCE_ON, "key on"), (CabinetInput.MAINTENANCE_OFF, "key off"),
    (CabinetInput.PAPER_LOW, "paper low"), (CabinetInput.PAPER_OK, "paper ok"),
)
# Inputs a technician should see to, though the kiosk works: a warning, never a failure (the door
# open takes the kiosk out of service until it is shut, and a technician running the check may well
# have it open; paper low still prints). The key on is the technician's own: ok.
CABINET_WARNINGS = frozenset({CabinetInput.DOOR_OPENED, CabinetInput.PAPER_LOW})


def check_cabinet(cabinet: Cabinet) -> Verdict:
    """The status light walked through every pattern, ending off; then the inputs read as they are
    (`Cabinet.inputs`): the door open or the paper low is a warning, anything else ok."""
    if isinstance(cabinet, NoCabinet):
        return Verdict(Outcome.SKIPPED, "no cabinet configured (cabinet.backend = \"none\")")
    for light in LIGHT_WALK:
        cabinet.show(light)
    inputs = cabinet.inputs()
    said = ", ".join(words for what, words in _INPUT_WORDS if what in inputs)
    outcome = Outcome.WARNING if inputs & CABINET_WARNINGS else Outcome.OK
    return Verdict(outcome, "light walked through %s; %s" % (", ".join(light.value for light in LIGHT_WALK), said))


_REFUSALS = {
    "unknown_device": "central does not know this kiosk: enrol it (kiosk provision --central URL --code CODE)",
    "device_revoked": "central revoked this kiosk: it needs a new enrolment code",
    "unauthenticated": "central refuses this kiosk's signature (its device key, or its clock: see clock)",
}


def check_central(central: Central, *, transport: str) -> Verdict:
    """A signed call (the catalogue): central reached and this kiosk authenticated. `transport` says how
    it was reached ("HTTPS, central's CA pinned", ...)."""
    try:
        catalogue = central.fetch_signed_catalogue()
    except CentralError as exc:
        refused = central.device_refused()
        if refused is not None:
            return Verdict(Outcome.FAILED, _REFUSALS.get(refused, "central refuses this kiosk: %s" % refused))
        return Verdict(Outcome.FAILED, "unreachable over %s: %s" % (transport, exc))
    refused = central.device_refused()
    if refused is not None:
        return Verdict(Outcome.FAILED, _REFUSALS.get(refused, "central refuses this kiosk: %s" % refused))
    version = catalogue.get("version") if isinstance(catalogue, dict) else None
    return Verdict(Outcome.OK, "reached over %s; this kiosk authenticated (catalogue %s)" % (
        transport, "version %s" % version if version else "served"))


def check_clock(offset: Callable[[], float | None]) -> Verdict:
    """`offset()` is this kiosk's clock minus central's, in seconds; None when central gave no time."""
    try:
        seconds = offset()
    except Exception as exc:
        return Verdict(Outcome.SKIPPED, "central gave no time to compare with (%s)" % describe(exc))
    if seconds is None:
        return Verdict(Outcome.SKIPPED, "central's answer carried no Date to compare with")
    said = "%+.0f s from central's" % seconds
    if abs(seconds) > wire.SIGNATURE_MAX_AGE_S:
        return Verdict(Outcome.FAILED, "%s: central refuses signatures beyond %d s (set the time: NTP)" % (
            said, wire.SIGNATURE_MAX_AGE_S))
    if abs(seconds) > CLOCK_TOLERANCE_S:
        return Verdict(Outcome.FAILED, "%s: more than %d s apart (NTP?)" % (said, CLOCK_TOLERANCE_S))
    return Verdict(Outcome.OK, said)


def check_disk(directory: Path, *, alert_mb: int, reserve_mb: int,
               free_bytes: Callable[[Path], int] | None = None) -> Verdict:
    """Free space on the file system the state directory is (or will be) on, against
    `outbox.disk_alert_mb` (a warning) and `outbox.disk_reserve_mb` (paid services stop: failed)."""
    where = Path(directory)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = (free_bytes or _statvfs_free)(where)
    said = "%d MB free for %s" % (free // MB, directory)
    if free < reserve_mb * MB:
        return Verdict(Outcome.FAILED, "%s: below the reserve of %d MB, paid services are unavailable"
                       % (said, reserve_mb))
    if free < alert_mb * MB:
        return Verdict(Outcome.WARNING, "%s: below the alert threshold of %d MB" % (said, alert_mb))
    return Verdict(Outcome.OK, "%s (alert below %d MB, reserve %d MB)" % (said, alert_mb, reserve_mb))


def _statvfs_free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


# -- from the configuration ----------------------------------------------------------------------------------------

def central_transport(config: KioskConfig) -> str:
    if config.central.url.startswith("https://"):
        return "HTTPS, central's CA pinned" if config.central.ca_file else "HTTPS"
    return "plain HTTP (loopback, development only)"


def run_central_check(config: KioskConfig) -> Verdict:
    """The signed call with this kiosk's device key, through the kiosk's own client."""
    key = load_device_key(config.central.device_key_path)
    if key is None:
        return Verdict(Outcome.FAILED, "not provisioned: no device key at %s (kiosk provision --central URL "
                       "--code CODE)" % config.central.device_key_path)
    with CentralClient(config.central.url, device_id=config.device_id, timeout_s=config.central.timeout_s,
                       ca_file=config.central.ca_file, device_key=key) as client:
        return check_central(client, transport=central_transport(config))


def clock_offset(config: KioskConfig) -> float | None:
    """This kiosk's clock minus central's, from the Date header of central's health answer (a public GET;
    TLS verified against the pinned CA, with the configured timeout); None without a Date. The Date
    counts whole seconds: it is taken as the middle of its second, against the middle of the call."""
    timeout = config.central.timeout_s
    ca_file = config.central.ca_file
    before = time.time()
    response = requests.get(config.central.url.rstrip("/") + wire.HEALTH, allow_redirects=False,
                            timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout),
                            verify=os.fspath(ca_file) if ca_file is not None else True)
    after = time.time()
    response.close()
    date = response.headers.get("Date")
    if not date:
        return None
    try:
        central_time = parsedate_to_datetime(date).timestamp() + 0.5
    except (TypeError, ValueError):
        return None
    return (before + after) / 2 - central_time


def run_outbox_check(config: KioskConfig) -> Verdict:
    """The outbox backend's own check of the state database (`kiosk.tools` entry point `outbox-check`)."""
    check = backends.load_tool(OUTBOX_TOOL)
    return check(config)


def timeouts_for(config: KioskConfig, *, test_page: bool = False) -> dict[str, float]:
    """Each check's time limit: a little more than the device's own deadlines, so that a device that
    answers late says why itself, and one that hangs is FAILED."""
    return {
        CARD_READER: 3 * config.card.apdu_timeout_s + 5.0,
        PAYMENT_TERMINAL: 20.0,
        PRINTER: (3 if test_page else 1) * config.printer.timeout_s + 5.0,
        CABINET: 5.0,
        CENTRAL: 3 * config.central.timeout_s + 5.0,     # the catalogue is asked up to three times
        CLOCK: config.central.timeout_s + 5.0,
        DISK: 5.0,
        OUTBOX: 60.0,                                     # quick_check reads the whole file
    }


def checks_for(config: KioskConfig, *, test_page: bool = False, beside_kiosk: bool = False,
               builders: Mapping[str, Callable[[], Any]] | None = None,
               runs: Mapping[str, Callable[[], Verdict]] | None = None,
               timeouts: Mapping[str, float] | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> list[Check]:
    """Every check for the kiosk of `config`. A device is built as the composition root builds it (the
    backend its key names), unless `builders` gives one (a test's fakes, or a factory that fails);
    `runs` replaces a whole check by name (central, clock, disk, outbox), `timeouts` a time limit.
    `beside_kiosk`: the kiosk is running and holds its devices (the reader's card, the terminal's
    login, the cabinet's pins, the printer's connection): their checks are skipped, the rest run."""
    limits = {**timeouts_for(config, test_page=test_page), **(timeouts or {})}
    builders = dict(builders or {})
    for name, key in DEVICE_KEYS.items():
        if name not in builders:
            section = key.split(".")[0]
            builders[name] = _builder(config, key, getattr(config, section).backend)
    page = selftest_page(config.device_id, now()) if test_page else None
    examine: dict[str, Callable[[Any], Verdict]] = {
        CARD_READER: check_card_reader,
        PAYMENT_TERMINAL: check_payment_terminal,
        PRINTER: lambda printer: check_printer(printer, page=page),
        CABINET: check_cabinet,
    }
    whole: dict[str, Callable[[], Verdict]] = {
        CENTRAL: lambda: run_central_check(config),
        CLOCK: lambda: check_clock(lambda: clock_offset(config)),
        DISK: lambda: check_disk(config.outbox.path.parent, alert_mb=config.outbox.disk_alert_mb,
                                 reserve_mb=config.outbox.disk_reserve_mb),
        OUTBOX: lambda: run_outbox_check(config),
        **(runs or {}),
    }
    checks = []
    for name in NAMES:
        if name in examine and beside_kiosk:
            checks.append(Check(name, lambda: Verdict(Outcome.SKIPPED, "held by the running kiosk"), 1.0))
        elif name in examine:
            checks.append(device_check(name, builders[name], examine[name], limits[name]))
        else:
            checks.append(Check(name, whole[name], limits[name]))
    return checks


def _builder(config: KioskConfig, key: str, name: str) -> Callable[[], Any]:
    return lambda: backends.load(key, name)(config)


def send_report(config: KioskConfig, report: Report) -> str | None:
    """The report to central, signed with this kiosk's device key: None when central took it, else why not
    (one line, for a technician)."""
    from kiosk.telemetry import send_selftest_report

    key = load_device_key(config.central.device_key_path)
    if key is None:
        return "not provisioned: no device key at %s" % config.central.device_key_path
    with CentralClient(config.central.url, device_id=config.device_id, timeout_s=config.central.timeout_s,
                       ca_file=config.central.ca_file, device_key=key) as client:
        if send_selftest_report(client.send_telemetry, report.to_json()):
            return None
        refused = client.device_refused()
    return _REFUSALS.get(refused, "central refuses this kiosk: %s" % refused) if refused else \
        "central did not take it (unreachable, or it refused the report)"


def run(config: KioskConfig, *, test_page: bool = False, beside_kiosk: bool = False,
        on_result: Callable[[CheckResult], None] | None = None, **options: Any) -> Report:
    """Run every check (`checks_for`'s `options`) and report."""
    checked_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = run_checks(checks_for(config, test_page=test_page, beside_kiosk=beside_kiosk, **options),
                         on_result=on_result)
    return Report(config.device_id, checked_at, results)
