"""What the dashboard shows of the kiosks: read from the enrolled devices and the telemetry they send
(central/models.py: Device, KioskStatus, KioskHeartbeat, KioskAlert, KioskAuditEntry, KioskSelftest).

Each kiosk has one condition, the first that holds: ``revoked``; ``never`` (enrolled, no heartbeat yet);
``silent`` (no heartbeat for SILENT_AFTER: the kiosk or its link is down); else the state its latest
heartbeat reported (ready, busy, offline, out_of_service, fault). A kiosk's update failed when the
newest of its ``update.*`` alerts is a failure (``update.failed``, ``update.rolled_back``, ...): a later
``update.installed`` clears it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from central.db import Database, iso_utc, utc_now
from central.models import Device, KioskAlert, KioskAuditEntry, KioskHeartbeat, KioskSelftest, KioskStatus

SILENT_AFTER = timedelta(minutes=30)
REPORTED_STATES = ("ready", "busy", "offline", "out_of_service", "fault")
CONDITIONS = ("ready", "busy", "offline", "out_of_service", "fault", "silent", "never", "revoked")
PROBLEMS = ("fault", "out_of_service", "silent", "offline", "revoked")     # drawn as a warning
UPDATE_ALERTS = "update."
FAILED_UPDATE_ENDINGS = ("failed", "rolled_back", "refused")
HISTORY = 50
LARGEST_MINUTES = 60 * 24 * 365


def is_failed_update(code: str) -> bool:
    return code.startswith(UPDATE_ALERTS) and code.endswith(FAILED_UPDATE_ENDINGS)


@dataclass(frozen=True)
class Filters:
    """The kiosks list's filters, from its query string: ``offline=N`` (no heartbeat for more than N
    minutes, or none ever), ``paper=low`` (low or out), ``door=open``, ``update=failed``,
    ``governorate=CODE``, ``condition=C``. Anything unreadable is left out, never an error."""

    offline_minutes: int | None = None
    paper_low: bool = False
    door_open: bool = False
    failed_update: bool = False
    governorate: str | None = None
    condition: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        minutes = query.get("offline", "")
        governorate = query.get("governorate", "")
        condition = query.get("condition", "")
        return cls(
            offline_minutes=int(minutes) if minutes.isascii() and minutes.isdigit()
            and 0 < int(minutes) <= LARGEST_MINUTES else None,
            paper_low=query.get("paper") == "low",
            door_open=query.get("door") == "open",
            failed_update=query.get("update") == "failed",
            governorate=governorate[:64] if governorate else None,
            condition=condition if condition in CONDITIONS else None)

    @property
    def any(self) -> bool:
        return self != Filters()


@dataclass(frozen=True)
class KioskRow:
    device_id: str
    governorate: str | None
    enrolled_at: str
    revoked_at: str | None
    condition: str
    state: str | None              # as last reported; None: never
    reason: str | None
    version: str | None
    paper: str | None
    door: str | None
    queue_depth: int | None
    dead_letters: int | None
    heard_at: str | None           # central's clock, at the latest heartbeat
    minutes_silent: int | None
    failed_update: bool

    @property
    def problem(self) -> bool:
        return self.condition in PROBLEMS or self.paper in ("low", "out") or self.door == "open" \
            or self.failed_update or bool(self.dead_letters)


@dataclass(frozen=True)
class Overview:
    total: int
    by_condition: list[tuple[str, int]]                        # every condition, in CONDITIONS' order
    by_governorate: list[tuple[str | None, int, dict[str, int]]]   # governorate, kiosks, conditions present
    silent: int
    paper_low: int
    door_open: int
    failed_updates: int
    dead_letters: int


@dataclass(frozen=True)
class Heartbeat:
    received_at: str
    sent_at: str
    state: str
    reason: str | None
    version: str
    paper: str
    door: str
    queue_depth: int
    dead_letters: int
    last_sync_at: str | None
    disk_free_mb: int | None
    devices: dict[str, str] = field(default_factory=dict)     # card_reader, terminal, printer: a status
    memory_available_mb: int | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class KioskDetail:
    row: KioskRow
    latest: Heartbeat | None
    history: list[Heartbeat]
    alerts: list[tuple[str, str, str]]                  # code, raised at (kiosk's clock), received at
    audit: list[tuple[int, str, str, str | None, str]]  # seq, at, event, technician, detail
    selftests: list[tuple[str, bool, str]]              # checked at, ok, the failed checks


def _heartbeat(row: KioskStatus | KioskHeartbeat) -> Heartbeat:
    try:
        facts = json.loads(row.facts) if row.facts else {}
    except ValueError:
        facts = {}
    facts = facts if isinstance(facts, dict) else {}
    devices = facts.get("devices") if isinstance(facts.get("devices"), dict) else {}
    memory = facts.get("memory_available_mb")
    error = facts.get("last_error")
    return Heartbeat(row.received_at, row.sent_at, row.state, row.reason, row.version, row.paper, row.door,
                     row.queue_depth, row.dead_letters, row.last_sync_at, row.disk_free_mb,
                     {str(k): str(v) for k, v in devices.items()},
                     memory if isinstance(memory, int) else None, str(error) if error else None)


class Fleet:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def _rows(self, only: str | None = None) -> list[KioskRow]:
        now = self._clock()
        silent_before = iso_utc(now - SILENT_AFTER)
        query = select(Device, KioskStatus).outerjoin(KioskStatus, KioskStatus.device_id == Device.device_id) \
            .order_by(Device.device_id)
        alerts = select(KioskAlert.device_id, KioskAlert.code).where(KioskAlert.code.startswith(UPDATE_ALERTS)) \
            .order_by(KioskAlert.received_at, KioskAlert.raised_at)
        if only is not None:
            query = query.where(Device.device_id == only)
            alerts = alerts.where(KioskAlert.device_id == only)
        with self._database.reading() as session:
            pairs = session.execute(query).all()
            newest_update = {device_id: code for device_id, code in session.execute(alerts)}   # the last wins
        rows = []
        for device, status in pairs:
            if device.revoked_at is not None:
                condition = "revoked"
            elif status is None:
                condition = "never"
            elif status.received_at < silent_before:
                condition = "silent"
            else:
                condition = status.state if status.state in REPORTED_STATES else "fault"
            minutes = None
            if status is not None:
                heard = datetime.fromisoformat(status.received_at.replace("Z", "+00:00"))
                minutes = max(0, int((now - heard).total_seconds() // 60))
            rows.append(KioskRow(
                device.device_id, device.governorate, device.enrolled_at, device.revoked_at, condition,
                status.state if status else None, status.reason if status else None,
                status.version if status else None, status.paper if status else None,
                status.door if status else None, status.queue_depth if status else None,
                status.dead_letters if status else None, status.received_at if status else None, minutes,
                is_failed_update(newest_update.get(device.device_id, ""))))
        return rows

    def overview(self) -> Overview:
        rows = self._rows()
        conditions = Counter(row.condition for row in rows)
        by_governorate: dict[str | None, Counter[str]] = {}
        for row in rows:
            by_governorate.setdefault(row.governorate, Counter())[row.condition] += 1
        governorates = sorted(by_governorate.items(), key=lambda item: (item[0] is None, item[0] or ""))
        return Overview(
            total=len(rows),
            by_condition=[(condition, conditions[condition]) for condition in CONDITIONS],
            by_governorate=[(governorate, sum(counts.values()), dict(counts)) for governorate, counts in governorates],
            silent=conditions["silent"] + conditions["never"],
            paper_low=sum(1 for row in rows if row.paper in ("low", "out") and row.condition != "revoked"),
            door_open=sum(1 for row in rows if row.door == "open" and row.condition != "revoked"),
            failed_updates=sum(1 for row in rows if row.failed_update),
            dead_letters=sum(1 for row in rows if row.dead_letters))

    def kiosks(self, filters: Filters) -> list[KioskRow]:
        def kept(row: KioskRow) -> bool:
            if filters.offline_minutes is not None and (
                    row.condition == "revoked"          # not expected to be heard from
                    or row.minutes_silent is not None and row.minutes_silent < filters.offline_minutes):
                return False
            return ((not filters.paper_low or row.paper in ("low", "out"))
                    and (not filters.door_open or row.door == "open")
                    and (not filters.failed_update or row.failed_update)
                    and (filters.governorate is None or row.governorate == filters.governorate)
                    and (filters.condition is None or row.condition == filters.condition))
        return [row for row in self._rows() if kept(row)]

    def governorates(self) -> list[str]:
        with self._database.reading() as session:
            return sorted(g for g in session.scalars(select(Device.governorate).distinct()) if g)

    def kiosk(self, device_id: str) -> KioskDetail | None:
        rows = self._rows(only=device_id)
        if not rows:
            return None
        with self._database.reading() as session:
            status = session.get(KioskStatus, device_id)
            history = session.scalars(select(KioskHeartbeat).where(KioskHeartbeat.device_id == device_id)
                                      .order_by(KioskHeartbeat.id.desc()).limit(HISTORY)).all()
            alerts = session.execute(select(KioskAlert.code, KioskAlert.raised_at, KioskAlert.received_at)
                                     .where(KioskAlert.device_id == device_id)
                                     .order_by(KioskAlert.received_at.desc(), KioskAlert.raised_at.desc())
                                     .limit(HISTORY)).all()
            audit = session.execute(select(KioskAuditEntry.seq, KioskAuditEntry.at, KioskAuditEntry.event,
                                           KioskAuditEntry.technician, KioskAuditEntry.detail)
                                    .where(KioskAuditEntry.device_id == device_id)
                                    .order_by(KioskAuditEntry.seq.desc()).limit(HISTORY)).all()
            selftests = session.execute(select(KioskSelftest.checked_at, KioskSelftest.ok, KioskSelftest.failed)
                                        .where(KioskSelftest.device_id == device_id)
                                        .order_by(KioskSelftest.id.desc()).limit(10)).all()
            latest = _heartbeat(status) if status is not None else None
            beats = [_heartbeat(beat) for beat in history]
        return KioskDetail(rows[0], latest, beats, [tuple(a) for a in alerts], [tuple(e) for e in audit],
                           [tuple(s) for s in selftests])
