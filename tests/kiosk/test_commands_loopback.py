"""Central's commands and pushes end to end, over loopback: the reference central on a thread, and a
kiosk built as `kiosk run` builds it (kiosk/app.py: its real client, telemetry, state database, commands
desk) on the in-process fakes of its devices. The test thread plays Kivy's part, running what the
workers post.

What a member of staff sends reaches the kiosk in its heartbeat's answer, is carried out between two
citizens, audited on the kiosk and acknowledged at central; the same envelope again, also after a
restart, is refused and said so; a fee changed at central is the fee the next citizen confirms and pays;
an announcement reaches the attract screen.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import select

from central.announcements import Announcements
from central.catalogue_store import find_service, load_catalogue, set_fee
from central.commands import Commands
from central.db import Database
from central.devices import Devices
from central.models import KioskCommand, KioskSelftest
from central.server import RunningCentral
from drivers.fakes.card_reader import FakeCardReader
from drivers.fakes.payment_terminal import FakePaymentTerminal
from drivers.fakes.receipt_printer import FakeReceiptPrinter
from kiosk import config as kiosk_config
from kiosk import events as ev
from kiosk.app import build_runtime
from kiosk.money import Money
from kiosk.ports.card_reader import Identity
from kiosk.provisioning import provision
from kiosk.runtime import Devices as KioskDevices
from kiosk.runtime import Runtime
from kiosk.session import Reason, Step
from kiosk.wire import CommandAction
from tests.card_presence import ISSUER, issued_card
from tests.central.stub_acquirer import StubAcquirer
from tests.posted_results import run_until
from tests.running_central import start_without_rate_limits

pytestmark = pytest.mark.realstack   # central on loopback (see README)

WAIT_S = 30.0
DEVICE_ID = "kiosk-commands-01"
SERVICE = "civil-status-extract"        # offered everywhere
KHALED = Identity(card_number="SY1000000001", national_number="01020345671", given_name_ar="خالد",
                  family_name_ar="الحداد", given_name_latin="Khaled", family_name_latin="Al-Haddad",
                  date_of_birth=date(1975, 3, 14), date_of_expiry=date(2032, 5, 9),
                  issuer_key_id=b"\x01" * 8, card_public_key=b"\x02" * 91)


@pytest.fixture(scope="module")
def central_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3")


@pytest.fixture(scope="module")
def central(central_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    issuer_pem = tmp_path_factory.mktemp("issuer") / "issuer.pub.pem"
    issuer_pem.write_bytes(ISSUER.public_pem)
    with StubAcquirer() as acquirer:
        running = start_without_rate_limits(central_db_url, acquirer_url=acquirer.url, issuer_key_paths=[issuer_pem])
        yield running
        running.stop()


@pytest.fixture(scope="module")
def database(central: RunningCentral, central_db_url: str) -> Iterator[Database]:
    database = Database(central_db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def config(central: RunningCentral, database: Database, tmp_path_factory: pytest.TempPathFactory):
    """The kiosk's configuration, enrolled at central in Damascus as a technician enrols it."""
    directory = tmp_path_factory.mktemp("kiosk")
    (directory / "issuer.pem").write_bytes(ISSUER.public_pem)
    config = kiosk_config.parse({
        "device_id": DEVICE_ID,
        "central": {"url": central.url, "catalogue_key": "central-key.pem", "device_key_path": "device-key.pem"},
        "card": {"trusted_issuers": ["issuer.pem"]},
        "printer": {"host": "127.0.0.1"},
        "site": {"governorate": "damascus"},
        "outbox": {"path": "state/kiosk.sqlite3"},
        "catalogue": {"refresh_s": 3600},                       # only a command or a heartbeat's answer refreshes
        "telemetry": {"heartbeat_s": 0.5, "debounce_s": 0.2},
    }, base_dir=directory)
    code, _expires = Devices(database).issue_code(DEVICE_ID, governorate="damascus")
    provision(config, central.url, code)
    return config


class Kiosk:
    """The kiosk of `config`, started, on fakes; the test thread runs what its workers post."""

    def __init__(self, config) -> None:
        self.posted: queue.Queue = queue.Queue()
        self.card = FakeCardReader()
        self.payment = FakePaymentTerminal()
        self.runtime: Runtime = build_runtime(config, self.posted.put, devices=KioskDevices(
            self.card, self.payment, FakeReceiptPrinter()))
        self.runtime.start()

    @property
    def view(self):
        return self.runtime.session.view()

    def run_until(self, step: Step, **view: object) -> None:
        run_until(self.runtime, self.posted, step, timeout=WAIT_S, **view)

    def run_while(self, waiting: Callable[[], bool], what: str) -> None:
        """Run posted results until `waiting()` is false (each wait is for the next one posted)."""
        deadline = time.monotonic() + WAIT_S
        while waiting():
            if time.monotonic() > deadline:
                pytest.fail("still waiting for %s" % what)
            try:
                self.posted.get(timeout=max(0.0, deadline - time.monotonic()))()
            except queue.Empty:
                continue

    def audited(self, prefix: str = "command.") -> list[tuple[str, str]]:
        return [(e.event, e.detail) for e in self.runtime.audit.all_entries() if e.event.startswith(prefix)]

    def to_confirm(self) -> None:
        """A citizen: language, card, PIN, the service: the confirm screen."""
        self.runtime.dispatch(ev.LanguageChosen("ar"))
        self.card.insert(issued_card(KHALED))
        self.run_until(Step.PIN_ENTRY)
        for digit in "1234":
            self.runtime.dispatch(ev.PinDigit(digit))
        self.runtime.dispatch(ev.PinSubmit())
        self.run_until(Step.IDENTITY)
        self.runtime.dispatch(ev.ShowServices())
        self.runtime.dispatch(ev.ServiceChosen(SERVICE))
        self.run_until(Step.CONFIRM)

    def stop(self) -> None:
        self.runtime.stop()
        while not self.posted.empty():
            self.posted.get_nowait()


@pytest.fixture
def kiosk(config) -> Iterator[Kiosk]:
    made = Kiosk(config)
    made.run_until(Step.ATTRACT)
    yield made
    made.stop()


def central_state(database: Database, command_id: str) -> tuple[str, str | None]:
    with database.reading() as session:
        row = session.get(KioskCommand, command_id)
        return row.state, row.reason


def carried_out(kiosk: Kiosk, command_id: str) -> None:
    """Run the kiosk until the command is finished in its ledger and central has been told."""
    ledger = kiosk.runtime.commands.ledger
    kiosk.run_while(lambda: ledger.outcome(command_id) is None, "command %s to be carried out" % command_id)
    assert kiosk.runtime.commands.wait_idle(WAIT_S)       # the report to central has gone


def test_out_of_service_and_back_between_citizens_acknowledged_and_audited_on_both_sides(kiosk, database):
    commands = Commands(database)
    (out,) = commands.send(CommandAction.OUT_OF_SERVICE, [DEVICE_ID])
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.CENTRAL_STAFF)
    carried_out(kiosk, out.command_id)
    assert central_state(database, out.command_id) == ("done", None)
    (back,) = commands.send(CommandAction.IN_SERVICE, [DEVICE_ID])
    kiosk.run_until(Step.ATTRACT)
    carried_out(kiosk, back.command_id)
    assert central_state(database, back.command_id) == ("done", None)
    assert kiosk.audited() == [("command.taken", "out-of-service"), ("command.done", "out-of-service"),
                               ("command.taken", "in-service"), ("command.done", "in-service")]
    assert [event for _at, _device, event, _detail in commands.events(out.command_id)] == ["sent", "delivered", "done"]


def test_the_same_envelope_again_is_refused_and_said_so_also_after_a_restart(config, database, caplog):
    caplog.set_level(logging.INFO)          # as `kiosk run` logs (kiosk/logs.py): what collect-logs sends
    commands = Commands(database)
    kiosk = Kiosk(config)
    try:
        kiosk.run_until(Step.ATTRACT)
        (sent,) = commands.send(CommandAction.COLLECT_LOGS, [DEVICE_ID])
        carried_out(kiosk, sent.command_id)
        assert central_state(database, sent.command_id) == ("done", None)
        logs = commands.logs(sent.command_id)
        assert logs is not None and any("commands.taken" in line for line in logs.lines)
        with database.reading() as session:
            envelope = json.loads(session.get(KioskCommand, sent.command_id).envelope)
        kiosk.runtime.commands.receive([envelope])           # replayed by someone on the way
        kiosk.run_while(lambda: ("command.refused", "collect-logs:replayed") not in kiosk.audited(), "the refusal")
    finally:
        kiosk.stop()
    restarted = Kiosk(config)
    try:
        restarted.run_until(Step.ATTRACT)
        restarted.runtime.commands.receive([envelope])
        restarted.run_while(lambda: restarted.audited().count(("command.refused", "collect-logs:replayed")) < 2,
                            "the refusal after the restart")
        assert restarted.runtime.commands.wait_idle(WAIT_S)
    finally:
        restarted.stop()
    assert central_state(database, sent.command_id) == ("done", None)      # a replay changes nothing there
    assert [(event, detail) for _at, _device, event, detail in commands.events(sent.command_id)][-2:] == [
        ("reported_again", "refused:replayed"), ("reported_again", "refused:replayed")]


def test_a_selftest_runs_beside_the_kiosk_and_its_report_reaches_central(kiosk, database):
    (sent,) = Commands(database).send(CommandAction.SELFTEST, [DEVICE_ID])
    carried_out(kiosk, sent.command_id)
    assert central_state(database, sent.command_id) == ("done", None)
    with database.reading() as session:
        (report,) = session.scalars(select(KioskSelftest).where(KioskSelftest.device_id == DEVICE_ID))
    checks = {check["name"]: check["status"] for check in json.loads(report.checks)}
    assert checks["card-reader"] == "skipped" and checks["central"] == "ok"      # the kiosk's devices left alone
    assert kiosk.view.step is Step.ATTRACT


def test_a_fee_changed_at_central_is_the_fee_confirmed_and_charged_by_the_next_citizen(kiosk, database):
    before, new_fee, version = changed_fee(database, 25000)
    try:
        # The kiosk's next heartbeat names central's new catalogue version: fetched while nobody is served.
        kiosk.run_while(lambda: kiosk.view.catalogue_version != version, "the new catalogue")
        kiosk.to_confirm()
        assert kiosk.view.selected.fee == new_fee and not kiosk.view.fee_changed
        kiosk.runtime.dispatch(ev.Pay())
        kiosk.run_while(lambda: not kiosk.payment.statement, "the charge")
        assert [sale.amount for sale in kiosk.payment.statement] == [new_fee]
    finally:
        with database.writing() as session:
            set_fee(session, SERVICE, before.amount_minor)


def test_a_resync_fetches_the_catalogue_before_it_is_done(kiosk, database):
    before, _new_fee, version = changed_fee(database, 50000)
    try:
        (sent,) = Commands(database).send(CommandAction.RESYNC, [DEVICE_ID])
        carried_out(kiosk, sent.command_id)
        assert kiosk.view.catalogue_version == version
        assert central_state(database, sent.command_id) == ("done", None)
    finally:
        with database.writing() as session:
            set_fee(session, SERVICE, before.amount_minor)


def test_an_announcement_reaches_the_attract_screen(kiosk, database):
    announcements = Announcements(database)
    made = announcements.announce("يغلق المركز يوم الجمعة", "The centre closes on Friday", governorate="damascus")
    elsewhere = announcements.announce("حلب فقط", "Aleppo only", governorate="aleppo")
    try:
        kiosk.run_while(lambda: kiosk.view.announcement is None, "the announcement")
        assert kiosk.view.announcement.text("ar") == "يغلق المركز يوم الجمعة"
        assert kiosk.view.step is Step.ATTRACT
        announcements.withdraw(made.announcement_id)
        kiosk.run_while(lambda: kiosk.view.announcement is not None, "the announcement withdrawn")
    finally:
        announcements.withdraw(made.announcement_id)
        announcements.withdraw(elsewhere.announcement_id)


def changed_fee(database: Database, more_minor: int) -> tuple[Money, Money, str]:
    """SERVICE's fee raised at central as `kiosk-central catalogue set-fee` does: (the fee before, the fee
    now, the catalogue's version now)."""
    with database.writing() as session:
        before, after = set_fee(session, SERVICE, find_service(session, SERVICE).fee.amount_minor + more_minor)
    with database.reading() as session:
        return before, after, load_catalogue(session).version
