"""The kiosk's reports to central (kiosk/telemetry.py) on the fakes: heartbeats on schedule and soon after
a change, debounced; alerts kept in the state database while the link is down and delivered after, even
across a restart; the audit log shipped in batches, resumed from where central holds it; nothing personal
in any body; a kiosk central refuses stops quietly; commands handed to the hook.

The kiosk is tests/kiosk/test_runtime_effects.py's, on its state database; central's side is central's
own (central/telemetry.py) on a database of the test's, reached in process: every body the kiosk sends is
checked as central checks it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from central import migrate
from central.db import Database
from central.models import Device
from central.telemetry import AuditBatchBody, HeartbeatBody, SelftestBody, Telemetry as CentralTelemetry
from kiosk import wire
from kiosk.central_client import TelemetryReply
from kiosk.ports.audit import AuditEntry, verify_chain
from kiosk.ports.cabinet import CabinetInput
from kiosk.ports.outbox import LinkState
from kiosk.ports.telemetry import MemoryTelemetryStore
from kiosk.session import Reason, Step
from kiosk.telemetry import KioskFacts, MachineFacts, Telemetry, send_selftest_report
from offline.audit_log import SqliteAuditLog
from offline.telemetry_store import SqliteTelemetryStore
from tests.kiosk.test_runtime_effects import IDENTITY, WAIT_S, Kiosk

DEVICE_ID = "kiosk-test-01"
BODIES = {wire.TELEMETRY_HEARTBEAT: HeartbeatBody, wire.TELEMETRY_AUDIT: AuditBatchBody,
          wire.TELEMETRY_SELFTEST: SelftestBody}


class Central:
    """Central's telemetry, reached in process: `send` is what CentralClient.send_telemetry is to the kiosk.
    `reachable`, `refusal` and `commands` are set by the test; every call is recorded, in order."""

    def __init__(self, db_url: str) -> None:
        self.database = Database(db_url)
        migrate.upgrade_engine(self.database.engine)
        with self.database.writing() as session:
            session.add(Device(device_id=DEVICE_ID, public_key="ab" * 32, enrolled_at="2026-11-29T09:00:00Z"))
        self.commands: list[dict] = []
        self.telemetry = CentralTelemetry(self.database, commands_for=lambda _device: list(self.commands))
        self.reachable = True
        self.refusal: str | None = None
        self.audit_down_after: int | None = None      # audit batches taken before central stops answering them
        self.calls: list[tuple[str, dict, int | None]] = []    # (path, body, HTTP status; None: not reached)
        self._called = threading.Condition()

    def send(self, path: str, body: dict) -> TelemetryReply | None:
        reply = self._answer(path, body)
        with self._called:
            self.calls.append((path, body, reply.http_status if reply is not None else None))
            self._called.notify_all()
        return reply

    def _answer(self, path: str, body: dict) -> TelemetryReply | None:
        if not self.reachable:
            return None
        if self.refusal is not None:
            return TelemetryReply(403, {"status": "error", "reason": self.refusal})
        if path == wire.TELEMETRY_AUDIT and self.audit_down_after is not None:
            if self.audit_down_after == 0:
                return TelemetryReply(503, {"status": "error", "reason": "http_503"})
            self.audit_down_after -= 1
        parsed = BODIES[path].model_validate_json(json.dumps(body))      # central's own check of the body
        answer = {wire.TELEMETRY_HEARTBEAT: self.telemetry.heartbeat, wire.TELEMETRY_AUDIT: self.telemetry.audit,
                  wire.TELEMETRY_SELFTEST: self.telemetry.selftest}[path](DEVICE_ID, parsed)
        return TelemetryReply(answer.http_status, answer.body)

    def wait_for(self, what: Callable[[list[tuple[str, dict, int | None]]], object]) -> object:
        """Wait until `what(calls)` is true (of the calls so far); its value."""
        with self._called:
            found = self._called.wait_for(lambda: what(self.calls), timeout=WAIT_S)
        assert found, "central never received it: %s" % [(p, s) for p, _b, s in self.calls]
        return found

    def heartbeats(self) -> list[dict]:
        return [body for path, body, _status in self.calls if path == wire.TELEMETRY_HEARTBEAT]

    def held_audit(self) -> list[AuditEntry]:
        from sqlalchemy import select

        from central.models import KioskAuditEntry
        with self.database.reading() as session:
            rows = session.scalars(select(KioskAuditEntry).order_by(KioskAuditEntry.seq)).all()
        return [AuditEntry(r.seq, r.at, r.event, r.device_id, r.technician, r.detail, r.hash) for r in rows]

    def alerts(self) -> list[tuple[str, str]]:
        from sqlalchemy import select

        from central.models import KioskAlert
        with self.database.reading() as session:
            return [(a.code, a.raised_at) for a in session.scalars(select(KioskAlert).order_by(KioskAlert.raised_at))]


def heartbeat_with(**facts: object) -> Callable[[list], dict | None]:
    """A test of central's calls: the first heartbeat received whose fields have these values."""
    def found(calls: list) -> dict | None:
        return next((body for path, body, status in calls if path == wire.TELEMETRY_HEARTBEAT and status == 200
                     and all(body.get(key) == value for key, value in facts.items())), None)
    return found


def audit_held_up_to(seq: int) -> Callable[[list], bool]:
    """A test of central's calls: it answered an audit batch that ended at `seq`."""
    return lambda calls: any(path == wire.TELEMETRY_AUDIT and status == 200 and body["entries"][-1]["seq"] == seq
                             for path, body, status in calls)


class Clock:
    """The telemetry's monotonic clock, moved by the test: its debounce and schedule then hold still."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def central(tmp_path) -> Iterator[Central]:
    central = Central("sqlite:///%s" % (tmp_path / "central.sqlite3"))
    yield central
    central.database.dispose()


@pytest.fixture
def kiosk_with(central: Central) -> Iterator[Callable[..., tuple[Kiosk, Telemetry]]]:
    """`kiosk_with(**telemetry_options)`: the fakes' kiosk, with its audit log and the telemetry on its state
    database, not started; `before=` a kiosk whose run this one follows on the same disk (a restart)."""
    started: list[Kiosk] = []

    def made(*, before: Kiosk | None = None, link: Callable[[], LinkState] | None = None,
             **options: object) -> tuple[Kiosk, Telemetry]:
        kiosk = before.restarted() if before is not None else Kiosk()
        options.setdefault("heartbeat_s", 3600.0)
        options.setdefault("debounce_s", 0.01)
        telemetry = Telemetry(central.send, version="0.1.0", machine=lambda: MachineFacts(20480, 1500), **options)
        telemetry.keep_in(SqliteTelemetryStore(kiosk.database))
        kiosk.runtime.telemetry = telemetry
        kiosk.runtime.audit = SqliteAuditLog(kiosk.database, DEVICE_ID, anchor_path=None)
        if link is not None:
            kiosk.outbox.link = link                              # what the outbox sees of central's link
        started.append(kiosk)
        return kiosk, telemetry

    yield made
    for kiosk in started:
        kiosk.runtime.stop()


# -- the schedule, and changes ----------------------------------------------------------------------------------


def test_a_heartbeat_goes_at_start_and_then_on_schedule_with_nothing_changed(central, kiosk_with):
    kiosk, _telemetry = kiosk_with(heartbeat_s=0.05, debounce_s=0.01)
    kiosk.start()
    central.wait_for(lambda calls: len([c for c in calls if c[0] == wire.TELEMETRY_HEARTBEAT and c[2] == 200]) >= 4)
    beats = central.heartbeats()
    last = beats[3]
    assert (last["state"], last["reason"], last["door"], last["paper"], last["version"], last["disk_free_mb"],
            last["memory_available_mb"]) == ("ready", None, "closed", "ok", "0.1.0", 20480, 1500)
    assert last["devices"] == {"card_reader": "no_card", "terminal": "ready", "printer": "ready"}
    assert last["alerts"] == [] and last["queue_depth"] == 0 and last["dead_letters"] == 0


def test_a_door_opened_sends_a_heartbeat_at_once_with_the_state_the_door_and_the_alert(central, kiosk_with):
    kiosk, _telemetry = kiosk_with()                       # the schedule: once an hour
    kiosk.start()
    central.wait_for(heartbeat_with(state="ready"))
    kiosk.cabinet.work(CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    beat = central.wait_for(heartbeat_with(state="out_of_service", door="open"))
    assert beat["reason"] == "door_open"
    assert [alert["code"] for alert in beat["alerts"]] == ["cabinet.door_opened"]
    assert [code for code, _at in central.alerts()] == ["cabinet.door_opened"]


def test_changes_close_together_go_in_one_heartbeat_after_the_debounce(central, kiosk_with):
    clock = Clock()
    kiosk, telemetry = kiosk_with(debounce_s=5.0, monotonic=clock)
    kiosk.start()
    central.wait_for(lambda calls: central.heartbeats())     # at start, at 0 s
    clock.now = 1.0
    kiosk.cabinet.work(CabinetInput.PAPER_LOW)              # an alert, and the paper low
    kiosk.cabinet.work(CabinetInput.DOOR_OPENED)            # and another
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    clock.now = 5.5                                          # the debounce is over
    telemetry.changed()
    beat = central.wait_for(heartbeat_with(door="open"))
    assert len(central.heartbeats()) == 2                    # nothing between the first and this one
    assert beat["paper"] == "low" and beat["state"] == "out_of_service"
    assert [alert["code"] for alert in beat["alerts"]] == ["printer.paper_low", "cabinet.door_opened"]


# -- alerts while the link is down, and after a restart -----------------------------------------------------------


def test_a_door_opened_while_the_link_is_down_reaches_central_after_a_restart_when_the_link_is_back(central,
                                                                                                    kiosk_with):
    link = [LinkState.OFFLINE]
    kiosk, telemetry = kiosk_with(link=lambda: link[0])
    kiosk.start()
    kiosk.cabinet.work(CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    telemetry.stop()                                         # the kiosk restarts (systemd), the link still down
    assert central.calls == []                               # nothing was tried while the link was down
    kept = SqliteTelemetryStore(kiosk.database).alerts(10)
    assert [alert.code for alert in kept] == ["cabinet.door_opened"]

    again, _telemetry = kiosk_with(before=kiosk, link=lambda: link[0])
    again.runtime.start()
    link[0] = LinkState.ONLINE                               # the outbox's probe sees central again
    central.wait_for(lambda calls: central.alerts())
    assert central.alerts() == [("cabinet.door_opened", kept[0].raised_at)]
    again.runtime.stop()
    assert SqliteTelemetryStore(again.database).alerts(10) == []     # acknowledged: forgotten


def test_an_alert_raised_while_central_cannot_be_reached_goes_with_a_later_heartbeat(central, kiosk_with):
    kiosk, _telemetry = kiosk_with(heartbeat_s=0.05)
    central.reachable = False
    kiosk.start()
    central.wait_for(lambda calls: len(calls) >= 1)          # it found central unreachable
    kiosk.cabinet.work(CabinetInput.PAPER_LOW)
    kiosk.cabinet.work(CabinetInput.HELP_PRESSED)           # after the paper: the session heard both
    kiosk.run_until(Step.ATTRACT, help_called=True)
    central.reachable = True
    beat = central.wait_for(heartbeat_with(paper="low"))
    assert [alert["code"] for alert in beat["alerts"]] == ["printer.paper_low", "cabinet.help"]


# -- the audit log ----------------------------------------------------------------------------------------------


def test_the_audit_log_goes_in_batches_and_a_restart_resumes_from_what_central_acknowledged(central, kiosk_with):
    kiosk, telemetry = kiosk_with(audit_batch=40, heartbeat_s=3600.0)
    audit = kiosk.runtime.audit
    for number in range(100):
        audit.append("technician.test_print", "page_%d" % number)
    central.audit_down_after = 2                             # central takes two batches, then is busy
    kiosk.start()
    central.wait_for(lambda calls: any(path == wire.TELEMETRY_AUDIT and status == 503 for path, _b, status in calls))
    telemetry.stop()
    assert [entry.seq for entry in central.held_audit()] == list(range(1, 81))
    assert SqliteTelemetryStore(kiosk.database).audit_position() == 80

    central.audit_down_after = None
    again, _telemetry = kiosk_with(before=kiosk, audit_batch=40)
    again.runtime.audit.append("technician.test_print", "after_restart")
    sent_before = len(central.calls)
    again.start()
    central.wait_for(audit_held_up_to(101))
    resumed = [body["entries"][0]["seq"] for path, body, _s in central.calls[sent_before:]
               if path == wire.TELEMETRY_AUDIT]
    assert resumed[0] == 81                                  # from the entry after central's, not from 1
    held = central.held_audit()
    assert held == list(again.runtime.audit.all_entries())
    assert verify_chain(held).ok


def test_a_kiosk_whose_position_is_ahead_of_central_catches_up_from_centrals(central, kiosk_with):
    kiosk, _telemetry = kiosk_with()
    for number in range(5):
        kiosk.runtime.audit.append("technician.test_print", "page_%d" % number)
    SqliteTelemetryStore(kiosk.database).save_audit_position(3)      # central's copy was restored from a backup
    kiosk.start()
    central.wait_for(audit_held_up_to(5))
    assert verify_chain(central.held_audit()).ok


# -- what leaves the kiosk ----------------------------------------------------------------------------------------


def test_no_body_carries_a_citizens_numbers_names_or_pin(central, kiosk_with):
    kiosk, telemetry = kiosk_with()
    kiosk.start()
    kiosk.pay()                                              # a paid journey, its card and PIN
    kiosk.run_until(Step.TAKE_CARD, printed=True)
    kiosk.cabinet.work(CabinetInput.DOOR_OPENED)
    kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
    central.wait_for(heartbeat_with(door="open"))
    report = {"device_id": DEVICE_ID, "checked_at": "2026-11-29T10:00:00Z", "ok": True, "failed": [],
              "checks": [{"name": "disk", "status": "ok", "detail": "20480 MB free", "seconds": 0.001}]}
    assert send_selftest_report(central.send, report)
    telemetry.stop()
    sent = json.dumps([body for _path, body, _status in central.calls], ensure_ascii=False)
    for secret in (IDENTITY.national_number, IDENTITY.card_number, IDENTITY.given_name_ar, IDENTITY.family_name_ar,
                   IDENTITY.given_name_latin, IDENTITY.family_name_latin, "Salma"):
        assert secret not in sent
    values = [value for _path, body, _status in central.calls for value in _leaves(body)]
    assert "1234" not in values                              # the PIN as a value of its own
    assert any(path == wire.TELEMETRY_AUDIT for path, _b, _s in central.calls)   # the audit log went too


def _leaves(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


# -- refusals and commands -----------------------------------------------------------------------------------------


def test_a_revoked_kiosk_says_so_once_and_tries_again_only_on_schedule(central, kiosk_with, caplog):
    clock = Clock()
    central.refusal = "device_revoked"
    kiosk, telemetry = kiosk_with(monotonic=clock)
    with caplog.at_level(logging.INFO, logger="kiosk.telemetry"):
        kiosk.start()
        central.wait_for(lambda calls: len(calls) == 1)
        clock.now = 10.0
        kiosk.cabinet.work(CabinetInput.DOOR_OPENED)        # a change, an alert: not sent before the schedule
        kiosk.run_until(Step.OUT_OF_SERVICE, reason=Reason.DOOR_OPEN)
        telemetry.changed()
        clock.now = 3600.0
        telemetry.changed()
        central.wait_for(lambda calls: len(calls) >= 2)
        telemetry.stop()
    heartbeats = central.heartbeats()
    assert len(heartbeats) == 2 and heartbeats[1]["door"] == "open"      # the one at 3600 s, nothing between
    assert all(path == wire.TELEMETRY_HEARTBEAT for path, _b, _s in central.calls)   # no audit shipped
    assert caplog.text.count("telemetry.device_refused reason=device_revoked") == 1


def test_commands_in_the_answer_are_handed_to_the_hook(central, kiosk_with):
    handed: list[list] = []
    got = threading.Event()

    def on_commands(envelopes: list) -> None:
        handed.append(envelopes)
        got.set()

    central.commands = [{"command_id": "cmd-1", "action": "resync"}, {"command_id": "cmd-2", "action": "reboot"}]
    kiosk, _telemetry = kiosk_with(on_commands=on_commands)
    kiosk.start()
    assert got.wait(WAIT_S)
    assert handed[0] == central.commands


def test_without_a_hook_commands_are_only_counted_in_the_log(central, caplog):
    central.commands = [{"command_id": "cmd-1"}]
    telemetry = Telemetry(central.send, version="0.1.0", heartbeat_s=3600.0, debounce_s=0.01,
                          store=MemoryTelemetryStore())
    with caplog.at_level(logging.INFO, logger="kiosk.telemetry"):
        telemetry.start(lambda ask_devices: KioskFacts("ready"))
        central.wait_for(lambda calls: calls)
        telemetry.stop()
    assert "telemetry.commands_unhandled count=1" in caplog.text
    assert "cmd-1" not in caplog.text
