"""Central's services as the runtime sees them: the catalogue, the pre-check
before a charge, and the delivery of outbox messages.

`kiosk.central_client.CentralClient` is the one over HTTP; a test may stand
in for it. A link that is down is part of normal life here: it comes back as
a value (UNREACHABLE, None), never as an exception the caller must guess at.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from kiosk.card_proof import CardProof
from kiosk.catalogue import Catalogue
from kiosk.documents import IssuedDocument
from kiosk.messages import MessageKind
from kiosk.money import Money


class Eligibility(enum.Enum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not eligible"     # central would refuse this document for this card
    UNREACHABLE = "unreachable"       # no answer: do not charge


@dataclass(frozen=True)
class EligibilityAnswer:
    eligibility: Eligibility
    fee: Money | None = None          # central's fee for the service now, when it answered
    catalogue_version: str = ""       # the version of central's catalogue now, when it answered
    presence_id: str = ""             # when ELIGIBLE: the card's proven presence, which the request names


@dataclass(frozen=True)
class Challenge:
    """Central's challenge to the card in the reader: the card signs `nonce` (32 bytes), once."""

    challenge_id: str
    nonce: bytes


class Central(abc.ABC):
    @abc.abstractmethod
    def fetch_catalogue(self) -> Catalogue:
        """The services and their fees; CentralError when central cannot be reached or answers garbage."""

    def fetch_signed_catalogue(self) -> dict:
        """The catalogue document as central served it, its signature included, for the kiosk to
        check and keep (kiosk.catalogue_supply); CentralError as for `fetch_catalogue`. A central
        that signs nothing (a test's) answers with the catalogue's JSON, unsigned."""
        catalogue = self.fetch_catalogue()
        return {**catalogue.to_json(), "version": catalogue.version}

    @abc.abstractmethod
    def challenge(self) -> Challenge | None:
        """A fresh challenge for the card in the reader; None when central cannot be asked."""

    @abc.abstractmethod
    def check_eligibility(self, *, service_code: str, challenge: Challenge, proof: CardProof, fee: Money,
                          catalogue_version: str) -> EligibilityAnswer:
        """Would central issue this document for the holder of the card that signed `challenge`
        (`proof`), at this fee? Asked before any charge, with the fee the kiosk is about to charge
        and the version of the catalogue it shows; central answers with its own fee, so a changed
        fee is shown before anything is charged, and, when eligible, the presence the request names."""

    def waiting_documents(self, *, challenge: Challenge, proof: CardProof) -> tuple[IssuedDocument, ...] | None:
        """The documents claimed earlier (at any kiosk, while it could not reach central) that central
        issued and that wait for the holder of the card that signed `challenge`, oldest first; None
        when central cannot be asked."""
        return None

    def fetch_signed_announcements(self) -> dict:
        """Central's announcements for the attract screen as it served them, its signature included, for
        the kiosk to check and keep (kiosk.catalogue_supply); CentralError when central cannot be
        reached. A central that signs nothing (a test's) has none to show."""
        return {"announcements": [], "version": ""}

    def report_command(self, command_id: str, outcome: str, reason: str | None) -> bool | None:
        """What this kiosk did with central's command `command_id` (kiosk/commands.py): True once central
        holds it (or knows no such command), False when it refuses the report for good, None when it
        cannot be told now (the kiosk tells it later)."""
        return None

    def send_command_logs(self, command_id: str, lines: list[str], dropped: int) -> bool | None:
        """The log lines a collect-logs command asked for, as `report_command` answers."""
        return None

    def device_refused(self) -> str | None:
        """Why central refused this kiosk at its last answer (revoked, unknown, unauthenticated), or
        None while it serves it: the kiosk is out of service until it does."""
        return None

    @abc.abstractmethod
    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        """Send one outbox message; central's final answer, None when it cannot take it now,
        CentralError when it never will."""
