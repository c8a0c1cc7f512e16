"""`kiosk queue`: the outbox, for technicians (the `sqlite` backend's tool, a `kiosk.tools` entry point).

    kiosk queue status [--config C]         counts, the oldest pending message's age, the file's size,
                                            the free disk, and the link as the kiosk last saw it
    kiosk queue list [--config C]           pending messages: id, kind, transaction, attempts, next try
    kiosk queue dead [--config C]           dead letters: id, kind, transaction, when, why; and the
                                            settlements the payment side refused for good (the journal's)
    kiosk queue retry ID [--config C]       a dead letter back in the queue (the kiosk sends it within a minute)
    kiosk queue export FILE [--config C]    all of the above as JSON

Nothing printed or exported holds personal data: ids (the request id is the
transaction's), kinds, states, counts, times and reasons (codes). Payloads
and answers are sealed and never opened here; the device key is not read.
It opens the state database the running kiosk uses (SQLite allows both) and,
except `retry`, only reads it. Exit 0; 1 when `retry` could not; 2 for a
usage or configuration problem.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from kiosk.errors import KioskError
from offline.database import StateDatabase
from offline.tool_state import open_for_tool
from offline.disk_budget import MB
from offline.journal import SqliteJournal
from offline.outbox import MessageState, Outbox, QueuedMessage, RetryResult

ACTIONS = ("status", "list", "dead", "retry", "export")
LISTED = 100          # messages printed by `list` and `dead`; `export` writes them all


def run(config_path: Path, action: str, argument: str | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    opened = open_for_tool("queue", action, ACTIONS, config_path)
    if opened is None:
        return 2
    config, database = opened
    try:
        store = Outbox(database, key_path=config.outbox.key_path)     # nothing sealed is opened here
        if action == "status":
            _print_status(_status(store, database, time.time()), out)
        elif action == "list":
            _print_messages(store, MessageState.PENDING, out)
        elif action == "dead":
            _print_messages(store, MessageState.DEAD, out)
            _print_refused_settlements(SqliteJournal(database), out)
        elif action == "retry":
            return _retry(store, argument or "", out)
        else:
            _export(store, database, Path(argument or ""), out)
        return 0
    except KioskError as exc:
        print("kiosk: %s" % exc, file=sys.stderr)
        return 2
    finally:
        database.close()


def _status(store: Outbox, database: StateDatabase, now: float) -> dict:
    counts = store.counts()
    journal = SqliteJournal(database)
    file_bytes, wal_bytes = database.size_bytes()
    link = store.saved_link()
    try:
        stats = os.statvfs(database.path.parent)
        free = stats.f_bavail * stats.f_frsize
    except OSError:
        free = None
    return {
        "pending": counts.pending, "dead": counts.dead, "delivered_not_pruned": counts.delivered,
        "transactions_open": len(journal.unfinished()), "settlements_refused": len(journal.dead()),
        "oldest_pending_age_s": round(now - counts.oldest_pending_at, 1) if counts.oldest_pending_at else None,
        "database_bytes": file_bytes, "wal_bytes": wal_bytes, "free_disk_bytes": free,
        "link": link[0] if link else "unknown", "link_since": _iso(link[1]) if link else None,
    }


def _print_status(status: dict, out: TextIO) -> None:
    age = status["oldest_pending_age_s"]
    print("pending               %d%s" % (status["pending"], "" if age is None else "  (oldest %s)" % _age(age)),
          file=out)
    print("dead letters          %d" % status["dead"], file=out)
    print("delivered, kept       %d" % status["delivered_not_pruned"], file=out)
    print("transactions open     %d" % status["transactions_open"], file=out)
    print("settlements refused   %d%s" % (status["settlements_refused"], "  (kiosk queue dead)"
                                          if status["settlements_refused"] else ""), file=out)
    print("database              %.1f MB (write-ahead log %.1f MB)" % (
        status["database_bytes"] / MB, status["wal_bytes"] / MB), file=out)
    if status["free_disk_bytes"] is not None:
        print("free disk             %.0f MB" % (status["free_disk_bytes"] / MB), file=out)
    print("link                  %s%s" % (status["link"], " since %s" % status["link_since"]
                                          if status["link_since"] else ""), file=out)


def _print_messages(store: Outbox, state: MessageState, out: TextIO) -> None:
    messages = store.listing(state, limit=LISTED + 1)
    if state is MessageState.PENDING:
        print("%-40s %-20s %-36s %8s  %s" % ("id", "kind", "transaction", "attempts", "next try"), file=out)
        for m in messages[:LISTED]:
            print("%-40s %-20s %-36s %8d  %s" % (m.message_id, m.kind, m.txn, m.attempts,
                                                 _iso(m.next_try_at) if m.next_try_at else "now"), file=out)
    else:
        print("%-40s %-20s %-36s %8s  %-20s %s" % ("id", "kind", "transaction", "attempts", "refused at", "reason"),
              file=out)
        for m in messages[:LISTED]:
            print("%-40s %-20s %-36s %8d  %-20s %s" % (m.message_id, m.kind, m.txn, m.attempts,
                                                       _iso(m.answered_at) if m.answered_at else "-", m.reason),
                  file=out)
    if len(messages) > LISTED:
        total = store.counts().pending if state is MessageState.PENDING else store.counts().dead
        print("... and %d more (kiosk queue export FILE lists them all)" % (total - LISTED), file=out)


def _print_refused_settlements(journal: SqliteJournal, out: TextIO) -> None:
    """Paid transactions whose fee the payment side would not give back: a technician's to settle by hand."""
    dead = journal.dead()
    print("\nsettlements refused by the payment side: %d" % len(dead), file=out)
    if dead:
        print("%-34s %-34s %14s  %-20s %s" % ("transaction", "sale", "amount", "since", "reason"), file=out)
    for entry in dead:
        print("%-34s %-34s %10s %s  %-20s %s" % (entry.txn_id, entry.sale_id, entry.amount.major_text(),
                                               entry.amount.currency, _iso(entry.updated_at), entry.dead_reason),
              file=out)


def _settlements(journal: SqliteJournal) -> list[dict]:
    return [{"txn_id": e.txn_id, "sale_id": e.sale_id, "request_id": e.request_id, "service_code": e.service_code,
             "amount": e.amount.to_json(), "payment_id": e.payment_id, "since": _iso(e.updated_at),
             "reason": e.dead_reason} for e in journal.dead()]


def _retry(store: Outbox, message_id: str, out: TextIO) -> int:
    result = store.retry(message_id)
    if result is RetryResult.RETRIED:
        print("%s: back in the queue; the kiosk sends it within a minute" % message_id, file=out)
        return 0
    if result is RetryResult.PAYLOAD_GONE:
        print("kiosk: %s cannot be sent again: its personal data was deleted when central refused it, "
              "and its transaction was settled (fee given back, document voided)" % message_id, file=sys.stderr)
    else:
        print("kiosk: %s is not a dead letter" % message_id, file=sys.stderr)
    return 1


def _export(store: Outbox, database: StateDatabase, path: Path, out: TextIO) -> None:
    if not path.name:
        raise KioskError("export needs a file to write")
    report = {"exported_at": _iso(time.time()), "state_database": str(database.path),
              "status": _status(store, database, time.time()),
              "pending": [m.to_json() for m in _all(store, MessageState.PENDING)],
              "dead": [m.to_json() for m in _all(store, MessageState.DEAD)],
              "settlements_refused": _settlements(SqliteJournal(database))}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=1)
        file.write("\n")
    print("%s: %d pending, %d dead letters" % (path, len(report["pending"]), len(report["dead"])), file=out)


def _all(store: Outbox, state: MessageState) -> list[QueuedMessage]:
    found: list[QueuedMessage] = []
    after = 0
    while True:
        page = store.listing(state, after=after, limit=500)
        if not page:
            return found
        found.extend(page)
        after = page[-1].seq


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%d h %d min" % (seconds // 3600, seconds % 3600 // 60)
