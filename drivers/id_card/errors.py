"""Errors of the card driver. Messages never carry card data or the PIN.

`MalformedCardData`, for bytes outside the profile, is the core's
(`kiosk.id_card_data`): central refuses card data with it too."""

from __future__ import annotations

from kiosk.errors import CardError, KioskError


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
