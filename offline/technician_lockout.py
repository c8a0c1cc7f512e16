"""The technician PIN's lockout (`kiosk.ports.technician_lockout`) as a one-row table of the state database.

The table `technician_lockout` holds one row (id 1): the wrong tries and the lockout's end in
wall-clock seconds (NULL: not locked out). It is written with the database's settings (WAL,
every commit synced), so what was saved before a power cut is there after it. A database moved
aside as damaged loses it with whatever else could not be read: the count starts from zero,
which a technician can live with (the lockout is a brake on guessing, not a record).
"""

from __future__ import annotations

from kiosk.ports.technician_lockout import LockoutState, TechnicianLockout
from offline.database import StateDatabase

_SCHEMA = """
    CREATE TABLE IF NOT EXISTS technician_lockout (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        tries        INTEGER NOT NULL,
        locked_until REAL
    )
"""


class SqliteTechnicianLockout(TechnicianLockout):
    def __init__(self, database: StateDatabase) -> None:
        """On `database` (the outbox's); QueueError when the table cannot be made."""
        self.database = database
        database.run(_SCHEMA)

    def load(self) -> LockoutState:
        rows = self.database.run("SELECT tries, locked_until FROM technician_lockout WHERE id = 1")
        if not rows:
            return LockoutState()
        tries, locked_until = rows[0]
        return LockoutState(max(0, int(tries)), None if locked_until is None else float(locked_until))

    def save(self, tries: int, locked_until: float | None) -> None:
        if tries < 0:
            raise ValueError("a negative count of wrong technician PINs")
        self.database.run("INSERT INTO technician_lockout (id, tries, locked_until) VALUES (1, ?, ?) "
                          "ON CONFLICT (id) DO UPDATE SET tries = excluded.tries, "
                          "locked_until = excluded.locked_until", (tries, locked_until))
