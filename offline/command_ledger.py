"""The commands this kiosk took (`kiosk.commands.CommandLedger`), as two tables of the state database.

`commands_taken` holds one row per command taken, by its id (the primary key:
a second envelope with the same id is a replay, whatever else it says), with
its action, when it was taken and expires, and, once written, its outcome and
reason. `command_reports` holds the results central has not heard yet, oldest
first; a row goes once central holds it. Both are written with the database's
settings (WAL, every commit synced), so a replay is refused and a result
reported after a power cut as well as after a restart.

What is kept is ids, codes and times: nothing personal. A command's row stays
`KEEP_AFTER_EXPIRY_S` after it expired (long past the time its envelope could
be taken again, even by a clock set back), except the last out-of-service or
in-service command carried out, which says whether central took the kiosk out
of service.
"""

from __future__ import annotations

from kiosk.commands import Command, CommandLedger, Report, Unfinished
from kiosk.wire import CommandAction, CommandOutcome
from offline.database import StateDatabase

KEEP_AFTER_EXPIRY_S = 30 * 24 * 3600.0
ANNOUNCEMENTS_FILE = "announcements.json"     # central's announcements, kept beside the state database

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS commands_taken (
        command_id  TEXT PRIMARY KEY,
        action      TEXT NOT NULL,
        taken_at    REAL NOT NULL,
        expires_at  REAL NOT NULL,
        finished_at REAL,
        outcome     TEXT,
        reason      TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS command_reports (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        command_id  TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        reason      TEXT,
        at          REAL NOT NULL
    )
    """,
)
_SERVICE_ACTIONS = (CommandAction.OUT_OF_SERVICE.value, CommandAction.IN_SERVICE.value)


class SqliteCommandLedger(CommandLedger):
    def __init__(self, database: StateDatabase) -> None:
        """On `database` (the outbox's); QueueError when the tables cannot be made."""
        self.database = database
        with database.transaction():
            for statement in _SCHEMA:
                database.run(statement)

    def take(self, command: Command, taken_at: float) -> bool:
        with self.database.transaction():
            self.database.run("INSERT OR IGNORE INTO commands_taken (command_id, action, taken_at, expires_at) "
                              "VALUES (?, ?, ?, ?)",
                              (command.command_id, command.action.value, taken_at, command.expires_at))
            return self.database.run("SELECT changes()")[0][0] == 1

    def finish(self, command_id: str, outcome: CommandOutcome, reason: str | None, at: float) -> bool:
        with self.database.transaction():
            self.database.run("UPDATE commands_taken SET outcome = ?, reason = ?, finished_at = ? "
                              "WHERE command_id = ? AND outcome IS NULL", (outcome.value, reason, at, command_id))
            if self.database.run("SELECT changes()")[0][0] != 1:
                return False
            self._add_report(command_id, outcome.value, reason, at)
            return True

    def note_refusal(self, command_id: str, reason: str, at: float) -> None:
        self._add_report(command_id, CommandOutcome.REFUSED.value, reason, at)

    def _add_report(self, command_id: str, outcome: str, reason: str | None, at: float) -> None:
        self.database.run("INSERT INTO command_reports (command_id, outcome, reason, at) VALUES (?, ?, ?, ?)",
                          (command_id, outcome, reason, at))

    def unreported(self, limit: int = 50) -> list[Report]:
        rows = self.database.run("SELECT seq, command_id, outcome, reason FROM command_reports ORDER BY seq LIMIT ?",
                                 (limit,))
        return [Report(seq, command_id, CommandOutcome(outcome), reason) for seq, command_id, outcome, reason in rows]

    def reported(self, seq: int) -> None:
        self.database.run("DELETE FROM command_reports WHERE seq = ?", (seq,))

    def unfinished(self) -> list[Unfinished]:
        rows = self.database.run("SELECT command_id, action FROM commands_taken WHERE outcome IS NULL "
                                 "ORDER BY taken_at, command_id")
        return [Unfinished(command_id, action) for command_id, action in rows]

    def outcome(self, command_id: str) -> CommandOutcome | None:
        rows = self.database.run("SELECT outcome FROM commands_taken WHERE command_id = ?", (command_id,))
        return CommandOutcome(rows[0][0]) if rows and rows[0][0] is not None else None

    def out_of_service(self) -> bool:
        rows = self.database.run(
            "SELECT action FROM commands_taken WHERE outcome = ? AND action IN (?, ?) "
            "ORDER BY finished_at DESC, rowid DESC LIMIT 1", (CommandOutcome.DONE.value, *_SERVICE_ACTIONS))
        return bool(rows) and rows[0][0] == CommandAction.OUT_OF_SERVICE.value

    def forget_old(self, now: float) -> int:
        """The rows of commands expired `KEEP_AFTER_EXPIRY_S` ago, finished, and not the last word on
        the kiosk's service; how many went."""
        with self.database.transaction():
            last = self.database.run(
                "SELECT command_id FROM commands_taken WHERE outcome = ? AND action IN (?, ?) "
                "ORDER BY finished_at DESC, rowid DESC LIMIT 1", (CommandOutcome.DONE.value, *_SERVICE_ACTIONS))
            self.database.run("DELETE FROM commands_taken WHERE expires_at < ? AND outcome IS NOT NULL "
                              "AND command_id IS NOT ?", (now - KEEP_AFTER_EXPIRY_S, last[0][0] if last else None))
            return self.database.run("SELECT changes()")[0][0]
