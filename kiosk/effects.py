"""Effects out of the session: what the runtime carries out beside the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from kiosk.catalogue import Service
from kiosk.documents import IssuedDocument
from kiosk.money import Money


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
    """Ask central, before any charge, whether it would issue this document."""

    txn_id: str
    service_code: str
    national_number: str
    card_number: str

    def __repr__(self) -> str:
        return "CheckEligibility(txn_id=%s, service=%s)" % (self.txn_id, self.service_code)


@dataclass(frozen=True)
class CheckPrinter:
    txn_id: str


@dataclass(frozen=True)
class Charge:
    txn_id: str
    amount: Money
    charge_id: str
    reference: str


@dataclass(frozen=True, repr=False)
class IssueDocument:
    txn_id: str
    request_id: str
    service_code: str
    national_number: str
    card_number: str
    language: str
    payment_id: str

    def __repr__(self) -> str:
        return "IssueDocument(txn_id=%s, request_id=%s, service=%s)" % (
            self.txn_id, self.request_id, self.service_code)


@dataclass(frozen=True)
class PrintDocument:
    txn_id: str
    document: IssuedDocument
    service: Service
    payment_id: str
    language: str
    copy: bool = False           # a reprint after part of the first print came out: marked as a copy


@dataclass(frozen=True)
class Refund:
    """Give the fee back; carried out durably (it survives a power cut)."""

    txn_id: str
    payment_id: str | None       # None: the charge's answer was lost; settle by charge_id
    charge_id: str
    amount: Money
    refund_id: str


@dataclass(frozen=True)
class VoidDocument:
    txn_id: str
    request_id: str


@dataclass(frozen=True)
class Alert:
    """Something a technician must see to (paper running low); no personal data."""

    kind: str


@dataclass(frozen=True)
class Audit:
    """An audit entry without personal data."""

    event: str
    detail: str = ""


Effect = Union[
    LoadCatalogue, ConnectCard, Authenticate, ReadPhoto, ReleaseCard, CheckEligibility, CheckPrinter, Charge,
    IssueDocument, PrintDocument, Refund, VoidDocument, Alert, Audit,
]
