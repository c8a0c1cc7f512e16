"""The outbox: a table of messages for central in the kiosk's state database
(`offline.database`), written before the citizen is told anything was
accepted, and kept until central has answered.

Each message has an id chosen by the kiosk (the request id, the void's id),
which central uses to answer a repeated delivery with the same answer, so
that a message delivered twice still takes effect once. Each belongs to a
transaction, `txn`: the request id that a certificate request and its void
both carry. Messages of one transaction go in the order they were kept (a
void never overtakes its request); messages of different transactions do
not wait for each other (`due`).

A message is `pending`, then `delivered` (central's answer kept) or `dead`
(central refused it for good: a dead letter, with its reason, for a
technician). Its payload and central's answer are sealed
(`offline.sealing`): what the disk holds is never a citizen's data in
clear. The payload is deleted as soon as central has answered (a dead
letter keeps the payload of a kind that carries no personal data, so it can
be sent again); the answer is deleted by `offline.retention` once the
transaction no longer needs it, and the row itself later.

Reading is by pages, on partial indexes of what is still pending: a queue of
100,000 messages costs no more memory than one of 100.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kiosk.messages import MessageKind
from offline.database import StateDatabase
from offline.sealing import Sealer, SealError, default_key_path, ephemeral_for

log = logging.getLogger(__name__)

PAGE = 100
REASON_MAX = 200
# The kinds whose payload and answer carry personal data (national and card numbers, the document).
PERSONAL_KINDS = frozenset({MessageKind.CERTIFICATE_REQUEST.value})
# What a waiter hears about a message central refused for good.
REFUSED = {"status": "failed", "reason": "refused"}


class MessageState(str, enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class RetryResult(enum.Enum):
    RETRIED = "retried"              # back in the queue
    NOT_DEAD = "not_dead"            # no dead letter has that id
    PAYLOAD_GONE = "payload_gone"    # its personal data was deleted when central refused it


_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        seq          INTEGER PRIMARY KEY,   -- the order kept: a new row's is above every row there
        message_id   TEXT NOT NULL UNIQUE,
        kind         TEXT NOT NULL,
        txn          TEXT NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending',
        payload      BLOB,
        created_at   REAL NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_try_at  REAL NOT NULL DEFAULT 0,
        answered_at  REAL,
        outcome      TEXT NOT NULL DEFAULT '',
        answer       BLOB,
        reason       TEXT NOT NULL DEFAULT ''
    )
    """,
    # What the worker reads at every pass: the pending few among many delivered, oldest first...
    "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE state = 'pending'",
    # ... whether an older message of the same transaction is still pending ...
    "CREATE INDEX IF NOT EXISTS outbox_pending_txn ON outbox (txn, seq) WHERE state = 'pending'",
    # ... and when the next one held back is due (a new message is due at once: not in it).
    "CREATE INDEX IF NOT EXISTS outbox_held_back ON outbox (next_try_at) WHERE state = 'pending' AND next_try_at > 0",
    "CREATE INDEX IF NOT EXISTS outbox_dead ON outbox (seq) WHERE state = 'dead'",
    # What retention reads: delivered rows by age, and answers still kept.
    "CREATE INDEX IF NOT EXISTS outbox_answered ON outbox (answered_at) WHERE state = 'delivered'",
    "CREATE INDEX IF NOT EXISTS outbox_kept ON outbox (txn) WHERE answer IS NOT NULL",
    """
    CREATE TABLE IF NOT EXISTS outbox_link (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        state  TEXT NOT NULL,
        since  REAL NOT NULL
    )
    """,
)

_DUE = """
    SELECT seq, message_id, kind, txn, payload, attempts FROM outbox AS o
    WHERE o.state = 'pending' AND o.seq > ? AND o.next_try_at <= ?
      AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.state = 'pending' AND e.txn = o.txn AND e.seq < o.seq)
    ORDER BY o.seq LIMIT ?
"""
_LISTED = "seq, message_id, kind, txn, state, attempts, created_at, next_try_at, answered_at, outcome, reason, " \
          "payload IS NOT NULL, answer IS NOT NULL"


@dataclass(frozen=True, repr=False)
class OutboxMessage:
    message_id: str
    kind: str
    payload: dict | None           # None: sealed under a key this kiosk no longer has
    attempts: int
    seq: int = 0
    txn: str = ""

    def __repr__(self) -> str:
        return "OutboxMessage(id=%s, kind=%s, attempts=%d)" % (self.message_id, self.kind, self.attempts)


@dataclass(frozen=True)
class QueuedMessage:
    """A message as a technician sees it: ids, kind, state, counts and times; never its contents."""

    seq: int
    message_id: str
    kind: str
    txn: str
    state: MessageState
    attempts: int
    created_at: float
    next_try_at: float
    answered_at: float | None
    outcome: str
    reason: str
    payload_kept: bool
    answer_kept: bool

    def to_json(self) -> dict:
        return {"seq": self.seq, "message_id": self.message_id, "kind": self.kind, "transaction": self.txn,
                "state": self.state.value, "attempts": self.attempts, "created_at": self.created_at,
                "next_try_at": self.next_try_at, "answered_at": self.answered_at, "outcome": self.outcome,
                "reason": self.reason, "payload_kept": self.payload_kept, "answer_kept": self.answer_kept}


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    dead: int
    delivered: int                     # answered, not pruned yet
    oldest_pending_at: float | None    # when the oldest pending message was kept (wall time)


class Outbox:
    def __init__(self, database: StateDatabase | Path | str, *, sealer: Sealer | None = None,
                 key_path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        """The outbox in `database`, shared with the journal; given a path, it opens a database of
        its own there (and closes it on `close`). `sealer` seals payloads and answers (default: the
        device key at `key_path`, or beside the database, made at the first start and read only when
        first needed; a key in memory for a database in memory). QueueError when it cannot be opened."""
        self._owns_database = not isinstance(database, StateDatabase)
        self.database = StateDatabase(database) if self._owns_database else database
        self.path = self.database.path
        self._sealer = sealer
        self._key_path = key_path
        self._clock = clock
        with self.database.transaction():
            columns = [row[1] for row in self.database.run("PRAGMA table_info(outbox)")]
            in_clear = bool(columns) and "state" not in columns      # an outbox from before sealing
            if in_clear:
                self.database.run("ALTER TABLE outbox RENAME TO outbox_clear")
            for statement in _SCHEMA:
                self.database.run(statement)
            migrated = self._seal_clear_rows() if in_clear else 0
        if in_clear:
            self.database.reclaim_space()      # the clear rows' pages, zeroed (secure_delete), given back
            log.warning("outbox.migrated rows=%d: payloads and answers sealed", migrated)

    # -- writing ----------------------------------------------------------------------------------------

    def put(self, message_id: str, kind: str, payload: dict) -> None:
        """Store a message durably; storing the same id again changes nothing."""
        txn = str(payload.get("request_id") or message_id)
        self._run("INSERT OR IGNORE INTO outbox (message_id, kind, txn, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                  (message_id, kind, txn, self._seal(payload, "payload", message_id), self._clock()))
        log.info("outbox.stored id=%s kind=%s", message_id, kind)

    def record_answers(self, answers: Sequence[tuple[str, dict]]) -> None:
        """Central's answers to pending messages, kept together in one transaction; each payload is
        deleted with it (central has it now)."""
        if not answers:
            return
        now = self._clock()
        rows = [(str(answer.get("status", "")), self._seal(answer, "answer", message_id), now, message_id)
                for message_id, answer in answers]
        with self.database.transaction():
            self.database.run_many("UPDATE outbox SET state = 'delivered', outcome = ?, answer = ?, answered_at = ?, "
                                   "payload = NULL, attempts = attempts + 1 "
                                   "WHERE message_id = ? AND state = 'pending'", rows)

    def mark_delivered(self, message_id: str, answer: dict) -> None:
        self.record_answers([(message_id, answer)])
        log.info("outbox.delivered id=%s", message_id)

    def record_attempt(self, message_id: str) -> None:
        """One more try that did not reach central (the link was down): counted, not held back."""
        self._run("UPDATE outbox SET attempts = attempts + 1 WHERE message_id = ?", (message_id,))

    def defer(self, message_id: str, until: float) -> None:
        """One more try central could not take: held back until `until` (wall time)."""
        self._run("UPDATE outbox SET attempts = attempts + 1, next_try_at = ? WHERE message_id = ? "
                  "AND state = 'pending'", (until, message_id))

    def dead_letter(self, message_id: str, reason: str) -> None:
        """Central refused it for good: kept as a dead letter with `reason` (codes and ids only); a
        payload with personal data is deleted (central has answered)."""
        self._run("UPDATE outbox SET state = 'dead', outcome = 'refused', reason = ?, answered_at = ?, "
                  "attempts = attempts + 1, payload = CASE WHEN kind IN (%s) THEN NULL ELSE payload END "
                  "WHERE message_id = ? AND state = 'pending'" % _personal_kinds(),
                  (reason[:REASON_MAX], self._clock(), message_id))

    def retry(self, message_id: str) -> RetryResult:
        """A dead letter back in the queue, to be sent at once (a technician's decision)."""
        with self.database.transaction():
            rows = self._run("SELECT state, payload IS NULL FROM outbox WHERE message_id = ?", (message_id,))
            if not rows or rows[0][0] != MessageState.DEAD.value:
                return RetryResult.NOT_DEAD
            if rows[0][1]:
                return RetryResult.PAYLOAD_GONE
            self._run("UPDATE outbox SET state = 'pending', attempts = 0, next_try_at = 0, answered_at = NULL, "
                      "outcome = '', reason = '' WHERE message_id = ?", (message_id,))
        log.warning("outbox.retried id=%s", message_id)
        return RetryResult.RETRIED

    def reset_backoff(self) -> int:
        """Every pending message due now (the link came back); how many were held back."""
        with self.database.transaction():
            self._run("UPDATE outbox SET next_try_at = 0 WHERE state = 'pending' AND next_try_at > 0")
            return self._run("SELECT changes()")[0][0]

    def save_link(self, state: str, since: float) -> None:
        """What the worker last saw of the link, for `kiosk queue status` in another process."""
        self._run("INSERT INTO outbox_link (id, state, since) VALUES (1, ?, ?) "
                  "ON CONFLICT (id) DO UPDATE SET state = excluded.state, since = excluded.since", (state, since))

    # -- reading ----------------------------------------------------------------------------------------

    def due(self, now: float | None = None, *, after: int = 0, limit: int = PAGE) -> list[OutboxMessage]:
        """The next page of pending messages that may be sent now: due (not held back), and the oldest
        pending one of their transaction; oldest first, after `seq` `after`."""
        now = self._clock() if now is None else now
        return [self._message(row) for row in self._run(_DUE, (after, now, limit))]

    def pending(self, *, after: int = 0, limit: int = PAGE) -> list[OutboxMessage]:
        """A page of undelivered messages, oldest first, due or not."""
        return [self._message(row) for row in self._run(
            "SELECT seq, message_id, kind, txn, payload, attempts FROM outbox WHERE state = 'pending' AND seq > ? "
            "ORDER BY seq LIMIT ?", (after, limit))]

    def next_due_at(self, *, after: float = float("-inf")) -> float | None:
        """When the next message held back that may then go (the oldest pending one of its transaction)
        is due, among those held back past `after` (wall time); None when there is none."""
        rows = self._run("SELECT o.next_try_at FROM outbox AS o WHERE o.state = 'pending' AND o.next_try_at > 0 "
                         "AND o.next_try_at > ? "
                         "AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.state = 'pending' AND e.txn = o.txn "
                         "AND e.seq < o.seq) ORDER BY o.next_try_at LIMIT 1", (after,))
        return rows[0][0] if rows else None

    def answer(self, message_id: str) -> dict | None:
        """Central's answer to a delivered message, `REFUSED` for a dead letter, None while it is
        pending. Once the answer itself was deleted, only its status is left."""
        rows = self._run("SELECT state, outcome, answer FROM outbox WHERE message_id = ?", (message_id,))
        if not rows or rows[0][0] == MessageState.PENDING.value:
            return None
        state, outcome, sealed = rows[0]
        if state == MessageState.DEAD.value:
            return dict(REFUSED)
        if sealed is not None:
            try:
                answer = self._sealing().unseal(sealed, where="answer:" + message_id)
                if isinstance(answer, dict):
                    return answer
            except SealError:
                log.error("outbox.answer_unreadable id=%s", message_id)
        return {"status": outcome}

    def message_ids(self, kind: str) -> list[str]:
        """Every message of `kind` still kept, delivered or not, oldest first."""
        return [r[0] for r in self._run("SELECT message_id FROM outbox WHERE kind = ? ORDER BY seq", (kind,))]

    def has_pending(self) -> bool:
        return bool(self._run("SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1"))

    def counts(self) -> QueueCounts:
        pending = self._run("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
        dead = self._run("SELECT count(*) FROM outbox WHERE state = 'dead'")[0][0]
        delivered = self._run("SELECT count(*) FROM outbox WHERE state = 'delivered'")[0][0]
        oldest = self._run("SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1")
        return QueueCounts(pending, dead, delivered, oldest[0][0] if oldest else None)

    def listing(self, state: MessageState, *, after: int = 0, limit: int = PAGE) -> list[QueuedMessage]:
        """A page of messages in `state`, oldest first, as a technician sees them (no contents)."""
        rows = self._run("SELECT %s FROM outbox WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?" % _LISTED,
                         (state.value, after, limit))
        return [QueuedMessage(r[0], r[1], r[2], r[3], MessageState(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                              bool(r[11]), bool(r[12])) for r in rows]

    def find(self, message_id: str) -> QueuedMessage | None:
        rows = self._run("SELECT %s FROM outbox WHERE message_id = ?" % _LISTED, (message_id,))
        if not rows:
            return None
        r = rows[0]
        return QueuedMessage(r[0], r[1], r[2], r[3], MessageState(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                             bool(r[11]), bool(r[12]))

    def last_answered_at(self) -> float | None:
        """When central last answered a message still kept (delivered or refused), wall time; None: none."""
        return self._run("SELECT max(answered_at) FROM outbox WHERE state IN ('delivered', 'dead')")[0][0]

    def saved_link(self) -> tuple[str, float] | None:
        rows = self._run("SELECT state, since FROM outbox_link WHERE id = 1")
        return (rows[0][0], rows[0][1]) if rows else None

    # -- inside -----------------------------------------------------------------------------------------

    def _message(self, row: tuple) -> OutboxMessage:
        seq, message_id, kind, txn, sealed, attempts = row
        try:
            payload = self._sealing().unseal(sealed, where="payload:" + message_id)
        except SealError:
            payload = None
        return OutboxMessage(message_id, kind, payload if isinstance(payload, dict) else None, attempts, seq, txn)

    def _seal(self, value: dict, column: str, message_id: str) -> bytes:
        return self._sealing().seal(value, where="%s:%s" % (column, message_id))

    def _sealing(self) -> Sealer:
        """The sealer, found when first needed: a technician's listing never needs the key."""
        if self._sealer is None:
            self._sealer = ephemeral_for(self.database) if self.database.in_memory \
                else Sealer.from_key_file(self._key_path or default_key_path(self.path))
        return self._sealer

    def _seal_clear_rows(self) -> int:
        """Rows of an outbox from before sealing (payload and answer in clear), sealed into the new table,
        page by page; the clear table is dropped. Inside the caller's transaction."""
        after, moved = -1, 0
        while True:
            rows = self._run("SELECT seq, message_id, kind, payload, created_at, attempts, delivered_at, answer "
                             "FROM outbox_clear WHERE seq > ? ORDER BY seq LIMIT 500", (after,))
            if not rows:
                break
            for seq, message_id, kind, payload_text, created_at, attempts, delivered_at, answer_text in rows:
                payload = json.loads(payload_text)
                answer = json.loads(answer_text) if answer_text else None
                delivered = delivered_at is not None
                self._run("INSERT OR IGNORE INTO outbox (seq, message_id, kind, txn, state, payload, created_at, "
                          "attempts, answered_at, outcome, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (
                              seq, message_id, kind, str(payload.get("request_id") or message_id),
                              MessageState.DELIVERED.value if delivered else MessageState.PENDING.value,
                              None if delivered else self._seal(payload, "payload", message_id), created_at,
                              attempts, delivered_at, str((answer or {}).get("status", "")),
                              self._seal(answer, "answer", message_id) if answer is not None else None))
                moved += 1
            after = rows[-1][0]
        self._run("DROP TABLE outbox_clear")
        return moved

    def _run(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """One statement; a full disk or a broken file is a QueueError."""
        return self.database.run(sql, parameters)

    def close(self) -> None:
        """Close the database the outbox opened itself; a shared one is its owner's to close."""
        if self._owns_database:
            self.database.close()


def _personal_kinds() -> str:
    return ", ".join("'%s'" % kind for kind in sorted(PERSONAL_KINDS))
