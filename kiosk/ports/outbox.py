"""Messages that must reach central or the payment side, whatever the link does.

A message is kept durably before the citizen is told anything, delivered in
order when the link allows, and answered once: it carries an id chosen by the
kiosk (the request id, the refund id) that the far side answers idempotently.
"""

from __future__ import annotations

import abc
from typing import Callable

from kiosk.messages import MessageKind

# deliver(kind, payload) -> the far side's final answer, or None when it cannot be reached now.
# It raises CentralError or PaymentError for a message the far side will never take.
Deliver = Callable[[MessageKind, dict], "dict | None"]


class Outbox(abc.ABC):
    @abc.abstractmethod
    def start(self) -> None:
        """Start delivering in the background."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop delivering; what is kept stays for the next start."""

    @abc.abstractmethod
    def send(self, kind: MessageKind, message_id: str, payload: dict) -> bool:
        """Keep the message and deliver it as soon as the link allows; the same
        id again changes nothing. When it cannot be kept (a full disk), it is
        delivered at once; False when neither worked, so the caller raises the alarm."""

    @abc.abstractmethod
    def wait_for_answer(self, message_id: str, timeout: float) -> dict | None:
        """The far side's answer to a sent message, or None when none came within `timeout` seconds."""
