"""The sync worker: drains the outbox in order whenever the link allows.

It delivers the oldest message first and stops at the first one central
cannot take yet, so that a void never overtakes the request it voids. Waiters
(a citizen at the screen, waiting for their document) are woken when the
answer to their message arrives.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from kiosk.errors import CentralError, QueueError
from offline.outbox import Outbox

log = logging.getLogger(__name__)

# deliver(kind, payload) -> central's answer, or None when central cannot be reached now
Deliver = Callable[[str, dict], "dict | None"]


class SyncWorker:
    def __init__(self, outbox: Outbox, deliver: Deliver, *, retry_s: float = 5.0) -> None:
        self._outbox = outbox
        self._deliver = deliver
        self._retry_s = retry_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._answered = threading.Condition()
        self._thread: threading.Thread | None = None
        self.online: bool | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Something new is in the outbox: try now rather than at the next retry."""
        self._wake.set()

    def wait_for_answer(self, message_id: str, timeout: float) -> dict | None:
        with self._answered:
            self._answered.wait_for(lambda: self._outbox.answer(message_id) is not None, timeout=timeout)
        return self._outbox.answer(message_id)

    def deliver_now(self, message_id: str, kind: str, payload: dict) -> dict | None:
        """One delivery attempt, here and now: for a message the outbox could
        not store (a full disk), so that it is at least tried once."""
        try:
            answer = self._deliver(kind, payload)
        except CentralError as exc:
            # Central will never take this message: its refusal is the answer.
            log.error("sync.message_refused id=%s kind=%s error=%s", message_id, kind, exc)
            return {"status": "failed", "reason": "refused"}
        except Exception:  # an unexpected fault must not stop the worker
            log.exception("sync.deliver_crashed id=%s kind=%s", message_id, kind)
            return None
        self._set_online(answer is not None)
        return answer

    def drain_once(self) -> bool:
        """Deliver what can be delivered now; True when nothing is left."""
        for message in self._outbox.pending():
            self._outbox.record_attempt(message.message_id)
            answer = self.deliver_now(message.message_id, message.kind, message.payload)
            if answer is None:
                return False
            self._outbox.mark_delivered(message.message_id, answer)
            with self._answered:
                self._answered.notify_all()
        return True

    def _set_online(self, online: bool) -> None:
        if online is not self.online:
            log.info("sync.link online=%s", online)
            self.online = online

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.drain_once()
            except QueueError as exc:             # the store failed: try again at the next round
                log.error("sync.outbox_unreadable error=%s", exc)
                done = False
            self._wake.wait(timeout=None if done else self._retry_s)
            self._wake.clear()
