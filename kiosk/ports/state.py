"""What the kiosk keeps on its own disk: the outbox, the transaction journal, and the reconciler
that settles what the journal owes. One backend (`outbox.backend`) builds all three on one store,
so that a message and the transaction it belongs to are never kept in two half-copies; beside
them, the copy of central's signed catalogue (None: the backend keeps none) and the technician
PIN's wrong tries and lockout (None: kept in memory, cleared by a restart), and the telemetry's alerts and audit
position (None: kept in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from kiosk.commands import CommandLedger
from kiosk.ports.audit import AuditLog
from kiosk.ports.catalogue_cache import CatalogueCache
from kiosk.ports.journal import Journal, Reconciler
from kiosk.ports.outbox import Deliver, Outbox
from kiosk.ports.payment_terminal import PaymentTerminal
from kiosk.ports.technician_lockout import TechnicianLockout
from kiosk.ports.telemetry import TelemetryStore


@dataclass(frozen=True)
class LocalState:
    outbox: Outbox
    journal: Journal
    reconciler: Reconciler
    catalogue_cache: CatalogueCache | None = None
    audit: AuditLog | None = None          # the tamper-evident audit log (None: the log lines only)
    technician_lockout: TechnicianLockout | None = None    # the PIN's wrong tries (None: in memory only)
    telemetry: TelemetryStore | None = None    # alerts until central has them, the audit position (None: memory)
    command_ledger: CommandLedger | None = None    # central's commands taken (None: none is taken)
    announcement_cache: CatalogueCache | None = None    # central's announcements kept (None: none)


class LocalStateFactory(Protocol):
    def __call__(self, config: object, *, deliver: Deliver, terminal: PaymentTerminal, run_id: str,
                 alert: Callable[[str], None]) -> LocalState:
        """`deliver` takes outbox messages to central; `alert` calls a technician (no personal data)."""
