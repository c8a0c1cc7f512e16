"""The telemetry end to end, on the demo's stack: the real kiosk (`kiosk run`) through a paid journey, then
again with the door opened, central over HTTPS with its CA pinned; afterwards central holds the kiosk's
heartbeats, its whole audit log with the chain intact, and the door's alert."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from central.db import Database
from central.models import KioskAlert, KioskAuditEntry, KioskHeartbeat, KioskStatus
from drivers.demo.stack import DemoStack, VirtualScreen, run_journey
from kiosk.config import load as load_config
from kiosk.ports.audit import AuditEntry, verify_chain
from offline.audit_log import SqliteAuditLog
from offline.database import StateDatabase
from tests.screens.conftest import JOURNEYS

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central and Xvfb: see README

# The door opened, and the kiosk stopped while it is open: its last heartbeat says so.
DOOR_JOURNEY = {"name": "door", "steps": [
    {"await": "attract", "timeout": 60},
    {"cabinet": "door opened"},
    {"await": "out_of_service", "view": {"reason": "door_open"}},
]}


def test_central_holds_the_kiosks_heartbeats_its_audit_log_and_the_door_alert(tmp_path):
    door_journey = tmp_path / "door.json"
    door_journey.write_text(json.dumps(DOOR_JOURNEY), encoding="utf-8")
    with DemoStack(tmp_path / "stack", central_tls=True) as stack, VirtualScreen() as screen:
        with stack.config_path.open("a", encoding="utf-8") as config:
            config.write("\n[telemetry]\nheartbeat_s = 10\ndebounce_s = 0.5\n")
        device_id = load_config(stack.config_path).device_id
        citizen = stack.citizen_numbers()[0]
        paid = run_journey(stack, JOURNEYS / "arabic.json", tmp_path / "arabic", display=screen.display,
                           on_screen={"insert_card": lambda: stack.insert(citizen), "take_card": stack.remove},
                           timeout_s=180)
        assert paid.exit_code == 0, "\n".join(paid.output[-20:])
        door = run_journey(stack, door_journey, tmp_path / "door", display=screen.display, on_screen={},
                           timeout_s=120)
        assert door.exit_code == 0, "\n".join(door.output[-20:])
        central = Database(stack.central_db_url)
        try:
            with central.reading() as session:
                beats = session.scalars(select(KioskHeartbeat).where(KioskHeartbeat.device_id == device_id)
                                        .order_by(KioskHeartbeat.id)).all()
                status = session.get(KioskStatus, device_id)
                alerts = [a.code for a in session.scalars(select(KioskAlert).where(KioskAlert.device_id == device_id))]
                held = [AuditEntry(r.seq, r.at, r.event, r.device_id, r.technician, r.detail, r.hash)
                        for r in session.scalars(select(KioskAuditEntry).where(KioskAuditEntry.device_id == device_id)
                                                 .order_by(KioskAuditEntry.seq))]
        finally:
            central.dispose()
        state = StateDatabase(stack.state_dir / "outbox.sqlite3", check=False)
        try:
            kept = list(SqliteAuditLog(state, device_id, anchor_path=None).all_entries())
        finally:
            state.close()

    states = [(beat.state, beat.reason, beat.door) for beat in beats]
    assert ("busy", None, "closed") in states                          # a citizen served
    assert ("out_of_service", "stopped", "closed") in states           # the last word of the first run
    assert states[-1] == ("out_of_service", "stopped", "open")        # and of the second, the door open
    assert status.state == "out_of_service" and status.reason == "stopped" and status.version
    assert json.loads(status.facts)["devices"]["printer"] == "ready"
    assert "cabinet.door_opened" in alerts
    assert {entry.event for entry in kept} >= {"document.printed", "cabinet.door_opened"}
    assert held == kept                                                # the whole log, as the kiosk keeps it
    assert verify_chain(held).ok
