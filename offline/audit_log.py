"""The audit log (`kiosk.ports.audit`) as a table of the kiosk's state database, with its anchor beside it.

The table `audit_log` holds the entries, one row each, written with the
database's settings (write-ahead log, every commit synced to the disk). It
is append-only: triggers refuse any UPDATE or DELETE of a row (a guard
against a mistake in the kiosk's own code; someone with the file can drop
them, which is what the hash chain is for). No retention deletes from it.

**The anchor.** After each entry is committed, its (seq, hash) is written to
a file beside the database, `<database>.audit-anchor` (JSON, 0600, written
to a temporary file, synced and renamed). It catches what the chain alone
cannot: the newest entries deleted, or the database file put back from an
older copy (the anchor then names an entry the log does not have, or one
with another hash). A power cut between the commit and the anchor's write
leaves the anchor one entry behind, which is consistent (the anchor must
name an entry of the log, not the newest). It is on the same disk: someone
who rewrites both the table and the anchor file is caught only by a copy
kept elsewhere (`kiosk audit export`, and central's copy once the telemetry
ships it). A database in memory keeps no anchor.

At every start (`check_anchor`), the anchor is held against the log's newest
entry. When it does not match (the newest entries gone, the anchor gone while
the log has entries, another hash), the kiosk says so in the log (critical),
calls a technician, and writes the finding into the chain itself
(`audit.anchor_mismatch`, detail `anchor:<seq>:last:<seq>`) before anchoring
again: the next entries are not left looking whole, and `kiosk audit verify`
keeps failing on the recorded loss, naming the first entry lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kiosk.atomic_file import write_atomically
from kiosk.errors import AuditError
from kiosk.ports.audit import (
    ANCHOR_MISMATCH_EVENT, GENESIS, Anchor, AuditEntry, AuditLog, anchor_mismatch_detail, chain_hash, check_codes,
)
from offline.database import StateDatabase

log = logging.getLogger(__name__)

ANCHOR_SUFFIX = ".audit-anchor"
_DEFAULT = object()

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS audit_log (
        seq        INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        event      TEXT NOT NULL,
        device_id  TEXT NOT NULL,
        technician TEXT,
        detail     TEXT NOT NULL,
        hash       TEXT NOT NULL
    )
    """,
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_COLUMNS = "seq, at, event, device_id, technician, detail, hash"


def anchor_path_for(database: StateDatabase) -> Path | None:
    return None if database.in_memory else database.path.with_name(database.path.name + ANCHOR_SUFFIX)


class SqliteAuditLog(AuditLog):
    def __init__(self, database: StateDatabase, device_id: str, *, anchor_path: Path | None | object = _DEFAULT,
                 clock: Callable[[], float] = time.time, alert: Callable[[str], None] | None = None) -> None:
        """The audit log in `database` (the outbox's), its entries stamped with `device_id` and `clock`
        (wall time); the anchor at `anchor_path` (default: beside the database; None: none kept).
        AuditError when the table cannot be made."""
        self.database = database
        self.device_id = device_id
        self._anchor_path: Path | None = anchor_path_for(database) if anchor_path is _DEFAULT else anchor_path  # type: ignore[assignment]
        self._clock = clock
        self._alert = alert
        self._lock = threading.Lock()        # one writer: entries and their anchor in the same order
        with database.transaction(error=AuditError):
            for statement in _SCHEMA:
                database.run(statement, error=AuditError)

    @property
    def anchor_kept(self) -> bool:
        return self._anchor_path is not None

    # -- writing --------------------------------------------------------------------------------------

    def append(self, event: str, detail: str = "", *, technician: str | None = None) -> AuditEntry:
        check_codes(event, detail, technician)
        with self._lock:
            with self.database.transaction(error=AuditError):
                last = self._last()
                seq = last.seq + 1 if last else 1
                at = _iso(self._clock())
                entry = AuditEntry(seq, at, event, self.device_id, technician, detail,
                                   chain_hash(last.hash if last else GENESIS, seq, at, event, self.device_id,
                                              technician, detail))
                self.database.run("INSERT INTO audit_log (%s) VALUES (?, ?, ?, ?, ?, ?, ?)" % _COLUMNS,
                                  (entry.seq, entry.at, entry.event, entry.device_id, entry.technician,
                                   entry.detail, entry.hash), error=AuditError)
            self._write_anchor(Anchor(entry.seq, entry.hash))
        return entry

    def check_anchor(self) -> bool:
        """At a start: the anchor against the newest entry (not the whole chain: `verify` does that).
        False when they do not match, after writing the finding into the chain and anchoring again."""
        if self._anchor_path is None:
            return True
        with self._lock:
            anchor = self.anchor()
            last = self._last()
            if anchor is None and last is None:
                return True
            if anchor is not None and last is not None and anchor.seq <= last.seq:
                if self._hash_of(anchor.seq) == anchor.hash:
                    if anchor.seq < last.seq:        # a power cut after a commit, before its anchor
                        self._write_anchor(last)
                    return True
        last_seq = last.seq if last else 0
        log.critical("audit.anchor_mismatch anchor_seq=%s last_seq=%d",
                     "none" if anchor is None else anchor.seq, last_seq)
        if self._alert is not None:
            self._alert(ANCHOR_MISMATCH_EVENT)
        try:
            self.append(ANCHOR_MISMATCH_EVENT, anchor_mismatch_detail(anchor, last_seq))
        except AuditError as exc:           # a full disk at start: the kiosk still starts; found again next time
            log.critical("audit.unwritable event=%s error=%s", ANCHOR_MISMATCH_EVENT, exc)
        return False

    def _write_anchor(self, anchor: Anchor) -> None:
        """Written whole or not at all; a failure is logged, never raised: the entry is written, and
        an anchor left behind still names an entry of the log."""
        if self._anchor_path is None:
            return
        try:
            write_atomically(self._anchor_path, json.dumps({"seq": anchor.seq, "hash": anchor.hash}).encode("ascii"))
        except OSError as exc:
            log.critical("audit.anchor_unwritable seq=%d error=%s", anchor.seq, exc.strerror or type(exc).__name__)

    # -- reading --------------------------------------------------------------------------------------

    def entries(self, *, after: int = 0, limit: int = 500) -> list[AuditEntry]:
        rows = self.database.run("SELECT %s FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?" % _COLUMNS,
                                 (after, limit), error=AuditError)
        return [AuditEntry(*row) for row in rows]

    def anchor(self) -> Anchor | None:
        if self._anchor_path is None:
            return None
        try:
            data = json.loads(self._anchor_path.read_text(encoding="utf-8"))
            return Anchor(int(data["seq"]), str(data["hash"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return Anchor(-1, "")               # there, but unreadable: matches nothing

    def _last(self) -> Anchor | None:
        rows = self.database.run("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", error=AuditError)
        return Anchor(*rows[0]) if rows else None

    def _hash_of(self, seq: int) -> str | None:
        rows = self.database.run("SELECT hash FROM audit_log WHERE seq = ?", (seq,), error=AuditError)
        return rows[0][0] if rows else None


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
