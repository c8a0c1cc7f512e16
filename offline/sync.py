"""The sync worker: delivers the outbox whenever the link allows, a transaction at a time.

Order is kept where it matters and nowhere else: a message goes only once
every older message of its transaction has been answered (a void never
overtakes its request), and a message that cannot go holds up only its own
transaction (`Outbox.due`). Every answer is classified:

* delivered: central's final answer (issued, rejected, voided), kept, and
  its waiter woken;
* refused for good (`deliver` raised CentralError or PaymentError: a 4xx
  that will not change): a dead letter with its reason, an `alert` (ids
  only), and its waiter hears ``{"status": "failed", "reason": "refused"}``,
  on which the runtime settles the transaction; the next message of the
  transaction (its void) goes all the same;
* not now (`deliver` returned None: the link, a timeout, a 5xx, garbled
  JSON): the probe (`GET /health`) tells whether the link is down, and
  then nothing more is tried until it is back, or up, and then only this
  transaction waits: exponential backoff with full jitter, capped.

While the link is down the probe is asked every few seconds (at most
`probe_s`), so its coming back is noticed at once; then every message held
back meanwhile is due again. Without a probe, two failures in a row count as
the link down, and the next delivery is the probe.

Answers are written to the disk in small batches (a page, or a tenth of a
second): a waiter hears its answer from memory at once, and a power cut
before the batch is written only means the message is delivered again, which
central answers with the same answer. Logs carry ids only.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk.central_client import CentralUnreachable
from kiosk.errors import CentralError, PaymentError, QueueError
from kiosk.messages import MessageKind
from kiosk.ports.outbox import LinkState
from offline.background import Background
from offline.backoff import Jitter, ceiling, full_jitter
from offline.outbox import PAGE, REFUSED, Outbox, OutboxMessage

log = logging.getLogger(__name__)

# deliver(kind, payload) -> central's answer, or None when central cannot take it now
Deliver = Callable[[MessageKind | str, dict], "dict | None"]
Probe = Callable[[], bool]
Alert = Callable[[str], None]

DEAD_LETTER_ALERT = "outbox.dead_letter"
FLUSH_COUNT = 100          # answers kept in memory at most before they are written
FLUSH_S = 0.1              # nor for longer than this
FIRST_PROBE_S = 0.25       # the first look at a link that went down; then doubling up to probe_s
SUSPECT_AFTER = 2          # without a probe: failures in a row that mean the link is down


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REFUSED = "refused"        # for good
    NOT_NOW = "not_now"        # the link or central: ask the probe
    FAULT = "fault"            # an unexpected fault of this message's delivery: it waits, alone


@dataclass(frozen=True)
class DrainReport:
    """What one pass over the due messages did."""

    delivered: int = 0
    refused: int = 0
    held_back: int = 0
    link_down: bool = False


def log_alert(kind: str) -> None:
    log.warning("alert.%s", kind)


class SyncWorker:
    def __init__(self, outbox: Outbox, deliver: Deliver, *, probe: Probe | None = None, alert: Alert = log_alert,
                 retry_s: float = 2.0, max_backoff_s: float = 300.0, probe_s: float = 3.0, page: int = PAGE,
                 clock: Callable[[], float] = time.time, jitter: Jitter = full_jitter,
                 housekeeping: Callable[[], object] | None = None, housekeeping_s: float = 60.0) -> None:
        """`retry_s` is the first backoff's ceiling and `max_backoff_s` the cap; `probe_s` the longest
        wait between two looks at a link that is down; `housekeeping` runs on this thread every
        `housekeeping_s` seconds (and at the start)."""
        self._outbox = outbox
        self._deliver = deliver
        self._probe = probe
        self._alert = alert
        self._retry_s = retry_s
        self._max_backoff_s = max_backoff_s
        self._probe_s = probe_s
        self._page = page
        self._clock = clock
        self._jitter = jitter
        self._housekeeping = housekeeping
        self._housekeeping_s = housekeeping_s
        self._background = Background("outbox-sync", self._timed_round, retry_s=retry_s)
        self._next_housekeeping = 0.0
        self._answered = threading.Condition()
        self._unflushed: dict[str, dict] = {}           # answers delivered, not written yet
        self._batch: list[tuple[str, dict]] = []
        self._batch_started = 0.0
        self._link = LinkState.UNKNOWN
        self._link_changed = threading.Condition()
        self._offline_rounds = 0

    # -- the background ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._next_housekeeping = time.monotonic()
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    def wake(self) -> None:
        """Something new is in the outbox: try now rather than at the next due time."""
        self._background.wake()

    @property
    def running(self) -> bool:
        return self._background.running

    @property
    def link(self) -> LinkState:
        return self._link

    @property
    def online(self) -> bool | None:
        """True or False once something was tried; None before."""
        return None if self._link is LinkState.UNKNOWN else self._link is LinkState.ONLINE

    def wait_for_link(self, state: LinkState, timeout: float) -> bool:
        """Wait until the link is seen in `state`; False when it was not within `timeout` seconds."""
        with self._link_changed:
            return self._link_changed.wait_for(lambda: self._link is state, timeout=timeout)

    def wait_for_answer(self, message_id: str, timeout: float) -> dict | None:
        with self._answered:
            self._answered.wait_for(lambda: self._answer(message_id) is not None, timeout=timeout)
            return self._answer(message_id)

    def wait_until_empty(self, timeout: float) -> bool:
        """Wait until every message kept is answered and the answers written; False when some still
        were not within `timeout` seconds."""
        with self._answered:
            return self._answered.wait_for(lambda: not self._unflushed and not self._outbox.has_pending(),
                                           timeout=timeout)

    def _answer(self, message_id: str) -> dict | None:
        answer = self._unflushed.get(message_id)
        return answer if answer is not None else self._outbox.answer(message_id)

    def _timed_round(self) -> float | None:
        """Housekeeping when it is due, then a round of delivery; seconds until the next."""
        if self._housekeeping is not None and time.monotonic() >= self._next_housekeeping:
            try:
                self._housekeeping()
            except Exception:                      # housekeeping never stops delivery
                log.exception("sync.housekeeping_failed")
            self._next_housekeeping = time.monotonic() + self._housekeeping_s
        try:
            wait = self._round()
        except QueueError as exc:                 # the store failed: try again at the next round
            log.error("sync.outbox_unreadable error=%s", exc)
            wait = self._retry_s
        if self._housekeeping is not None:
            until = max(0.0, self._next_housekeeping - time.monotonic())
            wait = until if wait is None else min(wait, until)
        return wait

    def _round(self) -> float | None:
        """Deliver what can go now; seconds until the next round (None: until woken)."""
        if self._link is LinkState.OFFLINE and self._probe is not None:
            if not self._ask_probe():
                return self._offline_wait()
            self._set_link(LinkState.ONLINE)
        started = self._clock()
        while not self._background.stopping:
            started = self._clock()
            report = self.drain_once(now=started)
            if report.link_down:
                return self._offline_wait()
            if not (report.delivered or report.refused):
                break                             # nothing new can have become due
        next_due = self._outbox.next_due_at(after=started)
        return None if next_due is None else max(0.0, next_due - self._clock())

    def _offline_wait(self) -> float:
        self._offline_rounds += 1
        first = FIRST_PROBE_S if self._probe is not None else self._retry_s
        return min(self._probe_s, first * 2 ** min(self._offline_rounds - 1, 20))

    # -- one pass ---------------------------------------------------------------------------------------

    def drain_once(self, now: float | None = None) -> DrainReport:
        """Deliver every message that may go now, page by page; stops early when the link is down."""
        now = self._clock() if now is None else now
        delivered = refused = held_back = failures_in_a_row = 0
        after = 0
        try:
            while not self._background.stopping:
                page = self._outbox.due(now, after=after, limit=self._page)
                if not page:
                    break
                for message in page:
                    if self._background.stopping:
                        break
                    after = message.seq
                    if message.payload is None:
                        self._refuse(message, "unsealable: sealed under a device key this kiosk no longer has")
                        refused += 1
                        continue
                    outcome, result = self._attempt(message.message_id, message.kind, message.payload)
                    if outcome is Outcome.DELIVERED:
                        self._delivered(message.message_id, result)
                        delivered += 1
                        failures_in_a_row = 0
                    elif outcome is Outcome.REFUSED:
                        self._refuse(message, result)
                        refused += 1
                        failures_in_a_row = 0
                    elif outcome is Outcome.FAULT:
                        self._hold_back(message)
                        held_back += 1
                    else:
                        link_up = self._ask_probe() if self._probe is not None else None
                        if link_up is False:
                            self._outbox.record_attempt(message.message_id)
                            self._set_link(LinkState.OFFLINE)
                            return DrainReport(delivered, refused, held_back, link_down=True)
                        self._hold_back(message)           # the link is up: only this transaction waits
                        held_back += 1
                        failures_in_a_row += 1
                        if link_up is None and failures_in_a_row >= SUSPECT_AFTER:
                            self._set_link(LinkState.OFFLINE)
                            return DrainReport(delivered, refused, held_back, link_down=True)
        finally:
            self._flush()
        return DrainReport(delivered, refused, held_back)

    def deliver_now(self, message_id: str, kind: str, payload: dict) -> dict | None:
        """One delivery attempt, here and now: for a message the outbox could
        not store (a full disk), so that it is at least tried once."""
        outcome, result = self._attempt(message_id, kind, payload)
        if outcome is Outcome.DELIVERED:
            self._set_link(LinkState.ONLINE)
            return result
        if outcome is Outcome.REFUSED:
            log.error("sync.message_refused id=%s kind=%s reason=%s", message_id, kind, result)
            self._alert(DEAD_LETTER_ALERT)
            return dict(REFUSED)
        return None

    def _attempt(self, message_id: str, kind: str, payload: dict) -> tuple[Outcome, object]:
        """Send one message: its outcome, with central's answer (DELIVERED) or the reason (REFUSED)."""
        try:
            answer = self._deliver(_kind(kind), payload)
        except CentralUnreachable:
            return Outcome.NOT_NOW, None
        except (CentralError, PaymentError) as exc:
            return Outcome.REFUSED, "%s: %s" % (type(exc).__name__, exc)
        except Exception:
            log.exception("sync.deliver_crashed id=%s kind=%s", message_id, kind)
            return Outcome.FAULT, None
        if answer is None:
            return Outcome.NOT_NOW, None
        if not isinstance(answer, dict):
            log.error("sync.answer_not_a_map id=%s kind=%s", message_id, kind)
            return Outcome.FAULT, None
        return Outcome.DELIVERED, answer

    def _delivered(self, message_id: str, answer: dict) -> None:
        with self._answered:
            self._unflushed[message_id] = answer
            self._answered.notify_all()
        if not self._batch:
            self._batch_started = time.monotonic()
        self._batch.append((message_id, answer))
        self._set_link(LinkState.ONLINE)
        if len(self._batch) >= FLUSH_COUNT or time.monotonic() - self._batch_started >= FLUSH_S:
            self._flush()

    def _flush(self) -> None:
        """Write the answers delivered so far; one that cannot be written is delivered again later."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        try:
            self._outbox.record_answers(batch)
        except QueueError as exc:
            log.error("sync.answers_unwritten count=%d error=%s", len(batch), exc)
        for message_id, _answer in batch:
            log.info("outbox.delivered id=%s", message_id)
        with self._answered:
            for message_id, _answer in batch:
                self._unflushed.pop(message_id, None)
            self._answered.notify_all()

    def _refuse(self, message: OutboxMessage, reason: object) -> None:
        self._outbox.dead_letter(message.message_id, str(reason))
        log.error("sync.dead_letter id=%s kind=%s txn=%s reason=%s", message.message_id, message.kind, message.txn,
                  reason)
        self._alert(DEAD_LETTER_ALERT)
        with self._answered:
            self._answered.notify_all()

    def _hold_back(self, message: OutboxMessage) -> None:
        """Only this message's transaction waits: 2**n x retry_s at most (capped), jittered."""
        wait = self._jitter(ceiling(self._retry_s, message.attempts + 1, self._max_backoff_s))
        self._outbox.defer(message.message_id, self._clock() + wait)
        log.info("sync.held_back id=%s txn=%s attempts=%d wait_s=%.1f", message.message_id, message.txn,
                 message.attempts + 1, wait)

    def _ask_probe(self) -> bool:
        try:
            return bool(self._probe())
        except Exception:
            log.exception("sync.probe_crashed")
            return False

    def _set_link(self, state: LinkState) -> None:
        with self._link_changed:
            if state is self._link:
                if state is LinkState.ONLINE:
                    self._offline_rounds = 0
                return
            was, self._link = self._link, state
            self._link_changed.notify_all()
        log.info("sync.link state=%s", state.value)
        try:
            self._outbox.save_link(state.value, self._clock())
            if state is LinkState.ONLINE:
                self._offline_rounds = 0
                if was is LinkState.OFFLINE:
                    released = self._outbox.reset_backoff()     # held back while the link was down
                    if released:
                        log.info("sync.released held_back=%d", released)
        except QueueError as exc:
            log.error("sync.link_unwritten error=%s", exc)


def _kind(kind: str) -> MessageKind | str:
    try:
        return MessageKind(kind)
    except ValueError:
        return kind                   # not one of ours: `deliver` says so (CentralError)
