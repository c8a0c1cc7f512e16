"""What the telemetry (kiosk/telemetry.py) keeps on the kiosk's disk until central has it.

Two things: the alerts raised and not yet acknowledged by central (a code and the time it was
raised, so that a door opened while the link was down still reaches central when it is back, even
across a restart), and how far central holds the audit log (the sequence number of the newest entry
central acknowledged: the next batch starts after it). Codes and numbers only, never personal data.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class KeptAlert:
    id: int                    # the store's own, to acknowledge it by
    code: str                  # `cabinet.door_opened`
    raised_at: str             # UTC, ISO 8601 to the millisecond: 2026-11-29T10:00:00.123Z


class TelemetryStore(abc.ABC):
    @abc.abstractmethod
    def keep_alert(self, code: str, raised_at: str) -> None:
        """Keep an alert until central acknowledges it (durably: synced to the disk before it returns)."""

    @abc.abstractmethod
    def alerts(self, limit: int) -> list[KeptAlert]:
        """The oldest `limit` alerts not yet acknowledged, oldest first."""

    @abc.abstractmethod
    def acknowledge(self, ids: list[int]) -> None:
        """Central holds these: forget them."""

    @abc.abstractmethod
    def audit_position(self) -> int:
        """The sequence number of the newest audit entry central acknowledged (0: none yet)."""

    @abc.abstractmethod
    def save_audit_position(self, seq: int) -> None:
        """Central acknowledged the audit log up to `seq` (or holds only that much: the position goes back)."""


class MemoryTelemetryStore(TelemetryStore):
    """Kept in memory only: a restart forgets it (a kiosk whose local state keeps none on its disk)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: list[KeptAlert] = []
        self._next_id = 1
        self._position = 0

    def keep_alert(self, code: str, raised_at: str) -> None:
        with self._lock:
            self._alerts.append(KeptAlert(self._next_id, code, raised_at))
            self._next_id += 1

    def alerts(self, limit: int) -> list[KeptAlert]:
        with self._lock:
            return self._alerts[:limit]

    def acknowledge(self, ids: list[int]) -> None:
        gone = set(ids)
        with self._lock:
            self._alerts = [alert for alert in self._alerts if alert.id not in gone]

    def audit_position(self) -> int:
        return self._position

    def save_audit_position(self, seq: int) -> None:
        self._position = seq
