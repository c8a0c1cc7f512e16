"""The kiosk's local state on SQLite: the outbox port (the store `offline.outbox` and its sync
worker), the transaction journal and its reconciler, all on one state database file, with the
device key that seals personal data beside it, its retention rules and its disk budget."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from kiosk.errors import QueueError
from kiosk.messages import MessageKind
from kiosk.ports.outbox import Deliver, LinkState, QueueDepth
from kiosk.ports.outbox import Outbox as OutboxPort
from kiosk.ports.payment_terminal import PaymentTerminal
from kiosk.ports.state import LocalState
from offline.audit_log import SqliteAuditLog
from offline.catalogue_cache import FileCatalogueCache, for_state_database
from offline.command_ledger import ANNOUNCEMENTS_FILE, SqliteCommandLedger
from offline.database import StateDatabase
from offline.disk_budget import MB, DiskBudget
from offline.journal import SqliteJournal
from offline.link_probe import HealthProbe
from offline.outbox import Outbox
from offline.reconciler import Reconciler
from offline.retention import Retention, RetentionReport
from offline.sealing import Sealer, default_key_path
from offline.sync import Probe, SyncWorker, log_alert
from offline.technician_lockout import SqliteTechnicianLockout
from offline.telemetry_store import SqliteTelemetryStore

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)


class DurableOutbox(OutboxPort):
    def __init__(self, store: Outbox, deliver: Deliver, *, retry_s: float = 2.0, max_backoff_s: float = 300.0,
                 probe: Probe | None = None, probe_s: float = 3.0, alert: Callable[[str], None] = log_alert,
                 budget: DiskBudget | None = None, retention: Retention | None = None,
                 housekeeping_s: float = 60.0) -> None:
        """`probe` tells whether central can be reached (None: deliveries tell); `budget` is the
        disk's (None: never short of space, as for a database in memory)."""
        self.store = store
        self.budget = budget
        self.retention = retention or Retention(store)
        self.sync = SyncWorker(store, deliver, probe=probe, alert=alert, retry_s=retry_s,
                               max_backoff_s=max_backoff_s, probe_s=probe_s, housekeeping=self.housekeep,
                               housekeeping_s=housekeeping_s)

    def start(self) -> None:
        self.sync.start()

    def stop(self) -> None:
        self.sync.stop()
        try:
            self.housekeep()                   # what the last transactions no longer need goes now
        except QueueError as exc:
            log.error("outbox.housekeeping_failed error=%s", exc)

    def send(self, kind: MessageKind, message_id: str, payload: dict) -> bool:
        try:
            self.store.put(message_id, kind.value, payload)
        except QueueError as exc:
            # A full disk must not lose a void: one delivery attempt here and now.
            log.error("outbox.unwritable kind=%s id=%s error=%s", kind.value, message_id, exc)
            return self.sync.deliver_now(message_id, kind.value, payload) is not None
        self.sync.wake()
        return True

    def wait_for_answer(self, message_id: str, timeout: float) -> dict | None:
        return self.sync.wait_for_answer(message_id, timeout)

    def link(self) -> LinkState:
        return self.sync.link

    def has_pending(self) -> bool:
        return self.store.has_pending()

    def can_take_payment(self) -> bool:
        return self.budget is None or self.budget.can_take_payment()

    def depth(self) -> QueueDepth:
        counts = self.store.counts()
        return QueueDepth(counts.pending, counts.dead, self.store.last_answered_at())

    def resync(self) -> None:
        released = self.store.reset_backoff()
        log.info("outbox.resync held_back=%d", released)
        self.sync.wake()

    def housekeep(self) -> RetentionReport:
        """Delete what is no longer needed, give the space back, look at the disk's free space."""
        report = self.retention.run_once()
        if self.budget is not None:
            self.budget.level()
        return report


def void_message_id(request_id: str) -> str:
    return "void-" + request_id


def void_sender(outbox: OutboxPort) -> Callable[[str], bool]:
    """The reconciler's `send_void`: the void of a request's document, into the outbox."""
    def send_void(request_id: str) -> bool:
        return outbox.send(MessageKind.VOID_REQUEST, void_message_id(request_id), {"request_id": request_id})
    return send_void


def open_state(config: KioskConfig, *, alert: Callable[[str], None] | None = None
               ) -> tuple[StateDatabase, Outbox, SqliteJournal]:
    """The state database at `outbox.path` (checked, a damaged file moved aside), with the outbox's
    store (sealing with the device key at `outbox.key_path`) and the journal on it; QueueError
    (JournalError for the journal's table) when it cannot be opened."""
    database = StateDatabase(config.outbox.path, alert=alert)
    key_path = config.outbox.key_path or default_key_path(config.outbox.path)
    store = Outbox(database, sealer=Sealer.from_key_file(key_path, alert=alert))
    return database, store, SqliteJournal(database)


def from_config(config: KioskConfig, deliver: Deliver, *, terminal: PaymentTerminal, run_id: str,
                alert: Callable[[str], None], probe: Probe | None = None) -> LocalState:
    """The `sqlite` backend of `outbox.backend` (kiosk.ports.state.LocalStateFactory): the outbox,
    the journal and the reconciler on one database; the runtime starts and stops the two workers.
    Central's health path is the link's probe unless `probe` is given."""
    database, store, journal = open_state(config, alert=alert)
    audit = SqliteAuditLog(database, config.device_id, alert=alert)
    audit.check_anchor()                   # the newest entries gone since the last run: written into the chain
    section = config.outbox
    budget = DiskBudget(section.path.parent, alert_bytes=section.disk_alert_mb * MB,
                        reserve_bytes=section.disk_reserve_mb * MB, alert=alert)
    outbox = DurableOutbox(store, deliver, max_backoff_s=section.max_backoff_s,
                           probe=probe or HealthProbe(config.central.url, ca_file=config.central.ca_file), alert=alert,
                           budget=budget)
    reconciler = Reconciler(journal, terminal, void_sender(outbox), run_id=run_id, alert=alert,
                            claim_answer=lambda request_id: outbox.wait_for_answer(request_id, 0.0))
    return LocalState(outbox=outbox, journal=journal, reconciler=reconciler,
                      catalogue_cache=for_state_database(config.outbox.path), audit=audit,
                      technician_lockout=SqliteTechnicianLockout(database),
                      telemetry=SqliteTelemetryStore(database), command_ledger=SqliteCommandLedger(database),
                      announcement_cache=FileCatalogueCache(config.outbox.path.parent / ANNOUNCEMENTS_FILE))
