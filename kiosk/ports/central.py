"""Central's services as the runtime sees them: the catalogue, the pre-check
before a charge, and the delivery of outbox messages.

`kiosk.central_client.CentralClient` is the one over HTTP; a test may stand
in for it. A link that is down is part of normal life here: it comes back as
a value (UNREACHABLE, None), never as an exception the caller must guess at.
"""

from __future__ import annotations

import abc
import enum

from kiosk.catalogue import Catalogue
from kiosk.messages import MessageKind


class Eligibility(enum.Enum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not eligible"     # central would refuse this document for this card
    UNREACHABLE = "unreachable"       # no answer: do not charge


class Central(abc.ABC):
    @abc.abstractmethod
    def fetch_catalogue(self) -> Catalogue:
        """The services and their fees; CentralError when central cannot be reached or answers garbage."""

    @abc.abstractmethod
    def check_eligibility(self, *, service_code: str, national_number: str, card_number: str) -> Eligibility:
        """Would central issue this document for this card? Asked before any charge."""

    @abc.abstractmethod
    def deliver(self, kind: MessageKind | str, payload: dict) -> dict | None:
        """Send one outbox message; central's final answer, None when it cannot take it now,
        CentralError when it never will."""
