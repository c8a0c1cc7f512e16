"""`kiosk selftest`'s look at the state database (the `sqlite` outbox backend's tool, a `kiosk.tools`
entry point, `outbox-check`): the file's integrity, and what waits in the outbox and the journal.

It opens the database the running kiosk uses, as `kiosk queue` does, and only reads it: SQLite's
`quick_check` is run here rather than by opening with `check=True`, which would move a damaged file
aside under a running kiosk (the kiosk does that itself at its next start). Nothing sealed is opened
and nothing personal is said: counts, ages and SQLite's own words.

Outcomes:

- failed: the file cannot be opened, or `quick_check` finds it damaged;
- warning: dead letters (messages central refused for good), or settlements the payment side refused
  for good: the kiosk serves, but a technician must look (`kiosk queue dead`). Not a failure: they
  stay listed for weeks after a technician has seen them, and would fail every later run;
- skipped: no state database yet (the kiosk makes it at its first start);
- ok otherwise, with the counts.
"""

from __future__ import annotations

import time

from kiosk.config import KioskConfig
from kiosk.errors import KioskError
from kiosk.selftest import Outcome, Verdict
from offline.database import StateDatabase
from offline.journal import SqliteJournal
from offline.outbox import Outbox


def check(config: KioskConfig) -> Verdict:
    path = config.outbox.path
    if not path.exists():
        return Verdict(Outcome.SKIPPED, "no state database yet at %s (the kiosk makes it at its first start)" % path)
    try:
        database = StateDatabase(path, check=False)
    except KioskError as exc:
        return Verdict(Outcome.FAILED, "the state database cannot be opened: %s" % exc)
    try:
        verdict = [str(row[0]) for row in database.run("PRAGMA quick_check(5)")]
        if verdict != ["ok"]:
            return Verdict(Outcome.FAILED, "the state database is damaged (%s); the kiosk moves it aside and "
                           "salvages it at its next start" % "; ".join(verdict)[:120])
        counts = Outbox(database, key_path=config.outbox.key_path).counts()
        journal = SqliteJournal(database)
        refused = len(journal.dead())
        said = "integrity ok; %d pending%s, %d dead letters, %d transactions open, %d settlements refused" % (
            counts.pending, _oldest(counts.oldest_pending_at), counts.dead, len(journal.unfinished()), refused)
    except KioskError as exc:
        return Verdict(Outcome.FAILED, "the state database cannot be read: %s" % exc)
    finally:
        database.close()
    if counts.dead or refused:
        return Verdict(Outcome.WARNING, said + " (kiosk queue dead)")
    return Verdict(Outcome.OK, said)


def _oldest(created_at: float | None) -> str:
    if created_at is None:
        return ""
    minutes = max(0, int(time.time() - created_at)) // 60
    return " (oldest %d min)" % minutes if minutes < 120 else " (oldest %d h)" % (minutes // 60)
