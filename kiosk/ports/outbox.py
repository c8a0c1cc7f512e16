"""Messages that must reach central or the payment side, whatever the link does.

A message is kept durably before the citizen is told anything, delivered
when the link allows, and answered once: it carries an id chosen by the
kiosk (the request id, the refund id) that the far side answers idempotently.
Messages of one transaction go in order (a void never overtakes its
request); a message that cannot go holds up only its own transaction.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Callable

from kiosk.messages import MessageKind

# deliver(kind, payload) -> the far side's final answer, or None when it cannot be reached now.
# It raises CentralError or PaymentError for a message the far side will never take.
Deliver = Callable[[MessageKind, dict], "dict | None"]


class LinkState(enum.Enum):
    """What the outbox last saw of its link to the far side, for a link indicator."""

    UNKNOWN = "unknown"      # nothing sent or asked yet
    ONLINE = "online"        # the far side answered lately
    OFFLINE = "offline"      # it could not be reached: messages wait, and the link is watched


@dataclass(frozen=True)
class QueueDepth:
    """How full the outbox is, for the technician screen (counts and a time; no contents)."""

    pending: int                         # messages waiting for their far side
    dead: int                            # dead letters: refused for good
    last_answered_at: float | None       # wall time central last answered a message kept; None: none kept


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
        """The far side's answer to a sent message, or None when none came within `timeout` seconds.
        A message the far side refused for good is answered ``{"status": "failed", "reason": "refused"}``."""

    def link(self) -> LinkState:
        """Whether the far side can be reached, as last seen."""
        return LinkState.UNKNOWN

    def has_pending(self) -> bool:
        """Whether a message kept is still waiting for its far side's answer (the journey runner waits
        for none before a kiosk is stopped)."""
        return False

    def can_take_payment(self) -> bool:
        """False when the outbox could not keep another paid transaction (its disk is nearly full):
        asked before any charge, so that nobody pays for a request that could not be kept."""
        return True

    def depth(self) -> QueueDepth | None:
        """How many messages wait and how many are dead letters (None: this outbox cannot say)."""
        return None

    def resync(self) -> None:
        """Deliver what waits now, not at its next try (central's resync command); nothing to do for an
        outbox that sends at once."""
