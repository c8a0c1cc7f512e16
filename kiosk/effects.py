"""Effects out of the session: what the runtime carries out beside the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from kiosk.catalogue import Service
from kiosk.commands import FinishCommand, RunCommand  # central's commands: their effects are theirs
from kiosk.documents import IssuedDocument
from kiosk.money import Money
from kiosk.ports.cabinet import Chime as ChimeKind
from kiosk.ports.payment_terminal import CardReceipt, PaymentMethod


@dataclass(frozen=True)
class LoadCatalogue:
    pass


@dataclass(frozen=True)
class ConnectCard:
    session_id: str


@dataclass(frozen=True, repr=False)
class Authenticate:
    session_id: str
    pin: str

    def __repr__(self) -> str:
        return "Authenticate(session_id=%s, pin=<withheld>)" % self.session_id


@dataclass(frozen=True)
class ReadPhoto:
    session_id: str


@dataclass(frozen=True)
class ReleaseCard:
    """Disconnect from the card and drop what the driver read."""


@dataclass(frozen=True, repr=False)
class CheckEligibility:
    """Ask central, before any charge, whether it would issue this document at this fee, for the
    holder of the card in the reader (which signs central's challenge: no number goes in the effect)."""

    txn_id: str
    service_code: str
    fee: Money
    catalogue_version: str

    def __repr__(self) -> str:
        return "CheckEligibility(txn_id=%s, service=%s)" % (self.txn_id, self.service_code)


@dataclass(frozen=True)
class CheckPrinter:
    txn_id: str


@dataclass(frozen=True)
class CheckTerminal:
    """Ask the payment terminal, before any charge, whether it can take a sale."""

    txn_id: str


@dataclass(frozen=True)
class CheckOfflineAllowance:
    """Before a claim is charged: would `amount` keep the day's offline payments within `daily_cap`?"""

    txn_id: str
    amount: Money
    daily_cap: Money


@dataclass(frozen=True)
class Charge:
    """Journal the transaction, then ask the terminal for the sale."""

    txn_id: str
    amount: Money
    sale_id: str
    request_id: str
    service_code: str
    method: PaymentMethod
    label: str                   # the service and the fee, for the terminal's own display
    offline: bool = False        # a claim's: central cannot be reached (counts to the day's offline cap)


@dataclass(frozen=True)
class AbortPayment:
    """The citizen pressed cancel while the terminal waits for a card or a wallet."""

    txn_id: str


@dataclass(frozen=True, repr=False)
class IssueDocument:
    txn_id: str
    request_id: str
    service_code: str
    presence_id: str             # the card's proven presence, from the pre-check: whose document it is
    language: str
    payment_id: str

    def __repr__(self) -> str:
        return "IssueDocument(txn_id=%s, request_id=%s, service=%s)" % (
            self.txn_id, self.request_id, self.service_code)


@dataclass(frozen=True, repr=False)
class QueueClaim:
    """Central cannot be reached and the fee is paid: keep the certificate request in the outbox as a
    claim (central issues it when it arrives; the citizen collects it at any kiosk), journalled CLAIMED."""

    txn_id: str
    request_id: str
    service_code: str
    language: str
    payment_id: str
    reference: str               # the claim slip's: random, not guessable; no personal data

    def __repr__(self) -> str:
        return "QueueClaim(txn_id=%s, request_id=%s, service=%s)" % (self.txn_id, self.request_id, self.service_code)


@dataclass(frozen=True)
class PrintClaimSlip:
    txn_id: str
    service: Service
    reference: str
    payment_id: str
    receipt: CardReceipt | None
    language: str


@dataclass(frozen=True, repr=False)
class FindWaitingDocuments:
    """After the card is verified: ask central whether documents claimed earlier wait for the holder of
    the card in the reader (which signs central's challenge)."""

    session_id: str

    def __repr__(self) -> str:
        return "FindWaitingDocuments(session_id=%s)" % self.session_id


@dataclass(frozen=True)
class PrintCollected:
    """Print the documents waiting for the citizen, one by one; each printed is confirmed to central
    (through the outbox), so it is collected once. No payment."""

    session_id: str
    documents: tuple[IssuedDocument, ...]
    language: str


@dataclass(frozen=True)
class PrintDocument:
    txn_id: str
    document: IssuedDocument
    service: Service
    payment_id: str
    receipt: CardReceipt | None
    language: str
    copy: bool = False           # a reprint after part of the first print came out: marked as a copy


@dataclass(frozen=True)
class Settle:
    """Give the fee back and void the document, whatever the payment's answer was: written in the
    journal, carried out by the reconciler (it survives a power cut)."""

    txn_id: str
    reason: str


@dataclass(frozen=True)
class Alert:
    """Something a technician must see to (paper running low); no personal data."""

    kind: str


@dataclass(frozen=True)
class Chime:
    """Tell the citizen, by ear, to take their card or their document (the cabinet's chime)."""

    kind: ChimeKind


@dataclass(frozen=True)
class Audit:
    """An audit entry without personal data: codes only (kiosk/ports/audit.py)."""

    event: str
    detail: str = ""
    technician: str | None = None          # the technician's id, when a technician did it


# ---------------------------------------------------------------- the technician's


@dataclass(frozen=True, repr=False)
class CheckTechnicianPin:
    """Check a technician PIN against the configured hash (slow on purpose: on a worker)."""

    attempt_id: str
    pin: str

    def __repr__(self) -> str:
        return "CheckTechnicianPin(attempt_id=%s, pin=<withheld>)" % self.attempt_id


@dataclass(frozen=True)
class SaveTechnicianLockout:
    """Keep the technician PIN's wrong tries and lockout on the disk (on a worker), so that a restart
    does not clear them: `locked_s` seconds of lockout left from now (0: none); the runtime turns
    them into a wall-clock end."""

    tries: int
    locked_s: float


@dataclass(frozen=True)
class GatherTechnicianStatus:
    """Ask every device how it is, and the outbox how full it is, for the technician screen."""


@dataclass(frozen=True)
class PrintTestPage:
    """A short test page through the printer port (no personal data on it)."""


@dataclass(frozen=True)
class WalkLights:
    """Each light pattern in turn on the cabinet, then back to the one shown."""


@dataclass(frozen=True)
class RestartApp:
    """The app exits with a status that systemd restarts it after."""


@dataclass(frozen=True)
class RebootDevice:
    """The device restarts (`systemctl reboot`, injected: tests never reboot)."""


Effect = Union[
    LoadCatalogue, ConnectCard, Authenticate, ReadPhoto, ReleaseCard, CheckEligibility, CheckPrinter,
    CheckTerminal, Charge, AbortPayment, IssueDocument, PrintDocument, Settle, Alert, Audit,
    CheckOfflineAllowance, QueueClaim, PrintClaimSlip, FindWaitingDocuments, PrintCollected, Chime,
    CheckTechnicianPin, GatherTechnicianStatus, PrintTestPage, WalkLights, RestartApp, RebootDevice,
    SaveTechnicianLockout, RunCommand, FinishCommand,
]
