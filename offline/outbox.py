"""The outbox: a SQLite table of messages for central, written before the
citizen is told anything was accepted, and kept until central has answered.

Each message has an id chosen by the kiosk (the request id, the refund id),
which central uses to answer a repeated delivery with the same answer, so
that a message delivered twice still takes effect once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import QueueError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL,
    answer       TEXT
)
"""


@dataclass(frozen=True, repr=False)
class OutboxMessage:
    message_id: str
    kind: str
    payload: dict
    attempts: int

    def __repr__(self) -> str:
        return "OutboxMessage(id=%s, kind=%s, attempts=%d)" % (self.message_id, self.kind, self.attempts)


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise QueueError("cannot open the outbox at %s: %s" % (path, exc)) from exc

    def put(self, message_id: str, kind: str, payload: dict) -> None:
        """Store a message durably; storing the same id again changes nothing."""
        self._run("INSERT OR IGNORE INTO outbox (message_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                  (message_id, kind, json.dumps(payload, ensure_ascii=False), time.time()))
        log.info("outbox.stored id=%s kind=%s", message_id, kind)

    def pending(self) -> list[OutboxMessage]:
        """Undelivered messages, oldest first."""
        rows = self._run("SELECT message_id, kind, payload, attempts FROM outbox "
                         "WHERE delivered_at IS NULL ORDER BY seq")
        return [OutboxMessage(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def message_ids(self, kind: str) -> list[str]:
        """Every message of `kind`, delivered or not, oldest first."""
        return [r[0] for r in self._run("SELECT message_id FROM outbox WHERE kind = ? ORDER BY seq", (kind,))]

    def record_attempt(self, message_id: str) -> None:
        self._run("UPDATE outbox SET attempts = attempts + 1 WHERE message_id = ?", (message_id,))

    def mark_delivered(self, message_id: str, answer: dict) -> None:
        self._run("UPDATE outbox SET delivered_at = ?, answer = ? WHERE message_id = ? AND delivered_at IS NULL",
                  (time.time(), json.dumps(answer, ensure_ascii=False), message_id))
        log.info("outbox.delivered id=%s", message_id)

    def answer(self, message_id: str) -> dict | None:
        """Central's answer to a delivered message, None while it is pending."""
        rows = self._run("SELECT answer FROM outbox WHERE message_id = ? AND delivered_at IS NOT NULL",
                         (message_id,))
        return json.loads(rows[0][0]) if rows else None

    def _run(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """One statement; a full disk or a broken file is a QueueError."""
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise QueueError("the outbox cannot %s: %s" % (sql.split()[0].lower(), exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
