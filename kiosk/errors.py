"""The one tree of kiosk errors.

Failures that are part of normal life (a pulled card, no paper, a declined
card) are values the caller must look at; these exceptions are for the
unexpected. Messages never carry personal data.
"""


class KioskError(Exception):
    """Base of every error the kiosk raises on purpose."""


class HardwareError(KioskError):
    """A device did something we did not expect."""


class CardError(HardwareError):
    """The ID card or its reader failed in an unexpected way."""


class PrinterError(HardwareError):
    """The printer failed in an unexpected way."""


class PaymentError(HardwareError):
    """The payment terminal failed in an unexpected way."""


class ConfigError(KioskError, ValueError):
    """The configuration is missing, malformed or inconsistent."""


class QueueError(KioskError):
    """The offline outbox cannot store or deliver a message."""


class CentralError(KioskError):
    """The central service answered with something we cannot use."""


class JournalError(QueueError):
    """The transaction journal cannot write a fact down: nothing may be charged."""


class AuditError(QueueError):
    """The audit log cannot write an entry down (a full disk): the kiosk goes on, a technician is called."""
