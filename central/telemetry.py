"""Central's side of the telemetry: each kiosk's heartbeats, alerts, audit log and self-test reports, kept.

Every call is a kiosk's, signed with its device key (central/device_auth.py): the device is the
credential's, never a body's. Bodies hold codes and counts only (kiosk/telemetry.py builds them); a
body with anything else (an unknown key, text where a code goes) is refused 400 before it is read.

    POST /api/v1/telemetry/heartbeat {sent_at, version, state, reason, queue_depth, dead_letters,
                                      last_sync_at, devices: {card_reader, terminal, printer}, paper, door,
                                      disk_free_mb, memory_available_mb, last_error,
                                      alerts: [{code, raised_at}]}
        200 {"status": "ok", "commands": [...]}
    POST /api/v1/telemetry/audit     {"entries": [AuditEntry.to_json(), ...]}     (kiosk/ports/audit.py)
        200 {"status": "ok", "held_seq": N}
        409 {"status": "rejected", "reason": "chain_broken", "held_seq": N, "first_bad": seq}
        422 {"status": "rejected", "reason": "device_mismatch" | "not_codes"}
    POST /api/v1/telemetry/selftest  `kiosk selftest --json`'s report
        200 {"status": "ok"}
        422 {"status": "rejected", "reason": "device_mismatch"}

**Heartbeats.** Each is kept (`KioskHeartbeat`, the history) and replaces the kiosk's latest
(`KioskStatus`, one row per kiosk, for the dashboard and `kiosk-central devices status`). The alerts
it carries are kept once each (`KioskAlert`, keyed by device, code and the kiosk's time of raising):
a kiosk sends an alert again until a heartbeat that carried it is answered, so a second copy is
expected and changes nothing. The answer's `commands` are what `commands_for(device_id)` gives (the
commands feature's; none without it).

**The audit log.** Each kiosk's entries form one hash chain (kiosk/ports/audit.py, whose hash
function central uses). A batch must continue the chain central holds for that kiosk: its first entry
follows the newest held (or is the first of all), each entry's hash is right over the one before, and
an entry central already holds (a batch sent again after its answer was lost) must be the very one
held. The entries that check before the first that does not are kept; the first that does not is
refused 409 ``chain_broken`` with the newest entry held, and an alert `audit.chain_broken` is recorded
for the kiosk (once per broken entry, however often it is sent). A kiosk whose own copy of the
position is behind central's (`held_seq`) catches up; one whose log was rewritten stays refused.

**History.** Heartbeats, alerts and self-test reports older than `keep_days` (`serve
--telemetry-days`, 90) are deleted, at most once an hour, as heartbeats arrive; each kiosk's latest
status stays, and so does its audit log (central's copy is the one kept away from the kiosk).

No log line carries more than a device id, codes and counts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from central.db import Database, iso_utc, utc_now
from central.models import Device, KioskAlert, KioskAuditEntry, KioskHeartbeat, KioskSelftest, KioskStatus
from central.wire import Answer, Body, Identifier, rejected
from kiosk import wire
from kiosk.ports.audit import GENESIS, AuditEntry, entry_hash, is_detail, is_event, is_technician

log = logging.getLogger(__name__)

CHAIN_BROKEN_ALERT = "audit.chain_broken"
DEFAULT_KEEP_DAYS = 90
PRUNE_EVERY_S = 3600.0

Code = Annotated[str, Field(pattern=wire.CODE_PATTERN, max_length=wire.CODE_MAX_LENGTH)]
# UTC, ISO 8601, to the second or the millisecond: 2026-11-29T10:00:00Z, 2026-11-29T10:00:00.123Z
Moment = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$")]
Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
Count = Annotated[int, Field(ge=0, le=10 ** 9)]
Megabytes = Annotated[int, Field(ge=0, le=10 ** 9)]
CheckName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]


class DeviceStatuses(Body):
    card_reader: Code
    terminal: Code
    printer: Code


class AlertBody(Body):
    code: Code
    raised_at: Moment


class HeartbeatBody(Body):
    sent_at: Moment
    version: Version
    state: Literal[wire.KIOSK_STATES]            # type: ignore[valid-type]
    reason: Code | None = None
    queue_depth: Count
    dead_letters: Count
    last_sync_at: Moment | None = None
    devices: DeviceStatuses
    paper: Literal[wire.PAPER_STATES]            # type: ignore[valid-type]
    door: Literal[wire.DOOR_STATES]              # type: ignore[valid-type]
    disk_free_mb: Megabytes | None = None
    memory_available_mb: Megabytes | None = None
    last_error: Code | None = None
    alerts: Annotated[list[AlertBody], Field(max_length=wire.ALERTS_PER_HEARTBEAT)] = []


class AuditEntryBody(Body):
    seq: Annotated[int, Field(ge=1, le=2 ** 62)]
    at: Moment
    event: Annotated[str, Field(max_length=64)]
    device_id: Identifier
    technician: Annotated[str, Field(max_length=32)] | None = None
    detail: Annotated[str, Field(max_length=64)]
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class AuditBatchBody(Body):
    entries: Annotated[list[AuditEntryBody], Field(min_length=1, max_length=wire.AUDIT_BATCH_MAX)]


class CheckBody(Body):
    name: CheckName
    status: Literal["ok", "warning", "failed", "skipped"]
    detail: Annotated[str, Field(max_length=200)]
    seconds: Annotated[float, Field(ge=0, le=3600)]


class SelftestBody(Body):
    device_id: Identifier
    checked_at: Moment
    ok: bool
    failed: Annotated[list[CheckName], Field(max_length=20)]
    checks: Annotated[list[CheckBody], Field(max_length=20)]


@dataclass(frozen=True)
class StatusRow:
    """A kiosk as `kiosk-central devices status` shows it: None where it never sent a heartbeat."""

    device_id: str
    governorate: str | None
    revoked: bool
    state: str | None
    reason: str | None
    received_at: str | None
    paper: str | None
    door: str | None
    version: str | None
    queue_depth: int | None
    dead_letters: int | None


Commands = Callable[[str], list[dict]]


def _no_commands(_device_id: str) -> list[dict]:
    return []


def _facts(body: HeartbeatBody, device_id: str, received_at: str) -> dict:
    """The columns of a heartbeat row (KioskHeartbeat and KioskStatus alike)."""
    return {
        "device_id": device_id, "received_at": received_at, "sent_at": body.sent_at, "state": body.state,
        "reason": body.reason, "version": body.version, "paper": body.paper, "door": body.door,
        "queue_depth": body.queue_depth, "dead_letters": body.dead_letters, "last_sync_at": body.last_sync_at,
        "disk_free_mb": body.disk_free_mb,
        "facts": json.dumps({"devices": body.devices.model_dump(), "memory_available_mb": body.memory_available_mb,
                             "last_error": body.last_error}, sort_keys=True, separators=(",", ":")),
    }


class Telemetry:
    """What the kiosks report, in central's database."""

    def __init__(self, database: Database, *, keep_days: int = DEFAULT_KEEP_DAYS, commands_for: Commands | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        """`commands_for(device_id)` gives the command envelopes a heartbeat's answer carries to that kiosk
        (the commands feature's; called after the heartbeat is kept)."""
        if keep_days < 1:
            raise ValueError("telemetry is kept at least a day")
        self._database = database
        self._keep = timedelta(days=keep_days)
        self._commands_for = commands_for or _no_commands
        self._clock = clock
        self._pruned_at: float | None = None
        self._prune_lock = threading.Lock()

    # -- heartbeats ------------------------------------------------------------------------------------------

    def heartbeat(self, device_id: str, body: HeartbeatBody) -> Answer:
        received_at = iso_utc(self._clock())
        facts = _facts(body, device_id, received_at)
        new_alerts = 0
        with self._database.writing() as session:
            session.add(KioskHeartbeat(**facts))
            latest = session.get(KioskStatus, device_id)
            if latest is None:
                session.add(KioskStatus(**facts))
            else:
                for column, value in facts.items():
                    setattr(latest, column, value)
            for alert in {(a.code, a.raised_at) for a in body.alerts}:
                if session.get(KioskAlert, (device_id, *alert)) is None:
                    session.add(KioskAlert(device_id=device_id, code=alert[0], raised_at=alert[1],
                                           received_at=received_at))
                    new_alerts += 1
        log.log(logging.INFO if new_alerts else logging.DEBUG, "telemetry.heartbeat device=%s state=%s alerts=%d "
                "new=%d", device_id, body.state, len(body.alerts), new_alerts)
        self._prune_if_due()
        return Answer(200, {"status": "ok", "commands": self._commands_for(device_id)})

    # -- the audit log ---------------------------------------------------------------------------------------

    def audit(self, device_id: str, body: AuditBatchBody) -> Answer:
        entries = [AuditEntry(e.seq, e.at, e.event, e.device_id, e.technician, e.detail, e.hash) for e in body.entries]
        if any(entry.device_id != device_id for entry in entries):
            log.warning("telemetry.audit_refused device=%s reason=device_mismatch", device_id)
            return rejected("device_mismatch")
        if not all(is_event(e.event) and is_detail(e.detail) and (e.technician is None or is_technician(e.technician))
                   for e in entries):
            log.warning("telemetry.audit_refused device=%s reason=not_codes", device_id)
            return rejected("not_codes")
        received_at = iso_utc(self._clock())
        with self._database.writing() as session:
            held = session.scalars(select(KioskAuditEntry).where(KioskAuditEntry.device_id == device_id)
                                   .order_by(KioskAuditEntry.seq.desc()).limit(1)).first()
            held_seq = held.seq if held is not None else 0
            first_bad = self._keep_chain(session, device_id, entries, held_seq, received_at)
            kept = [entry for entry in entries if entry.seq > held_seq and (first_bad is None or entry.seq < first_bad)]
            held_seq = max([held_seq] + [entry.seq for entry in kept])
            if first_bad is not None:
                # The broken entry's own time (the batch's first for a gap): the same break sent again is one alert.
                raised_at = next((entry.at for entry in entries if entry.seq == first_bad), entries[0].at)
                if session.get(KioskAlert, (device_id, CHAIN_BROKEN_ALERT, raised_at)) is None:
                    session.add(KioskAlert(device_id=device_id, code=CHAIN_BROKEN_ALERT, raised_at=raised_at,
                                           received_at=received_at))
        if first_bad is not None:
            log.error("telemetry.audit_chain_broken device=%s first_bad=%d held_seq=%d kept=%d", device_id, first_bad,
                      held_seq, len(kept))
            return Answer(409, {"status": "rejected", "reason": wire.CHAIN_BROKEN, "held_seq": held_seq,
                                "first_bad": first_bad})
        log.info("telemetry.audit device=%s kept=%d held_seq=%d", device_id, len(kept), held_seq)
        return Answer(200, {"status": "ok", "held_seq": held_seq})

    @staticmethod
    def _keep_chain(session: Session, device_id: str, entries: list[AuditEntry], held_seq: int, received_at: str) -> int | None:
        """Add the entries of the batch that continue the chain held (in `session`); the sequence number
        of the first that does not, or None when all do."""
        first = entries[0].seq
        if first > held_seq + 1:
            return held_seq + 1                   # a gap: the entries between are missing
        if first == 1:
            previous = GENESIS
        else:
            before = session.get(KioskAuditEntry, (device_id, first - 1))
            if before is None:
                return first
            previous = before.hash
        expected = first
        for entry in entries:
            if entry.seq != expected or entry_hash(previous, entry) != entry.hash:
                return expected
            if entry.seq <= held_seq:
                kept = session.get(KioskAuditEntry, (device_id, entry.seq))
                if kept is None or kept.hash != entry.hash:
                    return entry.seq          # another entry where central holds one: the log was rewritten
            else:
                session.add(KioskAuditEntry(device_id=device_id, seq=entry.seq, at=entry.at, event=entry.event,
                                            technician=entry.technician, detail=entry.detail, hash=entry.hash,
                                            received_at=received_at))
            previous = entry.hash
            expected += 1
        return None

    # -- self-test reports -----------------------------------------------------------------------------------

    def selftest(self, device_id: str, body: SelftestBody) -> Answer:
        if body.device_id != device_id:
            log.warning("telemetry.selftest_refused device=%s reason=device_mismatch", device_id)
            return rejected("device_mismatch")
        if not all(wire.is_plain_text(check.detail) for check in body.checks):
            log.warning("telemetry.selftest_refused device=%s reason=not_plain_text", device_id)
            return rejected("not_plain_text")
        checks = [check.model_dump() for check in body.checks]
        with self._database.writing() as session:
            session.add(KioskSelftest(device_id=device_id, checked_at=body.checked_at,
                                      received_at=iso_utc(self._clock()), ok=body.ok, failed=",".join(body.failed),
                                      checks=json.dumps(checks, separators=(",", ":"))))
        log.info("telemetry.selftest device=%s ok=%s failed=%s", device_id, body.ok, ",".join(body.failed) or "-")
        return Answer(200, {"status": "ok"})

    # -- reading, pruning ------------------------------------------------------------------------------------

    def statuses(self) -> list[StatusRow]:
        """Every enrolled kiosk with its latest heartbeat (None's where it sent none), by device id."""
        with self._database.reading() as session:
            rows = session.execute(select(Device, KioskStatus).outerjoin(KioskStatus,
                                                                         KioskStatus.device_id == Device.device_id)
                                   .order_by(Device.device_id)).all()
        return [StatusRow(device.device_id, device.governorate, device.revoked_at is not None,
                          *((status.state, status.reason, status.received_at, status.paper, status.door,
                             status.version, status.queue_depth, status.dead_letters) if status is not None
                            else (None,) * 8))
                for device, status in rows]

    def prune(self) -> dict[str, int]:
        """Delete heartbeats, alerts and self-test reports received before `keep_days` ago: the rows deleted."""
        cutoff = iso_utc(self._clock() - self._keep)
        deleted = {}
        with self._database.writing() as session:
            for table in (KioskHeartbeat, KioskAlert, KioskSelftest):
                result = session.execute(delete(table).where(table.received_at < cutoff))
                deleted[table.__tablename__] = result.rowcount or 0
        if any(deleted.values()):
            log.info("telemetry.pruned before=%s %s", cutoff,
                     " ".join("%s=%d" % item for item in sorted(deleted.items())))
        return deleted

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        with self._prune_lock:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
                return
            self._pruned_at = now
        self.prune()
