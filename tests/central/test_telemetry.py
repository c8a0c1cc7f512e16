"""Central keeps what each kiosk reports (central/telemetry.py): heartbeats as a history and as each
kiosk's latest status, alerts once each, the audit log with its hash chain checked, self-test reports;
over loopback, with real signed calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from central import cli
from central.db import Database, utc_now
from central.devices import Devices
from central.models import Device, KioskAlert, KioskAuditEntry, KioskHeartbeat, KioskSelftest, KioskStatus
from central.server import RunningCentral
from central.telemetry import CHAIN_BROKEN_ALERT, Telemetry
from kiosk import cli as kiosk_cli
from kiosk import config as kiosk_config
from kiosk import wire
from kiosk.central_client import signed_by
from kiosk.ports.audit import AuditEntry, verify_chain
from kiosk.provisioning import provision, public_key_hex
from offline.audit_log import SqliteAuditLog
from offline.database import StateDatabase
from tests.central.conftest import new_id
from tests.central.stub_http import ApiClient
from tests.running_central import enrol

HEARTBEAT = wire.TELEMETRY_HEARTBEAT[len(wire.API):]
AUDIT = wire.TELEMETRY_AUDIT[len(wire.API):]
SELFTEST = wire.TELEMETRY_SELFTEST[len(wire.API):]


def heartbeat(**changes: object) -> dict:
    """A heartbeat as a kiosk in service sends it (kiosk/telemetry.py's heartbeat_body)."""
    body = {"sent_at": "2026-11-29T10:00:00Z", "version": "0.1.0", "state": "ready", "reason": None,
            "queue_depth": 0, "dead_letters": 0, "last_sync_at": "2026-11-29T09:59:30Z",
            "devices": {"card_reader": "no_card", "terminal": "ready", "printer": "ready"},
            "paper": "ok", "door": "closed", "disk_free_mb": 20480, "memory_available_mb": 1500,
            "last_error": None, "alerts": []}
    body.update(changes)
    return body


@pytest.fixture
def kiosk(central: RunningCentral, central_db_url: str) -> Iterator[tuple[str, ApiClient]]:
    """A kiosk of the test's own, enrolled: (its device id, a client that signs its calls)."""
    device_id = new_id("kiosk")
    key = enrol(central.url, central_db_url, device_id)
    with ApiClient(central.url + wire.API, timeout_s=10, auth=signed_by(device_id, key)) as client:
        yield device_id, client


@pytest.fixture
def audit_log() -> Callable[..., SqliteAuditLog]:
    """`audit_log(device_id, entries)`: a kiosk's own audit log (offline/audit_log.py), with that many entries
    (their details `<detail>_<n>`)."""
    def made(device_id: str, entries: int, *, detail: str = "step") -> SqliteAuditLog:
        log = SqliteAuditLog(StateDatabase(":memory:"), device_id, anchor_path=None)
        for number in range(entries):
            log.append("technician.test_print" if number % 2 else "cabinet.door_opened", "%s_%d" % (detail, number))
        return log
    return made


def enrol_with_code(central: RunningCentral, device_id: str, code: str) -> Ed25519PrivateKey:
    """`kiosk provision` with the code central's staff gave."""
    key = Ed25519PrivateKey.generate()
    response = requests.post(central.url + wire.ENROL, timeout=10,
                             json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})
    assert response.status_code == 200, response.text
    return key


def batch(entries: list[AuditEntry]) -> dict:
    return {"entries": [entry.to_json() for entry in entries]}


def held_entries(database: Database, device_id: str) -> list[AuditEntry]:
    with database.reading() as session:
        rows = session.scalars(select(KioskAuditEntry).where(KioskAuditEntry.device_id == device_id)
                               .order_by(KioskAuditEntry.seq)).all()
    return [AuditEntry(r.seq, r.at, r.event, r.device_id, r.technician, r.detail, r.hash) for r in rows]


def alerts_of(database: Database, device_id: str) -> list[tuple[str, str]]:
    with database.reading() as session:
        return [(a.code, a.raised_at) for a in session.scalars(
            select(KioskAlert).where(KioskAlert.device_id == device_id).order_by(KioskAlert.raised_at))]


# -- heartbeats ----------------------------------------------------------------------------------------------


def test_heartbeats_are_kept_as_history_and_the_latest_is_the_kiosks_status(kiosk, central_database):
    device_id, client = kiosk
    first = client.post(HEARTBEAT, json=heartbeat())
    # (COMMANDS: the answer also names the catalogue's and announcements' versions, tests/central/test_commands.py)
    assert first.status_code == 200 and {k: first.json()[k] for k in ("status", "commands")} == {
        "status": "ok", "commands": []}
    second = client.post(HEARTBEAT, json=heartbeat(
        sent_at="2026-11-29T10:01:00Z", state="out_of_service", reason="door_open", door="open", paper="low",
        queue_depth=3, dead_letters=1, devices={"card_reader": "no_card", "terminal": "ready",
                                                "printer": "paper_near_end"}, last_error="printer.paper_low"))
    assert second.status_code == 200, second.text
    with central_database.reading() as session:
        history = session.scalars(select(KioskHeartbeat).where(KioskHeartbeat.device_id == device_id)
                                  .order_by(KioskHeartbeat.id)).all()
        status = session.get(KioskStatus, device_id)
    assert [(h.sent_at, h.state, h.door) for h in history] == [
        ("2026-11-29T10:00:00Z", "ready", "closed"), ("2026-11-29T10:01:00Z", "out_of_service", "open")]
    assert (status.state, status.reason, status.door, status.paper, status.queue_depth, status.dead_letters,
            status.version, status.disk_free_mb) == ("out_of_service", "door_open", "open", "low", 3, 1, "0.1.0", 20480)
    assert json.loads(status.facts) == {"devices": {"card_reader": "no_card", "terminal": "ready",
                                                    "printer": "paper_near_end"},
                                        "memory_available_mb": 1500, "last_error": "printer.paper_low"}


def test_an_alert_sent_with_two_heartbeats_is_kept_once(kiosk, central_database):
    device_id, client = kiosk
    door = {"code": "cabinet.door_opened", "raised_at": "2026-11-29T09:58:12.345Z"}
    paper = {"code": "printer.paper_low", "raised_at": "2026-11-29T09:59:00.001Z"}
    assert client.post(HEARTBEAT, json=heartbeat(alerts=[door])).status_code == 200
    assert client.post(HEARTBEAT, json=heartbeat(alerts=[door, paper])).status_code == 200   # its answer was lost
    assert alerts_of(central_database, device_id) == [("cabinet.door_opened", "2026-11-29T09:58:12.345Z"),
                                                      ("printer.paper_low", "2026-11-29T09:59:00.001Z")]


@pytest.mark.parametrize("change", [
    {"reason": "01010012345"},                                  # a national number where a code goes
    {"last_error": "Salma Al-Halabi"},                          # a name
    {"alerts": [{"code": "card.read", "raised_at": "2026-11-29T09:58:12Z", "holder": "سلمى"}]},
    {"holder_name": "Salma"},                                   # a key central does not know
    {"state": "happy"},
    {"queue_depth": "3"},                                       # a count as text
])
def test_a_heartbeat_with_anything_but_codes_is_refused_and_nothing_kept(kiosk, central_database, change):
    device_id, client = kiosk
    response = client.post(HEARTBEAT, json=heartbeat(**change))
    assert response.status_code == 400 and response.json()["reason"] == "invalid_input"
    assert "01010012345" not in response.text and "Salma" not in response.text
    with central_database.reading() as session:
        assert session.get(KioskStatus, device_id) is None
        assert session.scalars(select(KioskHeartbeat).where(KioskHeartbeat.device_id == device_id)).first() is None


@pytest.mark.parametrize("path, body", [(HEARTBEAT, heartbeat()), (AUDIT, {"entries": []}), (SELFTEST, {})])
def test_telemetry_from_anyone_but_an_enrolled_kiosk_is_refused_401(anonymous, path, body, count_rows):
    before = [count_rows(model) for model in (KioskHeartbeat, KioskAuditEntry, KioskSelftest)]
    response = anonymous.post(path, json=body)
    assert response.status_code == 401 and response.json() == {"status": "error", "reason": "unauthenticated"}
    assert [count_rows(model) for model in (KioskHeartbeat, KioskAuditEntry, KioskSelftest)] == before


def test_a_revoked_kiosks_heartbeat_is_refused_403(kiosk, devices, central_database):
    device_id, client = kiosk
    assert devices.revoke(device_id)
    response = client.post(HEARTBEAT, json=heartbeat())
    assert response.status_code == 403 and response.json()["reason"] == "device_revoked"
    with central_database.reading() as session:
        assert session.get(KioskStatus, device_id) is None


# -- the audit log -------------------------------------------------------------------------------------------


def test_audit_batches_that_continue_the_chain_are_kept_whole(kiosk, audit_log, central_database):
    device_id, client = kiosk
    log = audit_log(device_id, 5)
    entries = log.entries()
    first = client.post(AUDIT, json=batch(entries[:3]))
    assert first.status_code == 200 and first.json() == {"status": "ok", "held_seq": 3}
    again = client.post(AUDIT, json=batch(entries[1:5]))       # the answer was lost: 2 and 3 come again
    assert again.status_code == 200 and again.json() == {"status": "ok", "held_seq": 5}
    held = held_entries(central_database, device_id)
    assert held == entries
    assert verify_chain(held).ok


def test_an_edited_entry_breaks_the_chain_409_the_good_ones_before_it_kept_and_one_alert(kiosk, audit_log,
                                                                                           central_database):
    device_id, client = kiosk
    entries = audit_log(device_id, 6).entries()
    assert client.post(AUDIT, json=batch(entries[:2])).status_code == 200
    edited = entries[2:]
    edited[2] = AuditEntry(**{**edited[2].__dict__, "detail": "nothing_happened"})     # seq 5, its hash kept
    for _attempt in range(2):                                  # sent again at the next heartbeat
        response = client.post(AUDIT, json=batch(edited))
        assert response.status_code == 409
        assert response.json() == {"status": "rejected", "reason": "chain_broken", "held_seq": 4, "first_bad": 5}
    assert held_entries(central_database, device_id) == entries[:4]
    assert alerts_of(central_database, device_id) == [(CHAIN_BROKEN_ALERT, entries[4].at)]


def test_a_rewritten_log_and_a_gap_are_chain_broken(kiosk, audit_log, central_database):
    device_id, client = kiosk
    entries = audit_log(device_id, 4).entries()
    assert client.post(AUDIT, json=batch(entries[:2])).status_code == 200
    rewritten = audit_log(device_id, 4, detail="other").entries()     # the same numbers, other entries
    response = client.post(AUDIT, json=batch(rewritten))
    assert response.status_code == 409 and response.json() == {"status": "rejected", "reason": "chain_broken",
                                                               "held_seq": 2, "first_bad": 1}
    gap = client.post(AUDIT, json=batch(entries[3:]))          # entry 3 never sent
    assert gap.status_code == 409 and gap.json() == {"status": "rejected", "reason": "chain_broken", "held_seq": 2,
                                                     "first_bad": 3}
    assert held_entries(central_database, device_id) == entries[:2]


def test_a_kiosk_cannot_send_another_kiosks_entries(kiosk, audit_log, central_database):
    device_id, client = kiosk
    theirs = audit_log("kiosk-someone-else", 2).entries()
    response = client.post(AUDIT, json=batch(theirs))
    assert response.status_code == 422 and response.json()["reason"] == "device_mismatch"
    assert held_entries(central_database, device_id) == []


# -- self-test reports ---------------------------------------------------------------------------------------


def report(device_id: str, **changes: object) -> dict:
    body = {"device_id": device_id, "checked_at": "2026-11-29T10:00:00Z", "ok": False, "failed": ["printer"],
            "checks": [{"name": "printer", "status": "failed", "detail": "no paper", "seconds": 0.012},
                       {"name": "disk", "status": "ok", "detail": "20480 MB free for /var/lib/kiosk", "seconds": 0}]}
    body.update(changes)
    return body


def test_self_test_reports_are_kept_as_history(kiosk, central_database):
    device_id, client = kiosk
    assert client.post(SELFTEST, json=report(device_id)).json() == {"status": "ok"}
    assert client.post(SELFTEST, json=report(device_id, checked_at="2026-11-29T11:00:00Z", ok=True,
                                             failed=[])).status_code == 200
    with central_database.reading() as session:
        kept = session.scalars(select(KioskSelftest).where(KioskSelftest.device_id == device_id)
                               .order_by(KioskSelftest.id)).all()
    assert [(r.checked_at, r.ok, r.failed) for r in kept] == [("2026-11-29T10:00:00Z", False, "printer"),
                                                              ("2026-11-29T11:00:00Z", True, "")]
    assert json.loads(kept[0].checks)[0] == {"name": "printer", "status": "failed", "detail": "no paper",
                                              "seconds": 0.012}


def test_a_self_test_report_in_another_kiosks_name_is_refused(kiosk):
    _device_id, client = kiosk
    response = client.post(SELFTEST, json=report("kiosk-someone-else"))
    assert response.status_code == 422 and response.json()["reason"] == "device_mismatch"


# -- history, and what central's staff see ------------------------------------------------------------------


def test_history_older_than_the_days_kept_is_pruned_but_the_status_and_the_audit_log_stay(kiosk, audit_log,
                                                                                          central_database):
    device_id, client = kiosk
    assert client.post(HEARTBEAT, json=heartbeat(alerts=[{"code": "printer.paper_low",
                                                           "raised_at": "2026-11-29T09:59:00.001Z"}])).status_code == 200
    assert client.post(SELFTEST, json=report(device_id)).status_code == 200
    assert client.post(AUDIT, json=batch(audit_log(device_id, 2).entries())).status_code == 200
    in_a_week = Telemetry(central_database, keep_days=5, clock=lambda: utc_now() + timedelta(days=7))
    deleted = in_a_week.prune()
    assert deleted["kiosk_heartbeats"] >= 1 and deleted["kiosk_alerts"] >= 1 and deleted["kiosk_selftests"] >= 1
    with central_database.reading() as session:
        assert session.scalars(select(KioskHeartbeat).where(KioskHeartbeat.device_id == device_id)).first() is None
        assert session.get(KioskStatus, device_id).state == "ready"
    assert alerts_of(central_database, device_id) == []
    assert len(held_entries(central_database, device_id)) == 2


def test_devices_status_lists_each_kiosks_latest_state_and_the_governorate_set_with_its_code(
        central, central_db_url, capsys):
    device_id = new_id("kiosk")
    assert cli.main(["devices", "enrol-code", device_id, "--governorate", "aleppo", "--db", central_db_url]) == 0
    code = capsys.readouterr().out.split("\t")[1]
    key = enrol_with_code(central, device_id, code)
    assert cli.main(["devices", "list", "--db", central_db_url]) == 0
    (listed,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(device_id + "\t")]
    assert "governorate aleppo" in listed
    assert cli.main(["devices", "status", "--db", central_db_url]) == 0
    (before,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(device_id + "\t")]
    assert before == "%s\taleppo\tno heartbeat yet" % device_id
    with ApiClient(central.url + wire.API, timeout_s=10, auth=signed_by(device_id, key)) as client:
        assert client.post(HEARTBEAT, json=heartbeat(state="out_of_service", reason="door_open", door="open",
                                                     paper="low", version="0.2.0")).status_code == 200
    assert cli.main(["devices", "status", "--db", central_db_url]) == 0
    (after,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(device_id + "\t")]
    fields = after.split("\t")
    assert fields[:3] == [device_id, "aleppo", "out_of_service (door_open)"]
    assert fields[3].startswith("last heartbeat 20") and fields[4:9] == ["paper low", "door open", "version 0.2.0",
                                                                         "queue 0", "dead 0"]


def test_a_governorate_that_is_not_a_code_is_refused(central_db_url, capsys):
    assert cli.main(["devices", "enrol-code", new_id("kiosk"), "--governorate", "Damascus City",
                     "--db", central_db_url]) == 2
    assert "--governorate is a code" in capsys.readouterr().err


def test_the_governorate_is_the_devices_once_it_enrols(central_database, central):
    device_id = new_id("kiosk")
    code, _expires = Devices(central_database).issue_code(device_id, governorate="homs")
    enrol_with_code(central, device_id, code)
    with central_database.reading() as session:
        assert session.get(Device, device_id).governorate == "homs"


def kiosk_toml(folder: Path, device_id: str, central_url: str) -> Path:
    """A kiosk's configuration on the fake devices, its state in `folder`/state."""
    (folder / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    path = folder / "kiosk.toml"
    path.write_text(textwrap.dedent("""\
        device_id = "%s"
        [central]
        url = "%s"
        device_key_path = "state/device-key.pem"
        [card]
        backend = "fake"
        trusted_issuers = ["issuer.pub.pem"]
        [payment]
        backend = "fake"
        [printer]
        backend = "fake"
        [outbox]
        path = "state/outbox.sqlite3"
        disk_alert_mb = 0
        disk_reserve_mb = 0
        """ % (device_id, central_url)))
    return path


def test_kiosk_selftest_report_sends_its_json_to_central_which_keeps_it(central, central_database, tmp_path, capsys):
    device_id = new_id("kiosk")
    path = kiosk_toml(tmp_path, device_id, central.url)
    config = kiosk_config.load(path)
    code, _expires = Devices(central_database).issue_code(device_id)
    provision(config, central.url, code)
    capsys.readouterr()
    kiosk_cli.main(["selftest", "--json", "--report", "--beside-kiosk", "--config", str(path)])
    printed = json.loads(capsys.readouterr().out)
    with central_database.reading() as session:
        (kept,) = session.scalars(select(KioskSelftest).where(KioskSelftest.device_id == device_id)).all()
    assert printed["device_id"] == device_id
    assert (kept.checked_at, kept.ok, kept.failed) == (printed["checked_at"], printed["ok"], ",".join(printed["failed"]))
    assert json.loads(kept.checks) == printed["checks"]
    assert {check["name"]: check["status"] for check in printed["checks"]}["central"] == "ok"


def test_a_report_central_does_not_take_is_said_on_stderr_and_the_exit_status_is_the_tests(tmp_path, capsys):
    path = kiosk_toml(tmp_path, "kiosk-nowhere-01", "http://127.0.0.1:9")       # never provisioned
    status = kiosk_cli.main(["selftest", "--json", "--report", "--beside-kiosk", "--config", str(path)])
    captured = capsys.readouterr()
    assert status == 1 and json.loads(captured.out)["failed"] == ["central"]     # not provisioned
    assert "the report was not sent to central: not provisioned" in captured.err
