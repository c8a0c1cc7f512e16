"""The telemetry's store (`kiosk.ports.telemetry`) as two tables of the kiosk's state database.

`telemetry_alerts` holds each alert not yet acknowledged by central (a code and its time, never
anything personal), written with the database's settings (WAL, every commit synced), so a door
opened while the link is down, or just before a power cut, reaches central once the kiosk is back
and the link with it. A row is deleted as soon as central has acknowledged it. `telemetry_state`
is one row: how far central holds the audit log (the newest sequence number it acknowledged).

A database moved aside as damaged loses what could not be read (offline/database.py): unsent alerts
are gone with it, and the audit position starts again from zero, which only sends central entries it
already holds (it compares them, and keeps them once).
"""

from __future__ import annotations

from kiosk.ports.telemetry import KeptAlert, TelemetryStore
from offline.database import StateDatabase

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS telemetry_alerts (
        id        INTEGER PRIMARY KEY,
        code      TEXT NOT NULL,
        raised_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS telemetry_state (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        audit_position INTEGER NOT NULL
    )
    """,
)


class SqliteTelemetryStore(TelemetryStore):
    def __init__(self, database: StateDatabase) -> None:
        """On `database` (the outbox's); QueueError when the tables cannot be made."""
        self.database = database
        with database.transaction():
            for statement in _SCHEMA:
                database.run(statement)

    def keep_alert(self, code: str, raised_at: str) -> None:
        self.database.run("INSERT INTO telemetry_alerts (code, raised_at) VALUES (?, ?)", (code, raised_at))

    def alerts(self, limit: int) -> list[KeptAlert]:
        rows = self.database.run("SELECT id, code, raised_at FROM telemetry_alerts ORDER BY id LIMIT ?", (limit,))
        return [KeptAlert(*row) for row in rows]

    def acknowledge(self, ids: list[int]) -> None:
        with self.database.transaction():
            self.database.run_many("DELETE FROM telemetry_alerts WHERE id = ?", [(alert_id,) for alert_id in ids])

    def audit_position(self) -> int:
        rows = self.database.run("SELECT audit_position FROM telemetry_state WHERE id = 1")
        return max(0, int(rows[0][0])) if rows else 0

    def save_audit_position(self, seq: int) -> None:
        if seq < 0:
            raise ValueError("a negative audit position")
        self.database.run("INSERT INTO telemetry_state (id, audit_position) VALUES (1, ?) "
                          "ON CONFLICT (id) DO UPDATE SET audit_position = excluded.audit_position", (seq,))
