"""The outbox port on SQLite: the store (`offline.outbox`) and its sync worker together."""

from __future__ import annotations

import logging

from kiosk.errors import QueueError
from kiosk.messages import MessageKind
from kiosk.ports.outbox import Deliver
from kiosk.ports.outbox import Outbox as OutboxPort
from offline.outbox import Outbox
from offline.sync import SyncWorker

log = logging.getLogger(__name__)


class DurableOutbox(OutboxPort):
    def __init__(self, store: Outbox, deliver: Deliver, *, retry_s: float = 5.0) -> None:
        self.store = store
        self.sync = SyncWorker(store, deliver, retry_s=retry_s)

    def start(self) -> None:
        self.sync.start()

    def stop(self) -> None:
        self.sync.stop()

    def send(self, kind: MessageKind, message_id: str, payload: dict) -> bool:
        try:
            self.store.put(message_id, kind.value, payload)
        except QueueError as exc:
            # A full disk must not lose a refund: one delivery attempt here and now.
            log.error("outbox.unwritable kind=%s id=%s error=%s", kind.value, message_id, exc)
            return self.sync.deliver_now(message_id, kind.value, payload) is not None
        self.sync.wake()
        return True

    def wait_for_answer(self, message_id: str, timeout: float) -> dict | None:
        return self.sync.wait_for_answer(message_id, timeout)


def from_config(config, deliver: Deliver) -> DurableOutbox:
    """The `sqlite` outbox backend: `outbox.path` in the kiosk's state directory."""
    return DurableOutbox(Outbox(config.outbox.path), deliver)
