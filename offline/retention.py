"""What the state database keeps, and for how long: nothing personal longer than needed.

Run now and then by the sync worker (`run_once`), and once more when the
kiosk stops:

* an issued document (the answer to a certificate request) is deleted as
  soon as the journal says its transaction no longer needs it: printed,
  being settled or settled, never charged, or on the dead-letter list (a
  settlement never prints); an answer that belongs
  to no journalled transaction goes once `keep_unjournalled_s` has passed
  (no session waits that long for it);
* a delivered message is deleted once central has answered it,
  `keep_answered_s` ago, and its transaction is finished in the journal (or
  there is none); a dead letter after `keep_dead_s` (a technician has had
  time to see it; its personal data went when central refused it);
* a finished journal entry after `keep_journal_s`;
* then the freed pages go back to the disk and the write-ahead log is
  emptied into the file, so the file shrinks instead of growing by every
  transaction.

The payload of a request is not here: it is deleted the moment central
answers (`offline.outbox`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from kiosk.ports.journal import FINISHED, TxnState
from offline.outbox import PERSONAL_KINDS, Outbox

log = logging.getLogger(__name__)

KEEP_ANSWERED_S = 600.0              # ten minutes: a technician or a test may still look
KEEP_UNJOURNALLED_S = 600.0
KEEP_DEAD_S = 30 * 86400.0
KEEP_JOURNAL_S = 90 * 86400.0

# A document nobody will print again: printed, or its transaction being (or already) given back.
_NO_LONGER_NEEDED = sorted(state.value for state in (*FINISHED, TxnState.SETTLING, TxnState.DEAD))
_FINISHED = sorted(state.value for state in FINISHED)
# A claim whose answer from central the reconciler has not read yet (issued: its serial; refused: a refund):
# its message and answer stay until it has, whatever their age.
_CLAIM_UNHEARD = "(j.state = 'claimed' AND j.serial IS NULL)"


def _listed(values: list[str]) -> str:
    return ", ".join("'%s'" % value for value in values)


@dataclass(frozen=True)
class RetentionReport:
    documents_deleted: int = 0
    messages_pruned: int = 0
    journal_pruned: int = 0
    pages_freed: int = 0


class Retention:
    def __init__(self, outbox: Outbox, *, keep_answered_s: float = KEEP_ANSWERED_S,
                 keep_unjournalled_s: float = KEEP_UNJOURNALLED_S, keep_dead_s: float = KEEP_DEAD_S,
                 keep_journal_s: float = KEEP_JOURNAL_S, clock: Callable[[], float] = time.time) -> None:
        self._database = outbox.database
        self._keep_answered_s = keep_answered_s
        self._keep_unjournalled_s = keep_unjournalled_s
        self._keep_dead_s = keep_dead_s
        self._keep_journal_s = keep_journal_s
        self._clock = clock

    def run_once(self) -> RetentionReport:
        """Delete what is no longer needed and give the space back; QueueError when the file cannot."""
        now = self._clock()
        journal = self._has_journal()
        documents = self._delete_documents(now, journal)
        pruned = self._prune_messages(now, journal)
        journal_pruned = self._prune_journal(now) if journal else 0
        freed = self._database.reclaim_space() if (documents or pruned or journal_pruned) else 0
        report = RetentionReport(documents, pruned, journal_pruned, freed)
        if documents or pruned or journal_pruned:
            log.info("retention.pass documents=%d messages=%d journal=%d pages_freed=%d",
                     documents, pruned, journal_pruned, freed)
        return report

    def _has_journal(self) -> bool:
        return bool(self._database.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'"))

    def _delete_documents(self, now: float, journal: bool) -> int:
        kinds = _listed(sorted(PERSONAL_KINDS))
        unjournalled = "answered_at < :cutoff"
        if journal:
            unjournalled += " AND NOT EXISTS (SELECT 1 FROM journal AS j WHERE j.request_id = outbox.txn)"
            no_longer_needed = ("EXISTS (SELECT 1 FROM journal AS j WHERE j.request_id = outbox.txn "
                                "AND j.state IN (%s) AND NOT %s) OR " % (_listed(_NO_LONGER_NEEDED), _CLAIM_UNHEARD))
        else:
            no_longer_needed = ""
        with self._database.transaction():
            self._database.run("UPDATE outbox SET answer = NULL WHERE answer IS NOT NULL AND kind IN (%s) "
                               "AND (%s(%s))" % (kinds, no_longer_needed, unjournalled),
                               {"cutoff": now - self._keep_unjournalled_s})
            return self._database.run("SELECT changes()")[0][0]

    def _prune_messages(self, now: float, journal: bool) -> int:
        finished = ""
        if journal:
            finished = (" AND NOT EXISTS (SELECT 1 FROM journal AS j WHERE j.request_id = outbox.txn "
                        "AND (j.state NOT IN (%s) OR %s))" % (_listed(_FINISHED), _CLAIM_UNHEARD))
        with self._database.transaction():
            self._database.run("DELETE FROM outbox WHERE state = 'delivered' AND answered_at < ?%s" % finished,
                               (now - self._keep_answered_s,))
            delivered = self._database.run("SELECT changes()")[0][0]
            self._database.run("DELETE FROM outbox WHERE state = 'dead' AND answered_at < ?",
                               (now - self._keep_dead_s,))
            return delivered + self._database.run("SELECT changes()")[0][0]

    def _prune_journal(self, now: float) -> int:
        with self._database.transaction():
            self._database.run("DELETE FROM journal WHERE state IN (%s) AND updated_at < ?" % _listed(_FINISHED),
                               (now - self._keep_journal_s,))
            return self._database.run("SELECT changes()")[0][0]
