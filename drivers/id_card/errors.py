"""Errors of the card profile. Messages never carry card data or the PIN."""

from __future__ import annotations

from kiosk.errors import CardError, KioskError


class MalformedCardData(CardError):
    """Bytes read from a card do not follow the profile."""


class PinFormatError(KioskError, ValueError):
    """The PIN handed in is not 4 to 8 ASCII digits (a caller's mistake)."""


class CardUnreadable(CardError):
    """The card answered outside the profile, went silent, or was pulled.

    A transport raises it when an exchange fails; the protocol turns it into
    an UNREADABLE verdict. `reason` is a stable word for the log, never card
    data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
