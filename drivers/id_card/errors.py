"""Errors of the card profile. Messages never carry card data or the PIN."""

from __future__ import annotations

from kiosk.errors import CardError, KioskError


class MalformedCardData(CardError):
    """Bytes read from a card do not follow the profile."""


class PinFormatError(KioskError, ValueError):
    """The PIN handed in is not 4 to 8 ASCII digits (a caller's mistake)."""
